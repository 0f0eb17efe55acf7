/**
 * The whole orchestration, tiny: baselines, one in-process cell and one ws cell in child
 * processes (TypeScript entry through tsx), one liferaft run and one failover run, then the
 * files. Checks shape and sanity, never speed: every cell and peer first waits for a leader,
 * so a loaded machine makes the run slower, not wrong.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { pickMedianRun, runBench } from './run.js';
import { parseBenchReport } from './schema.js';

describe('pickMedianRun', () => {
  it('keeps the run with the median throughput', () => {
    expect(pickMedianRun([{ opsPerSec: 3, id: 'a' }, { opsPerSec: 1, id: 'b' }, { opsPerSec: 2, id: 'c' }]).id).toBe('c');
    expect(pickMedianRun([{ opsPerSec: 5 }, { opsPerSec: 1 }]).opsPerSec).toBe(1);
    expect(pickMedianRun([{ opsPerSec: 7 }]).opsPerSec).toBe(7);
    expect(() => pickMedianRun([])).toThrow();
  });
});

describe('runBench', () => {
  it('measures, validates and writes latest.json, report.md and throughput.svg', async () => {
    const out = mkdtempSync(join(tmpdir(), 'synod-bench-run-'));
    const steps: string[] = [];
    let planned = 0;
    try {
      const { report, files } = await runBench({
        full: false,
        filter: { protocols: ['raft'], storages: ['memory'], clients: [4], nodes: [3], transports: ['memory', 'ws'] },
        warmupMs: 200,
        durationMs: 400,
        baselineMs: 100,
        baselines: true,
        baselinesTwice: false,
        peers: true,
        peerClients: [1],
        failover: true,
        failoverRuns: 1,
        tickMs: 20,
        profile: false,
        outDir: out,
        command: 'pnpm bench (test)',
        childEntry: fileURLToPath(new URL('./child.ts', import.meta.url)),
        childExecArgv: ['--conditions=@synod/source', '--import', 'tsx'],
        onPlan: (n) => (planned = n),
        onStep: (s) => steps.push(s),
      });
      expect(report.results.map((r) => `${r.transport}/${r.clients}`)).toEqual(['memory/4', 'ws/4']);
      for (const r of report.results) {
        // What the child measured arrives intact (whatever the machine's speed): the rate is the
        // window's count over its length, and the ratio to the cell's limit is filled in.
        const { ops, durationMs } = r as typeof r & { ops: number; durationMs: number };
        expect(Number.isInteger(ops) && ops >= 0).toBe(true);
        expect(r.opsPerSec).toBeCloseTo((ops / durationMs) * 1000, 0);
        expect(r.ratioToLimit).not.toBeNull();
      }
      expect(report.baselines.map((b) => b.name)).toContain('ws-roundtrip-pipelined');
      for (const b of report.baselines) expect(b.opsPerSec).toBeGreaterThan(0); // every baseline completes at least one operation
      expect(report.peers.map((p) => p.name)).toEqual(['@markwylde/liferaft', 'paxos']);
      // Each window can in principle be starved on a loaded machine (the smoke tests re-measure
      // such a window); all four of them starved would be the orchestration losing its counts.
      expect([...report.results, ...report.peers].some((x) => x.opsPerSec > 0)).toBe(true);
      expect(report.failover.map((f) => f.protocol)).toEqual(['raft']);
      expect(steps).toHaveLength(planned);
      // What was written is the validated report.
      const json = parseBenchReport(JSON.parse(readFileSync(files.json, 'utf8')));
      expect(json.results).toHaveLength(2);
      expect(readFileSync(files.markdown, 'utf8')).toContain('## Results');
      expect(readFileSync(files.svg, 'utf8').startsWith('<svg')).toBe(true);
      expect(existsSync(join(out, 'profiles'))).toBe(false);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 600_000); // about 15 s on an idle 2-core machine; it forks a dozen TypeScript children, so a heavily loaded CI machine gets a wide margin
});
