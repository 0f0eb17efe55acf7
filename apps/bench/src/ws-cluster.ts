/**
 * A cluster of ws replica processes (one OS process per replica, `@synod/transport-ws` on
 * loopback, memory or SQLite storage in a temporary directory), used by the ws cells and by
 * the failover measurement.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './cluster.js';
import type { ReplicaStatusInfo } from './ipc.js';
import type { Protocol, StorageKind } from './matrix.js';
import { ReplicaHandle } from './replica-handle.js';

/** Options of {@link startWsCluster}. */
export interface WsClusterOptions {
  readonly protocol: Protocol;
  readonly storage: StorageKind;
  readonly nodes: number;
  readonly payloadBytes: number;
  /** The bench's child entry (dist/child.js). */
  readonly childEntry: string;
  readonly tickMs?: number;
  readonly protocolOptions?: Record<string, unknown>;
  readonly tmpDir?: string;
  /** Extra node flags per replica (e.g. `--cpu-prof`), by replica index. */
  readonly execArgv?: (index: number, id: string) => string[];
}

/** A running cluster of replica processes. */
export class WsCluster {
  private constructor(
    readonly replicas: readonly ReplicaHandle[],
    private readonly dir: string,
  ) {}

  /** Forks the replicas, wires their addresses, and resolves once all run. */
  static async start(o: WsClusterOptions): Promise<WsCluster> {
    const dir = mkdtempSync(join(o.tmpDir ?? tmpdir(), 'synod-bench-ws-'));
    const ids = Array.from({ length: o.nodes }, (_, i) => `n${i + 1}`);
    const replicas = ids.map((id, i) => new ReplicaHandle(id, o.childEntry, o.execArgv?.(i, id) ?? []));
    const cluster = new WsCluster(replicas, dir);
    try {
      await Promise.all(
        replicas.map((r) =>
          r.start({
            ids,
            protocol: o.protocol,
            storage: o.storage,
            dir,
            payloadBytes: o.payloadBytes,
            ...(o.tickMs !== undefined ? { tickMs: o.tickMs } : {}),
            ...(o.protocolOptions ? { protocolOptions: o.protocolOptions } : {}),
          }),
        ),
      );
      const peers = Object.fromEntries(replicas.map((r) => [r.id, r.address]));
      await Promise.all(replicas.map((r) => r.request({ t: 'peers', peers })));
      return cluster;
    } catch (err) {
      await cluster.close();
      throw err;
    }
  }

  /** The live replica that reports itself leader, polling every 10 ms; rejects after `timeoutMs`. */
  async leader(timeoutMs = 30_000): Promise<ReplicaHandle> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const live = this.replicas.filter((r) => r.alive);
      const statuses = await Promise.all(live.map((r) => r.request<ReplicaStatusInfo>({ t: 'status' }).catch(() => null)));
      const i = statuses.findIndex((s) => s?.role === 'leader');
      if (i >= 0) return live[i]!;
      if (Date.now() > deadline) throw new Error(`no leader among ${live.length} replica processes within ${timeoutMs} ms`);
      await sleep(10);
    }
  }

  /** Waits for a leader that commits a write; resolves with it. */
  async leaderThatCommits(timeoutMs = 30_000): Promise<ReplicaHandle> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown = null;
    while (Date.now() < deadline) {
      const l = await this.leader(Math.max(1, deadline - Date.now()));
      try {
        await l.request({ t: 'propose', timeoutMs: 2_000 });
        return l;
      } catch (err) {
        last = err;
        await sleep(20);
      }
    }
    throw new Error(`no write committed within ${timeoutMs} ms: ${(last as Error)?.message ?? 'no leader'}`);
  }

  /** Stops every replica (cleanly, then SIGKILL) and removes the data directory. */
  async close(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.stop()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
