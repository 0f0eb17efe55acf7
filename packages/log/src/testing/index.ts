/**
 * `@synod/log/testing`: conformance suites that every Storage and Transport implementation
 * runs in its own tests, a protocol-independent test message codec, and `soloProtocol`, a
 * single-voter core for testing runtimes and state machines, `nullTransport` for a runtime
 * without peers, and `settle`/`runUntil` to drive runtimes on a `VirtualScheduler`. This
 * entry point imports vitest (for the conformance suites), so it is for test code only.
 */
export { storageConformance, type StorageHarness } from './storage-conformance.js';
export { transportConformance, type TransportHarness } from './transport-conformance.js';
export { testCodec, testMessage, type TestMessage } from './test-codec.js';
export { soloProtocol } from './solo.js';
export { nullTransport } from './null-transport.js';
export {
  settle,
  runUntil,
  flushMicrotasks,
  VirtualTimeLimitError,
  DEFAULT_VIRTUAL_LIMIT_MS,
  type VirtualTimeOptions,
} from './virtual-time.js';
