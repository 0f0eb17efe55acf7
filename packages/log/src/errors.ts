/**
 * Typed errors. Every error synod throws or rejects with is a {@link SynodError} with a stable
 * `code`, so callers can branch on `err.code` without parsing messages, and HTTP gateways can
 * map codes to status codes.
 */
import type { NodeId } from './types.js';

/** Stable error codes. */
export type SynodErrorCode =
  | 'NOT_LEADER'
  | 'TIMEOUT'
  | 'STOPPED'
  | 'NOT_STARTED'
  | 'TRANSFER_IN_PROGRESS'
  | 'CONFIG_CHANGE_IN_PROGRESS'
  | 'PROPOSAL_DROPPED'
  | 'UNCOMMITTED_LOG_FULL'
  | 'LEASE_EXPIRED'
  | 'SESSION_EXPIRED'
  | 'STALE_SEQUENCE'
  | 'STORAGE_FAILED'
  | 'STATE_MACHINE_FAILED'
  | 'MALFORMED_MESSAGE'
  | 'INVALID_ARGUMENT'
  | 'COMMAND_TOO_LARGE'
  | 'INVALID_CONFIGURATION'
  | 'UNSUPPORTED';

/** Base class of every synod error. */
export class SynodError extends Error {
  /** Stable machine-readable code. */
  readonly code: SynodErrorCode;
  constructor(code: SynodErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * The node is not the leader and could not forward the request (Raft §5.1 "clients contact the
 * leader"). `leaderHint` is the leader this node currently believes in, or `null` if unknown.
 */
export class NotLeaderError extends SynodError {
  readonly leaderHint: NodeId | null;
  constructor(leaderHint: NodeId | null, message?: string) {
    super(
      'NOT_LEADER',
      message ??
        (leaderHint === null ? 'not the leader; no leader is known' : `not the leader; try ${leaderHint}`),
    );
    this.leaderHint = leaderHint;
  }
}

/**
 * A request did not complete in time. For a proposal the outcome is *unknown*: the command may
 * still be committed later. Retry it within a session to get exactly-once semantics.
 */
export class TimeoutError extends SynodError {
  constructor(message = 'request timed out; outcome unknown') {
    super('TIMEOUT', message);
  }
}

/** The replica was stopped (or failed) while the request was pending, or before it was made. */
export class StoppedError extends SynodError {
  constructor(message = 'replica is stopped') {
    super('STOPPED', message);
  }
}

/** Leadership transfer is in progress; proposals are refused until it ends (Raft thesis §3.10). */
export class TransferInProgressError extends SynodError {
  constructor(message = 'leadership transfer in progress') {
    super('TRANSFER_IN_PROGRESS', message);
  }
}

/** A membership change is already in flight; only one at a time (Raft thesis §4.1). */
export class ConfigChangeInProgressError extends SynodError {
  constructor(message = 'a configuration change is already in progress') {
    super('CONFIG_CHANGE_IN_PROGRESS', message);
  }
}

/**
 * The leader's uncommitted log reached its bound, as when it lost its quorum; retry later
 * (etcd's MaxUncommittedEntriesSize).
 */
export class UncommittedLogFullError extends SynodError {
  constructor(message = 'too many uncommitted entries; the leader may have lost its quorum') {
    super('UNCOMMITTED_LOG_FULL', message);
  }
}

/** A lease read was refused because the leader lease may have expired (Raft thesis §6.4.1). */
export class LeaseExpiredError extends SynodError {
  constructor(message = 'leader lease expired or not yet established') {
    super('LEASE_EXPIRED', message);
  }
}

/** The client session is unknown or expired (Raft thesis §6.3). Open a new session. */
export class SessionExpiredError extends SynodError {
  constructor(message = 'session unknown or expired') {
    super('SESSION_EXPIRED', message);
  }
}

/**
 * A session command's sequence number is below the session's last applied one: its result is
 * no longer cached (only the latest result per session is kept).
 */
export class StaleSequenceError extends SynodError {
  constructor(message = 'sequence number below the last applied one for this session') {
    super('STALE_SEQUENCE', message);
  }
}

/** The storage failed to persist; the replica stops (fail-stop), nothing was sent. */
export class StorageError extends SynodError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORAGE_FAILED', message, options);
  }
}

/**
 * The state machine threw (in `apply`, `snapshot`, `restore`, `encodeResult` or
 * `decodeResult`), or a snapshot could not be decoded. Replicas could diverge, so the replica
 * stops (fail-stop, like {@link StorageError}); the proposal whose command threw is rejected
 * with this error. A state machine should return an error result instead of throwing.
 */
export class StateMachineError extends SynodError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STATE_MACHINE_FAILED', message, options);
  }
}

/** Bytes that do not decode to a valid message. Transports drop such input and count it. */
export class MalformedMessageError extends SynodError {
  constructor(message: string) {
    super('MALFORMED_MESSAGE', message);
  }
}

/** A caller passed an argument outside its documented domain. */
export class InvalidArgumentError extends SynodError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

/**
 * A command is larger than the runtime's `maxCommandBytes`: it could never be replicated (a
 * transport would drop a frame that large), so it is refused before it enters the log.
 */
export class CommandTooLargeError extends SynodError {
  constructor(message: string) {
    super('COMMAND_TOO_LARGE', message);
  }
}

/** Options or a membership that cannot work (e.g. an empty voter set, |Q1|+|Q2| <= N). */
export class InvalidConfigurationError extends SynodError {
  constructor(message: string) {
    super('INVALID_CONFIGURATION', message);
  }
}

/** The core does not implement the requested feature. */
export class UnsupportedError extends SynodError {
  constructor(message: string) {
    super('UNSUPPORTED', message);
  }
}
