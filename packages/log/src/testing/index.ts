/**
 * `@synod/log/testing`: conformance suites that every Storage and Transport implementation
 * runs in its own tests, plus every helper of `@synod/log/testing/helpers`: a
 * protocol-independent test message codec, `soloProtocol`, a single-voter core for testing
 * runtimes and state machines, `nullTransport` for a runtime without peers, and
 * `settle`/`runUntil` to drive runtimes on a `VirtualScheduler`. This entry point imports
 * vitest (for the conformance suites), so it is for test code only; code that runs without
 * vitest (examples, scripts) imports the helpers from `@synod/log/testing/helpers`.
 */
export { storageConformance, type StorageHarness } from './storage-conformance.js';
export { transportConformance, type TransportHarness } from './transport-conformance.js';
export * from './helpers.js';
