/**
 * `synod-sim`: runs many seeded cluster simulations and checks each for invariants and
 * linearizability. On a violation it prints the seed, what broke and the command that replays
 * it, and writes the history (JSON) and an HTML timeline.
 *
 *   node packages/testkit/dist/cli/sim.js --protocol raft --seeds 200
 *   node packages/testkit/dist/cli/sim.js --protocol paxos --seed 1234        # replay one seed
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import cliProgress from 'cli-progress';
import { describeKvOperation, historyToJson, renderTimeline, type SimulationOptions, type SimulationResult, simulate } from '../index.js';

const USAGE = `usage: synod-sim [options]

  --protocol raft|paxos   protocol to simulate (default raft)
  --seeds N               number of seeds to run (default 100; with --seed, 1)
  --seed S                first seed (default 1); alone, replays exactly that seed
  --nodes N               initial voters (default 5)
  --ops N                 client operations per run (default 200)
  --clients N             concurrent clients (default 5)
  --keys N                keys the clients use (default 3)
  --reads MODE            linearizable (default) | lease | mixed: consistency of client reads
  --serialize             round-trip every message through the protocol's codec
  --no-nemesis            run without faults
  --election-storms       add election storms to the nemesis (bounce the leader, then voters)
  --no-duplicates         message-fault bursts do not duplicate messages
  --workers N             parallel worker threads (default 1; 0 = one per CPU)
  --keep-going            do not stop at the first failing seed
  --out DIR               where failure files go (default ./sim-failures)
  --bug NAME              negative control: forget-vote | stale-reads (must be caught)
  --no-durable-checks     do not check that persisted term/vote/promise never go back
                          (to measure how soon a durability bug shows in its consequences)
  --quiet                 no progress bar
  -h, --help              this help
`;

interface RunSpec {
  readonly seeds: number[];
  readonly options: Omit<SimulationOptions, 'seed'>;
}

interface SeedReport {
  readonly seed: number;
  readonly ok: boolean;
  readonly ms: number;
  readonly stats: SimulationResult['stats'];
  /** Only for failures. */
  readonly result?: SimulationResult;
}

async function runSeeds(spec: RunSpec, emit: (r: SeedReport) => void): Promise<void> {
  for (const seed of spec.seeds) {
    const t = performance.now();
    const result = await simulate({ ...spec.options, seed });
    const report: SeedReport = { seed, ok: result.ok, ms: performance.now() - t, stats: result.stats, ...(result.ok ? {} : { result }) };
    emit(report);
  }
}

// Worker thread: run the seeds it was given and post one report per seed.
if (!isMainThread && parentPort && (workerData as { synodSim?: boolean } | null)?.synodSim) {
  const port = parentPort;
  const spec = (workerData as { spec: RunSpec }).spec;
  await runSeeds(spec, (r) => port.postMessage(r));
} else if (isMainThread) {
  await main();
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: {
        protocol: { type: 'string', default: 'raft' },
        seeds: { type: 'string' },
        seed: { type: 'string' },
        nodes: { type: 'string', default: '5' },
        ops: { type: 'string', default: '200' },
        clients: { type: 'string', default: '5' },
        keys: { type: 'string', default: '3' },
        reads: { type: 'string', default: 'linearizable' },
        'no-nemesis': { type: 'boolean', default: false },
        serialize: { type: 'boolean', default: false },
        'election-storms': { type: 'boolean', default: false },
        'no-duplicates': { type: 'boolean', default: false },
        workers: { type: 'string', default: '1' },
        'keep-going': { type: 'boolean', default: false },
        out: { type: 'string', default: 'sim-failures' },
        bug: { type: 'string' },
        'no-durable-checks': { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return;
  }
  const int = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) {
      process.stderr.write(`--${name} must be an integer >= ${min}, got ${v}\n`);
      process.exit(2);
    }
    return n;
  };
  const protocol = args.protocol;
  if (protocol !== 'raft' && protocol !== 'paxos') {
    process.stderr.write(`--protocol must be raft or paxos, got ${protocol}\n`);
    process.exit(2);
  }
  const bug = args.bug;
  if (bug !== undefined && bug !== 'forget-vote' && bug !== 'stale-reads') {
    process.stderr.write(`--bug must be forget-vote or stale-reads, got ${bug}\n`);
    process.exit(2);
  }
  const reads = args.reads;
  if (reads !== 'linearizable' && reads !== 'lease' && reads !== 'mixed') {
    process.stderr.write(`--reads must be linearizable, lease or mixed, got ${reads}\n`);
    process.exit(2);
  }
  const first = args.seed !== undefined ? int('seed', args.seed, 0) : 1;
  const count = args.seeds !== undefined ? int('seeds', args.seeds, 1) : args.seed !== undefined ? 1 : 100;
  const options: Omit<SimulationOptions, 'seed'> = {
    protocol,
    nodes: int('nodes', args.nodes, 1),
    ops: int('ops', args.ops, 1),
    clients: int('clients', args.clients, 1),
    keys: int('keys', args.keys, 1),
    reads,
    ...(args.serialize ? { serialize: true } : {}),
    ...(args['no-nemesis']
      ? { nemesis: false as const }
      : args['election-storms'] || args['no-duplicates']
        ? { nemesis: { ...(args['election-storms'] ? { electionStorms: true } : {}), ...(args['no-duplicates'] ? { duplicates: false } : {}) } }
        : {}),
    ...(args['no-durable-checks'] ? { durableStateChecks: false } : {}),
    ...(bug ? { bugs: bug === 'forget-vote' ? { forgetVote: true } : { staleReads: true } } : {}),
  };
  let workers = int('workers', args.workers, 0);
  if (workers === 0) workers = availableParallelism();
  workers = Math.min(workers, count);
  const seeds = Array.from({ length: count }, (_, i) => (first + i) >>> 0);

  const replayCmd = (seed: number) => {
    const script = relative(process.cwd(), fileURLToPath(import.meta.url)) || fileURLToPath(import.meta.url);
    return [
      'node',
      script,
      `--protocol ${protocol}`,
      `--seed ${seed}`,
      `--nodes ${options.nodes}`,
      `--ops ${options.ops}`,
      `--clients ${options.clients}`,
      `--keys ${options.keys}`,
      ...(reads !== 'linearizable' ? [`--reads ${reads}`] : []),
      ...(args.serialize ? ['--serialize'] : []),
      ...(args['no-nemesis'] ? ['--no-nemesis'] : []),
      ...(args['election-storms'] ? ['--election-storms'] : []),
      ...(args['no-duplicates'] ? ['--no-duplicates'] : []),
      ...(args['no-durable-checks'] ? ['--no-durable-checks'] : []),
      ...(bug ? [`--bug ${bug}`] : []),
    ].join(' ');
  };

  const bar = args.quiet
    ? null
    : new cliProgress.SingleBar(
        {
          format: `${protocol} |{bar}| {value}/{total} seeds | {failed} failed | {rate} seeds/s | eta {eta_formatted}`,
          stream: process.stderr,
          noTTYOutput: !process.stderr.isTTY,
          notTTYSchedule: 10_000,
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      );
  const started = performance.now();
  bar?.start(count, 0, { failed: 0, rate: '0.0' });

  const totals = { seeds: 0, passed: 0, failed: 0, ops: 0, events: 0, checks: 0, virtualMs: 0, crashes: 0, partitions: 0, membership: 0, skews: 0, faults: 0, transfers: 0, leaderships: 0, slowest: 0 };
  const failures: SeedReport[] = [];
  let stop: () => void = () => {};

  const onReport = (r: SeedReport) => {
    totals.seeds++;
    if (r.ok) totals.passed++;
    else {
      totals.failed++;
      failures.push(r);
      if (!args['keep-going']) stop();
    }
    const s = r.stats;
    totals.ops += s.opsOk + s.opsFailed + s.opsUnknown;
    totals.events += s.events;
    totals.checks += s.invariantChecks;
    totals.virtualMs += s.virtualMs;
    totals.crashes += s.crashes;
    totals.partitions += s.partitions;
    totals.membership += s.membershipChanges;
    totals.skews += s.skews;
    totals.faults += s.messageFaultBursts;
    totals.transfers += s.transfers;
    totals.leaderships += s.leaderships;
    totals.slowest = Math.max(totals.slowest, r.ms);
    const secs = (performance.now() - started) / 1000;
    bar?.update(totals.seeds, { failed: totals.failed, rate: (totals.seeds / Math.max(secs, 0.001)).toFixed(1) });
  };

  // Ctrl-C / SIGTERM: stop after the seeds in progress and print the summary of what ran.
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  if (workers <= 1) {
    let stopped = false;
    stop = () => (stopped = true);
    for (const seed of seeds) {
      if (stopped) break;
      await runSeeds({ seeds: [seed], options }, onReport);
      // A run is one long chain of microtasks: give the event loop a turn (signals, the bar).
      await new Promise<void>((r) => setImmediate(r));
    }
  } else {
    const script = fileURLToPath(import.meta.url);
    const pool: Worker[] = [];
    await new Promise<void>((done) => {
      let live = workers;
      stop = () => {
        for (const w of pool) void w.terminate();
      };
      for (let w = 0; w < workers; w++) {
        const part = seeds.filter((_, i) => i % workers === w);
        const worker = new Worker(script, { workerData: { synodSim: true, spec: { seeds: part, options } } });
        pool.push(worker);
        worker.on('message', (msg: SeedReport) => onReport(msg));
        worker.on('error', (err) => {
          process.stderr.write(`worker failed: ${err.stack ?? err.message}\n`);
          totals.failed++;
        });
        worker.on('exit', () => {
          if (--live === 0) done();
        });
      }
    });
  }
  bar?.stop();
  const secs = (performance.now() - started) / 1000;

  for (const f of failures) reportFailure(f, protocol, args.out, replayCmd(f.seed));

  const fmt = (n: number) => n.toLocaleString('en-US');
  process.stdout.write(
    [
      `${protocol}: ${fmt(totals.seeds)} seeds (from ${first}${interrupted ? `, interrupted after ${fmt(totals.seeds)} of ${fmt(count)}` : ''}), ${fmt(totals.passed)} passed, ${fmt(totals.failed)} failed in ${secs.toFixed(1)} s ` +
        `(${(totals.seeds / Math.max(secs, 0.001)).toFixed(1)} seeds/s, ${workers} worker${workers === 1 ? '' : 's'}, slowest seed ${(totals.slowest / 1000).toFixed(2)} s)`,
      `  ${options.nodes} nodes, ${fmt(totals.ops)} client operations checked for linearizability, ${fmt(totals.events)} events, ${fmt(totals.checks)} invariant checks, ${fmt(Math.round(totals.virtualMs / 1000))} s of virtual time`,
      `  nemesis: ${fmt(totals.crashes)} crashes, ${fmt(totals.partitions)} partitions/link cuts, ${fmt(totals.faults)} message-fault bursts, ${fmt(totals.skews)} clock skews, ${fmt(totals.transfers)} transfers, ${fmt(totals.membership)} membership changes; ${fmt(totals.leaderships)} leaderships`,
      '',
    ].join('\n'),
  );
  process.exitCode = totals.failed > 0 ? 1 : interrupted ? 130 : 0;
}

function reportFailure(f: SeedReport, protocol: string, outDir: string, replay: string): void {
  const r = f.result!;
  const lines: string[] = [];
  if (r.violation) {
    lines.push(`FAIL ${protocol} seed ${f.seed}: invariant ${r.violation.invariant} broken at ${r.violation.time} ms${r.violation.node ? ` (${r.violation.node})` : ''}`);
    lines.push(`  ${r.violation.message}`);
  } else {
    lines.push(`FAIL ${protocol} seed ${f.seed}: history is ${r.linearizability === 'illegal' ? 'NOT linearizable' : `not checked to the end (${r.linearizability})`}`);
    const lf = r.linearizabilityFailure;
    if (lf) {
      const key = lf.operations[0]?.input.key;
      lines.push(`  key ${key}: ${lf.operations.length} operations; longest linearizable prefix has ${lf.linearized.length}; its last ones:`);
      for (const o of lf.linearized.slice(-5)) lines.push(`    ${describeKvOperation(o)}  [${o.callTime}, ${Number.isFinite(o.returnTime) ? o.returnTime : '∞'}] ms`);
      lines.push('  none of these can come next:');
      for (const o of lf.candidates) lines.push(`    ${describeKvOperation(o)}  [${o.callTime}, ${Number.isFinite(o.returnTime) ? o.returnTime : '∞'}] ms${o.node ? ` via ${o.node}` : ''}`);
    }
  }
  lines.push(`  replay: ${replay}`);
  mkdirSync(outDir, { recursive: true });
  const base = join(outDir, `${protocol}-seed-${f.seed}`);
  writeFileSync(
    `${base}.json`,
    JSON.stringify(
      {
        protocol,
        seed: f.seed,
        replay,
        violation: r.violation ?? null,
        linearizability: r.linearizability,
        stats: r.stats,
        nemesis: r.nemesisLog,
        history: JSON.parse(historyToJson(r.history)),
      },
      null,
      1,
    ),
  );
  const lf = r.linearizabilityFailure;
  writeFileSync(
    `${base}.html`,
    renderTimeline({
      title: `${protocol} seed ${f.seed}: ${r.violation ? `invariant ${r.violation.invariant} broken` : `history ${r.linearizability === 'illegal' ? 'not linearizable' : r.linearizability}`}`,
      notes: [...lines.slice(1)],
      history: lf ? lf.operations : r.history,
      events: r.nemesisLog,
      ...(lf ? { highlight: new Set(lf.candidates.map((o) => o.id)), linearized: lf.linearized.map((o) => o.id) } : {}),
    }),
  );
  lines.push(`  wrote ${resolve(base)}.json and .html`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
