/**
 * `@synod/raft`: Raft as a pure, deterministic `ConsensusCore` for synod's `ReplicatedLog`.
 *
 * ```ts
 * import { raft } from '@synod/raft';
 * const log = new ReplicatedLog({ id: 'n1', protocol: raft({ electionTicks: 10 }), storage, transport, stateMachine, bootstrap: ['n1', 'n2', 'n3'] });
 * ```
 */
import type { ConsensusProtocol } from '@synod/log';
import { raftCodec } from './codec.js';
import type { RaftMessage } from './messages.js';
import { type RaftOptions, resolveRaftOptions } from './options.js';
import { RaftCore } from './raft.js';

export * from './messages.js';
export { raftCodec } from './codec.js';
export { DEFAULT_RAFT_OPTIONS, leaseTicksOf, resolveRaftOptions, type RaftOptions, type ResolvedRaftOptions } from './options.js';
export { RaftCore } from './raft.js';

/**
 * The Raft protocol for `ReplicatedLog`: name `'raft'`, the binary {@link raftCodec}, and a
 * factory of {@link RaftCore}s. Options are validated here (throws InvalidConfigurationError);
 * `create` throws InvalidConfigurationError for an invalid node id or bootstrap configuration
 * and StorageError for a non-contiguous stored log or a stored term above {@link MAX_TERM}.
 */
export function raft(options: RaftOptions = {}): ConsensusProtocol<RaftMessage> {
  const resolved = resolveRaftOptions(options);
  return {
    name: 'raft',
    codec: raftCodec,
    create: (init) => new RaftCore(init, resolved),
  };
}
