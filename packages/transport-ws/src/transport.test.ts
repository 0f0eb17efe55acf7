import { BinaryWriter, InvalidArgumentError, InvalidConfigurationError, type MessageCodec } from '@synod/log';
import { type TestMessage, testCodec, testMessage } from '@synod/log/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { connect, type Socket } from 'node:net';
import {
  CloseCode,
  encodeBatch,
  encodeHello,
  encodeHelloHeader,
  FrameType,
  HELLO_HEADER,
  normalizePeerUrl,
  PROTOCOL_VERSION,
  WebSocketTransport,
  type WebSocketTransportOptions,
} from './index.js';
import { freePort, RawClient, sleep, until } from './test-util.js';

type T = WebSocketTransport<TestMessage>;

interface Node {
  t: T;
  inbox: TestMessage[];
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function node(id: string, opts: Partial<WebSocketTransportOptions> = {}): Promise<Node> {
  const t = new WebSocketTransport<TestMessage>({ id, reconnect: { initialMs: 5, maxMs: 50 }, ...opts });
  cleanups.push(() => t.close());
  const inbox: TestMessage[] = [];
  await t.start({ codec: testCodec, onMessage: (m) => inbox.push(m) });
  return { t, inbox };
}

/** Starts nodes on free ports and tells each where the others live. */
async function cluster(ids: string[], opts: Partial<WebSocketTransportOptions> = {}): Promise<Map<string, Node>> {
  const nodes = new Map<string, Node>();
  for (const id of ids) nodes.set(id, await node(id, opts));
  for (const a of nodes.values()) for (const b of nodes.values()) if (a !== b) a.t.setPeerAddress(b.t.id, b.t.address!);
  return nodes;
}

/** A raw client whose upgrade request carries `hello` (a header value) or no hello header. */
function raw(url: string, hello?: string): RawClient {
  const c = new RawClient(url, hello === undefined ? {} : { [HELLO_HEADER]: hello });
  cleanups.push(() => c.close());
  return c;
}

/** The hello header value of a dialer. */
const hello = (from: string, to: string, authToken: string | null = null, version = PROTOCOL_VERSION, clusterId: string | null = null) =>
  encodeHelloHeader({ version, from, to, authToken, clusterId });

/** A raw TCP connection to a listener (for what a WebSocket client cannot send). */
function tcp(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
    cleanups.push(() => s.destroy());
  });
}

describe('listening and addresses', () => {
  it('binds 127.0.0.1 on a free port by default and exposes it', async () => {
    const a = await node('a');
    expect(a.t.port).toBeGreaterThan(0);
    expect(a.t.address).toBe(`ws://127.0.0.1:${a.t.port}`);
  });

  it('rejects start when the port is taken (with the system error), and a second start', async () => {
    const a = await node('a');
    const b = new WebSocketTransport<TestMessage>({ id: 'b', listen: { port: a.t.port } });
    cleanups.push(() => b.close());
    await expect(b.start({ codec: testCodec, onMessage: () => {} })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await expect(a.t.start({ codec: testCodec, onMessage: () => {} })).rejects.toBeInstanceOf(InvalidArgumentError);
    await a.t.close();
    await a.t.close(); // idempotent
    await expect(a.t.start({ codec: testCodec, onMessage: () => {} })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('validates options with InvalidConfigurationError', () => {
    const bad: Partial<WebSocketTransportOptions>[] = [
      { id: '' },
      { id: 'has space' },
      { id: 'x'.repeat(129) },
      { id: 7 as unknown as string },
      { peers: { 'b c': 'ws://127.0.0.1:1' } },
      { maxFrameBytes: 10 },
      { maxFrameBytes: 1.5e6 + 0.5 },
      { reconnect: { initialMs: 100, maxMs: 10 } },
      { reconnect: { initialMs: 0 } },
      { maxQueueBytes: 0 },
      { listen: { port: 70000 } },
      { peers: { b: 'http://127.0.0.1:80' } },
      { peers: { b: 'not a url at all' } },
    ];
    for (const o of bad) expect(() => new WebSocketTransport({ id: 'a', ...o } as WebSocketTransportOptions)).toThrow(InvalidConfigurationError);
  });

  it('normalizes peer addresses: ws(s) URLs kept, host:port gets ws://, others refused', () => {
    expect(normalizePeerUrl('ws://127.0.0.1:7001')).toBe('ws://127.0.0.1:7001/');
    expect(normalizePeerUrl('wss://example.com/raft')).toBe('wss://example.com/raft');
    expect(normalizePeerUrl('127.0.0.1:7001')).toBe('ws://127.0.0.1:7001/');
    expect(normalizePeerUrl('http://127.0.0.1:7001')).toBeNull();
    expect(normalizePeerUrl('')).toBeNull();
    expect(normalizePeerUrl('ws://')).toBeNull();
  });
});

describe('sending', () => {
  it('coalesces the messages of one turn into one frame; payloads arrive as views into the frame', async () => {
    const nodes = await cluster(['a', 'b']);
    const a = nodes.get('a')!;
    const b = nodes.get('b')!;
    const msgs = Array.from({ length: 100 }, (_, i) => testMessage('a', 'b', i, new Uint8Array([i, i + 1])));
    for (const m of msgs) a.t.send([m]);
    expect(await until(() => b.inbox.length === 100)).toBe(true);
    expect(b.inbox.map((m) => m.seq)).toEqual(msgs.map((m) => m.seq));
    expect(a.t.stats()).toMatchObject({ sent: 100, framesSent: 1, connects: 1, dropped: 0 });
    expect(b.t.stats()).toMatchObject({ received: 100, framesReceived: 1, malformed: 0, inboundConnections: 1 });
    // Zero copy: every payload is a view into one received buffer, bigger than the payload.
    const buf = b.inbox[0]!.payload.buffer;
    expect(b.inbox.every((m) => m.payload.buffer === buf)).toBe(true);
    expect(buf.byteLength).toBeGreaterThan(200);
  });

  it('splits a backlog into frames no larger than maxFrameBytes', async () => {
    const nodes = await cluster(['a', 'b'], { maxFrameBytes: 64 * 1024 });
    const a = nodes.get('a')!;
    const b = nodes.get('b')!;
    const payload = new Uint8Array(1000).fill(7);
    a.t.send(Array.from({ length: 1000 }, (_, i) => testMessage('a', 'b', i, payload)));
    expect(await until(() => b.inbox.length === 1000)).toBe(true);
    expect(b.inbox.map((m) => m.seq)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    const s = a.t.stats();
    expect(s.framesSent).toBeGreaterThanOrEqual(Math.ceil((1000 * 1010) / (64 * 1024)));
    expect(s.bytesSent / s.framesSent).toBeLessThanOrEqual(64 * 1024);
    expect(b.t.stats().oversizedFrames).toBe(0);
  });

  it('drops (and counts) a message larger than maxFrameBytes, delivering the rest', async () => {
    const nodes = await cluster(['a', 'b'], { maxFrameBytes: 4096 });
    const a = nodes.get('a')!;
    const b = nodes.get('b')!;
    a.t.send([testMessage('a', 'b', 1), testMessage('a', 'b', 2, new Uint8Array(5000)), testMessage('a', 'b', 3)]);
    expect(await until(() => b.inbox.length === 2)).toBe(true);
    expect(b.inbox.map((m) => m.seq)).toEqual([1, 3]);
    expect(a.t.stats()).toMatchObject({ oversized: 1, dropped: 1 });
  });

  it('drops messages to unknown peers, counted, without throwing', async () => {
    const a = await node('a');
    expect(() => a.t.send([testMessage('a', 'nobody', 1), testMessage('a', 'ghost', 2)])).not.toThrow();
    expect(a.t.stats()).toMatchObject({ sent: 2, dropped: 2 });
  });

  it('delivers a message to itself without a connection', async () => {
    const a = await node('a');
    a.t.send([testMessage('a', 'a', 5)]);
    expect(await until(() => a.inbox.length === 1)).toBe(true);
    expect(a.t.stats().connects).toBe(0);
  });

  it('bounds the queue of an unreachable peer by maxQueueBytes and counts the overflow', async () => {
    const port = await freePort(); // nobody listens there
    const a = await node('a', { maxQueueBytes: 10_000, peers: { b: `ws://127.0.0.1:${port}` } });
    const payload = new Uint8Array(200);
    a.t.send(Array.from({ length: 100 }, (_, i) => testMessage('a', 'b', i, payload)));
    const s = a.t.stats();
    expect(s.queueOverflows).toBeGreaterThan(40);
    expect(s.queueOverflows).toBeLessThan(60);
    expect(s.dropped).toBe(s.queueOverflows);
    expect(a.t.linkStates()[0]!.queuedBytes).toBeLessThanOrEqual(10_000);
    // It keeps retrying with backoff; closing cancels that and counts the queued messages as dropped.
    expect(await until(() => a.t.stats().disconnects >= 2)).toBe(true);
    await a.t.close();
    expect(a.t.stats().dropped).toBe(100);
  });

  it('drops and counts a message the codec cannot encode, reporting the error', async () => {
    const errors: unknown[] = [];
    const broken: MessageCodec<TestMessage> = {
      write: (w, m) => {
        if (m.seq === 2) throw new RangeError('cannot encode');
        testCodec.write(w, m);
      },
      read: testCodec.read,
    };
    const a = new WebSocketTransport<TestMessage>({ id: 'a', onError: (e) => errors.push(e) });
    cleanups.push(() => a.close());
    const b = await node('b');
    await a.start({ codec: broken, onMessage: () => {} });
    a.setPeerAddress('b', b.t.address!);
    a.send([testMessage('a', 'b', 1), testMessage('a', 'b', 2), testMessage('a', 'b', 3)]);
    expect(await until(() => b.inbox.length === 2)).toBe(true);
    expect(b.inbox.map((m) => m.seq)).toEqual([1, 3]);
    expect(a.stats()).toMatchObject({ encodeErrors: 1, dropped: 1 });
    expect(errors.length).toBe(1);
  });

  it('drops messages sent before start or after close, counted', async () => {
    const t = new WebSocketTransport<TestMessage>({ id: 'a', peers: { b: 'ws://127.0.0.1:1' } });
    t.send([testMessage('a', 'b', 1)]);
    expect(t.stats().dropped).toBe(1);
    await t.close();
    t.send([testMessage('a', 'b', 2)]);
    expect(t.stats()).toMatchObject({ sent: 2, dropped: 2 });
  });

  it('follows a changed peer address; refuses an invalid one without throwing', async () => {
    const nodes = await cluster(['a', 'b']);
    const a = nodes.get('a')!;
    const b = nodes.get('b')!;
    a.t.send([testMessage('a', 'b', 1)]);
    expect(await until(() => b.inbox.length === 1)).toBe(true);
    // A second "b" elsewhere: after the address change, traffic goes there.
    const b2 = await node('b');
    expect(a.t.setPeerAddress('b', `127.0.0.1:${b2.t.port}`)).toBe(true);
    expect(a.t.setPeerAddress('b', 'http://nope')).toBe(false);
    expect(a.t.setPeerAddress('b c', `127.0.0.1:${b2.t.port}`)).toBe(false);
    a.t.send([testMessage('a', 'b', 2)]);
    expect(await until(() => b2.inbox.length === 1)).toBe(true);
    expect(b.inbox.length).toBe(1);
    expect(a.t.peers()).toEqual({ b: `ws://127.0.0.1:${b2.t.port}/` });
    a.t.removePeer('b');
    a.t.send([testMessage('a', 'b', 3)]);
    expect(a.t.stats().dropped).toBe(1);
  });
});

describe('reconnect', () => {
  it('redials with backoff after the peer restarts at the same port, and delivers again', async () => {
    const port = await freePort();
    const a = await node('a', { peers: { b: `ws://127.0.0.1:${port}` } });
    const b1 = await node('b', { listen: { port } });
    a.t.send([testMessage('a', 'b', 1)]);
    expect(await until(() => b1.inbox.length === 1)).toBe(true);
    await b1.t.close();
    expect(await until(() => a.t.linkStates()[0]!.state !== 'open')).toBe(true);
    // While b is down, messages queue (bounded) and redials fail.
    a.t.send([testMessage('a', 'b', 2)]);
    expect(await until(() => a.t.stats().disconnects >= 2)).toBe(true);
    const b2 = await node('b', { listen: { port } });
    expect(await until(() => b2.inbox.length >= 1)).toBe(true);
    expect(b2.inbox[0]!.seq).toBe(2); // the queued message survived the outage
    expect(a.t.stats().connects).toBeGreaterThanOrEqual(2);
  });

  it('a peer that restarts replaces its old inbound connection', async () => {
    const nodes = await cluster(['a', 'b']);
    const a = nodes.get('a')!;
    const b = nodes.get('b')!;
    a.t.send([testMessage('a', 'b', 1)]);
    expect(await until(() => b.inbox.length === 1)).toBe(true);
    // A restarted "a" (same id, new process) dials b again.
    await a.t.close();
    const a2 = await node('a');
    a2.t.setPeerAddress('b', b.t.address!);
    a2.t.send([testMessage('a', 'b', 2)]);
    expect(await until(() => b.inbox.length === 2)).toBe(true);
    expect(await until(() => b.t.stats().inboundConnections === 1)).toBe(true);
  });
});

describe('keep-alive', () => {
  it('closes and redials an outbound link whose peer stops answering pings', async () => {
    // A fake peer that accepts connections but never answers pings (a half-open link).
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, autoPong: false });
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const conns: import('ws').WebSocket[] = [];
    server.on('connection', (ws) => {
      conns.push(ws);
      cleanups.push(() => ws.terminate());
    });
    await new Promise<void>((r) => server.once('listening', () => r()));
    const port = (server.address() as import('node:net').AddressInfo).port;
    const a = await node('a', { keepAliveMs: 20, peers: { b: `ws://127.0.0.1:${port}` } });
    a.t.send([testMessage('a', 'b', 1)]);
    expect(await until(() => a.t.stats().connects >= 2)).toBe(true);
    expect(a.t.stats().disconnects).toBeGreaterThanOrEqual(1);
    expect(conns.length).toBeGreaterThanOrEqual(2);
  });

  it('keeps a healthy link open across many keep-alive periods', async () => {
    const nodes = await cluster(['a', 'b'], { keepAliveMs: 100 });
    const a = nodes.get('a')!;
    a.t.send([testMessage('a', 'b', 1)]);
    expect(await until(() => nodes.get('b')!.inbox.length === 1)).toBe(true);
    await sleep(600);
    expect(a.t.stats()).toMatchObject({ connects: 1, disconnects: 0 });
  });
});

describe('handshake and authentication', () => {
  it('refuses a dialer with the wrong token (4001); nothing is delivered; the dialer backs off', async () => {
    const b = await node('b', { authToken: 'right' });
    const a = await node('a', { authToken: 'wrong', peers: { b: b.t.address! } });
    a.t.send([testMessage('a', 'b', 1)]);
    expect(await until(() => a.t.linkStates()[0]?.lastCloseCode === CloseCode.Unauthorized)).toBe(true);
    expect(b.t.stats().rejected).toBeGreaterThanOrEqual(1);
    await sleep(50);
    expect(b.inbox.length).toBe(0);
    expect(b.t.stats().received).toBe(0);
  });

  it('accepts the right token', async () => {
    const nodes = await cluster(['a', 'b'], { authToken: 'same' });
    nodes.get('a')!.t.send([testMessage('a', 'b', 1)]);
    expect(await until(() => nodes.get('b')!.inbox.length === 1)).toBe(true);
  });

  it('refuses upgrades with a missing or wrong token, no or bad hello, wrong node, other version: HTTP error, no WebSocket', async () => {
    const b = await node('b', { authToken: 'tok' });
    const url = b.t.address!;
    // [hello header (undefined: none), HTTP status, close code, counted as malformed too]
    const cases: [string | undefined, number, number, boolean][] = [
      [hello('x', 'b', null), 401, CloseCode.Unauthorized, false],
      [hello('x', 'b', 'nope'), 401, CloseCode.Unauthorized, false],
      [undefined, 400, CloseCode.BadHello, true],
      ['AQID', 400, CloseCode.BadHello, true], // bytes 1 2 3: not a hello
      ['not base64!', 400, CloseCode.BadHello, true],
      [Buffer.from(encodeBatch(testCodec, [testMessage('x', 'b', 1)])).toString('base64url'), 400, CloseCode.BadHello, true],
      ['A'.repeat(8000), 400, CloseCode.BadHello, true], // longer than any hello
      [hello('x', 'c', 'tok'), 421, CloseCode.WrongNode, false],
      [hello('x', 'b', 'tok', PROTOCOL_VERSION + 1), 400, CloseCode.BadHello, false],
      [hello('x', 'b', 'tok', 1), 400, CloseCode.BadHello, false],
    ];
    for (const [h, status, code] of cases) {
      const c = raw(url, h);
      expect(await c.refused).toMatchObject({ status, code });
      await c.closed;
    }
    const malformed = cases.filter((c) => c[3]).length;
    expect(await until(() => b.t.stats().rejected === cases.length)).toBe(true);
    expect(b.t.stats()).toMatchObject({ rejected: cases.length, malformed, received: 0, inboundConnections: 0, bytesReceived: 0, pendingHandshakes: 0 });
  });

  it('refuses a hello claiming the listener\'s own id or an invalid node id (4002), counted; a valid one is accepted', async () => {
    const b = await node('b');
    const url = b.t.address!;
    // [hello, counted as malformed too]
    const cases: [string, boolean][] = [
      [hello('b', 'b'), false], // this node's own id: a duplicate of b, or a spoof
      [hello('x y', 'b'), true], // whitespace
      [hello('x'.repeat(129), 'b'), true], // too long
      [hello('x', 'b\n'), true], // invalid recipient (not just another node)
    ];
    for (const [h] of cases) {
      const c = raw(url, h);
      expect(await c.refused).toMatchObject({ status: 400, code: CloseCode.BadHello });
    }
    const malformed = cases.filter((c) => c[1]).length;
    expect(await until(() => b.t.stats().rejected === cases.length)).toBe(true);
    expect(b.t.stats()).toMatchObject({ rejected: cases.length, malformed, received: 0, inboundConnections: 0 });
    expect(b.inbox).toEqual([]);
    // A valid sender (128 characters, the longest valid id) is accepted.
    const longId = 'x'.repeat(128);
    const ok = raw(url, hello(longId, 'b'));
    expect(await ok.refused).toBeNull();
    await ok.send(encodeBatch(testCodec, [testMessage(longId, 'b', 7)]));
    expect(await until(() => b.inbox.length === 1)).toBe(true);
    expect(b.inbox[0]!.seq).toBe(7);
    expect(b.t.stats()).toMatchObject({ rejected: cases.length, received: 1, inboundConnections: 1 });
  });

  it('closes a connection that does not complete its upgrade in time (408, close code 4004), counted', async () => {
    const b = await node('b', { helloTimeoutMs: 20 });
    const s = await tcp(b.t.port);
    s.write('GET / HTTP/1.1\r\nHost: x\r\n'); // headers never finished
    let answer = '';
    s.on('data', (d: Buffer) => (answer += d.toString()));
    await new Promise((r) => s.once('close', r));
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer.toLowerCase()).toContain(`x-synod-close-code: ${CloseCode.HelloTimeout}`);
    expect(await until(() => b.t.stats().rejected === 1)).toBe(true);
    expect(b.t.stats().pendingHandshakes).toBe(0);
  });

  it('answers a plain HTTP request with 426 and counts it', async () => {
    const b = await node('b');
    const res = await fetch(`http://127.0.0.1:${b.t.port}/`);
    expect(res.status).toBe(426);
    expect(res.headers.get('x-synod-close-code')).toBe(String(CloseCode.BadHello));
    await res.text();
    expect(await until(() => b.t.stats().rejected === 1)).toBe(true);
  });
});

describe('cluster id', () => {
  it('peers of the same cluster talk', async () => {
    const nodes = await cluster(['a', 'b'], { clusterId: 'c1', authToken: 't' });
    nodes.get('a')!.t.send([testMessage('a', 'b', 1)]);
    expect(await until(() => nodes.get('b')!.inbox.length === 1)).toBe(true);
    expect(nodes.get('b')!.t.stats()).toMatchObject({ rejected: 0, clusterMismatches: 0 });
  });

  for (const [label, dialerCluster] of [
    ['another cluster id', 'c2'],
    ['no cluster id', undefined],
  ] as const) {
    it(`refuses a dialer with ${label} (403, 4006), counted; nothing is delivered; the dialer backs off`, async () => {
      const b = await node('b', { clusterId: 'c1' });
      const a = await node('a', { peers: { b: b.t.address! }, ...(dialerCluster ? { clusterId: dialerCluster } : {}) });
      a.t.send([testMessage('a', 'b', 1)]);
      expect(await until(() => a.t.linkStates()[0]?.lastCloseCode === CloseCode.WrongCluster)).toBe(true);
      expect(a.t.linkStates()[0]!.attempts).toBeGreaterThanOrEqual(30); // backed off to maxMs
      expect(b.t.stats().rejected).toBeGreaterThanOrEqual(1);
      expect(b.t.stats().clusterMismatches).toBe(b.t.stats().rejected);
      await sleep(50);
      expect(b.inbox.length).toBe(0);
      expect(b.t.stats()).toMatchObject({ received: 0, inboundConnections: 0, bytesReceived: 0 });
    });
  }

  it('the refusal names both clusters; a wrong token is refused first without revealing the cluster', async () => {
    const b = await node('b', { clusterId: 'c1', authToken: 'tok' });
    const wrongCluster = raw(b.t.address!, hello('x', 'b', 'tok', PROTOCOL_VERSION, 'c2'));
    const r = await wrongCluster.refused;
    expect(r).toMatchObject({ status: 403, code: CloseCode.WrongCluster });
    expect(r!.body).toContain('"c1"');
    expect(r!.body).toContain('"c2"');
    const wrongToken = raw(b.t.address!, hello('x', 'b', 'nope', PROTOCOL_VERSION, 'c2'));
    const r2 = await wrongToken.refused;
    expect(r2).toMatchObject({ status: 401, code: CloseCode.Unauthorized });
    expect(r2!.body).not.toContain('c1');
    expect(await until(() => b.t.stats().rejected === 2)).toBe(true);
    expect(b.t.stats().clusterMismatches).toBe(1);
  });

  it('a listener without a cluster id accepts any dialer', async () => {
    const b = await node('b');
    const a = await node('a', { clusterId: 'c9', peers: { b: b.t.address! } });
    a.t.send([testMessage('a', 'b', 1)]);
    expect(await until(() => b.inbox.length === 1)).toBe(true);
  });

  it('validates clusterId and authToken with InvalidConfigurationError', () => {
    for (const bad of [{ clusterId: '' }, { clusterId: 'x'.repeat(257) }, { clusterId: 7 }, { authToken: '€'.repeat(342) }, { authToken: 5 }]) {
      expect(() => new WebSocketTransport({ id: 'a', ...(bad as object) })).toThrow(InvalidConfigurationError);
    }
    expect(() => new WebSocketTransport({ id: 'a', maxPendingHandshakes: 0 })).toThrow(InvalidConfigurationError);
    expect(() => new WebSocketTransport({ id: 'a', clusterId: 'x'.repeat(256), authToken: '€'.repeat(341) })).not.toThrow();
  });
});

describe('before authentication', () => {
  it('refuses many unauthenticated upgrades at once (no hello, wrong token, wrong cluster) before any frame; all counted', async () => {
    const b = await node('b', { authToken: 'tok', clusterId: 'c1' });
    const headers = [undefined, hello('x', 'b', 'nope', PROTOCOL_VERSION, 'c1'), hello('x', 'b', 'tok', PROTOCOL_VERSION, 'c2'), hello('x', 'b', null)];
    const clients = Array.from({ length: 60 }, (_, i) => raw(b.t.address!, headers[i % headers.length]));
    const answers = await Promise.all(clients.map((c) => c.refused));
    expect(answers.every((a) => a !== null && a.status >= 400)).toBe(true);
    await Promise.all(clients.map((c) => c.closed));
    expect(await until(() => b.t.stats().rejected === 60)).toBe(true);
    expect(b.t.stats()).toMatchObject({ rejected: 60, clusterMismatches: 15, received: 0, bytesReceived: 0, inboundConnections: 0, pendingHandshakes: 0 });
  });

  it('reads no frame from a refused upgrade, even one pipelined right behind the request', async () => {
    const b = await node('b', { authToken: 'tok' });
    const s = await tcp(b.t.port);
    let answer = '';
    s.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    const closed = new Promise((r) => s.once('close', r));
    s.on('error', () => {});
    s.write(
      `GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${HELLO_HEADER}: ${hello('x', 'b', 'nope')}\r\n\r\n`,
    );
    // A binary frame header announcing 16 MiB - 16 bytes (what the memory attack sends), then 1 MiB of it.
    const header = Buffer.alloc(14);
    header[0] = 0x82;
    header[1] = 0xff;
    header.writeBigUInt64BE(BigInt(16 * 1024 * 1024 - 16), 2);
    header.writeUInt32BE(0, 10); // mask key
    s.write(header);
    s.write(Buffer.alloc(1024 * 1024, 7), () => {});
    await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    expect(await until(() => b.t.stats().rejected === 1)).toBe(true);
    expect(b.t.stats()).toMatchObject({ bytesReceived: 0, malformed: 0, oversizedFrames: 0, received: 0, inboundConnections: 0, pendingHandshakes: 0 });
  });

  it('bounds pending connections by maxPendingHandshakes (oldest evicted with 503, counted); a real peer still gets in', async () => {
    const b = await node('b', { maxPendingHandshakes: 8, helloTimeoutMs: 60_000 });
    const idle: Socket[] = [];
    const closedByServer: Socket[] = [];
    for (let i = 0; i < 30; i++) {
      const s = await tcp(b.t.port);
      s.on('error', () => {});
      s.resume(); // read the 503, so that its end is seen
      s.once('close', () => closedByServer.push(s));
      idle.push(s);
    }
    expect(await until(() => closedByServer.length === 22)).toBe(true);
    // The survivors are the 8 most recent connections; the evicted ones got a 503 with close code 4007.
    expect(closedByServer.every((s) => idle.indexOf(s) < 22)).toBe(true);
    expect(b.t.stats()).toMatchObject({ pendingHandshakes: 8, handshakeEvictions: 22, rejected: 22, inboundConnections: 0 });
    // A legitimate peer connects through the flood (evicting one more idle connection).
    const a = await node('a', { peers: { b: b.t.address! } });
    a.t.send([testMessage('a', 'b', 1)]);
    expect(await until(() => b.inbox.length === 1)).toBe(true);
    expect(b.t.stats()).toMatchObject({ handshakeEvictions: 23, pendingHandshakes: 7, inboundConnections: 1 });
    // Connections the client abandons are counted too; nothing stays pending.
    for (const s of idle) s.destroy();
    expect(await until(() => b.t.stats().pendingHandshakes === 0)).toBe(true);
    expect(b.t.stats().rejected).toBe(30);
  });

  it('sends an evicted connection a 503 with close code 4007', async () => {
    const b = await node('b', { maxPendingHandshakes: 1, helloTimeoutMs: 60_000 });
    const first = await tcp(b.t.port);
    let answer = '';
    first.on('data', (d: Buffer) => (answer += d.toString()));
    const closed = new Promise((r) => first.once('close', r));
    await tcp(b.t.port);
    await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 503 /);
    expect(answer.toLowerCase()).toContain(`x-synod-close-code: ${CloseCode.Overloaded}`);
    expect(b.t.stats()).toMatchObject({ handshakeEvictions: 1, pendingHandshakes: 1 });
  });
});

describe('hostile input', () => {
  it('counts garbage, truncated, unknown and text frames as malformed and keeps the link', async () => {
    const b = await node('b');
    const c = raw(b.t.address!, hello('x', 'b'));
    await c.opened;
    const good = encodeBatch(testCodec, [testMessage('x', 'b', 1, new Uint8Array([1, 2, 3])), testMessage('x', 'b', 2)]);
    const bad: (Uint8Array | string)[] = [
      new Uint8Array([0xde, 0xad, 0xbe, 0xef]),
      good.subarray(0, good.length - 2), // truncated
      new Uint8Array([...good, 0]), // trailing byte
      new Uint8Array([FrameType.Batch, 0xff, 0xff, 0xff, 0xff, 0x0f]), // absurd count
      new Uint8Array([]),
      encodeHello({ version: PROTOCOL_VERSION, from: 'x', to: 'b', authToken: null, clusterId: null }), // a hello as a frame
      'text frame',
    ];
    for (const f of bad) await c.send(f);
    await c.send(good);
    expect(await until(() => b.inbox.length === 2)).toBe(true);
    expect(b.inbox.map((m) => m.seq)).toEqual([1, 2]);
    expect(b.t.stats()).toMatchObject({ malformed: bad.length, received: 2, framesReceived: 1 });
    expect(c.closeCode).toBeNull();
  });

  it('refuses messages whose sender differs from the hello, and drops misaddressed ones', async () => {
    const b = await node('b');
    const c = raw(b.t.address!, hello('x', 'b'));
    await c.opened;
    await c.send(encodeBatch(testCodec, [testMessage('spoofed', 'b', 1), testMessage('x', 'zz', 2), testMessage('x', 'b', 3)]));
    expect(await until(() => b.inbox.length === 1)).toBe(true);
    expect(b.inbox[0]!.seq).toBe(3);
    expect(b.t.stats()).toMatchObject({ malformed: 1, dropped: 1 });
  });

  it('closes a connection whose frame exceeds maxFrameBytes (1009) without crashing, and keeps serving others', async () => {
    const b = await node('b', { maxFrameBytes: 8 * 1024 });
    const c = raw(b.t.address!, hello('x', 'b'));
    await c.opened;
    const w = new BinaryWriter();
    testCodec.write(w, testMessage('x', 'b', 1, new Uint8Array(20 * 1024)));
    await c.send(new Uint8Array([FrameType.Batch, 1, ...w.finish()])).catch(() => {});
    expect((await c.closed).code).toBe(CloseCode.TooBig);
    expect(await until(() => b.t.stats().oversizedFrames === 1)).toBe(true);
    expect(b.inbox.length).toBe(0);
    // Another sender is unaffected.
    const a = await node('a', { peers: { b: b.t.address! } });
    a.t.send([testMessage('a', 'b', 2)]);
    expect(await until(() => b.inbox.length === 1)).toBe(true);
  });

  it('a throwing handler is caught, counted and reported; later messages still arrive', async () => {
    const errors: unknown[] = [];
    const b = new WebSocketTransport<TestMessage>({ id: 'b', onError: (e) => errors.push(e) });
    cleanups.push(() => b.close());
    const got: number[] = [];
    await b.start({
      codec: testCodec,
      onMessage: (m) => {
        got.push(m.seq);
        if (m.seq === 1) throw new Error('handler bug');
      },
    });
    const a = await node('a', { peers: { b: b.address! } });
    a.t.send([testMessage('a', 'b', 1), testMessage('a', 'b', 2)]);
    expect(await until(() => got.length === 2)).toBe(true);
    expect(b.stats().handlerErrors).toBe(1);
    expect(errors.length).toBe(1);
  });
});

describe('fault injection', () => {
  it('isolate drops all inbound and outbound messages (counted); heal restores traffic at once', async () => {
    const nodes = await cluster(['a', 'b', 'c']);
    const [a, b, c] = ['a', 'b', 'c'].map((id) => nodes.get(id)!) as [Node, Node, Node];
    // Warm up the links so the isolation happens with connections up.
    a.t.send([testMessage('a', 'b', 0), testMessage('a', 'c', 0)]);
    b.t.send([testMessage('b', 'a', 0)]);
    expect(await until(() => b.inbox.length === 1 && c.inbox.length === 1 && a.inbox.length === 1)).toBe(true);

    a.t.isolate();
    expect(a.t.isolated).toBe(true);
    a.t.send([testMessage('a', 'b', 1), testMessage('a', 'c', 1)]);
    b.t.send([testMessage('b', 'a', 1), testMessage('b', 'c', 1)]);
    expect(await until(() => c.inbox.length === 2 && a.t.stats().dropped === 3)).toBe(true);
    expect(c.inbox.map((m) => m.from)).toEqual(['a', 'b']);
    expect(a.inbox.length).toBe(1);
    expect(b.inbox.length).toBe(1);
    expect(a.t.stats().outboundConnections).toBe(2); // links stay up

    a.t.heal();
    a.t.send([testMessage('a', 'b', 2)]);
    b.t.send([testMessage('b', 'a', 2)]);
    expect(await until(() => b.inbox.length === 2 && a.inbox.length === 2)).toBe(true);
  });

  it('blockPeer drops traffic to and from one peer only', async () => {
    const nodes = await cluster(['a', 'b', 'c']);
    const [a, b, c] = ['a', 'b', 'c'].map((id) => nodes.get(id)!) as [Node, Node, Node];
    a.t.blockPeer('b');
    a.t.send([testMessage('a', 'b', 1), testMessage('a', 'c', 1)]);
    b.t.send([testMessage('b', 'a', 1)]);
    c.t.send([testMessage('c', 'a', 1)]);
    expect(await until(() => c.inbox.length === 1 && a.inbox.length === 1 && a.t.stats().dropped === 2)).toBe(true);
    expect(a.inbox[0]!.from).toBe('c');
    expect(b.inbox.length).toBe(0);
    a.t.unblockPeer('b');
    b.t.send([testMessage('b', 'a', 2)]);
    expect(await until(() => a.inbox.length === 2)).toBe(true);
  });
});
