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
  constructor(
    readonly node: string,
    err: IpcError,
  ) {
    super(err.message);
    this.name = err.name;
    this.code = err.code;
    this.leaderHint = err.leaderHint;
  }
}

/** Status codes for the SynodError codes a replica can answer with. */
const STATUS_BY_CODE: Record<string, number> = {
  INVALID_ARGUMENT: 400,
  INVALID_CONFIGURATION: 400,
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
