/**
 * The `synod-sim` command, callable in-process (`sim.ts` is the executable around it): parses
 * the arguments, runs the seeds (in worker threads when asked), prints the summary, reports each
 * failing seed (text, `<protocol>-seed-<S>.json`, `<protocol>-seed-<S>.html`) and returns the
 * exit code.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import cliProgress from 'cli-progress';
import {
  describeKvOperation,
  historyToJson,
  type KvOperation,
  renderTimeline,
  type SimulationOptions,
  type SimulationResult,
  simulate,
  type TimelineMarker,
} from '../index.js';

/** The text of `synod-sim --help`. */
export const USAGE = `usage: synod-sim [options]

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
  --bug NAME              negative control: forget-vote | stale-reads. The simulator must catch
                          the seeded bug: exit 0 when a seed fails ("caught at seed S (as
                          expected)"), exit 1 when every seed passes (the bug went unnoticed)
  --no-durable-checks     do not check that persisted term/vote/promise never go back
                          (to measure how soon a durability bug shows in its consequences)
  --quiet                 no progress bar
  -h, --help              this help

Exit code: 0 every seed passed (with --bug: the bug was caught), 1 a seed failed (with --bug:
the bug was not caught), 2 bad arguments, 130 interrupted.
`;

/** What one seed's run reports (posted by worker threads). */
export interface SeedReport {
  readonly seed: number;
  readonly ok: boolean;
  /** Wall-clock ms. */
  readonly ms: number;
  readonly stats: SimulationResult['stats'];
  /** Only for failures. */
  readonly result?: SimulationResult;
}

/** The seeds one thread runs and the options they share. */
export interface RunSpec {
  readonly seeds: number[];
  readonly options: Omit<SimulationOptions, 'seed'>;
}

/** Runs `spec.seeds` one after the other and emits one report per seed. */
export async function runSeeds(spec: RunSpec, emit: (r: SeedReport) => void): Promise<void> {
  for (const seed of spec.seeds) {
    const t = performance.now();
    const result = await simulate({ ...spec.options, seed });
    const report: SeedReport = { seed, ok: result.ok, ms: performance.now() - t, stats: result.stats, ...(result.ok ? {} : { result }) };
    emit(report);
  }
}

/** Where {@link runSim} writes and what it runs. */
export interface SimCliIo {
  /** Summary, failure reports, verdicts. */
  readonly out: (text: string) => void;
  /** Argument errors, worker crashes. */
  readonly err: (text: string) => void;
  /** Stream of the progress bar (none: no bar, as with `--quiet`). */
  readonly progress?: NodeJS.WriteStream;
  /** Absolute path of the executable script: shown in replay commands, run by worker threads. */
  readonly scriptPath: string;
}

/** `n` and the noun, plural unless `n` is 1: `1 seed`, `2 seeds`, `1,024 crashes`. */
export function plural(n: number, singular: string, pluralForm = `${singular}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? singular : pluralForm}`;
}

/**
 * Runs the command with `argv` (the arguments after the script name) and returns its exit code:
 * 0 every seed passed — with `--bug`, the seeded bug was caught; 1 a seed failed — with `--bug`,
 * no seed caught the bug (or a worker crashed); 2 bad arguments; 130 interrupted (SIGINT/SIGTERM
 * stop after the seeds in progress, and the summary is still printed).
 */
export async function runSim(argv: readonly string[], io: SimCliIo): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: [...argv],
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
    io.err(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    io.out(USAGE);
    return 0;
  }
  const bad = (message: string): number => {
    io.err(`${message}\n`);
    return 2;
  };
  const int = (v: string | undefined, min: number): number | null => {
    const n = Number(v);
    return Number.isSafeInteger(n) && n >= min ? n : null;
  };
  const numbers: Record<'seed' | 'seeds' | 'nodes' | 'ops' | 'clients' | 'keys' | 'workers', number> = { seed: 1, seeds: 100, nodes: 5, ops: 200, clients: 5, keys: 3, workers: 1 };
  for (const [name, min] of [['seed', 0], ['seeds', 1], ['nodes', 1], ['ops', 1], ['clients', 1], ['keys', 1], ['workers', 0]] as const) {
    const v = args[name];
    if (v === undefined) continue;
    const n = int(v, min);
    if (n === null) return bad(`--${name} must be an integer >= ${min}, got ${v}`);
    numbers[name] = n;
  }
  const protocol = args.protocol;
  if (protocol !== 'raft' && protocol !== 'paxos') return bad(`--protocol must be raft or paxos, got ${protocol}`);
  const bug = args.bug;
  if (bug !== undefined && bug !== 'forget-vote' && bug !== 'stale-reads') return bad(`--bug must be forget-vote or stale-reads, got ${bug}`);
  const reads = args.reads;
  if (reads !== 'linearizable' && reads !== 'lease' && reads !== 'mixed') return bad(`--reads must be linearizable, lease or mixed, got ${reads}`);
  const first = numbers.seed;
  const count = args.seeds !== undefined ? numbers.seeds : args.seed !== undefined ? 1 : 100;
  const options: Omit<SimulationOptions, 'seed'> = {
    protocol,
    nodes: numbers.nodes,
    ops: numbers.ops,
    clients: numbers.clients,
    keys: numbers.keys,
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
  let workers = numbers.workers;
  if (workers === 0) workers = availableParallelism();
  workers = Math.min(workers, count);
  const seeds = Array.from({ length: count }, (_, i) => (first + i) >>> 0);

  const replayCmd = (seed: number) =>
    [
      'node',
      relative(process.cwd(), io.scriptPath) || io.scriptPath,
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

  const bar =
    args.quiet || !io.progress
      ? null
      : new cliProgress.SingleBar(
          {
            format: `${protocol} |{bar}| {value}/{total} seeds | {failed} failed | {rate} seeds/s | eta {eta_formatted}`,
            stream: io.progress,
            noTTYOutput: !io.progress.isTTY,
            notTTYSchedule: 10_000,
            hideCursor: true,
          },
          cliProgress.Presets.shades_classic,
        );
  const started = performance.now();
  bar?.start(count, 0, { failed: 0, rate: '0.0' });

  const totals = { seeds: 0, passed: 0, failed: 0, workerErrors: 0, ops: 0, events: 0, checks: 0, virtualMs: 0, crashes: 0, partitions: 0, membership: 0, skews: 0, faults: 0, transfers: 0, leaderships: 0, slowest: 0 };
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
  try {
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
      const pool: Worker[] = [];
      await new Promise<void>((done) => {
        let live = workers;
        stop = () => {
          for (const w of pool) void w.terminate();
        };
        for (let w = 0; w < workers; w++) {
          const part = seeds.filter((_, i) => i % workers === w);
          const worker = new Worker(io.scriptPath, { workerData: { synodSim: true, spec: { seeds: part, options } } });
          pool.push(worker);
          worker.on('message', (msg: SeedReport) => onReport(msg));
          worker.on('error', (err) => {
            io.err(`worker failed: ${err.stack ?? err.message}\n`);
            totals.workerErrors++;
          });
          worker.on('exit', () => {
            if (--live === 0) done();
          });
        }
      });
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  bar?.stop();
  const secs = (performance.now() - started) / 1000;

  for (const f of failures) reportFailure(f, protocol, args.out, replayCmd(f.seed), io);

  const fmt = (n: number) => n.toLocaleString('en-US');
  io.out(
    [
      `${protocol}: ${plural(totals.seeds, 'seed')} (from ${first}${interrupted ? `, interrupted after ${fmt(totals.seeds)} of ${fmt(count)}` : ''}), ${fmt(totals.passed)} passed, ${fmt(totals.failed)} failed in ${secs.toFixed(1)} s ` +
        `(${(totals.seeds / Math.max(secs, 0.001)).toFixed(1)} seeds/s, ${plural(workers, 'worker')}, slowest seed ${(totals.slowest / 1000).toFixed(2)} s)`,
      `  ${plural(options.nodes ?? 5, 'node')}, ${plural(totals.ops, 'client operation')} checked for linearizability, ${plural(totals.events, 'event')}, ${plural(totals.checks, 'invariant check')}, ${fmt(Math.round(totals.virtualMs / 1000))} s of virtual time`,
      `  nemesis: ${plural(totals.crashes, 'crash', 'crashes')}, ${plural(totals.partitions, 'partition/link cut', 'partitions/link cuts')}, ${plural(totals.faults, 'message-fault burst')}, ${plural(totals.skews, 'clock skew')}, ${plural(totals.transfers, 'transfer')}, ${plural(totals.membership, 'membership change')}; ${plural(totals.leaderships, 'leadership')}`,
      '',
    ].join('\n'),
  );
  if (totals.workerErrors > 0) return 1;
  if (bug) {
    // A negative control: the run exists to show the simulator catches this bug.
    const last = first + totals.seeds - 1;
    const range = totals.seeds === 1 ? `seed ${first}` : `seeds ${first}–${last}`;
    if (failures.length > 0) {
      const by = (f: SeedReport) => (f.result?.violation ? f.result.violation.invariant : f.result?.linearizability === 'illegal' ? 'the linearizability checker' : `linearizability (${f.result?.linearizability})`);
      const firstCaught = failures.reduce((a, b) => (b.seed < a.seed ? b : a));
      io.out(
        failures.length === 1
          ? `negative control ${bug} caught at seed ${firstCaught.seed} by ${by(firstCaught)} (as expected)\n`
          : `negative control ${bug} caught at ${failures.length} of ${plural(totals.seeds, 'seed')} (first: seed ${firstCaught.seed}, by ${by(firstCaught)}) (as expected)\n`,
      );
      return 0;
    }
    if (interrupted) {
      io.out(`negative control ${bug} not caught in the ${plural(totals.seeds, 'seed')} that ran before the interrupt (${range})\n`);
      return 130;
    }
    io.out(`negative control ${bug} NOT caught in ${range}: every seed passed although the bug was on (exit 1; try more --seeds)\n`);
    return 1;
  }
  return totals.failed > 0 ? 1 : interrupted ? 130 : 0;
}

/** Where a failing seed's timeline marks the failure: the violation, or the first operation that cannot be linearized. */
function failureMarker(r: SimulationResult): TimelineMarker | undefined {
  if (r.violation) {
    const v = r.violation;
    return { time: v.time, label: `${v.invariant}${v.node ? ` (${v.node})` : ''}`, ...(v.node ? { node: v.node } : {}) };
  }
  const candidates = r.linearizabilityFailure?.candidates;
  if (!candidates?.length) return undefined;
  const earliest = candidates.reduce((a, b) => (b.callTime < a.callTime ? b : a));
  const nodes = [...new Set(candidates.map((o) => o.node))];
  const node = nodes.length === 1 ? nodes[0] : undefined;
  const what = candidates.length === 1 ? describeKvOperation(earliest) : `none of ${candidates.length} operations, e.g. ${describeKvOperation(earliest)}`;
  return { time: earliest.callTime, label: `not linearizable: ${what}${node ? ` via ${node}` : ''}`, ...(node ? { node } : {}) };
}

function span(o: KvOperation): string {
  return `[${o.callTime}, ${Number.isFinite(o.returnTime) ? o.returnTime : '∞'}] ms`;
}

function reportFailure(f: SeedReport, protocol: string, outDir: string, replay: string, io: SimCliIo): void {
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
      lines.push(`  key ${key}: ${plural(lf.operations.length, 'operation')}; longest linearizable prefix has ${lf.linearized.length}; its last ones:`);
      for (const o of lf.linearized.slice(-5)) lines.push(`    ${describeKvOperation(o)}  ${span(o)}`);
      lines.push('  none of these can come next:');
      for (const o of lf.candidates) lines.push(`    ${describeKvOperation(o)}  ${span(o)}${o.node ? ` via ${o.node}` : ''}`);
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
        options: r.options,
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
  const marker = failureMarker(r);
  writeFileSync(
    `${base}.html`,
    renderTimeline({
      title: `${protocol} seed ${f.seed}: ${r.violation ? `invariant ${r.violation.invariant} broken` : `history ${r.linearizability === 'illegal' ? 'not linearizable' : r.linearizability}`}`,
      notes: [...lines.slice(1)],
      history: lf ? lf.operations : r.history,
      events: r.nemesisLog,
      // The simulator records its final reads (one per key, after the faults) as client `clients`.
      laneLabels: new Map([[r.options.clients, 'final reads']]),
      ...(marker ? { marker } : {}),
      ...(lf ? { highlight: new Set(lf.candidates.map((o) => o.id)), linearized: lf.linearized.map((o) => o.id) } : {}),
    }),
  );
  lines.push(`  wrote ${resolve(base)}.json and .html`);
  io.out(`${lines.join('\n')}\n`);
}
