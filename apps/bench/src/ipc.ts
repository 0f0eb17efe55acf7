/**
 * Messages between the bench orchestrator and its child processes (fork IPC, `advanced`
 * serialization). Each request carries `rid` and is answered by one {@link ReplicaReply}.
 */
import type { ClosedLoopResult } from './load.js';
import type { CellSpec, Protocol, StorageKind } from './matrix.js';

/** How a ws replica process is set up. */
export interface ReplicaInit {
  readonly t: 'init';
  readonly id: string;
  readonly ids: readonly string[];
  readonly protocol: Protocol;
  readonly storage: StorageKind;
  /** Directory of the SQLite file (`<dir>/<id>.db`). */
  readonly dir: string;
  readonly payloadBytes: number;
  readonly tickMs?: number;
  readonly protocolOptions?: Record<string, unknown>;
}

/** Requests to a replica. */
export type ReplicaRequest =
  | { readonly t: 'peers'; readonly rid: number; readonly peers: Readonly<Record<string, string>> }
  | { readonly t: 'status'; readonly rid: number }
  | { readonly t: 'stats'; readonly rid: number }
  | { readonly t: 'propose'; readonly rid: number; readonly timeoutMs: number }
  | { readonly t: 'load'; readonly rid: number; readonly clients: number; readonly warmupMs: number; readonly durationMs: number }
  | { readonly t: 'profile-start'; readonly rid: number }
  | { readonly t: 'profile-stop'; readonly rid: number; readonly file: string }
  | { readonly t: 'stop'; readonly rid: number };

/** A replica's view of itself. */
export interface ReplicaStatusInfo {
  readonly id: string;
  readonly role: string;
  readonly term: number;
  readonly leader: string | null;
  readonly commitIndex: number;
}

/** Process counters of a replica. */
export interface ReplicaStats {
  /** CPU time so far, µs. */
  readonly cpuMicros: number;
  /** Peak RSS so far, MiB. */
  readonly peakRssMb: number;
  /** `performance.now()` of the replica when sampled. */
  readonly at: number;
  /** Storage and transport counters so far. */
  readonly io: { readonly persists: number; readonly entries: number; readonly messages: number; readonly frames: number };
}

/** Answers and events from a replica. */
export type ReplicaReply =
  | { readonly t: 'ready'; readonly address: string }
  | { readonly t: 'fatal'; readonly message: string }
  | { readonly t: 'window'; readonly phase: 'start' | 'end' }
  | { readonly t: 'reply'; readonly rid: number; readonly ok: true; readonly value: unknown }
  | { readonly t: 'reply'; readonly rid: number; readonly ok: false; readonly error: { readonly name: string; readonly code: string; readonly message: string } };

/** The answer to a `load` request. */
export type LoadReply = ClosedLoopResult;

/** Request to a `cell` child: run one in-process cell. */
export interface CellRequest {
  readonly t: 'run-cell';
  readonly spec: CellSpec;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly tickMs?: number;
  readonly protocolOptions?: Record<string, unknown>;
  readonly tmpDir?: string;
  /** Profile the measurement window into this directory. */
  readonly cpuProfDir?: string;
}
