/**
 * `@synod/testkit`: deterministic simulation of whole synod clusters under faults, client
 * workloads with recorded histories, a linearizability checker and protocol invariant checkers.
 * See the package README.
 */
export * from './history.js';
export * from './linearizability.js';
export * from './kv-model.js';
export * from './invariants.js';
export * from './sim-storage.js';
export * from './skewed-scheduler.js';
export * from './simulator.js';
export * from './cluster.js';
export * from './timeline.js';
