/**
 * The transport conformance suite: every {@link Transport} implementation runs it in its own
 * tests. It checks delivery to the right node with intact payloads, no duplicates on a healthy
 * link, silent drops for unknown peers, large payloads, behaviour after close, counters, and
 * reconnection to a restarted peer.
 */
import { describe, expect, it } from 'vitest';
import type { Transport } from '../transport.js';
import type { NodeId } from '../types.js';
import { type TestMessage, testCodec, testMessage } from './test-codec.js';

/** How the suite builds transports for a set of nodes. */
export interface TransportHarness {
  /** Creates (not starts) one transport per id, all able to reach each other. */
  create(ids: readonly NodeId[]): Transport<TestMessage>[] | Promise<Transport<TestMessage>[]>;
  /**
   * Creates a new transport for `id` after the previous one was closed (a restarted process
   * at the same address). Omit if the transport has no notion of restart.
   */
  recreate?(id: NodeId): Transport<TestMessage> | Promise<Transport<TestMessage>>;
  /** Lets time pass so in-flight messages can arrive (real sleep or virtual time). */
  settle(): Promise<void>;
  /** Releases everything. Called once after each test. */
  cleanup?(): void | Promise<void>;
}

interface Node {
  t: Transport<TestMessage>;
  inbox: TestMessage[];
}

/**
 * Registers the conformance tests for a transport.
 * @param name shown in test names.
 * @param makeHarness called once per test.
 */
export function transportConformance(name: string, makeHarness: () => TransportHarness | Promise<TransportHarness>): void {
  const withNodes = (ids: NodeId[], fn: (nodes: Map<NodeId, Node>, h: TransportHarness) => Promise<void>) => async () => {
    const h = await makeHarness();
    const ts = await h.create(ids);
    const nodes = new Map<NodeId, Node>();
    try {
      for (const t of ts) {
        const node: Node = { t, inbox: [] };
        nodes.set(t.id, node);
        await t.start({ codec: testCodec, onMessage: (m) => node.inbox.push(m) });
      }
      await fn(nodes, h);
    } finally {
      for (const n of nodes.values()) await n.t.close();
      await h.cleanup?.();
    }
  };

  const until = async (h: TransportHarness, cond: () => boolean, rounds = 400) => {
    for (let i = 0; i < rounds && !cond(); i++) await h.settle();
    return cond();
  };

  describe(`transport conformance: ${name}`, () => {
    it('delivers a message to its addressee with from, to and payload intact', withNodes(['a', 'b'], async (nodes, h) => {
      const a = nodes.get('a')!;
      const b = nodes.get('b')!;
      a.t.send([testMessage('a', 'b', 42, new Uint8Array([1, 2, 3, 0, 255]))]);
      expect(await until(h, () => b.inbox.length === 1)).toBe(true);
      const m = b.inbox[0]!;
      expect(m.from).toBe('a');
      expect(m.to).toBe('b');
      expect(m.seq).toBe(42);
      expect(Array.from(m.payload)).toEqual([1, 2, 3, 0, 255]);
      expect(a.inbox.length).toBe(0);
    }));

    it('connects every pair of a three-node group in both directions', withNodes(['a', 'b', 'c'], async (nodes, h) => {
      const ids = ['a', 'b', 'c'];
      let seq = 0;
      for (const from of ids) for (const to of ids) if (from !== to) nodes.get(from)!.t.send([testMessage(from, to, seq++)]);
      expect(await until(h, () => ids.every((id) => nodes.get(id)!.inbox.length === 2))).toBe(true);
      for (const id of ids) {
        const froms = nodes.get(id)!.inbox.map((m) => m.from).sort();
        expect(froms).toEqual(ids.filter((x) => x !== id));
        expect(nodes.get(id)!.inbox.every((m) => m.to === id)).toBe(true);
      }
    }));

    it('delivers a burst of 2000 messages on a healthy link exactly once each', withNodes(['a', 'b'], async (nodes, h) => {
      const a = nodes.get('a')!;
      const b = nodes.get('b')!;
      for (let i = 0; i < 2000; i += 100) {
        a.t.send(Array.from({ length: 100 }, (_, j) => testMessage('a', 'b', i + j, new Uint8Array([j]))));
      }
      expect(await until(h, () => b.inbox.length >= 2000)).toBe(true);
      await h.settle();
      expect(b.inbox.length).toBe(2000);
      expect(new Set(b.inbox.map((m) => m.seq)).size).toBe(2000);
    }));

    it('carries a 256 KiB payload intact', withNodes(['a', 'b'], async (nodes, h) => {
      const big = new Uint8Array(256 * 1024);
      for (let i = 0; i < big.length; i++) big[i] = (i * 7 + 3) & 0xff;
      nodes.get('a')!.t.send([testMessage('a', 'b', 1, big)]);
      const b = nodes.get('b')!;
      expect(await until(h, () => b.inbox.length === 1)).toBe(true);
      const got = b.inbox[0]!.payload;
      expect(got.length).toBe(big.length);
      let same = true;
      for (let i = 0; i < big.length; i++) if (got[i] !== big[i]) same = false;
      expect(same).toBe(true);
    }));

    it('drops a message to an unknown peer without throwing', withNodes(['a', 'b'], async (nodes, h) => {
      const a = nodes.get('a')!;
      expect(() => a.t.send([testMessage('a', 'nobody', 1)])).not.toThrow();
      a.t.send([testMessage('a', 'b', 2)]);
      expect(await until(h, () => nodes.get('b')!.inbox.length === 1)).toBe(true);
      expect(nodes.get('b')!.inbox[0]!.seq).toBe(2);
    }));

    it('counts sent and received messages', withNodes(['a', 'b'], async (nodes, h) => {
      const a = nodes.get('a')!;
      const b = nodes.get('b')!;
      a.t.send([testMessage('a', 'b', 1), testMessage('a', 'b', 2), testMessage('a', 'b', 3)]);
      expect(await until(h, () => b.inbox.length === 3)).toBe(true);
      expect(a.t.stats().sent).toBeGreaterThanOrEqual(3);
      expect(b.t.stats().received).toBe(3);
      expect(b.t.stats().malformed).toBe(0);
    }));

    it('delivers nothing to a closed transport, and a closed one sends without throwing', withNodes(['a', 'b'], async (nodes, h) => {
      const a = nodes.get('a')!;
      const b = nodes.get('b')!;
      await b.t.close();
      a.t.send([testMessage('a', 'b', 1)]);
      for (let i = 0; i < 10; i++) await h.settle();
      expect(b.inbox.length).toBe(0);
      expect(() => b.t.send([testMessage('b', 'a', 2)])).not.toThrow();
    }));

    it('reaches a peer again after it restarts', withNodes(['a', 'b'], async (nodes, h) => {
      if (!h.recreate) return;
      const a = nodes.get('a')!;
      const b = nodes.get('b')!;
      a.t.send([testMessage('a', 'b', 1)]);
      expect(await until(h, () => b.inbox.length === 1)).toBe(true);
      await b.t.close();
      const t2 = await h.recreate('b');
      const b2: Node = { t: t2, inbox: [] };
      nodes.set('b', b2);
      await t2.start({ codec: testCodec, onMessage: (m) => b2.inbox.push(m) });
      let seq = 100;
      const ok = await until(h, () => {
        a.t.send([testMessage('a', 'b', seq++)]);
        return b2.inbox.length > 0;
      }, 1000);
      expect(ok).toBe(true);
      expect(b2.inbox[0]!.from).toBe('a');
    }));
  });
}
