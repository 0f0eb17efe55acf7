/**
 * The gateway's other endpoints against a real 3-process cluster: bad requests, the largest
 * value the body limit allows (it commits and replication keeps going), read consistencies
 * (also on a follower), leadership transfer, isolate/heal (a minority cannot commit; stale
 * reads still answer), and membership (a failed add is rolled back, add a learner, add a
 * voter, remove members).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DemoProcess, PROTOCOLS, waitUntil } from './harness.js';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { MAX_BODY_BYTES_LIMIT, MAX_KEY_BYTES } from '../src/limits.js';

describe.each(PROTOCOLS)('demo gateway operations (%s)', (protocol) => {
  let demo: DemoProcess;
  let dataDir: string;
  let port: number;

  beforeAll(async () => {
    demo = await DemoProcess.startFresh({ protocol, nodes: 3, ports: 10, extra: ['--request-timeout-ms', '3000', '--max-body-bytes', String(MAX_BODY_BYTES_LIMIT)] });
    port = demo.port;
    dataDir = demo.dataDir;
  });

  afterAll(async () => {
    await demo?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('answers bad requests with a 4xx and a JSON reason', async () => {
    const cases: [string, string, string | undefined, number, string][] = [
      ['GET', '/nope', undefined, 404, 'NOT_FOUND'],
      ['PATCH', '/kv/a', 'x', 405, 'METHOD_NOT_ALLOWED'],
      ['GET', '/kv/a?consistency=eventual', undefined, 400, 'INVALID_CONSISTENCY'],
      ['GET', '/kv/%E0%A4%A', undefined, 400, 'BAD_ENCODING'],
      ['GET', `/kv/${'k'.repeat(1025)}`, undefined, 400, 'INVALID_KEY'],
      ['GET', '/kv/a?node=n9', undefined, 404, 'UNKNOWN_NODE'],
      ['PUT', '/kv/', 'x', 400, 'INVALID_KEY'],
      ['GET', '/kv/a/b', undefined, 404, 'NOT_FOUND'],
      ['POST', '/api/nodes/n9/restart', undefined, 404, 'UNKNOWN_NODE'],
      ['PUT', '/kv/a?node=', 'x', 400, 'INVALID_NODE'],
      ['POST', '/api/nodes/n9/kill', undefined, 404, 'UNKNOWN_NODE'],
      ['POST', '/api/nodes/n1/restart', undefined, 409, 'NODE_RUNNING'],
      ['POST', '/api/members', 'not json', 400, 'INVALID_JSON'],
      ['POST', '/api/members', '{"id":"n4","role":"king"}', 400, 'INVALID_MEMBER'],
      ['POST', '/api/members', '{"role":"voter"}', 400, 'INVALID_MEMBER'],
      ['POST', '/api/members', '{"id":"../etc","role":"voter"}', 400, 'INVALID_ID'],
      ['POST', '/api/members', '{"id":"n1","role":"voter"}', 409, 'MEMBER_EXISTS'],
      ['DELETE', '/api/members/n9', undefined, 404, 'UNKNOWN_NODE'],
      ['POST', '/api/nodes/n9/transfer-leadership', undefined, 404, 'UNKNOWN_NODE'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const a = await demo.request(method, path, body);
      expect({ method, path, status: a.status }).toEqual({ method, path, status });
      const j = a.json();
      expect(j.code).toBe(code);
      expect(typeof j.error).toBe('string');
      expect(j.error.length).toBeGreaterThan(0);
    }
    const big = await demo.request('PUT', '/kv/big', new Uint8Array(MAX_BODY_BYTES_LIMIT + 1));
    expect(big.status).toBe(413);
    expect(big.json().code).toBe('PAYLOAD_TOO_LARGE');
    expect(big.json().error).toMatch(String(MAX_BODY_BYTES_LIMIT));
    const missing = await demo.request('GET', '/kv/never-written');
    expect(missing.status).toBe(404);
    expect(missing.json().code).toBe('KEY_NOT_FOUND');
  });

  it('commits a value as large as the body limit (longest key) and keeps replicating', async () => {
    const key = 'K'.repeat(MAX_KEY_BYTES);
    const value = new Uint8Array(MAX_BODY_BYTES_LIMIT);
    for (let i = 0; i < value.length; i += 4096) value[i] = i % 251;
    const a = await waitUntil('the large PUT', async () => {
      const r = await demo.request('PUT', `/kv/${key}`, value);
      if (r.status === 503) return null;
      return r;
    }, 120_000);
    expect(a.status).toBe(200);
    // Replication is not stalled: small writes after it commit, and every replica gets both.
    await demo.put('after-large', 'ok');
    for (const n of (await demo.cluster()).nodes) {
      await waitUntil(`${n.id} to apply the large value`, async () => {
        const r = await demo.request('GET', `/kv/after-large?consistency=stale&node=${n.id}`);
        return r.status === 200;
      }, 120_000);
      const got = await fetch(`${demo.url}/kv/${key}?consistency=stale&node=${n.id}`);
      expect(got.status).toBe(200);
      const bytes = new Uint8Array(await got.arrayBuffer());
      expect(bytes.length).toBe(value.length);
      expect(Buffer.compare(Buffer.from(bytes), Buffer.from(value))).toBe(0);
    }
    // Free the space again (later tests read and write small values).
    expect((await demo.request('DELETE', `/kv/${key}`)).status).toBe(200);
  });

  it('puts, gets at every consistency, and deletes', async () => {
    const put = await demo.put('greeting', 'hello');
    expect(put.json()).toMatchObject({ key: 'greeting', created: true });
    expect((await demo.put('greeting', 'hello again')).json().created).toBe(false);
    for (const consistency of ['linearizable', 'lease', 'stale']) {
      const a = await waitUntil(`a ${consistency} read`, async () => {
        const r = await demo.request('GET', `/kv/greeting?consistency=${consistency}`);
        return r.status === 200 ? r : null;
      });
      expect(a.text).toBe('hello again');
      expect(a.headers.get('x-synod-consistency')).toBe(consistency);
    }
    const del = await demo.request('DELETE', '/kv/greeting');
    expect(del.status).toBe(200);
    expect(del.json().deleted).toBe(true);
    expect((await demo.request('GET', '/kv/greeting')).status).toBe(404);
    // Keys are any UTF-8 string; values any bytes.
    const odd = 'a key/with spaces?&ünïcødé';
    await demo.put(odd, 'odd');
    const a = await demo.request('GET', `/kv/${encodeURIComponent(odd)}`);
    expect(a.status).toBe(200);
    expect(a.text).toBe('odd');
  });

  it('serves linearizable reads on a healthy follower, and says which replica answered a write', async () => {
    // Routed by the gateway: the leader answers (retried if leadership moved meanwhile).
    const put = await waitUntil('a routed write answered by the current leader', async () => {
      const r = await demo.put('follower-read', 'v1');
      const leader = (await demo.cluster()).leader;
      return r.json().node === leader && r.json().leader === leader ? r : null;
    }, 60_000);
    expect(put.json().key).toBe('follower-read');
    const c = await demo.cluster();
    const follower = c.nodes.find((n) => n.id !== c.leader && n.alive)!.id;
    // ReadIndex from the leader: a healthy follower answers, with the latest value.
    const lin = await waitUntil('a linearizable read on a follower', async () => {
      const r = await demo.request('GET', `/kv/follower-read?node=${follower}`);
      return r.status === 200 ? r : null;
    });
    expect(lin.text).toBe('v1');
    expect(lin.headers.get('x-synod-node')).toBe(follower);
    // Lease reads are the leader's; a follower either forwards them (Raft) or refuses (Paxos).
    const lease = await demo.request('GET', `/kv/follower-read?node=${follower}&consistency=lease`);
    if (lease.status === 200) expect(lease.text).toBe('v1');
    else {
      expect(lease.status).toBe(503);
      expect(['NOT_LEADER', 'LEASE_EXPIRED']).toContain(lease.json().code);
    }
    // A write sent to a follower: `node` is the replica that answered (the follower, which
    // forwarded it), `leader` the leader it saw.
    const fw = await waitUntil('a write through a follower', async () => {
      const r = await demo.request('PUT', `/kv/follower-read?node=${follower}`, 'v2');
      if (r.status !== 200) return null;
      return r.json().leader === (await demo.cluster()).leader ? r : null;
    }, 60_000);
    expect(fw.json().node).toBe(follower);
    expect((await demo.request('GET', '/kv/follower-read')).text).toBe('v2');
  });

  it('transfers leadership to a chosen voter', async () => {
    const c = await demo.cluster();
    const target = c.nodes.find((n) => n.id !== c.leader)!.id;
    const a = await demo.request('POST', `/api/nodes/${target}/transfer-leadership`);
    expect(a.status).toBe(200);
    expect(a.json().leader).toBe(target);
    expect((await demo.cluster()).leader).toBe(target);
    await demo.put('after-transfer', '1');
  });

  it('isolates a node: writes to it fail clearly, the majority keeps going, stale reads from it answer', async () => {
    await demo.put('iso', 'before');
    const c = await demo.cluster();
    const victim = c.nodes.find((n) => n.id !== c.leader)!.id;
    // Let the victim apply 'iso' before the cut.
    await waitUntil(`${victim} to apply`, async () => {
      const r = await demo.request('GET', `/kv/iso?consistency=stale&node=${victim}`);
      return r.status === 200 && r.text === 'before';
    });
    const iso = await demo.request('POST', `/api/nodes/${victim}/isolate`);
    expect(iso.status).toBe(200);
    expect(iso.json().isolated).toBe(true);

    const w = await demo.request('PUT', `/kv/iso?node=${victim}`, 'from-minority');
    expect(w.status).toBe(503);
    const err = w.json();
    expect(err.isolated).toBe(true);
    expect(err.error).toMatch(/isolated/);
    expect(err.error).toMatch(/minority/);

    // The majority keeps accepting writes.
    await demo.put('iso', 'after');
    for (let i = 0; i < 5; i++) await demo.put(`majority-${i}`, String(i));

    // A stale read from the isolated node answers (with what it had).
    const stale = await demo.request('GET', `/kv/iso?consistency=stale&node=${victim}`);
    expect(stale.status).toBe(200);
    expect(stale.text).toBe('before');
    // A linearizable read there cannot be served.
    const lin = await demo.request('GET', `/kv/iso?node=${victim}`);
    expect(lin.status).toBe(503);

    const heal = await demo.request('POST', `/api/nodes/${victim}/heal`);
    expect(heal.status).toBe(200);
    expect(heal.json().isolated).toBe(false);
    await waitUntil(`${victim} to catch up after heal`, async () => {
      const r = await demo.request('GET', `/kv/iso?consistency=stale&node=${victim}`);
      return r.status === 200 && r.text === 'after';
    }, 60_000);
    // The write sent to the minority never took effect.
    expect((await demo.request('GET', '/kv/iso')).text).toBe('after');
  });

  it('rolls back a member whose process cannot start (its port is taken)', async () => {
    // n4 would get port slot 3: take its port first.
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(port + 4, '127.0.0.1', () => r()));
    try {
      const a = await demo.request('POST', '/api/members', JSON.stringify({ id: 'n4', role: 'voter' }));
      expect(a.status).toBe(503);
      expect(a.json().code).toBe('START_FAILED');
      expect(a.json().error).toMatch(/EADDRINUSE|address already in use/);
      expect(a.json().error).toMatch(/n4 was not added/);
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
    const file = JSON.parse(readFileSync(join(dataDir, 'cluster.json'), 'utf8'));
    expect(file.members.map((m: { id: string }) => m.id)).toEqual(['n1', 'n2', 'n3']);
    const c = await demo.cluster();
    expect(c.nodes.map((n) => n.id)).toEqual(['n1', 'n2', 'n3']);
    expect([...c.voters, ...c.learners]).not.toContain('n4');
    expect(existsSync(join(dataDir, 'n4.sqlite'))).toBe(false);
  });

  it('adds a learner and a voter, and removes a member', async () => {
    await demo.put('membership', 'm');
    const learner = await demo.request('POST', '/api/members', JSON.stringify({ id: 'n4', role: 'learner' }));
    expect(learner.status).toBe(200);
    expect(learner.json().learners).toContain('n4');
    let c = await demo.cluster();
    expect(c.nodes.map((n) => n.id)).toContain('n4');
    expect(c.learners).toContain('n4');
    expect(c.voters).not.toContain('n4');
    // The learner receives the log.
    await waitUntil('n4 to apply the data', async () => {
      const r = await demo.request('GET', '/kv/membership?consistency=stale&node=n4');
      return r.status === 200 && r.text === 'm';
    }, 60_000);

    const voter = await demo.request('POST', '/api/members', JSON.stringify({ id: 'n5', role: 'voter' }));
    expect(voter.status).toBe(200);
    expect(voter.json().voters).toContain('n5');
    c = await demo.cluster();
    expect(c.voters).toEqual(expect.arrayContaining(['n1', 'n2', 'n3', 'n5']));
    await demo.put('with-five', '5');
    await waitUntil('n5 to apply', async () => {
      const r = await demo.request('GET', '/kv/with-five?consistency=stale&node=n5');
      return r.status === 200 && r.text === '5';
    }, 60_000);

    // The member list is persisted for the next run.
    const file = JSON.parse(readFileSync(join(dataDir, 'cluster.json'), 'utf8'));
    expect(file.members.map((m: { id: string }) => m.id)).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);

    const removed = await demo.request('DELETE', '/api/members/n4');
    expect(removed.status).toBe(200);
    expect(removed.json().learners).not.toContain('n4');
    c = await demo.cluster();
    expect(c.nodes.map((n) => n.id)).not.toContain('n4');
    expect(c.learners).not.toContain('n4');
    expect(existsSync(join(dataDir, 'n4.sqlite'))).toBe(false);
    expect(existsSync(join(dataDir, 'logs', 'n4.log'))).toBe(false);
    const again = JSON.parse(readFileSync(join(dataDir, 'cluster.json'), 'utf8'));
    expect(again.members.map((m: { id: string }) => m.id)).toEqual(['n1', 'n2', 'n3', 'n5']);

    // Removing a voter shrinks the quorum; writes keep committing.
    const rv = await demo.request('DELETE', '/api/members/n5');
    expect(rv.status).toBe(200);
    expect(rv.json().voters).not.toContain('n5');
    await demo.put('after-removal', 'ok');
  });
});
