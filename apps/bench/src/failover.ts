/**
 * Failover: milliseconds from SIGKILL of the leader's process to the next committed write,
 * on a fresh cluster of ws + SQLite replica processes per run. After the kill, every surviving
 * replica is asked to commit a write every 10 ms (each attempt with a short timeout); the
 * first success stops the clock.
 */
import { performance } from 'node:perf_hooks';
import { sleep } from './cluster.js';
import type { Protocol } from './matrix.js';
import { WsCluster } from './ws-cluster.js';

/** Options of {@link measureFailover}. */
export interface FailoverOptions {
  readonly protocol: Protocol;
  readonly nodes: number;
  readonly childEntry: string;
  readonly tickMs?: number;
  readonly protocolOptions?: Record<string, unknown>;
  readonly tmpDir?: string;
  /** Node flags of the replica processes. */
  readonly childExecArgv?: readonly string[];
  /** Give up on one run after this many ms without a commit. Default 30 s. */
  readonly runTimeoutMs?: number;
}

/** One failover run; resolves with the milliseconds from SIGKILL to the next commit. */
export async function measureFailoverOnce(o: FailoverOptions): Promise<number> {
  const cluster = await WsCluster.start({
    protocol: o.protocol,
    storage: 'sqlite',
    nodes: o.nodes,
    payloadBytes: 16,
    childEntry: o.childEntry,
    ...(o.tickMs !== undefined ? { tickMs: o.tickMs } : {}),
    ...(o.protocolOptions ? { protocolOptions: o.protocolOptions } : {}),
    ...(o.tmpDir ? { tmpDir: o.tmpDir } : {}),
    ...(o.childExecArgv ? { execArgv: () => [...o.childExecArgv!] } : {}),
  });
  try {
    let leader = await cluster.leaderThatCommits();
    // A few more writes so followers are caught up and the leader is steady. A leadership change
    // meanwhile (a replica process stalled on a loaded machine) is not a failure: follow the
    // new leader, up to a bounded number of changes.
    for (let ok = 0, changes = 0; ok < 5; ) {
      try {
        await leader.request({ t: 'propose', timeoutMs: 2_000 });
        ok++;
      } catch (err) {
        if (++changes > 20) throw err;
        leader = await cluster.leaderThatCommits();
      }
    }
    const survivors = cluster.replicas.filter((r) => r !== leader);
    const t0 = performance.now();
    await leader.kill();
    const deadline = t0 + (o.runTimeoutMs ?? 30_000);
    return await new Promise<number>((resolve, reject) => {
      let done = false;
      const attempt = () => {
        if (done) return;
        if (performance.now() > deadline) {
          done = true;
          reject(new Error(`no write committed within ${o.runTimeoutMs ?? 30_000} ms after killing the leader`));
          return;
        }
        for (const r of survivors) {
          r.request({ t: 'propose', timeoutMs: 500 }).then(
            () => {
              if (done) return;
              done = true;
              resolve(performance.now() - t0);
            },
            () => {},
          );
        }
        void sleep(10).then(attempt);
      };
      attempt();
    });
  } finally {
    await cluster.close();
  }
}

/** The median of `values` (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
