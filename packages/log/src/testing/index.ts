/**
 * `@synod/log/testing`: conformance suites that every Storage and Transport implementation
 * runs in its own tests, a protocol-independent test message codec, and `soloProtocol`, a
 * single-voter core for testing runtimes and state machines. Requires vitest.
 */
export { storageConformance, type StorageHarness } from './storage-conformance.js';
export { transportConformance, type TransportHarness } from './transport-conformance.js';
export { testCodec, testMessage, type TestMessage } from './test-codec.js';
export { soloProtocol } from './solo.js';
