/**
 * The gateway's other endpoints against a real 3-process cluster: bad requests, read
 * consistencies, leadership transfer, isolate/heal (a minority cannot commit; stale reads
 * still answer), and membership (add a learner, add a voter, remove a member).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DemoProcess, freePortBlock, PROTOCOLS, tempDataDir, waitUntil } from './harness.js';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

describe.each(PROTOCOLS)('demo gateway operations (%s)', (protocol) => {
  let demo: DemoProcess;
  let dataDir: string;

  beforeAll(async () => {
    const port = await freePortBlock(10);
    dataDir = tempDataDir();
    demo = await DemoProcess.start({ protocol, nodes: 3, port, dataDir, extra: ['--request-timeout-ms', '3000', '--max-body-bytes', '65536'] });
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
    const big = await demo.request('PUT', '/kv/big', 'x'.repeat(65537));
    expect(big.status).toBe(413);
    expect(big.json().code).toBe('PAYLOAD_TOO_LARGE');
    const missing = await demo.request('GET', '/kv/never-written');
    expect(missing.status).toBe(404);
    expect(missing.json().code).toBe('KEY_NOT_FOUND');
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
    const again = JSON.parse(readFileSync(join(dataDir, 'cluster.json'), 'utf8'));
    expect(again.members.map((m: { id: string }) => m.id)).toEqual(['n1', 'n2', 'n3', 'n5']);

    // Removing a voter shrinks the quorum; writes keep committing.
    const rv = await demo.request('DELETE', '/api/members/n5');
    expect(rv.status).toBe(200);
    expect(rv.json().voters).not.toContain('n5');
    await demo.put('after-removal', 'ok');
  });
});
