import { type TestMessage, transportConformance, type TransportHarness } from '@synod/log/testing';
import { freePort, sleep } from './test-util.js';
import { WebSocketTransport, type WebSocketTransportOptions } from './index.js';

function harness(extra: Partial<WebSocketTransportOptions> = {}): () => TransportHarness {
  return () => {
    const ports = new Map<string, number>();
    const made: WebSocketTransport<TestMessage>[] = [];
    const make = (id: string) => {
      const peers: Record<string, string> = {};
      for (const [peer, port] of ports) if (peer !== id) peers[peer] = `ws://127.0.0.1:${port}`;
      const t = new WebSocketTransport<TestMessage>({
        id,
        listen: { host: '127.0.0.1', port: ports.get(id)! },
        peers,
        reconnect: { initialMs: 5, maxMs: 50 },
        ...extra,
      });
      made.push(t);
      return t;
    };
    return {
      async create(ids) {
        for (const id of ids) ports.set(id, await freePort());
        return ids.map(make);
      },
      recreate: (id) => make(id),
      settle: () => sleep(5),
      async cleanup() {
        await Promise.all(made.map((t) => t.close()));
      },
    };
  };
}

transportConformance('websocket', harness());
transportConformance('websocket (auth token, small frames)', harness({ authToken: 's3cret', maxFrameBytes: 512 * 1024 }));
transportConformance('websocket (cluster id, few pending handshakes)', harness({ clusterId: 'conformance', authToken: 's3cret', maxPendingHandshakes: 2 }));
