/**
 * `nullTransport(id)`: a transport to nowhere, for a runtime that has no peers (a
 * `soloProtocol()` replica in storage and state-machine tests).
 */
import type { Message } from '../core.js';
import type { Transport } from '../transport.js';
import type { NodeId } from '../types.js';

/**
 * A {@link Transport} with no network behind it: `start` and `close` do nothing, every message
 * handed to `send` is dropped (counted as `sent` and `dropped`), nothing is ever received.
 * Pair it with `soloProtocol()`, which sends nothing, to run a `ReplicatedLog` alone.
 *
 * @example
 * new ReplicatedLog({ id: 'n1', protocol: soloProtocol(), transport: nullTransport('n1'), bootstrap: ['n1'], ... });
 */
export function nullTransport<M extends Message = Message>(id: NodeId): Transport<M> {
  let sent = 0;
  return {
    id,
    start() {},
    send(messages) {
      sent += messages.length;
    },
    stats: () => ({ sent, received: 0, dropped: sent, malformed: 0 }),
    close() {},
  };
}
