/**
 * A replica whose SQLite file is lost while it is down (truncated to 0 bytes, or deleted) must
 * not come back empty: it would vote with no memory of its term, vote and log, and a committed
 * write could be lost. The restart is refused (409 DATA_MISSING), the node stays down, the
 * others keep serving; the operator replaces the member (remove, add back as a new voter) and
 * no committed write is lost. A new run of the demo on that data dir starts without it.
 */
import { rmSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DemoProcess, PROTOCOLS, waitUntil } from './harness.js';

const OPTS = ['--request-timeout-ms', '3000'];

describe.each(PROTOCOLS)('a replica whose data is lost (%s)', (protocol) => {
  let demo: DemoProcess;
  let port: number;
  let dataDir: string;

  beforeAll(async () => {
    demo = await DemoProcess.startFresh({ protocol, nodes: 3, ports: 8, extra: OPTS });
    port = demo.port;
    dataDir = demo.dataDir;
  });

  afterAll(async () => {
    await demo?.kill();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const everyNodeHas = async (key: string, value: string) => {
    for (const n of (await demo.cluster()).nodes.filter((x) => x.alive)) {
      await waitUntil(`${n.id} to apply ${key}`, async () => {
        const r = await demo.request('GET', `/kv/${key}?consistency=stale&node=${n.id}`);
        return r.status === 200 && r.text === value;
      }, 60_000);
    }
  };

  const linearizableGet = (key: string) =>
    waitUntil(`GET ${key}`, async () => {
      const r = await demo.request('GET', `/kv/${key}`);
      return r.status === 503 ? null : r;
    }, 60_000);

  it('refuses to restart a replica whose SQLite file was truncated or deleted, and keeps it down', async () => {
    await demo.put('precious', 'committed');
    await everyNodeHas('precious', 'committed');
    expect((await demo.request('POST', '/api/nodes/n2/kill')).status).toBe(200);

    truncateSync(join(dataDir, 'n2.sqlite'), 0);
    const refused = await demo.request('POST', '/api/nodes/n2/restart');
    expect(refused.status).toBe(409);
    expect(refused.json()).toMatchObject({ code: 'DATA_MISSING', node: 'n2', reason: 'missing' });
    expect(refused.json().error).toMatch(/0 bytes/);
    expect(refused.json().error).toMatch(/DELETE \/api\/members\/n2/);
    let c = await demo.cluster();
    expect(c.nodes.find((n) => n.id === 'n2')!.alive).toBe(false);

    // The others keep going, and the committed write is there.
    await demo.put('while-n2-is-down', 'yes');
    const a = await linearizableGet('precious');
    expect(a.status).toBe(200);
    expect(a.text).toBe('committed');

    rmSync(join(dataDir, 'n2.sqlite'), { force: true });
    rmSync(join(dataDir, 'n2.sqlite-wal'), { force: true });
    const again = await demo.request('POST', '/api/nodes/n2/restart');
    expect(again.status).toBe(409);
    expect(again.json().code).toBe('DATA_MISSING');
    expect(again.json().error).toMatch(/does not exist/);
    c = await demo.cluster();
    expect(c.nodes.find((n) => n.id === 'n2')!.alive).toBe(false);
  });

  it('recovers by replacing the member: remove it, add it back as a new voter that catches up', async () => {
    const removed = await demo.request('DELETE', '/api/members/n2');
    expect(removed.status).toBe(200);
    expect(removed.json().voters).not.toContain('n2');
    const added = await demo.request('POST', '/api/members', JSON.stringify({ id: 'n2', role: 'voter' }));
    expect(added.status).toBe(200);
    expect(added.json().voters).toContain('n2');
    await demo.put('after-replace', 'ok');
    await everyNodeHas('precious', 'committed');
    await everyNodeHas('while-n2-is-down', 'yes');
    const c = await demo.cluster();
    expect(c.nodes.find((n) => n.id === 'n2')!.alive).toBe(true);
    expect(c.voters).toEqual(expect.arrayContaining(['n1', 'n2', 'n3']));
  });

  it('a new run on the data dir leaves a member with a lost file down and runs with the others', async () => {
    expect(await demo.stop('SIGTERM')).toBe(0);
    truncateSync(join(dataDir, 'n3.sqlite'), 0);
    demo = await DemoProcess.start({ protocol, nodes: 3, port, dataDir, extra: OPTS });
    expect(demo.output.join('')).toMatch(/n3 stays down: .*0 bytes/);
    const c = await demo.cluster();
    expect(c.nodes.find((n) => n.id === 'n3')!.alive).toBe(false);
    expect(c.nodes.filter((n) => n.alive).map((n) => n.id).sort()).toEqual(['n1', 'n2']);
    const a = await linearizableGet('precious');
    expect(a.status).toBe(200);
    expect(a.text).toBe('committed');
    await demo.put('with-two', 'ok');
  });
});
