/**
 * What a replica process does with each supervisor request (IPC), separate from the process
 * plumbing in replica.ts so it can be tested in-process.
 */
import { SynodError, TimeoutError, type ReplicatedLogStatus } from '@synod/log';
import type { ReplicaParts } from './components.js';
import { toProposeResult } from './kv.js';
import type { IpcError, IpcOperation, ReplicaStatus } from './ipc.js';

/** Converts a thrown value into the error that crosses the IPC channel (code, message, leader hint, storage reason). */
export function toIpcError(err: unknown): IpcError {
  if (err instanceof SynodError) {
    const hint = (err as { leaderHint?: string | null }).leaderHint;
    const reason = (err as { reason?: unknown }).reason;
    return {
      name: err.name,
      code: err.code,
      message: err.message,
      ...(hint !== undefined ? { leaderHint: hint } : {}),
      ...(typeof reason === 'string' ? { reason } : {}),
    };
  }
  const e = err as Error;
  return { name: e?.name ?? 'Error', code: 'INTERNAL', message: e?.message ?? String(err) };
}

/** The replica's status as the supervisor sees it. */
export function statusOf(parts: ReplicaParts): ReplicaStatus {
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

/**
 * Runs one supervisor request on the replica's parts and resolves with the answer. `shutdown`
 * is called for a `shutdown` request.
 */
export async function handleOperation(parts: ReplicaParts, op: IpcOperation, shutdown: () => void = () => {}): Promise<unknown> {
  const log = parts.log;
  switch (op.kind) {
    case 'status':
      return statusOf(parts);
    case 'openSession':
      return log.openSession({ timeoutMs: op.timeoutMs });
    case 'propose': {
      const r = toProposeResult(
        await log.propose(parts.encode(op.op), {
          timeoutMs: op.timeoutMs,
          ...(op.session ? { session: op.session } : {}),
        }),
      );
      return { ...r, leader: log.status().leader };
    }
    case 'read': {
      const res = await log.read({ type: 'get', key: op.key }, { consistency: op.consistency, timeoutMs: op.timeoutMs });
      return { value: res.type === 'get' ? res.value : null, appliedIndex: log.status().appliedIndex };
    }
    case 'transfer':
      await log.transferLeadership(op.to, { timeoutMs: op.timeoutMs });
      return statusOf(parts);
    case 'changeMembership': {
      // A request that arrives after the supervisor stopped waiting for it (a stalled event
      // loop, a replica that was still starting) must not change anything: the supervisor may
      // already have run a later membership call.
      const left = op.notAfter - Date.now();
      if (left <= 0) throw new TimeoutError('membership change arrived after its deadline; nothing was proposed');
      const config = await log.changeMembership(op.change, { timeoutMs: Math.max(1, Math.min(op.timeoutMs, left)) });
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
      setImmediate(shutdown);
      return true;
  }
}

