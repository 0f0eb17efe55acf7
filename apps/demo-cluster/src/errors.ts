/**
 * Errors the gateway answers with: an HTTP status, a stable `code` and a readable `error`
 * message, sent as `{ "error": "...", "code": "...", ...extra }`.
 */
import type { IpcError } from './ipc.js';

/** An error with an HTTP status; the gateway turns it into a JSON answer. */
export class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
    this.name = 'GatewayError';
  }
}

/** A replica answered a request with a SynodError (or the process failed under it). */
export class ReplicaError extends Error {
  readonly code: string;
  readonly leaderHint: string | null | undefined;
  /** Storage error detail, e.g. `missing`. */
  readonly reason: string | undefined;
  /** True when the request never reached the replica (nothing happened there). */
  readonly unsent: boolean;
  constructor(
    readonly node: string,
    err: IpcError,
  ) {
    super(err.message);
    this.name = err.name;
    this.code = err.code;
    this.leaderHint = err.leaderHint;
    this.reason = err.reason;
    this.unsent = err.unsent === true;
  }
}

/**
 * Codes a replica answers a proposal (or membership change) with only when it refused it
 * synchronously, before anything entered the log (`NOT_LEADER`, `TRANSFER_IN_PROGRESS`,
 * `UNCOMMITTED_LOG_FULL`, `CONFIG_CHANGE_IN_PROGRESS`, `INVALID_ARGUMENT`, `COMMAND_TOO_LARGE`,
 * `UNSUPPORTED`, `INVALID_CONFIGURATION`), or `LEASE_EXPIRED` for reads. Every other failure
 * (`TIMEOUT`, `STOPPED`, `NODE_DOWN` after the request was sent, ...) leaves the outcome unknown.
 */
const DEFINITE_CODES = new Set([
  'NOT_LEADER',
  'TRANSFER_IN_PROGRESS',
  'UNCOMMITTED_LOG_FULL',
  'CONFIG_CHANGE_IN_PROGRESS',
  'INVALID_ARGUMENT',
  'COMMAND_TOO_LARGE',
  'UNSUPPORTED',
  'INVALID_CONFIGURATION',
  'LEASE_EXPIRED',
]);

/**
 * Whether a failed request may still take effect (the command may be in the log and commit
 * later): true unless the error is a synchronous refusal or the request was never sent.
 */
export function outcomeUnknown(err: ReplicaError): boolean {
  return !err.unsent && !DEFINITE_CODES.has(err.code);
}

/** Status codes for the SynodError codes a replica can answer with. */
const STATUS_BY_CODE: Record<string, number> = {
  INVALID_ARGUMENT: 400,
  INVALID_CONFIGURATION: 400,
  COMMAND_TOO_LARGE: 413,
  UNSUPPORTED: 501,
  CONFIG_CHANGE_IN_PROGRESS: 409,
  TRANSFER_IN_PROGRESS: 503,
  NOT_LEADER: 503,
  TIMEOUT: 503,
  STOPPED: 503,
  NODE_DOWN: 503,
  LEASE_EXPIRED: 503,
  UNCOMMITTED_LOG_FULL: 503,
  PROPOSAL_DROPPED: 503,
  SESSION_EXPIRED: 503,
  STALE_SEQUENCE: 409,
  STORAGE_FAILED: 500,
};

/** Converts a replica's error into a gateway answer. */
export function fromReplicaError(err: ReplicaError, extra: Record<string, unknown> = {}, prefix = ''): GatewayError {
  const status = STATUS_BY_CODE[err.code] ?? 500;
  const more: Record<string, unknown> = { node: err.node, ...extra };
  if (err.leaderHint !== undefined) more.leaderHint = err.leaderHint;
  return new GatewayError(status, err.code, `${prefix}${err.message}`, more);
}
