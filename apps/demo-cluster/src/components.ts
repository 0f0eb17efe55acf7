/**
 * Builds one replica's parts: protocol, storage, transport and state machine. This is the only
 * module that knows which packages supply them.
 */
import { ReplicatedLog, type ConsensusProtocol, type NodeId } from '@synod/log';
import { paxos } from '@synod/paxos';
import { raft } from '@synod/raft';
import { SqliteStorage } from '@synod/storage-sqlite';
import { WebSocketTransport } from '@synod/transport-ws';
import type { KvOperation, ReplicaConfig } from './ipc.js';
import type { KvQuery, KvQueryResult } from '@synod/kv';
import { encodeKvOperation, IndexedKv, type IndexedKvResult } from './kv.js';

/** The network side of a replica as the demo drives it. */
export interface ReplicaNetwork {
  /** Cuts every peer link (both directions) until {@link heal}. */
  isolate(): void;
  heal(): void;
  readonly isolated: boolean;
  setPeerAddress(id: NodeId, address: string): void;
}

/** Everything a replica process runs. */
export interface ReplicaParts {
  readonly log: ReplicatedLog<IndexedKvResult, KvQuery, KvQueryResult>;
  readonly network: ReplicaNetwork;
  keyCount(): number;
  encode(op: KvOperation): Uint8Array;
  /**
   * Whether the storage holds a configuration or any entry (the bootstrap configuration is entry
   * 1): a bootstrap member reports `ready` only once its bootstrap is durable.
   */
  hasDurableState(): boolean;
}

/** The address string of a replica's WebSocket listener. */
export function peerAddress(host: string, port: number): string {
  return `ws://${host}:${port}`;
}

/**
 * The protocol with the demo's settings: Raft with lease reads on (so `?consistency=lease`
 * works) and its defaults otherwise (election timeout 10 ticks, pre-vote, check-quorum);
 * Multi-Paxos with its defaults (election timeout 10 ticks, lease 9 ticks, check-quorum,
 * majority quorums).
 */
function protocolFor(name: ReplicaConfig['protocol']): ConsensusProtocol<any> {
  switch (name) {
    case 'raft':
      return raft({ leaseRead: true });
    case 'paxos':
      return paxos();
  }
}

/** Builds the parts for `cfg`; `onFatal` is called if the replica stops on a storage failure. */
export async function createReplicaParts(cfg: ReplicaConfig, onFatal: (err: Error) => void): Promise<ReplicaParts> {
  const protocol = protocolFor(cfg.protocol);
  // Throws SqliteStorageError (reason 'missing') when create is false and the file is gone or
  // empty: an initialized replica never restarts from an empty state; reason 'mismatch' when the file belongs to another cluster, protocol or node.
  const identity = { protocol: cfg.protocol, nodeId: cfg.id, ...(cfg.clusterId ? { clusterId: cfg.clusterId } : {}) };
  const storage = SqliteStorage.open(cfg.dbPath, { create: cfg.create, identity });
  const peers: Record<NodeId, string> = {};
  for (const [id, addr] of Object.entries(cfg.peers)) if (id !== cfg.id) peers[id] = addr;
  const transport = new WebSocketTransport({
    id: cfg.id,
    listen: { host: cfg.host, port: cfg.port },
    peers,
    ...(cfg.secret ? { authToken: cfg.secret } : {}),
    ...(cfg.clusterId ? { clusterId: cfg.clusterId } : {}),
    reconnect: { initialMs: 50, maxMs: 1000 },
  });
  const sm = new IndexedKv();
  const log = new ReplicatedLog<IndexedKvResult, KvQuery, KvQueryResult>({
    id: cfg.id,
    protocol,
    storage,
    transport,
    stateMachine: sm,
    ...(cfg.bootstrap ? { bootstrap: cfg.bootstrap } : {}),
    tickMs: cfg.tickMs,
    maxCommandBytes: cfg.maxCommandBytes,
    snapshotThreshold: { entries: cfg.snapshotEntries },
    onFatal,
  });
  const network: ReplicaNetwork = {
    isolate: () => transport.isolate(),
    heal: () => transport.heal(),
    get isolated() {
      return transport.isolated;
    },
    setPeerAddress: (id, address) => {
      transport.setPeerAddress(id, address);
    },
  };
  return {
    log,
    network,
    keyCount: () => sm.kv.size,
    encode: encodeKvOperation,
    hasDurableState: () => {
      const st = storage.stats();
      return st.lastIndex > 0 || st.snapshotIndex > 0;
    },
  };
}
