/**
 * The messages the supervisor and a replica process exchange over the `child_process.fork`
 * IPC channel (serialization `advanced`, so `Uint8Array` values cross without base64).
 *
 * Supervisor → replica: {@link IpcRequest} (`{ t: 'req', id, op }`), answered by exactly one
 * {@link IpcResponse} with the same `id`. Replica → supervisor, unasked: {@link IpcEvent}
 * (`ready` once the replica runs, `fatal` if it stops on an error).
 */
import type { MembershipChange, NodeId, ReadConsistency } from '@synod/log';

/** A KV operation as the gateway hands it to a replica. */
export type KvOperation =
  | { readonly type: 'put'; readonly key: string; readonly value: Uint8Array }
  | { readonly type: 'delete'; readonly key: string };

/** What a replica reports about itself (the core's status plus process facts). */
export interface ReplicaStatus {
  readonly id: NodeId;
  readonly protocol: string;
  readonly role: string;
  readonly term: number;
  readonly leader: NodeId | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly outgoingVoters: readonly NodeId[] | null;
  readonly transferring: boolean;
  readonly isolated: boolean;
  readonly keys: number;
  readonly pendingProposals: number;
  readonly stopped: boolean;
  readonly error: string | null;
}

/** One operation the supervisor asks a replica for. */
export type IpcOperation =
  | { readonly kind: 'status' }
  | { readonly kind: 'openSession'; readonly timeoutMs: number }
  | {
      readonly kind: 'propose';
      readonly op: KvOperation;
      readonly session: { readonly id: number; readonly seq: number } | null;
      readonly timeoutMs: number;
    }
  | { readonly kind: 'read'; readonly key: string; readonly consistency: ReadConsistency; readonly timeoutMs: number }
  | { readonly kind: 'transfer'; readonly to: NodeId; readonly timeoutMs: number }
  | {
      readonly kind: 'changeMembership';
      readonly change: MembershipChange;
      readonly timeoutMs: number;
      /**
       * Wall-clock deadline (ms since epoch, same machine): a request that reaches the replica
       * later is refused without proposing anything. The supervisor gives up on a request only
       * after this instant, so a change it stopped waiting for can never be proposed behind a
       * later membership call (e.g. re-add a member that a later call removed).
       */
      readonly notAfter: number;
    }
  | { readonly kind: 'setPeers'; readonly peers: Readonly<Record<NodeId, string>> }
  | { readonly kind: 'isolate' }
  | { readonly kind: 'heal' }
  | { readonly kind: 'shutdown' };

/** Result of a `propose`: what the KV state machine answered. */
export interface ProposeResult {
  /** Log index the command was applied at (or the cached index of an exactly-once retry). */
  readonly index: number;
  /** For `delete`: whether the key existed. For `put`: whether it existed before. */
  readonly existed: boolean;
  /** The leader as the answering replica saw it when it answered (`null` if unknown). */
  readonly leader: NodeId | null;
}

/** Result of a `read`. */
export interface ReadResult {
  /** The value, or `null` when the key is absent. */
  readonly value: Uint8Array | null;
  /** The replica's applied index when it answered. */
  readonly appliedIndex: number;
}

/** A request sent to a replica. */
export interface IpcRequest {
  readonly t: 'req';
  readonly id: number;
  readonly op: IpcOperation;
}

/** An error as it crosses the process boundary (a SynodError's name, code, message, hint). */
export interface IpcError {
  readonly name: string;
  readonly code: string;
  readonly message: string;
  readonly leaderHint?: NodeId | null;
  /** Machine-readable detail of a storage error (e.g. `missing` from `SqliteStorageError`). */
  readonly reason?: string;
  /** Set when the request never reached the replica (its process was not running): nothing happened there. */
  readonly unsent?: boolean;
}

/** The answer to one {@link IpcRequest}. */
export type IpcResponse =
  | { readonly t: 'res'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly t: 'res'; readonly id: number; readonly ok: false; readonly error: IpcError };

/** Unsolicited messages from a replica. */
export type IpcEvent =
  | { readonly t: 'ready'; readonly status: ReplicaStatus }
  | { readonly t: 'fatal'; readonly error: IpcError };

/** How the supervisor starts a replica: passed as JSON in the `SYNOD_REPLICA` environment variable. */
export interface ReplicaConfig {
  readonly id: NodeId;
  readonly protocol: 'raft' | 'paxos';
  /** TCP port of this replica's WebSocket listener (127.0.0.1). */
  readonly port: number;
  readonly host: string;
  /** Path of this replica's SQLite file. */
  readonly dbPath: string;
  /** Addresses of every other member known to the supervisor. */
  readonly peers: Readonly<Record<NodeId, string>>;
  /**
   * Voter ids for a brand-new cluster, passed only on a bootstrap member's first start; omitted
   * afterwards and for a node that joins later.
   */
  readonly bootstrap?: readonly NodeId[];
  /**
   * Whether the SQLite file may be created: `true` only on the member's first start. `false`
   * makes a missing, 0-byte or schema-less file refuse to start (`SqliteStorage`'s
   * `create: false`), so a replica whose data was lost never comes back empty.
   */
  readonly create: boolean;
  /** Largest command the replica's `ReplicatedLog` accepts, in bytes (`maxCommandBytes`). */
  readonly maxCommandBytes: number;
  /** Milliseconds per consensus tick. */
  readonly tickMs: number;
  /** Snapshot after this many applied entries (0 = never). */
  readonly snapshotEntries: number;
  /** Optional shared secret for the peer links. */
  readonly secret?: string;
  /**
   * The cluster's id: checked against (or stored in) the SQLite file together with the
   * protocol and node id, and sent in every peer handshake.
   */
  readonly clusterId?: string;
}
