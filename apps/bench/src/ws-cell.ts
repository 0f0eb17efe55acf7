/**
 * A ws cell: one OS process per replica over `@synod/transport-ws` on loopback. The leader's
 * process runs the closed-loop clients; CPU is summed over every replica process during the
 * leader's measurement window, and peak RSS is summed over the processes.
 */
import { join } from 'node:path';
import type { CellMeasurement, CellRunOptions } from './cell-types.js';
import { batchingOf, sumIo } from './components.js';
import type { ReplicaStats } from './ipc.js';
import type { ClosedLoopResult } from './load.js';
import { cellKey, type CellSpec } from './matrix.js';
import { WsCluster } from './ws-cluster.js';

/** Runs one ws cell with replica processes forked from `childEntry`. */
export async function runWsCell(spec: CellSpec, opts: CellRunOptions, childEntry: string): Promise<CellMeasurement> {
  const cluster = await WsCluster.start({
    protocol: spec.protocol,
    storage: spec.storage,
    nodes: spec.nodes,
    payloadBytes: spec.payloadBytes,
    childEntry,
    ...(opts.tickMs !== undefined ? { tickMs: opts.tickMs } : {}),
    ...(opts.protocolOptions ? { protocolOptions: opts.protocolOptions } : {}),
    ...(opts.tmpDir ? { tmpDir: opts.tmpDir } : {}),
    ...(opts.childExecArgv ? { execArgv: () => [...opts.childExecArgv!] } : {}),
  });
  try {
    const leader = await cluster.leaderThatCommits();
    const sample = () => Promise.all(cluster.replicas.map((r) => r.request<ReplicaStats>({ t: 'stats' }).catch(() => null)));
    let startP: Promise<(ReplicaStats | null)[]> | null = null;
    let endP: Promise<(ReplicaStats | null)[]> | null = null;
    const profDir = opts.cpuProfDir;
    let profilesP: Promise<(string | null)[]> = Promise.resolve([]);
    leader.onWindow = (phase) => {
      if (phase === 'start') {
        startP = sample();
        if (profDir) for (const r of cluster.replicas) r.request({ t: 'profile-start' }).catch(() => {});
      } else {
        endP = sample();
        if (profDir) {
          profilesP = Promise.all(
            cluster.replicas.map((r) =>
              r.request<string | null>({ t: 'profile-stop', file: join(profDir, `${cellKey(spec).replace(/\//g, '_')}_${r.id}${r === leader ? '_leader' : ''}.cpuprofile`) }).catch(() => null),
            ),
          );
        }
      }
    };
    const load = await leader.request<ClosedLoopResult>({ t: 'load', clients: spec.clients, warmupMs: opts.warmupMs, durationMs: opts.durationMs });
    leader.onWindow = null;
    const s0 = (await (startP ?? sample())) as (ReplicaStats | null)[];
    const s1 = (await (endP ?? sample())) as (ReplicaStats | null)[];
    let cpu = 0;
    let rss = 0;
    const ok = s0.map((a, i) => (a && s1[i] ? i : -1)).filter((i) => i >= 0);
    const io0 = sumIo(ok.map((i) => s0[i]!.io));
    const io1 = sumIo(ok.map((i) => s1[i]!.io));
    const frames = ok.reduce((n, i) => n + s1[i]!.io.frames - s0[i]!.io.frames, 0);
    s0.forEach((a, i) => {
      const b = s1[i];
      if (a && b) cpu += (b.cpuMicros - a.cpuMicros) / ((b.at - a.at) * 1000);
      if (b) rss += b.peakRssMb;
    });
    const profiles = (await profilesP).filter((f): f is string => typeof f === 'string');
    const st = await leader.request<{ id: string; commitIndex: number }>({ t: 'status' });
    return {
      ...load,
      cpuPct: Math.round(cpu * 1000) / 10,
      peakRssMb: Math.round(rss * 10) / 10,
      processes: cluster.replicas.length,
      leader: st.id,
      commitIndex: st.commitIndex,
      ...batchingOf(io0, io1, load.ops, load.windowMs),
      messagesPerFrame: frames > 0 ? Math.round(((io1.messages - io0.messages) / frames) * 100) / 100 : 0,
      ...(profiles.length ? { profiles } : {}),
    };
  } finally {
    await cluster.close();
  }
}
