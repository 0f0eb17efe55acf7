/**
 * A cell with every replica in this process, on `@synod/transport-memory` (real timers, zero
 * delay, messages passed by reference) and memory or SQLite storage. The closed-loop clients
 * run in the same process and propose through the leader.
 */
import { type ConsensusProtocol, type NodeId, realScheduler, ReplicatedLog } from '@synod/log';
import { MemoryNetwork } from '@synod/transport-memory';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstCommit, cpuMicros, errorCode, peakRssMb, waitForLeader } from './cluster.js';
import { batchingOf, CounterStateMachine, createStorage, type IoCounters, loadProtocol, makePayload, sumIo } from './components.js';
import { runClosedLoop } from './load.js';
import { cellKey, type CellSpec } from './matrix.js';
import type { CellMeasurement, CellRunOptions } from './cell-types.js';
import { WindowProfiler } from './window-profiler.js';

/** Runs one in-process cell and measures it. Throws UnavailableError if the protocol is missing. */
export async function runMemoryCell(spec: CellSpec, opts: CellRunOptions, protocolOverride?: ConsensusProtocol<any>): Promise<CellMeasurement> {
  if (spec.transport !== 'memory') throw new Error(`runMemoryCell needs transport memory, got ${spec.transport}`);
  const protocol = protocolOverride ?? (await loadProtocol(spec.protocol, opts.protocolOptions ?? {}));
  const dir = spec.storage === 'sqlite' ? mkdtempSync(join(opts.tmpDir ?? tmpdir(), 'synod-bench-')) : '';
  const net = new MemoryNetwork({ scheduler: realScheduler });
  const ids: NodeId[] = Array.from({ length: spec.nodes }, (_, i) => `n${i + 1}`);
  const storages = ids.map((id) => createStorage(spec.storage, dir, id));
  const transports = ids.map((id) => net.connect(id));
  const io = (): IoCounters => sumIo(storages.map((s, i) => ({ persists: s.persists, entries: s.entries, messages: transports[i]!.stats().sent })));
  const logs = ids.map(
    (id, i) =>
      new ReplicatedLog<number, 'count' | 'bytes', number>({
        id,
        protocol,
        storage: storages[i]!,
        transport: transports[i]!,
        stateMachine: new CounterStateMachine(),
        bootstrap: ids,
        ...(opts.tickMs !== undefined ? { tickMs: opts.tickMs } : {}),
        seed: 1000 + i,
      }),
  );
  try {
    await Promise.all(logs.map((l) => l.start()));
    const payload = makePayload(spec.payloadBytes);
    let leader = await firstCommit(logs, payload);
    const profiler = opts.cpuProfDir ? new WindowProfiler() : null;
    let profileDone: Promise<string | null> = Promise.resolve(null);
    let ioStart: IoCounters = io();
    let ioEnd: IoCounters = ioStart;
    let cpuStart = 0;
    let wallStart = 0;
    let cpuEnd = 0;
    let wallEnd = 0;
    const load = await runClosedLoop({
      clients: spec.clients,
      warmupMs: opts.warmupMs,
      durationMs: opts.durationMs,
      op: async () => {
        try {
          return await leader.propose(payload);
        } catch (err) {
          if (errorCode(err) === 'NOT_LEADER') leader = await waitForLeader(logs, 10_000);
          throw err;
        }
      },
      onMeasureStart: () => {
        void profiler?.start();
        cpuStart = cpuMicros();
        wallStart = performance.now();
        ioStart = io();
      },
      onMeasureEnd: () => {
        cpuEnd = cpuMicros();
        wallEnd = performance.now();
        ioEnd = io();
        if (profiler) profileDone = profiler.stop(join(opts.cpuProfDir!, `${cellKey(spec).replace(/\//g, '_')}.cpuprofile`));
      },
    });
    const profile = await profileDone;
    const st = leader.status();
    return {
      ...load,
      cpuPct: Math.round(((cpuEnd - cpuStart) / ((wallEnd - wallStart) * 1000)) * 1000) / 10,
      peakRssMb: peakRssMb(),
      processes: 1,
      leader: st.id,
      commitIndex: st.commitIndex,
      ...batchingOf(ioStart, ioEnd, load.ops, wallEnd - wallStart),
      ...(profile ? { profiles: [profile] } : {}),
    };
  } finally {
    await Promise.allSettled(logs.map((l) => l.stop()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}
