/** The `peer` role of the child entry: runs one peer measurement sent over IPC. */
import { runBigeasyPaxos } from './peers/bigeasy-paxos.js';
import { runLiferaft, type PeerRunOptions } from './peers/liferaft.js';

/** The peer libraries the bench can run. */
export const PEERS = ['liferaft', 'paxos'] as const;
/** One of {@link PEERS}. */
export type PeerName = (typeof PEERS)[number];

/** The npm package of each peer. */
export const PEER_PACKAGES: Record<PeerName, string> = { liferaft: '@markwylde/liferaft', paxos: 'paxos' };

/** A request to measure one peer library. */
export interface PeerRequest {
  readonly t: 'run-peer';
  readonly peer: PeerName;
  readonly options: PeerRunOptions;
}

/** Runs the peer named in the request. */
export function runPeer(req: PeerRequest) {
  switch (req.peer) {
    case 'liferaft':
      return runLiferaft(req.options);
    case 'paxos':
      return runBigeasyPaxos(req.options);
  }
}
