/**
 * Builds one replica's parts: protocol, storage, transport and state machine. This is the only
 * module that knows which packages supply them.
 */
import { ReplicatedLog, type ConsensusProtocol, type Message, type NodeId, type Transport, type TransportHandler, type TransportStats } from '@synod/log';
import { SqliteStorage } from '@synod/storage-sqlite';
import type { KvOperation, ProposeResult, ReplicaConfig } from './ipc.js';
import { encodeKvOperation, StandinKv } from './kv-standin.js';

/** The network side of a replica as the demo drives it. */
export interface ReplicaNetwork {
  readonly transport: Transport<any>;
  /** Cuts every peer link (both directions) until {@link heal}. */
  isolate(): void;
  heal(): void;
  readonly isolated: boolean;
  setPeerAddress(id: NodeId, address: string): void;
}

/** Everything a replica process runs. */
export interface ReplicaParts {
  readonly log: ReplicatedLog<ProposeResult, { key: string }, Uint8Array | null>;
  readonly network: ReplicaNetwork;
  keyCount(): number;
  encode(op: KvOperation): Uint8Array;
}

/** The address string of a replica's WebSocket listener. */
export function peerAddress(host: string, port: number): string {
  return `ws://${host}:${port}`;
}

async function protocolFor(name: ReplicaConfig['protocol']): Promise<ConsensusProtocol<any>> {
  if (name === 'solo') {
    const { soloProtocol } = await import('@synod/log/testing');
    return soloProtocol();
  }
  throw new Error(`protocol ${name} is not available yet`);
}

/** A stand-in transport that drops everything (single-node clusters need no links). */
class NullTransport implements Transport<Message> {
  private sentCount = 0;
  constructor(readonly id: NodeId) {}
  start(_handler: TransportHandler<Message>): void {}
  send(messages: readonly Message[]): void {
    this.sentCount += messages.length;
  }
  stats(): TransportStats {
    return { sent: this.sentCount, received: 0, dropped: this.sentCount, malformed: 0 };
  }
  close(): void {}
}

/** Builds the parts for `cfg`. */
export async function createReplicaParts(cfg: ReplicaConfig, onFatal: (err: Error) => void): Promise<ReplicaParts> {
  const protocol = await protocolFor(cfg.protocol);
  const transport = new NullTransport(cfg.id);
  let isolated = false;
  const network: ReplicaNetwork = {
    transport,
    isolate: () => {
      isolated = true;
    },
    heal: () => {
      isolated = false;
    },
    get isolated() {
      return isolated;
    },
    setPeerAddress: () => {},
  };
  const kv = new StandinKv();
  const log = new ReplicatedLog<ProposeResult, { key: string }, Uint8Array | null>({
    id: cfg.id,
    protocol,
    storage: SqliteStorage.open(cfg.dbPath),
    transport,
    stateMachine: kv,
    ...(cfg.bootstrap ? { bootstrap: cfg.bootstrap } : {}),
    tickMs: cfg.tickMs,
    snapshotThreshold: { entries: cfg.snapshotEntries },
    onFatal,
  });
  return { log, network, keyCount: () => kv.size, encode: encodeKvOperation };
}
