/**
 * A ws replica process of the bench: one ReplicatedLog (raft or paxos) over
 * `@synod/transport-ws` with memory or SQLite storage and the counter state machine, driven by
 * the orchestrator over the fork IPC channel (see ipc.ts). On `load` it runs the closed-loop
 * clients itself, so client latency excludes a client-to-leader network hop (the same for
 * every protocol). Exits on `stop`, on SIGTERM and when the orchestrator goes away.
 */
import { ReplicatedLog, SynodError } from '@synod/log';
import { WebSocketTransport } from '@synod/transport-ws';
import { cpuMicros, peakRssMb } from './cluster.js';
import { CounterStateMachine, createStorage, loadProtocol, makePayload } from './components.js';
import type { ReplicaInit, ReplicaReply, ReplicaRequest, ReplicaStats, ReplicaStatusInfo } from './ipc.js';
import { runClosedLoop } from './load.js';
import { WindowProfiler } from './window-profiler.js';

function send(msg: ReplicaReply): void {
  if (process.connected && process.send) {
    try {
      process.send(msg);
    } catch {
      // channel closed; 'disconnect' ends the process
    }
  }
}

function errorOf(err: unknown): { name: string; code: string; message: string } {
  if (err instanceof SynodError) return { name: err.name, code: err.code, message: err.message };
  const e = err as Error;
  return { name: e?.name ?? 'Error', code: 'INTERNAL', message: e?.message ?? String(err) };
}

/** Runs the replica role of the child entry. */
export async function runReplicaProcess(): Promise<void> {
  const init = await new Promise<ReplicaInit>((resolve) => {
    const onMsg = (m: ReplicaInit) => {
      if (m?.t === 'init') {
        process.off('message', onMsg);
        resolve(m);
      }
    };
    process.on('message', onMsg);
  });
  const protocol = await loadProtocol(init.protocol, init.protocolOptions ?? {});
  const transport = new WebSocketTransport({ id: init.id, listen: { host: '127.0.0.1', port: 0 } });
  const storage = createStorage(init.storage, init.dir, init.id);
  const log = new ReplicatedLog<number, 'count' | 'bytes', number>({
    id: init.id,
    protocol,
    storage,
    transport,
    stateMachine: new CounterStateMachine(),
    bootstrap: init.ids,
    ...(init.tickMs !== undefined ? { tickMs: init.tickMs } : {}),
    onFatal: (err) => send({ t: 'fatal', message: err.message }),
  });
  const payload = makePayload(init.payloadBytes);
  const profiler = new WindowProfiler();
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    try {
      await log.stop();
    } catch {
      // exiting anyway
    }
    process.exit(code);
  };
  process.on('disconnect', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  process.on('message', (m: ReplicaRequest) => {
    const reply = (p: Promise<unknown> | unknown) =>
      Promise.resolve(p).then(
        (value) => send({ t: 'reply', rid: m.rid, ok: true, value }),
        (err) => send({ t: 'reply', rid: m.rid, ok: false, error: errorOf(err) }),
      );
    switch (m?.t) {
      case 'peers':
        for (const [id, address] of Object.entries(m.peers)) if (id !== init.id) transport.setPeerAddress(id, address);
        void reply(true);
        break;
      case 'status': {
        const s = log.status();
        const v: ReplicaStatusInfo = { id: s.id, role: s.role, term: s.term, leader: s.leader, commitIndex: s.commitIndex };
        void reply(v);
        break;
      }
      case 'stats': {
        const t = transport.stats();
        const v: ReplicaStats = {
          cpuMicros: cpuMicros(),
          peakRssMb: peakRssMb(),
          at: performance.now(),
          io: { persists: storage.persists, entries: storage.entries, messages: t.sent, frames: t.framesSent },
        };
        void reply(v);
        break;
      }
      case 'propose':
        void reply(log.propose(payload, { timeoutMs: m.timeoutMs }));
        break;
      case 'load':
        void reply(
          runClosedLoop({
            clients: m.clients,
            warmupMs: m.warmupMs,
            durationMs: m.durationMs,
            op: () => log.propose(payload),
            onMeasureStart: () => send({ t: 'window', phase: 'start' }),
            onMeasureEnd: () => send({ t: 'window', phase: 'end' }),
          }),
        );
        break;
      case 'profile-start':
        void reply(profiler.start().then(() => true));
        break;
      case 'profile-stop':
        void reply(profiler.stop(m.file));
        break;
      case 'stop':
        void reply(true).then(() => stop(0));
        break;
    }
  });
  await log.start();
  send({ t: 'ready', address: transport.address! });
}
