/**
 * `@synod/paxos`: Multi-Paxos as a pure synod {@link ConsensusCore}. Swap `raft(options)` for
 * `paxos(options)` in a `ReplicatedLog` and nothing else changes. See the package README.
 */
import type { ConsensusProtocol, CoreInit } from '@synod/log';
import { paxosCodec } from './codec.js';
import { PaxosCore } from './core.js';
import type { PaxosMessage } from './messages.js';
import { type PaxosOptions, resolveOptions } from './options.js';

/**
 * The Multi-Paxos protocol for `ReplicatedLog` (Lamport, "Paxos Made Simple" §3; Van Renesse &
 * Altinbuken, "Paxos Made Moderately Complex"; Howard et al., "Flexible Paxos").
 *
 * @param options timeouts in ticks, quorum sizes, batching limits (see {@link PaxosOptions}).
 * @returns a protocol named `'paxos'` with its binary codec and a core factory.
 * @throws InvalidConfigurationError for out-of-range options (here), and from `create()` for an
 *   invalid node id or bootstrap configuration, or explicit quorum sizes that do not intersect
 *   (|Q1| + |Q2| <= N) for the configuration the core starts with.
 */
export function paxos(options: PaxosOptions = {}): ConsensusProtocol<PaxosMessage> {
  const resolved = resolveOptions(options);
  return {
    name: 'paxos',
    codec: paxosCodec,
    create: (init: CoreInit) => new PaxosCore(init, resolved),
  };
}

export { PaxosCore } from './core.js';
export { paxosCodec, isValidPaxosMessage } from './codec.js';
export {
  type PaxosOptions,
  type ResolvedPaxosOptions,
  type QuorumSizes,
  resolveOptions,
  quorumSizes,
  checkQuorumSizes,
  isQuorum,
  quorumValue,
} from './options.js';
export {
  PaxosMessageType,
  MAX_ROUND,
  roundsWithinBound,
  messageTypeName,
  type PaxosMessage,
  type PrepareMessage,
  type PromiseMessage,
  type NackMessage,
  type AcceptMessage,
  type AcceptedMessage,
  type SnapshotMessage,
  type SnapshotAckMessage,
  type TimeoutNowMessage,
  type ForwardMessage,
  type ReadIndexMessage,
  type ReadIndexResponseMessage,
} from './messages.js';
