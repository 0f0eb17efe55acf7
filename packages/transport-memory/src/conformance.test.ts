import { VirtualScheduler } from '@synod/log';
import { type TestMessage, testCodec, transportConformance, type TransportHarness } from '@synod/log/testing';
import { MemoryNetwork, type MemoryNetworkOptions } from './index.js';

function harness(extra: Omit<MemoryNetworkOptions<TestMessage>, 'scheduler'>): () => TransportHarness {
  return () => {
    const scheduler = new VirtualScheduler();
    const net = new MemoryNetwork<TestMessage>({ scheduler, ...extra });
    return {
      create: (ids) => ids.map((id) => net.connect(id)),
      recreate: (id) => net.connect(id),
      settle: async () => scheduler.advance(10),
    };
  };
}

transportConformance('memory (zero delay, by reference)', harness({ seed: 1 }));
transportConformance('memory (1-20 ms delay)', harness({ seed: 2, minDelayMs: 1, maxDelayMs: 20 }));
transportConformance('memory (serialize with handler codecs)', harness({ seed: 3, serialize: true }));
transportConformance('memory (serialize with a fixed codec, delay)', harness({ seed: 4, serialize: testCodec, maxDelayMs: 5 }));
