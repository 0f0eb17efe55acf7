/**
 * `@synod/transport-memory`: an in-process, seed-deterministic network for synod replicas, on
 * virtual or real time, with run-time fault injection. Pure: no Node built-ins.
 */
export {
  MemoryNetwork,
  MemoryEndpoint,
  type MemoryNetworkOptions,
  type NetworkFaults,
  type NetworkStats,
  type MemoryTransportStats,
  type MessageFilter,
  type FilterVerdict,
} from './network.js';
