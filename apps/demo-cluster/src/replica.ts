/**
 * The replica process: one `ReplicatedLog` (Raft or Multi-Paxos) with a WebSocket transport, a
 * SQLite file and the KV state machine, driven by the supervisor over the fork IPC channel.
 *
 * The process exits when the supervisor goes away (IPC `disconnect`), on SIGTERM/SIGINT (after
 * stopping the log cleanly, so the SQLite file is closed), and on a fatal replica error.
 */
import { SynodError, type ReplicatedLogStatus } from '@synod/log';
import { createReplicaParts, type ReplicaParts } from './components.js';
import { toProposeResult } from './kv.js';
import type { IpcError, IpcEvent, IpcOperation, IpcRequest, IpcResponse, ReplicaConfig, ReplicaStatus } from './ipc.js';

function toIpcError(err: unknown): IpcError {
  if (err instanceof SynodError) {
    const hint = (err as { leaderHint?: string | null }).leaderHint;
    return { name: err.name, code: err.code, message: err.message, ...(hint !== undefined ? { leaderHint: hint } : {}) };
  }
  const e = err as Error;
  return { name: e?.name ?? 'Error', code: 'INTERNAL', message: e?.message ?? String(err) };
}

function send(msg: IpcResponse | IpcEvent): void {
  if (process.connected && process.send) {
    try {
      process.send(msg);
    } catch {
      // the channel closed under us; 'disconnect' ends the process
    }
  }
}

function statusOf(parts: ReplicaParts): ReplicaStatus {
  const s: ReplicatedLogStatus = parts.log.status();
  return {
    id: s.id,
    protocol: s.protocol,
    role: s.role,
    term: s.term,
    leader: s.leader,
    commitIndex: s.commitIndex,
    appliedIndex: s.appliedIndex,
    lastIndex: s.lastIndex,
    snapshotIndex: s.snapshotIndex,
    voters: [...s.config.voters],
    learners: [...s.config.learners],
    outgoingVoters: s.config.outgoingVoters ? [...s.config.outgoingVoters] : null,
    transferring: s.transferring,
    isolated: parts.network.isolated,
    keys: parts.keyCount(),
    pendingProposals: s.pendingProposals,
    stopped: s.stopped,
    error: parts.log.error?.message ?? null,
  };
}

async function handle(parts: ReplicaParts, op: IpcOperation): Promise<unknown> {
  const log = parts.log;
  switch (op.kind) {
    case 'status':
      return statusOf(parts);
    case 'openSession':
      return log.openSession({ timeoutMs: op.timeoutMs });
    case 'propose':
      return toProposeResult(
        await log.propose(parts.encode(op.op), {
          timeoutMs: op.timeoutMs,
          ...(op.session ? { session: op.session } : {}),
        }),
      );
    case 'read': {
      const res = await log.read({ type: 'get', key: op.key }, { consistency: op.consistency, timeoutMs: op.timeoutMs });
      return { value: res.type === 'get' ? res.value : null, appliedIndex: log.status().appliedIndex };
    }
    case 'transfer':
      await log.transferLeadership(op.to, { timeoutMs: op.timeoutMs });
      return statusOf(parts);
    case 'changeMembership': {
      const config = await log.changeMembership(op.change, { timeoutMs: op.timeoutMs });
      return { voters: [...config.voters], learners: [...config.learners] };
    }
    case 'setPeers':
      for (const [id, addr] of Object.entries(op.peers)) if (id !== log.id) parts.network.setPeerAddress(id, addr);
      return true;
    case 'isolate':
      parts.network.isolate();
      return statusOf(parts);
    case 'heal':
      parts.network.heal();
      return statusOf(parts);
    case 'shutdown':
      setImmediate(() => void shutdown(0));
      return true;
  }
}

let parts: ReplicaParts | null = null;
let stopping = false;

async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  const force = setTimeout(() => process.exit(code), 3000);
  force.unref();
  try {
    await parts?.log.stop();
  } catch {
    // closing is best effort; the data is durable already
  }
  process.exit(code);
}

async function main(): Promise<void> {
  const raw = process.env.SYNOD_REPLICA;
  if (!raw || !process.send) {
    console.error('replica.js is started by the demo supervisor (fork with SYNOD_REPLICA set)');
    process.exit(2);
  }
  const cfg = JSON.parse(raw) as ReplicaConfig;
  process.on('disconnect', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));
  // Ctrl-C in the terminal reaches the whole process group: let the supervisor drive the stop,
  // but never linger if it does not.
  process.on('SIGINT', () => {
    setTimeout(() => void shutdown(0), 2000).unref();
  });

  // Requests that arrive while the replica is starting wait for it.
  let resolveReady!: (p: ReplicaParts) => void;
  const readyPromise = new Promise<ReplicaParts>((r) => (resolveReady = r));
  process.on('message', (msg: IpcRequest) => {
    if (!msg || msg.t !== 'req') return;
    void readyPromise
      .then((p) => handle(p, msg.op))
      .then(
        (value) => send({ t: 'res', id: msg.id, ok: true, value }),
        (err) => send({ t: 'res', id: msg.id, ok: false, error: toIpcError(err) }),
      );
  });

  try {
    parts = await createReplicaParts(cfg, (err) => {
      send({ t: 'fatal', error: toIpcError(err) });
      console.error(`[${cfg.id}] stopped on a fatal error: ${err.message}`);
      setTimeout(() => process.exit(1), 50);
    });
    await parts.log.start();
    for (const [id, addr] of Object.entries(cfg.peers)) if (id !== cfg.id) parts.network.setPeerAddress(id, addr);
  } catch (err) {
    send({ t: 'fatal', error: toIpcError(err) });
    console.error(`[${cfg.id}] failed to start: ${(err as Error)?.stack ?? String(err)}`);
    setTimeout(() => process.exit(1), 50);
    return;
  }
  resolveReady(parts);
  send({ t: 'ready', status: statusOf(parts) });
}

void main();
