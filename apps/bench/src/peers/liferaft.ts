/**
 * Peer: `@markwylde/liferaft`, three nodes in this process, each with its own log (its default
 * LevelDB adapter, `leveldown`, in a temporary directory). Nodes talk through an in-process
 * `write` that hands each packet to the addressee on the next event-loop turn (no
 * serialization), the same footing as synod's memory transport.
 *
 * A write is counted when the leader emits `commit` for it (a majority stored it). liferaft's
 * `command()` allocates the next index by reading the last entry, so concurrent commands on
 * one leader can take the same index and overwrite each other: with more than one client, some
 * writes never commit; they time out and are counted as errors, not as operations.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '../cluster.js';
import { runClosedLoop, type ClosedLoopResult } from '../load.js';

/** The parts of liferaft's API the bench uses. */
interface LifeRaftNode {
  readonly address: string;
  state: number;
  join(address: string): unknown;
  command(cmd: unknown): Promise<void>;
  on(event: 'commit', fn: (cmd: { id: number }) => void): unknown;
  off(event: 'commit', fn: (cmd: { id: number }) => void): unknown;
  emit(event: string, ...args: unknown[]): boolean;
  end(): boolean;
}
interface LifeRaftCtor {
  new (address: string, options: Record<string, unknown>): LifeRaftNode;
  readonly LEADER: number;
}

/** Options of {@link runLiferaft}. */
export interface PeerRunOptions {
  readonly nodes: number;
  readonly clients: number;
  readonly payloadBytes: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Wait this long for a write's commit before counting it as an error. Default 1000 ms. */
  readonly commitTimeoutMs?: number;
  readonly tmpDir?: string;
}

/** What a peer run measured. */
export interface PeerMeasurement extends ClosedLoopResult {
  readonly name: string;
  readonly version: string;
  readonly nodes: number;
  readonly clients: number;
  readonly payloadBytes: number;
  /** How the peer was run, in one sentence. */
  readonly setup: string;
  /** Rejections inside the library that nobody handled (by error name), if any. */
  readonly internalErrors?: Readonly<Record<string, number>>;
}

/** Runs liferaft with `nodes` nodes in this process under the closed loop. */
export async function runLiferaft(o: PeerRunOptions): Promise<PeerMeasurement> {
  const require = createRequire(import.meta.url);
  const Base = require('@markwylde/liferaft') as LifeRaftCtor;
  const Log = require('@markwylde/liferaft/log') as unknown;
  const version = (require('@markwylde/liferaft/package.json') as { version: string }).version;
  const dir = mkdtempSync(join(o.tmpDir ?? tmpdir(), 'synod-bench-liferaft-'));
  const registry = new Map<string, LifeRaftNode>();

  // liferaft calls `initialize` from its constructor and `write(packet, cb)` on the child node
  // object that stands for a peer (its `address` is the peer's).
  class MemRaft extends (Base as unknown as new (address: string, options: Record<string, unknown>) => LifeRaftNode) {
    initialize(): void {
      registry.set(this.address, this);
    }
    write(packet: unknown, fn?: (err: unknown, reply?: unknown) => void): void {
      const target = registry.get(this.address);
      if (!target) return;
      setImmediate(() => target.emit('data', packet, (reply: unknown) => fn?.(undefined, reply)));
    }
  }

  const addresses = Array.from({ length: o.nodes }, (_, i) => `lr${i + 1}`);
  // Election timeouts well above the event-loop stalls of a loaded process, so leadership
  // stays put while measuring (liferaft's defaults are 150-300 ms).
  const nodes = addresses.map(
    (a) => new MemRaft(a, { 'election min': 1000, 'election max': 2000, heartbeat: 100, Log, path: join(dir, a) }),
  );
  for (const n of nodes) for (const a of addresses) if (a !== n.address) n.join(a);
  const timeout = o.commitTimeoutMs ?? 1000;
  // Under concurrent commands liferaft's own async chains reject (e.g. levelup NotFoundError
  // when committing an index another command overwrote) with nobody listening; Node would
  // exit on them. Count them instead: they are liferaft failures, reported with the run.
  const internalErrors: Record<string, number> = {};
  const onInternal = (reason: unknown) => {
    const name = (reason as Error)?.name ?? 'Error';
    internalErrors[name] = (internalErrors[name] ?? 0) + 1;
  };
  process.on('unhandledRejection', onInternal);
  try {
    let leader: LifeRaftNode | undefined;
    const deadline = Date.now() + 30_000;
    while (!(leader = nodes.find((n) => n.state === Base.LEADER))) {
      if (Date.now() > deadline) throw new Error('liferaft elected no leader within 30 s');
      await sleep(10);
    }
    const waiters = new Map<number, () => void>();
    const onCommit = (cmd: { id: number }) => {
      const w = waiters.get(cmd?.id);
      if (w) {
        waiters.delete(cmd.id);
        w();
      }
    };
    leader.on('commit', onCommit);
    const payload = 'x'.repeat(o.payloadBytes);
    let nextId = 1;
    const l = leader;
    const result = await runClosedLoop({
      clients: o.clients,
      warmupMs: o.warmupMs,
      durationMs: o.durationMs,
      op: async () => {
        const id = nextId++;
        let timer: NodeJS.Timeout | undefined;
        const committed = new Promise<void>((resolve, reject) => {
          waiters.set(id, resolve);
          timer = setTimeout(() => {
            waiters.delete(id);
            const e = new Error(`write ${id} not committed within ${timeout} ms`);
            e.name = 'CommitTimeout';
            reject(e);
          }, timeout);
        });
        try {
          await l.command({ id, payload });
          await committed;
        } finally {
          clearTimeout(timer);
          waiters.delete(id);
        }
      },
    });
    l.off('commit', onCommit);
    return {
      ...result,
      name: '@markwylde/liferaft',
      version,
      nodes: o.nodes,
      clients: o.clients,
      payloadBytes: o.payloadBytes,
      setup: `${o.nodes} nodes in one process, leveldown log per node, in-process write() on setImmediate, commit event on the leader`,
      ...(Object.keys(internalErrors).length ? { internalErrors: { ...internalErrors } } : {}),
    };
  } finally {
    // liferaft keeps async chains (commit, append) running after end(); they then fail with
    // levelup's "Database is not open", still caught by onInternal until the files are gone.
    await sleep(100); // let commits in flight finish
    for (const n of nodes) {
      try {
        n.end();
      } catch {
        // already ended
      }
    }
    await sleep(200); // let leveldown close its files before removing them
    rmSync(dir, { recursive: true, force: true });
    process.off('unhandledRejection', onInternal);
  }
}
