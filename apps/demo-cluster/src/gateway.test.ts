/**
 * The gateway alone, against a fake supervisor (no processes): routing on the raw path, input
 * validation, body limits, the error shape, and the answers to what Node's HTTP parser refuses
 * (malformed requests, huge headers, stalled bodies, CONNECT, unknown methods).
 */
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromReplicaError, GatewayError, ReplicaError } from './errors.js';
import { Gateway } from './gateway.js';
import type { KvOperation } from './ipc.js';
import type { ClusterView, Supervisor } from './supervisor.js';

/** One request with the path sent exactly as given (fetch would normalise it). */
function raw(base: string, method: string, path: string, body?: string, agent?: Agent): Promise<{ status: number; text: string; headers: Record<string, unknown>; json: () => any }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, agent: agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode!, text, headers: res.headers, json: () => JSON.parse(text) });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Writes bytes on a fresh TCP connection and resolves with everything the server sent until it closed. */
function rawSocket(base: string, bytes: string, opts: { endAfterWrite?: boolean } = {}): Promise<{ status: number; headers: string; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(url.port), url.hostname, () => {
      sock.write(bytes);
      if (opts.endAfterWrite) sock.end();
    });
    const chunks: Buffer[] = [];
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const sep = text.indexOf('\r\n\r\n');
      const head = sep < 0 ? text : text.slice(0, sep);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), headers: head, body: sep < 0 ? '' : text.slice(sep + 4) });
    });
  });
}

class FakeSupervisor {
  readonly options = { maxBodyBytes: 100 };
  readonly store = new Map<string, Uint8Array>();
  readonly calls: string[] = [];
  leader: string | null = 'n1';

  async write(op: KvOperation, node?: string) {
    this.calls.push(`write ${op.type} ${op.key} ${node ?? ''}`.trim());
    if (!this.leader) throw new GatewayError(503, 'NO_LEADER', 'no leader is known');
    if (op.type === 'put' && op.key === 'too-large') {
      throw fromReplicaError(
        new ReplicaError('n1', { name: 'CommandTooLargeError', code: 'COMMAND_TOO_LARGE', message: 'command is 9000000 bytes; the limit (maxCommandBytes) is 8388608' }),
      );
    }
    const existed = this.store.has(op.key);
    if (op.type === 'put') this.store.set(op.key, op.value.slice());
    else this.store.delete(op.key);
    return { index: 7, existed, node: node ?? this.leader, leader: this.leader };
  }
  async read(key: string, consistency: string, node?: string) {
    this.calls.push(`read ${key} ${consistency} ${node ?? ''}`.trim());
    if (node !== undefined && node !== 'n1') throw new GatewayError(404, 'UNKNOWN_NODE', `no node ${node}`);
    return { value: this.store.get(key) ?? null, appliedIndex: 7, node: node ?? 'n1' };
  }
  async view(): Promise<ClusterView> {
    return {
      protocol: 'raft',
      leader: this.leader,
      voters: ['n1'],
      learners: [],
      nodes: [
        {
          id: 'n1', alive: true, role: 'leader', term: 1, leader: 'n1', commitIndex: 7, appliedIndex: 7, lastIndex: 7,
          snapshotIndex: 0, membership: 'voter', isolated: false, pid: 1, port: 2, address: 'ws://127.0.0.1:2', keys: 0,
        },
      ],
    };
  }
  async addMember(id: string, role: string) {
    this.calls.push(`add ${id} ${role}`);
    return { id, role, voters: ['n1'], learners: [id] };
  }
  async kill(id: string) {
    if (id !== 'n1') throw new GatewayError(404, 'UNKNOWN_NODE', `no node ${id}`);
    this.calls.push(`kill ${id}`);
    return { id, alive: false };
  }
}

describe('Gateway (fake supervisor)', () => {
  const sup = new FakeSupervisor();
  const gw = new Gateway(sup as unknown as Supervisor);
  let base = '';

  beforeAll(async () => {
    base = (await gw.listen(0, '127.0.0.1')).replace(/\/$/, '');
  });
  afterAll(() => gw.close());

  const call = async (method: string, path: string, body?: string) => {
    const res = await fetch(`${base}${path}`, { method, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    return { status: res.status, text, headers: res.headers, json: () => JSON.parse(text) };
  };

  it('listens on the requested port', () => {
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(base.endsWith(':0')).toBe(false);
  });

  it('puts, gets and deletes with decoded keys', async () => {
    const put = await call('PUT', '/kv/a%20b', 'v1');
    expect(put.status).toBe(200);
    expect(put.json()).toEqual({ key: 'a b', index: 7, created: true, node: 'n1', leader: 'n1' });
    const get = await call('GET', '/kv/a%20b');
    expect(get.status).toBe(200);
    expect(get.text).toBe('v1');
    expect(get.headers.get('x-synod-node')).toBe('n1');
    expect(get.headers.get('x-synod-consistency')).toBe('linearizable');
    const del = await call('DELETE', '/kv/a%20b');
    expect(del.json()).toMatchObject({ key: 'a b', deleted: true });
    const gone = await call('GET', '/kv/a%20b');
    expect(gone.status).toBe(404);
    expect(gone.json().code).toBe('KEY_NOT_FOUND');
  });

  it('passes consistency and node through', async () => {
    await call('GET', '/kv/x?consistency=stale&node=n1');
    expect(sup.calls).toContain('read x stale n1');
    await call('PUT', '/kv/x?node=n1', 'v');
    expect(sup.calls).toContain('write put x n1');
  });

  it('rejects bad input with 4xx and a JSON reason', async () => {
    const bad: [string, string, string | undefined, number, string][] = [
      ['GET', '/kv/x?consistency=strong', undefined, 400, 'INVALID_CONSISTENCY'],
      ['GET', '/kv/%ZZ', undefined, 400, 'BAD_ENCODING'],
      ['GET', `/kv/${'é'.repeat(513)}`, undefined, 400, 'INVALID_KEY'],
      ['GET', '/kv/x?node=', undefined, 400, 'INVALID_NODE'],
      ['GET', '/kv/x?node=n7', undefined, 404, 'UNKNOWN_NODE'],
      ['GET', '/kv/', undefined, 400, 'INVALID_KEY'],
      ['PUT', '/kv/', 'v', 400, 'INVALID_KEY'],
      ['DELETE', '/kv/', undefined, 400, 'INVALID_KEY'],
      ['GET', '/kv', undefined, 404, 'NOT_FOUND'],
      ['GET', '/kv/a/b', undefined, 404, 'NOT_FOUND'],
      ['GET', '/api/cluster/', undefined, 404, 'NOT_FOUND'],
      ['GET', '/api//cluster', undefined, 404, 'NOT_FOUND'],
      ['GET', '/API/cluster', undefined, 404, 'NOT_FOUND'],
      ['PATCH', '/kv/x', 'v', 405, 'METHOD_NOT_ALLOWED'],
      ['OPTIONS', '/api/cluster', undefined, 405, 'METHOD_NOT_ALLOWED'],
      ['PUT', '/kv/too-large', 'v', 413, 'COMMAND_TOO_LARGE'],
      ['GET', '/api/nope', undefined, 404, 'NOT_FOUND'],
      ['POST', '/kv/x', 'v', 405, 'METHOD_NOT_ALLOWED'],
      ['GET', '/api/members', undefined, 405, 'METHOD_NOT_ALLOWED'],
      ['POST', '/api/members', '{', 400, 'INVALID_JSON'],
      ['POST', '/api/members', '[]', 400, 'INVALID_MEMBER'],
      ['POST', '/api/members', '{"id":"n4"}', 400, 'INVALID_MEMBER'],
      ['POST', '/api/nodes/n7/kill', undefined, 404, 'UNKNOWN_NODE'],
      ['PUT', '/kv/big', 'x'.repeat(101), 413, 'PAYLOAD_TOO_LARGE'],
    ];
    for (const [method, path, body, status, code] of bad) {
      const a = await call(method, path, body);
      expect({ method, path, status: a.status, code: a.json().code }).toEqual({ method, path, status, code });
      expect(a.json().error).toEqual(expect.any(String));
    }
    expect(sup.store.has('big')).toBe(false);
  });

  it('answers 405 with an Allow header', async () => {
    const a = await call('PATCH', '/kv/x', 'v');
    expect(a.status).toBe(405);
    expect(a.headers.get('allow')).toBe('GET, PUT, DELETE');
  });

  it('maps a command the replica refuses as too large to 413 with the reason', async () => {
    const a = await call('PUT', '/kv/too-large', 'v');
    expect(a.status).toBe(413);
    expect(a.json()).toMatchObject({ code: 'COMMAND_TOO_LARGE', node: 'n1' });
    expect(a.json().error).toMatch(/maxCommandBytes/);
  });

  it('lets a client finish an over-limit upload and read the 413 on a connection that stays open', async () => {
    for (let i = 0; i < 3; i++) {
      const a = await call('PUT', '/kv/huge', 'x'.repeat(4 * 1024 * 1024));
      expect(a.status).toBe(413);
      expect(a.json().code).toBe('PAYLOAD_TOO_LARGE');
    }
    // The declared length is within reach: the rest is drained, the connection is kept.
    const agent = new Agent({ keepAlive: true });
    const drained = await raw(base, 'PUT', '/kv/huge', 'x'.repeat(1024 * 1024), agent);
    expect(drained.status).toBe(413);
    expect(drained.headers.connection).toBe('keep-alive');
    expect((await raw(base, 'GET', '/kv/huge', undefined, agent)).status).toBe(404);
    agent.destroy();
    expect(sup.store.has('huge')).toBe(false);
  });

  it('accepts a body exactly at the limit', async () => {
    expect((await call('PUT', '/kv/edge', 'x'.repeat(100))).status).toBe(200);
  });

  it('routes on the raw path: dot segments are keys, never resolved', async () => {
    // Written through the encoded form, read back through the literal one, and vice versa.
    expect((await raw(base, 'PUT', '/kv/%2e%2e', 'dotdot')).json()).toMatchObject({ key: '..', created: true });
    const dd = await raw(base, 'GET', '/kv/..');
    expect(dd.status).toBe(200);
    expect(dd.text).toBe('dotdot');
    expect(dd.headers['content-type']).toBe('application/octet-stream');
    expect((await raw(base, 'PUT', '/kv/.', 'dot')).json()).toMatchObject({ key: '.' });
    expect((await raw(base, 'GET', '/kv/%2E')).text).toBe('dot');
    expect(sup.store.has('.')).toBe(true);
    expect(sup.store.has('..')).toBe(true);
    // %2F is a slash inside the key; a raw slash separates segments.
    expect((await raw(base, 'PUT', '/kv/a%2Fb', 'ab')).json()).toMatchObject({ key: 'a/b' });
    expect(sup.store.get('a/b')).toBeDefined();
    expect((await raw(base, 'GET', '/kv/a/b')).status).toBe(404);
  });

  it('never rewrites a path into another route', async () => {
    sup.store.set('y', new Uint8Array([1]));
    sup.store.set('foo', new TextEncoder().encode('secret'));
    const before = sup.calls.length;
    const cases: [string, string][] = [
      ['PUT', '/kv/x/%2e%2e/y'],
      ['PUT', '/kv/x/../y'],
      ['GET', '/kv/x/../foo'],
      ['GET', '/kv\\foo'],
      ['GET', '//evil/kv/foo'],
      ['GET', '/./kv/foo'],
      ['GET', '/kv/../api/cluster'],
      ['GET', '/%6bv/foo'],
      ['GET', 'http://gateway/kv/foo'],
    ];
    for (const [method, path] of cases) {
      const a = await raw(base, method, path, method === 'PUT' ? 'evil' : undefined);
      expect({ path, status: a.status, code: a.json().code }).toEqual({ path, status: 404, code: 'NOT_FOUND' });
      expect(a.headers['content-type']).toContain('application/json');
    }
    // Nothing reached the supervisor; y was not overwritten.
    expect(sup.calls.length).toBe(before);
    expect(sup.store.get('y')).toEqual(new Uint8Array([1]));
    // The status page is only at exactly "/".
    for (const path of ['/kv/..', '/kv/%2e%2e']) expect((await raw(base, 'GET', path)).headers['content-type']).not.toContain('text/html');
    expect((await raw(base, 'GET', '/')).headers['content-type']).toContain('text/html');
  });

  it('answers malformed HTTP with JSON 400', async () => {
    const a = await rawSocket(base, 'GET /kv/a HTTP/1.1\r\nHost: x\r\nthis is not a header\r\n\r\n');
    expect(a.status).toBe(400);
    expect(a.headers).toMatch(/content-type: application\/json/i);
    expect(JSON.parse(a.body)).toMatchObject({ code: 'BAD_REQUEST', error: expect.any(String) });
  });

  it('answers huge headers with JSON 431', async () => {
    const a = await rawSocket(base, `GET /kv/a HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(a.status).toBe(431);
    expect(JSON.parse(a.body).code).toBe('HEADERS_TOO_LARGE');
  });

  it('answers an unknown method with JSON 501 and CONNECT with JSON 405', async () => {
    const unknown = await rawSocket(base, 'BREW /kv/a HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(unknown.status).toBe(501);
    expect(JSON.parse(unknown.body).code).toBe('NOT_IMPLEMENTED');
    const tunnel = await rawSocket(base, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    expect(tunnel.status).toBe(405);
    expect(JSON.parse(tunnel.body).code).toBe('METHOD_NOT_ALLOWED');
    expect(tunnel.headers).toMatch(/allow: /i);
  });

  it('passes supervisor errors through with their status', async () => {
    sup.leader = null;
    const a = await call('PUT', '/kv/y', 'v');
    expect(a.status).toBe(503);
    expect(a.json()).toEqual({ error: 'no leader is known', code: 'NO_LEADER' });
    sup.leader = 'n1';
  });

  it('adds members and serves the cluster view and the page', async () => {
    const a = await call('POST', '/api/members', '{"id":"n4","role":"learner"}');
    expect(a.status).toBe(200);
    expect(sup.calls).toContain('add n4 learner');
    const c = await call('GET', '/api/cluster');
    expect(c.json().nodes[0]).toMatchObject({ id: 'n1', alive: true, role: 'leader' });
    const page = await call('GET', '/');
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.text).toContain('n1');
  });
});

describe('Gateway: Expect headers and a graceful close (fake supervisor)', () => {
  it('refuses an over-limit body announced with Expect: 100-continue before the upload (no 100 Continue)', async () => {
    const gw = new Gateway(new FakeSupervisor() as unknown as Supervisor);
    const base = (await gw.listen(0, '127.0.0.1')).replace(/\/$/, '');
    try {
      const a = await rawSocket(base, 'PUT /kv/big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000000\r\n\r\n');
      expect(a.status).toBe(413);
      expect(a.headers).not.toContain('100 Continue');
      expect(JSON.parse(a.body).code).toBe('PAYLOAD_TOO_LARGE');
      const b = await rawSocket(base, 'GET /kv/a HTTP/1.1\r\nHost: x\r\nExpect: bogus\r\nConnection: close\r\n\r\n');
      expect(b.status).toBe(417);
      expect(JSON.parse(b.body)).toMatchObject({ code: 'EXPECTATION_FAILED', error: expect.stringContaining('bogus') });
    } finally {
      await gw.close();
    }
  });

  it('lets a request in progress finish when it closes', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    class Slow extends FakeSupervisor {
      entered = false;
      override async write(op: KvOperation, node?: string) {
        this.entered = true;
        await gate;
        return super.write(op, node);
      }
    }
    const sup = new Slow();
    const gw = new Gateway(sup as unknown as Supervisor);
    const base = (await gw.listen(0, '127.0.0.1')).replace(/\/$/, '');
    const answer = raw(base, 'PUT', '/kv/late', 'v');
    for (let i = 0; i < 1000 && !sup.entered; i++) await new Promise((r) => setTimeout(r, 5)); // the request reached the handler
    expect(sup.entered).toBe(true);
    const closing = gw.close(10_000);
    release();
    const a = await answer;
    await closing;
    expect(a.status).toBe(200);
    expect(a.headers.connection).toBe('close');
  });
});

describe('Gateway timeouts (fake supervisor)', () => {
  const sup = new FakeSupervisor();
  const gw = new Gateway(sup as unknown as Supervisor, { requestTimeoutMs: 1000, headersTimeoutMs: 1000 });
  let base = '';

  beforeAll(async () => {
    base = (await gw.listen(0, '127.0.0.1')).replace(/\/$/, '');
  });
  afterAll(() => gw.close());

  it('answers a stalled request body with JSON 408 instead of holding it', async () => {
    // Promises 10 bytes, sends 3, then nothing (the socket stays open).
    const a = await rawSocket(base, 'PUT /kv/stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc');
    expect(a.status).toBe(408);
    expect(JSON.parse(a.body)).toMatchObject({ code: 'REQUEST_TIMEOUT', error: expect.any(String) });
    expect(sup.calls.some((c) => c.includes('stalled'))).toBe(false);
  });

  it('answers headers that never finish with JSON 408', async () => {
    const a = await rawSocket(base, 'GET /kv/a HTTP/1.1\r\nHost: x\r\n');
    expect(a.status).toBe(408);
    expect(JSON.parse(a.body).code).toBe('REQUEST_TIMEOUT');
  });

  it('still serves a complete request', async () => {
    const a = await raw(base, 'PUT', '/kv/fine', 'ok');
    expect(a.status).toBe(200);
  });
});
