/**
 * `@synod/log`: the shared replicated-log contract of synod and the runtime that drives any
 * consensus core. See the package README for a runnable example.
 */
export * from './types.js';
export * from './errors.js';
export * from './binary.js';
export * from './config.js';
export * from './quorum.js';
export * from './random.js';
export * from './core.js';
export * from './storage.js';
export * from './transport.js';
export * from './state-machine.js';
export * from './scheduler.js';
export * from './envelope.js';
export { MemoryStorage, validateBatch } from './memory-storage.js';
export {
  ReplicatedLog,
  type ReplicatedLogOptions,
  type ReplicatedLogStatus,
  type ProposeOptions,
  type ReadOptions,
  type ReadConsistency,
} from './replicated-log.js';
