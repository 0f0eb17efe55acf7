/**
 * The gateway alone, against a fake supervisor (no processes): routing, input validation,
 * body limits and the error shape.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayError } from './errors.js';
import { Gateway } from './gateway.js';
import type { KvOperation } from './ipc.js';
import type { ClusterView, Supervisor } from './supervisor.js';

class FakeSupervisor {
  readonly options = { maxBodyBytes: 100 };
  readonly store = new Map<string, Uint8Array>();
  readonly calls: string[] = [];
  leader: string | null = 'n1';

  async write(op: KvOperation, node?: string) {
    this.calls.push(`write ${op.type} ${op.key} ${node ?? ''}`.trim());
    if (!this.leader) throw new GatewayError(503, 'NO_LEADER', 'no leader is known');
    const existed = this.store.has(op.key);
    if (op.type === 'put') this.store.set(op.key, op.value.slice());
    else this.store.delete(op.key);
    return { index: 7, existed, node: node ?? this.leader };
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
    expect(put.json()).toEqual({ key: 'a b', index: 7, created: true, node: 'n1' });
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
      ['GET', '/kv/', undefined, 404, 'NOT_FOUND'],
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

  it('accepts a body exactly at the limit', async () => {
    expect((await call('PUT', '/kv/edge', 'x'.repeat(100))).status).toBe(200);
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
