/** The `peer` role of the child entry: runs one peer measurement sent over IPC. */
import { runLiferaft, type PeerRunOptions } from './peers/liferaft.js';

/** A request to measure one peer library. */
export interface PeerRequest {
  readonly t: 'run-peer';
  readonly peer: 'liferaft';
  readonly options: PeerRunOptions;
}

/** Runs the peer named in the request. */
export function runPeer(req: PeerRequest) {
  switch (req.peer) {
    case 'liferaft':
      return runLiferaft(req.options);
  }
}
