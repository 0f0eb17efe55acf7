/**
 * `@synod/log/testing/helpers`: the test helpers of `@synod/log/testing` that do not need a
 * test runner, so examples and scripts can use them without vitest installed:
 * `soloProtocol()` (a single-voter core for running a `ReplicatedLog` alone), `nullTransport`
 * (a transport for a runtime without peers), `settle`/`runUntil`/`flushMicrotasks` (drive a
 * `VirtualScheduler` until a promise settles or a condition holds), and `testCodec`/`testMessage`
 * (a protocol-independent message type). `@synod/log/testing` re-exports all of them next to
 * the conformance suites, which import vitest.
 *
 * Nothing reachable from this file may import vitest (checked by `helpers.test.ts`).
 */
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
