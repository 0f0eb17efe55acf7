import { testCodec, testMessage, type TestMessage } from '@synod/log/testing';
import { it } from 'vitest';
import { WebSocketTransport } from './index.js';

async function run(payloadBytes: number, batch: number, total: number) {
  const a = new WebSocketTransport<TestMessage>({ id: 'a' });
  const b = new WebSocketTransport<TestMessage>({ id: 'b' });
  let got = 0;
  await a.start({ codec: testCodec, onMessage: () => { got++; } });
  await b.start({ codec: testCodec, onMessage: (m) => { b.send([testMessage('b', 'a', m.seq)]); } });
  a.setPeerAddress('b', b.address!); b.setPeerAddress('a', a.address!);
  const payload = new Uint8Array(payloadBytes);
  const msgs = Array.from({ length: batch }, (_, i) => testMessage('a', 'b', i, payload));
  let sent = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const pump = () => {
      if (got >= total) return resolve();
      if (sent - got < 50_000) { a.send(msgs); sent += batch; }
      setImmediate(pump);
    };
    pump();
  });
  const dt = (performance.now() - t0) / 1000;
  console.log(`payload=${payloadBytes}B: ${Math.round((2 * got) / dt).toLocaleString()} messages/s one-way-equivalent (${got} requests + ${got} echoes in ${dt.toFixed(2)} s); a->b ${(a.stats().bytesSent / dt / 1e6).toFixed(1)} MB/s, frames ${a.stats().framesSent}`);
  await a.close(); await b.close();
}
it('bench', async () => { await run(16, 1000, 2_000_000); }, 300_000);
