/**
 * Crash test: a child process persists a Raft-like workload (entry batches, term/vote changes,
 * truncations, snapshots) as fast as it can and acknowledges each durable batch on stdout; the
 * parent SIGKILLs it at a random moment, then checks that the database holds exactly the state
 * after the last acknowledged batch, or after the one batch that was committed but not yet
 * acknowledged (atomicity: never a part of a batch; durability: never less than acknowledged),
 * and that SQLite's integrity check passes. The child then resumes on the same file and is
 * killed again, several times.
 *
 * The child runs the TypeScript sources through tsx with the `@synod/source` export condition,
 * so the test needs no build of this package or of @synod/log.
 *
 * Nothing here depends on speed: the kill point is counted in acks, either outcome of the
 * in-flight batch is accepted, and the child stops writing {@link RUN_AHEAD} batches past the
 * kill point (so a CPU-starved parent that reads acks late cannot let it grow the database
 * without bound). On a loaded CI machine, starting a child (tsx compiling the sources) and each
 * fsync take several times longer, hence the generous {@link TEST_TIMEOUT_MS}; a child that has
 * not been killed by the test's deadline fails the test with what it got done, rather than
 * hitting the timeout with nothing to go on.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRandom } from '@synod/log';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { SqliteStorage } from '../src/index.js';
import { cloneModel, compareState, type ModelState, Workload } from './crash-workload.js';

const here = dirname(fileURLToPath(import.meta.url));
const pkgDir = join(here, '..');
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** Per-test timeout, ms: eight child starts and a few hundred fsyncs on a heavily loaded machine. */
const TEST_TIMEOUT_MS = 120_000;
/** A child not yet killed this long after the test started fails the test (before the timeout). */
const DEADLINE_MS = TEST_TIMEOUT_MS - 10_000;
/** Batches the child may write past the kill point before it stops and waits for the kill. */
const RUN_AHEAD = 100;

interface ChildRun {
  /** Highest batch number the child acknowledged. */
  lastAck: number;
  /** The child had stopped writing (reached {@link RUN_AHEAD}) before the kill landed. */
  idle: boolean;
  signal: NodeJS.Signals | null;
  code: number | null;
  stderr: string;
}

const live = new Set<ChildProcess>();
afterEach(() => {
  // A failed or timed-out test must not leave a writer behind.
  for (const c of live) c.kill('SIGKILL');
  live.clear();
});

/**
 * Runs the child on `path` from batch `skip`, kills it after `killAfterAcks` acks (+ `delayMs`).
 * Rejects if the child is still alive at `deadline` (epoch ms), after killing it.
 */
function runChild(path: string, seed: number, skip: number, killAfterAcks: number, delayMs: number, deadline: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--conditions=@synod/source', '--import', tsxLoader, join(here, 'crash-child.ts'), path, String(seed), String(skip), String(killAfterAcks + RUN_AHEAD)],
      { cwd: pkgDir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    live.add(child);
    let timedOut = false;
    const watchdog = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, Math.max(0, deadline - Date.now()));
    let idle = false;
    let lastAck = skip;
    let acks = 0;
    let buf = '';
    let stderr = '';
    let killing = false;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (stderr += d));
    child.stdout.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === 'idle') idle = true;
        const m = /^ack (\d+)$/.exec(line);
        if (!m) continue;
        const n = Number(m[1]);
        if (n !== lastAck + 1) reject(new Error(`acks out of order: ${n} after ${lastAck}`));
        lastAck = n;
        acks++;
        if (acks >= killAfterAcks && !killing) {
          killing = true;
          setTimeout(() => child.kill('SIGKILL'), delayMs);
        }
      }
    });
    child.on('error', reject);
    // 'close' fires after stdout is fully drained, so every ack written before the kill is counted.
    child.on('close', (code, signal) => {
      clearTimeout(watchdog);
      live.delete(child);
      if (timedOut) {
        reject(new Error(`child (from batch ${skip}) not done by the test's deadline: ${acks} of ${killAfterAcks} acks before the kill point; stderr: ${stderr}`));
      } else {
        resolve({ lastAck, idle, signal, code, stderr });
      }
    });
  });
}

/** Model states after `k` and after `k + 1` batches of the workload. */
function modelsAround(seed: number, k: number): [ModelState, ModelState] {
  const w = new Workload(seed);
  for (let i = 0; i < k; i++) w.next();
  const atK = cloneModel(w.model);
  w.next();
  return [atK, w.model];
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('SqliteStorage survives SIGKILL under load', () => {
  for (const seed of [11, 2024]) {
    it(`keeps every acknowledged batch and never a partial one (seed ${seed}, 4 kills)`, { timeout: TEST_TIMEOUT_MS }, async () => {
      const deadline = Date.now() + DEADLINE_MS;
      const dir = mkdtempSync(join(tmpdir(), 'synod-crash-'));
      dirs.push(dir);
      const path = join(dir, 'replica.db');
      const rng = createRandom(seed);
      let reflected = 0; // batches the database holds
      for (let round = 0; round < 4; round++) {
        const run = await runChild(path, seed, reflected, rng.int(20, 250), rng.int(0, 15), deadline);
        // Killed by us, not dead on its own (an exception or a failed resume check exits with a code).
        expect(run.signal, `child exited with code ${run.code}: ${run.stderr}`).toBe('SIGKILL');
        expect(run.stderr).not.toMatch(/resume check failed|Error/);
        expect(run.lastAck).toBeGreaterThan(reflected);

        const [atAck, afterAck] = modelsAround(seed, run.lastAck);
        const storage = SqliteStorage.open(path);
        try {
          expect(storage.integrityCheck()).toEqual([]);
          const state = storage.load();
          const diffAtAck = compareState(state, atAck);
          const diffAfter = diffAtAck === null ? null : compareState(state, afterAck);
          if (diffAtAck !== null && diffAfter !== null) {
            throw new Error(`after kill at ack ${run.lastAck}: matches neither state. vs acked: ${diffAtAck}; vs next: ${diffAfter}`);
          }
          // A child that had stopped writing has no batch in flight: exactly the acked state.
          if (run.idle && diffAtAck !== null) throw new Error(`idle child killed at ack ${run.lastAck}: ${diffAtAck}`);
          reflected = diffAtAck === null ? run.lastAck : run.lastAck + 1;
          // The latest acknowledged term and vote are there (also covered by compareState).
          expect(state.hardState.term).toBeGreaterThanOrEqual(atAck.hardState.term);
        } finally {
          storage.close();
        }
      }
    });
  }
});
