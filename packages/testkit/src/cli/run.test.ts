/**
 * The `synod-sim` command, run in-process: exit codes, the summary, negative-control verdicts
 * and the failure files (JSON with the options, HTML timeline with the violation marked).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { simulate } from '../simulator.js';
import { plural, runSim, USAGE } from './run.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function sim(...argv: string[]): Promise<{ code: number; out: string; err: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'synod-sim-test-'));
  dirs.push(dir);
  let out = '';
  let err = '';
  const code = await runSim([...argv, '--quiet', '--out', dir], {
    out: (t) => (out += t),
    err: (t) => (err += t),
    scriptPath: join(process.cwd(), 'dist/cli/sim.js'),
  });
  return { code, out, err, dir };
}

const lanes = (html: string) => [...html.matchAll(/class="lane" data-client="(\d+)">([^<]*)</g)].map((m) => m[2]);

describe('synod-sim', { timeout: 120_000 }, () => {
  it('passing seeds: exit 0 and a summary with singulars where a count is 1', async () => {
    const r = await sim('--seeds', '1', '--seed', '3', '--ops', '40', '--no-nemesis');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^raft: 1 seed \(from 3\), 1 passed, 0 failed in [\d.]+ s \([\d.]+ seeds\/s, 1 worker, slowest seed [\d.]+ s\)$/m);
    expect(r.out).toMatch(/^ {2}5 nodes, 43 client operations checked for linearizability, [\d,]+ events, [\d,]+ invariant checks, \d+ s of virtual time$/m);
    expect(r.out).toContain('nemesis: 0 crashes, 0 partitions/link cuts, 0 message-fault bursts, 0 clock skews, 0 transfers, 0 membership changes; 1 leadership\n');
    expect(readdirSync(r.dir)).toEqual([]);
  });

  it('plural()', () => {
    expect(plural(1, 'seed')).toBe('1 seed');
    expect(plural(0, 'seed')).toBe('0 seeds');
    expect(plural(1, 'crash', 'crashes')).toBe('1 crash');
    expect(plural(2, 'crash', 'crashes')).toBe('2 crashes');
    expect(plural(1234, 'transfer')).toBe('1,234 transfers');
  });

  it('--bug forget-vote: caught, exit 0; the JSON holds the options, the HTML marks the violation', async () => {
    const r = await sim('--bug', 'forget-vote');
    expect(r.code).toBe(0);
    expect(r.out).toContain('FAIL raft seed 5: invariant vote-durability broken at');
    expect(r.out).toContain('\nnegative control forget-vote caught at seed 5 by vote-durability (as expected)\n');
    expect(r.out).toContain('raft: 5 seeds (from 1), 4 passed, 1 failed');

    const json = JSON.parse(readFileSync(join(r.dir, 'raft-seed-5.json'), 'utf8')) as Record<string, unknown>;
    for (const key of ['protocol', 'seed', 'options', 'replay', 'violation', 'linearizability', 'stats', 'nemesis', 'history']) expect(json).toHaveProperty(key);
    expect(json.seed).toBe(5);
    expect(json.replay).toMatch(/--seed 5 .*--bug forget-vote$/);
    const options = json.options as Record<string, unknown>;
    expect(options).toMatchObject({ seed: 5, protocol: 'raft', nodes: 5, ops: 200, clients: 5, keys: 3, reads: 'linearizable', bugs: { forgetVote: true, staleReads: false } });
    expect(options.nemesis).toMatchObject({ partitions: true, crashes: true, electionStorms: false });
    expect(options.raftOptions).toMatchObject({ electionTicks: 10, heartbeatTicks: 1 });
    // The options in the file replay the failure.
    const again = await simulate(options as unknown as Parameters<typeof simulate>[0]);
    expect(again.violation).toEqual(json.violation);

    const v = json.violation as { invariant: string; time: number; node: string };
    const html = readFileSync(join(r.dir, 'raft-seed-5.html'), 'utf8');
    expect(html).toContain(`<g id="violation" class="violation" data-time="${v.time}" data-node="${v.node}"`);
    expect(html).toContain(`${v.time} ms: vote-durability (${v.node})`);
    expect(html).toContain("getElementById('violation')");
    expect(html).toMatch(new RegExp(`class="[^"]*\\bnode\\b[^"]*" data-op="`)); // operations through the node
    expect(lanes(html)).toEqual(['client 0', 'client 1', 'client 2', 'client 3', 'client 4']);
  });

  it('--bug stale-reads: caught, exit 0; the HTML marks the operation that cannot be linearized, one lane per client', async () => {
    const r = await sim('--bug', 'stale-reads', '--seeds', '40', '--clients', '4');
    expect(r.code).toBe(0);
    const caught = /negative control stale-reads caught at seed (\d+) by the linearizability checker \(as expected\)/.exec(r.out);
    expect(caught).not.toBeNull();
    const seed = Number(caught![1]);
    const result = await simulate({ seed, clients: 4, bugs: { staleReads: true } });
    const lf = result.linearizabilityFailure!;
    expect(lf).toBeDefined();
    const first = lf.candidates.reduce((a, b) => (b.callTime < a.callTime ? b : a));
    const html = readFileSync(join(r.dir, `raft-seed-${seed}.html`), 'utf8');
    expect(html).toContain(`<g id="violation" class="violation" data-time="${first.callTime}"`);
    expect(html).toContain('not linearizable: ');
    // One lane per client of the checked key (c0..c3), plus the simulator's final reads, no empty one.
    const drawn = new Set(lf.operations.map((o) => o.client));
    expect(lanes(html)).toEqual([...[0, 1, 2, 3].filter((c) => drawn.has(c)).map((c) => `client ${c}`), ...(drawn.has(4) ? ['final reads'] : [])]);
    expect(lanes(html)).not.toContain('client 4');
    expect(lanes(html).length).toBe(drawn.size);
    for (const c of lf.candidates) expect(html).toMatch(new RegExp(`class="[^"]*\\bhl\\b[^"]*" data-op="${c.id}"`));
  });

  it('--bug not caught within the seeds: says so, exit 1', async () => {
    const r = await sim('--bug', 'forget-vote', '--no-nemesis', '--seeds', '2', '--ops', '40');
    expect(r.code).toBe(1);
    expect(r.out).toContain('raft: 2 seeds (from 1), 2 passed, 0 failed');
    expect(r.out).toContain('negative control forget-vote NOT caught in seeds 1–2');
    expect(r.out).not.toContain('as expected');
  });

  it('bad arguments: exit 2 with the usage; --help documents --bug and the exit codes', async () => {
    const r = await sim('--seeds', '0');
    expect(r.code).toBe(2);
    expect(r.err).toContain('--seeds must be an integer >= 1, got 0');
    const p = await sim('--protocol', 'nope');
    expect(p.code).toBe(2);
    expect(p.err).toContain('--protocol must be raft or paxos, got nope');
    const u = await sim('--frobnicate');
    expect(u.code).toBe(2);
    expect(u.err).toContain(USAGE);
    const h = await sim('--help');
    expect(h.code).toBe(0);
    expect(h.out).toBe(USAGE);
    expect(USAGE).toContain('caught at seed S (as');
    expect(USAGE).toMatch(/exit 1 when every seed passes/);
  });
});
