/**
 * End to end, as a person would run it: `node dist/cli.js --nodes 3` as a real process tree
 * (with a low snapshot threshold, so snapshots, log compaction and snapshot restore are in play),
 * 200 writes through the gateway, SIGKILL the leader, a new leader, every key read back, the
 * old leader restarted and caught up; then stop the demo (no orphans), start it again on the
 * same data dir (the data is still there), and kill 2 of 3 (503, no leader).
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DemoProcess, pidAlive, PROTOCOLS, waitUntil } from './harness.js';

const KEYS = 200;
const value = (i: number) => `value-${i}-${'x'.repeat(i % 17)}`;

describe.each(PROTOCOLS)('demo end to end (%s)', (protocol) => {
  let demo: DemoProcess;
  let port: number;
  let dataDir: string;
  let firstLeader: string;

  beforeAll(async () => {
    demo = await DemoProcess.startFresh({ protocol, nodes: 3, ports: 8, extra: ['--request-timeout-ms', '2500', '--snapshot-entries', '64'] });
    port = demo.port;
    dataDir = demo.dataDir;
  });

  afterAll(async () => {
    await demo?.kill();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('reports the cluster with every field the contract names', async () => {
    const c = await demo.cluster();
    expect(c.protocol).toBe(protocol);
    expect(c.nodes.map((n) => n.id)).toEqual(['n1', 'n2', 'n3']);
    for (const n of c.nodes) {
      expect(n.alive).toBe(true);
      for (const f of ['role', 'term', 'leader', 'commitIndex', 'appliedIndex', 'lastIndex']) expect(n).toHaveProperty(f);
      expect(n.port).toBeGreaterThan(port);
    }
    expect(c.nodes.filter((n) => n.role === 'leader').map((n) => n.id)).toContain(c.leader);
    const page = await demo.request('GET', '/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    for (const id of ['n1', 'n2', 'n3']) expect(page.text).toContain(id);
  });

  it('writes 200 keys, survives a SIGKILLed leader, and reads them all back', async () => {
    for (let i = 0; i < KEYS; i++) {
      const a = await demo.put(`key-${i}`, value(i));
      expect(a.json().key).toBe(`key-${i}`);
    }
    const before = await demo.cluster();
    firstLeader = before.leader!;
    expect(firstLeader).toBeTruthy();

    const killed = await demo.request('POST', `/api/nodes/${firstLeader}/kill`);
    expect(killed.status).toBe(200);
    expect(killed.json().alive).toBe(false);

    const newLeader = await demo.waitForLeader(firstLeader, 60_000);
    expect(newLeader).not.toBe(firstLeader);
    const c = await demo.cluster();
    expect(c.nodes.find((n) => n.id === firstLeader)!.alive).toBe(false);

    for (let i = 0; i < KEYS; i++) {
      const a = await waitUntil(`GET key-${i}`, async () => {
        const r = await demo.request('GET', `/kv/key-${i}`);
        return r.status === 503 ? null : r;
      });
      expect(a.status).toBe(200);
      expect(a.text).toBe(value(i));
    }
    // A write after the failover commits too.
    await demo.put('after-failover', 'yes');
  });

  it('restarts the old leader, which catches up with the leader', async () => {
    const r = await demo.request('POST', `/api/nodes/${firstLeader}/restart`);
    expect(r.status).toBe(200);
    expect(r.json().alive).toBe(true);
    await waitUntil(`${firstLeader} to catch up`, async () => {
      const c = await demo.cluster();
      const leader = c.nodes.find((n) => n.id === c.leader);
      const old = c.nodes.find((n) => n.id === firstLeader)!;
      return leader && old.alive && old.appliedIndex !== null && old.appliedIndex >= leader.appliedIndex! && old.appliedIndex > KEYS;
    }, 60_000);
    // Its own state machine has every key (a stale read answers from that replica alone).
    // With --snapshot-entries 64 the replicas have compacted their logs by now.
    const c = await demo.cluster();
    expect(Math.max(...c.nodes.map((n) => n.snapshotIndex ?? 0))).toBeGreaterThan(0);
    const a = await demo.request('GET', `/kv/key-${KEYS - 1}?consistency=stale&node=${firstLeader}`);
    expect(a.status).toBe(200);
    expect(a.text).toBe(value(KEYS - 1));
    expect(a.headers.get('x-synod-node')).toBe(firstLeader);
  });

  it('loses no acknowledged write when the leader is SIGKILLed under concurrent load', async () => {
    const acked = new Map<string, string>();
    let next = 0;
    const total = 120;
    const writer = async () => {
      while (next < total) {
        const i = next++;
        const key = `load-${i}`;
        await demo.put(key, `v${i}`); // retries 503s until it commits
        acked.set(key, `v${i}`);
      }
    };
    const writers = Array.from({ length: 4 }, writer);
    await waitUntil('some writes to be acknowledged', async () => acked.size >= 30, 60_000);
    const leader = (await demo.cluster()).leader!;
    expect((await demo.request('POST', `/api/nodes/${leader}/kill`)).status).toBe(200);
    await Promise.all(writers);
    expect(acked.size).toBe(total);
    for (const [key, v] of acked) {
      const a = await waitUntil(`GET ${key}`, async () => {
        const r = await demo.request('GET', `/kv/${key}`);
        return r.status === 503 ? null : r;
      });
      expect(a.status).toBe(200);
      expect(a.text).toBe(v);
    }
    expect((await demo.request('POST', `/api/nodes/${leader}/restart`)).status).toBe(200);
    await waitUntil(`${leader} to catch up`, async () => {
      const c = await demo.cluster();
      const l = c.nodes.find((n) => n.id === c.leader);
      const old = c.nodes.find((n) => n.id === leader)!;
      return l && old.alive && old.appliedIndex! >= l.appliedIndex!;
    }, 60_000);
  });

  it('stops every replica on SIGTERM and keeps the data for the next run', async () => {
    const pids = (await demo.cluster()).nodes.map((n) => n.pid!).filter(Boolean);
    expect(pids).toHaveLength(3);
    const code = await demo.stop('SIGTERM');
    expect(code).toBe(0);
    await waitUntil('every replica to exit', async () => pids.every((p) => !pidAlive(p)), 15_000);

    demo = await DemoProcess.start({ protocol, nodes: 3, port, dataDir, extra: ['--request-timeout-ms', '2500', '--snapshot-entries', '64'] });
    const c = await demo.cluster();
    expect(c.nodes.map((n) => n.id)).toEqual(['n1', 'n2', 'n3']);
    for (const i of [0, 99, KEYS - 1]) {
      const a = await waitUntil(`GET key-${i} after restart`, async () => {
        const r = await demo.request('GET', `/kv/key-${i}`);
        return r.status === 503 ? null : r;
      });
      expect(a.status).toBe(200);
      expect(a.text).toBe(value(i));
    }
    const after = await demo.request('GET', '/kv/after-failover');
    expect(after.text).toBe('yes');
  });

  it('answers 503 while no leader can exist (2 of 3 killed)', async () => {
    const c = await demo.cluster();
    const leader = c.leader!;
    const other = c.nodes.find((n) => n.id !== leader)!.id;
    for (const id of [leader, other]) expect((await demo.request('POST', `/api/nodes/${id}/kill`)).status).toBe(200);
    const put = await demo.request('PUT', '/kv/nobody-home', 'x');
    expect(put.status).toBe(503);
    expect(put.json()).toMatchObject({ code: expect.any(String), error: expect.any(String) });
    const get = await demo.request('GET', '/kv/key-1');
    expect(get.status).toBe(503);
    // Killing a dead node is a 409 with a reason.
    const again = await demo.request('POST', `/api/nodes/${leader}/kill`);
    expect(again.status).toBe(409);
    expect(again.json().code).toBe('NODE_DOWN');
    // One restart brings back a majority.
    expect((await demo.request('POST', `/api/nodes/${other}/restart`)).status).toBe(200);
    await demo.waitForLeader(undefined, 60_000);
    await demo.put('back', 'again');
  });

  it('leaves no replica behind when the supervisor itself is SIGKILLed', async () => {
    const pids = (await demo.cluster()).nodes.filter((n) => n.alive).map((n) => n.pid!);
    expect(pids.length).toBeGreaterThan(0);
    expect(pids.every(pidAlive)).toBe(true);
    await demo.kill();
    await waitUntil('the orphaned replicas to exit', async () => pids.every((p) => !pidAlive(p)), 15_000);
  });
});
