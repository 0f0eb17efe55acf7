/**
 * The orchestrator: measures the baselines, every selected cell (each in fresh processes),
 * the peers and failover, then assembles, validates and writes the report.
 */
import { fork } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BaselineResult, measureBaselines } from './baselines.js';
import type { CellMeasurement, CellRunOptions } from './cell-types.js';
import { renderThroughputSvg } from './chart.js';
import { protocolAvailable } from './components.js';
import { measureFailoverOnce, median } from './failover.js';
import { checkGoals } from './goals.js';
import type { CellRequest } from './ipc.js';
import { cellKey, type CellFilter, type CellSpec, type Protocol, selectCells } from './matrix.js';
import { describeMachine } from './machine.js';
import { PEER_PACKAGES, PEERS, type PeerRequest } from './peer-child.js';
import type { PeerMeasurement } from './peers/liferaft.js';
import { describeLimit, processLabel, summarizeProfileFile, type ProfileSummary } from './profile.js';
import { limitFor, ratioToLimit } from './ratio.js';
import { renderMarkdown } from './report.js';
import { type BenchReport, parseBenchReport } from './schema.js';
import { runWsCell } from './ws-cell.js';

/** Everything a run needs. */
export interface RunOptions {
  /**
   * Run every cell this many times and keep the run with the median throughput (its latency,
   * CPU and RSS with it). Default 1.
   */
  readonly repeat?: number;
  /** Run the whole matrix instead of the quick profile. */
  readonly full: boolean;
  readonly filter: CellFilter;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Measurement time of each baseline, ms. */
  readonly baselineMs: number;
  readonly tickMs?: number;
  readonly baselines: boolean;
  /**
   * Measure the baselines again after the cells and keep the higher rate of each (a limit is
   * the best the machine did; a busy moment lowers one sample). Default true.
   */
  readonly baselinesTwice?: boolean;
  readonly peers: boolean;
  /** Client counts of the peer runs. */
  readonly peerClients: readonly number[];
  readonly failover: boolean;
  readonly failoverRuns: number;
  /** Write CPU profiles of every cell's processes and summarize them in the report. */
  readonly profile: boolean;
  /** Where latest.json, report.md and throughput.svg go. */
  readonly outDir: string;
  /** The command line that reproduces the run (for the report). */
  readonly command: string;
  /** dist/child.js. */
  readonly childEntry: string;
  /** Node flags of every forked child (tests run the TypeScript entry through tsx). */
  readonly childExecArgv?: readonly string[];
  readonly tmpDir?: string;
  /** Progress callbacks. */
  readonly onPlan?: (steps: number) => void;
  readonly onStep?: (label: string) => void;
  readonly onLog?: (line: string) => void;
}

/** What {@link runBench} produced. */
export interface RunOutput {
  readonly report: BenchReport;
  readonly files: { readonly json: string; readonly markdown: string; readonly svg: string };
}

function forkChild<T>(childEntry: string, role: string, request: CellRequest | PeerRequest, execArgv: string[], timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const child = fork(childEntry, [role], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced', execArgv });
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      child.kill('SIGKILL');
      reject(new Error(`${role} child did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', (m: { t: string; result?: T; name?: string; message?: string }) => {
      if (settled) return;
      if (m.t === 'result') {
        settled = true;
        clearTimeout(timer);
        // Let it exit by itself (that writes its CPU profile), then resolve.
        child.once('exit', () => resolve(m.result as T));
        setTimeout(() => child.exitCode === null && child.kill('SIGKILL'), 10_000).unref();
      } else if (m.t === 'error') {
        settled = true;
        clearTimeout(timer);
        const e = new Error(m.message);
        e.name = m.name ?? 'Error';
        child.once('exit', () => reject(e));
      }
    });
    child.once('exit', (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`${role} child exited (${signal ?? code}) without an answer`));
    });
    child.send(request);
  });
}

/** Runs one in-process cell in a fresh child process. */
export async function runCellInChild(spec: CellSpec, opts: CellRunOptions, childEntry: string): Promise<CellMeasurement> {
  const execArgv = [...(opts.childExecArgv ?? [])];
  const req: CellRequest = {
    t: 'run-cell',
    spec,
    warmupMs: opts.warmupMs,
    durationMs: opts.durationMs,
    ...(opts.tickMs !== undefined ? { tickMs: opts.tickMs } : {}),
    ...(opts.protocolOptions ? { protocolOptions: opts.protocolOptions } : {}),
    ...(opts.tmpDir ? { tmpDir: opts.tmpDir } : {}),
    ...(opts.cpuProfDir ? { cpuProfDir: opts.cpuProfDir } : {}),
  };
  return forkChild<CellMeasurement>(childEntry, 'cell', req, execArgv, opts.warmupMs + opts.durationMs + 120_000);
}

/**
 * The run with the median throughput (the lower middle one for an even count), so every
 * figure kept comes from one real run.
 */
export function pickMedianRun<T extends { opsPerSec: number }>(runs: readonly T[]): T {
  if (runs.length === 0) throw new RangeError('no runs');
  const sorted = [...runs].sort((a, b) => a.opsPerSec - b.opsPerSec);
  return sorted[(sorted.length - 1) >> 1]!;
}

const round = (n: number, d = 3) => Math.round(n * 10 ** d) / 10 ** d;

/** Runs the benchmark and writes its outputs. */
export async function runBench(o: RunOptions): Promise<RunOutput> {
  const started = new Date();
  const machine = describeMachine();
  const log = o.onLog ?? (() => {});
  const cells = selectCells(o.full, o.filter);
  const skipped: { what: string; reason: string }[] = [];

  // Which protocols can run at all.
  const protocols = [...new Set(cells.map((c) => c.protocol))];
  const failoverProtocols: Protocol[] = o.failover ? (o.filter.protocols ?? ['raft', 'paxos']).slice() : [];
  const unavailable = new Map<Protocol, string>();
  for (const p of new Set<Protocol>([...protocols, ...failoverProtocols])) {
    const why = await protocolAvailable(p);
    if (why) unavailable.set(p, why);
  }
  const runnable = cells.filter((c) => {
    const why = unavailable.get(c.protocol);
    if (why) skipped.push({ what: cellKey(c), reason: why });
    return !why;
  });
  const fProtocols = failoverProtocols.filter((p) => {
    const why = unavailable.get(p);
    if (why) skipped.push({ what: `failover ${p}`, reason: why });
    return !why;
  });
  const payloads = [...new Set((runnable.length ? runnable : cells).map((c) => c.payloadBytes))].sort((a, b) => a - b);
  if (payloads.length === 0) payloads.push(16);
  const twice = o.baselines && o.baselinesTwice !== false;
  const baselineSteps = o.baselines ? (payloads.length * 2 + 3) * (twice ? 2 : 1) : 0;
  const peerSteps = o.peers ? o.peerClients.length * PEERS.length : 0;
  o.onPlan?.(baselineSteps + runnable.length + peerSteps + fProtocols.length * o.failoverRuns);

  const phaseSec: Record<string, number> = {};
  let phaseStart = Date.now();
  const phase = (name: string) => {
    phaseSec[name] = Math.round((Date.now() - phaseStart) / 100) / 10;
    phaseStart = Date.now();
  };
  const baselineOpts = {
    payloads,
    durationMs: o.baselineMs,
    childEntry: o.childEntry,
    ...(o.tmpDir ? { tmpDir: o.tmpDir } : {}),
    ...(o.childExecArgv ? { childExecArgv: o.childExecArgv } : {}),
  };
  // 1. Baselines.
  let baselines: BaselineResult[] = [];
  if (o.baselines) {
    baselines = await measureBaselines({ ...baselineOpts, onStep: (n) => o.onStep?.(`baseline ${n}`) });
  }

  phase('baselines');
  // 2. Cells.
  const profDir = o.profile ? join(o.outDir, 'profiles') : undefined;
  if (profDir) {
    rmSync(profDir, { recursive: true, force: true });
    mkdirSync(profDir, { recursive: true });
    // Profiles are large and machine-specific: keep them out of git.
    writeFileSync(join(profDir, '.gitignore'), '*\n');
  }
  const results: BenchReport['results'] = [];
  for (const spec of runnable) {
    o.onStep?.(cellKey(spec));
    const opts: CellRunOptions = {
      warmupMs: o.warmupMs,
      durationMs: o.durationMs,
      ...(o.tickMs !== undefined ? { tickMs: o.tickMs } : {}),
      ...(o.tmpDir ? { tmpDir: o.tmpDir } : {}),
      ...(profDir ? { cpuProfDir: profDir } : {}),
      ...(o.childExecArgv ? { childExecArgv: o.childExecArgv } : {}),
    };
    try {
      const runs: CellMeasurement[] = [];
      for (let i = 0; i < (o.repeat ?? 1); i++) {
        // Only the last repeat is profiled, so the kept profile files belong to one run.
        const last = i === (o.repeat ?? 1) - 1;
        const ro: CellRunOptions = last || !opts.cpuProfDir ? opts : { ...opts, cpuProfDir: undefined };
        runs.push(spec.transport === 'memory' ? await runCellInChild(spec, ro, o.childEntry) : await runWsCell(spec, ro, o.childEntry));
      }
      const m = pickMedianRun(runs);
      let profile: ProfileSummary[] | undefined;
      let limitedBy: string | undefined;
      if (m.profiles) {
        profile = m.profiles.filter((f) => existsSync(f)).map((f) => summarizeProfileFile(f));
        if (profile.length > 0) limitedBy = profile.map((p, i) => (profile!.length > 1 ? `${processLabel(p.file, i)}: ` : '') + describeLimit(p)).join('; ');
      }
      results.push({
        ...spec,
        opsPerSec: round(m.opsPerSec, 1),
        p50Ms: round(m.latency.p50Ms),
        p99Ms: round(m.latency.p99Ms),
        p999Ms: round(m.latency.p999Ms),
        ratioToLimit: null as number | null,
        maxMs: round(m.latency.maxMs),
        ops: m.ops,
        errors: m.errors,
        ...(Object.keys(m.errorKinds).length ? { errorKinds: m.errorKinds } : {}),
        cpuPct: m.cpuPct,
        peakRssMb: m.peakRssMb,
        processes: m.processes,
        ...(m.persistsPerSec !== undefined ? { persistsPerSec: m.persistsPerSec, entriesPerPersist: m.entriesPerPersist, messagesPerOp: m.messagesPerOp } : {}),
        ...(m.messagesPerFrame !== undefined ? { messagesPerFrame: m.messagesPerFrame } : {}),
        durationMs: m.windowMs,
        ...(runs.length > 1 ? { repeatOpsPerSec: runs.map((r) => round(r.opsPerSec, 1)) } : {}),
        ...(profile ? { profile: profile.map((p) => ({ file: p.file, totalMs: p.totalMs, owners: p.owners.slice(0, 10), top: p.top })) } : {}),
        ...(limitedBy ? { limitedBy } : {}),
      });
      log(`${cellKey(spec)}: ${Math.round(m.opsPerSec).toLocaleString('en-US')} ops/s, p99 ${m.latency.p99Ms.toFixed(2)} ms`);
    } catch (err) {
      skipped.push({ what: cellKey(spec), reason: `failed: ${(err as Error).message}` });
      log(`${cellKey(spec)}: FAILED ${(err as Error).message}`);
    }
  }

  phase('cells');
  // Baselines again, keeping the best sample of each; then every cell's ratio to its limit.
  if (twice) {
    const again = await measureBaselines({ ...baselineOpts, onStep: (n) => o.onStep?.(`baseline ${n} (again)`) });
    baselines = baselines.map((b) => {
      const b2 = again.find((x) => x.name === b.name);
      const samples = b2 ? [round(b.opsPerSec, 1), round(b2.opsPerSec, 1)] : [round(b.opsPerSec, 1)];
      return { ...b, opsPerSec: Math.max(...samples), samples };
    });
  } else {
    baselines = baselines.map((b) => ({ ...b, opsPerSec: round(b.opsPerSec, 1) }));
  }
  for (const r of results) {
    const limit = limitFor(r, baselines);
    Object.assign(r, { ratioToLimit: ratioToLimit(r.opsPerSec, limit), limit: limit?.name ?? null, limitOpsPerSec: limit ? limit.opsPerSec : null });
  }

  phase('baselinesAgain');
  // 3. Peers.
  const peers: BenchReport['peers'] = [];
  if (o.peers) {
    for (const peer of PEERS) {
      for (const clients of o.peerClients) {
        const label = `peer ${PEER_PACKAGES[peer]} ${clients} client(s)`;
        o.onStep?.(label);
        try {
          const req: PeerRequest = { t: 'run-peer', peer, options: { nodes: 3, clients, payloadBytes: 16, warmupMs: o.warmupMs, durationMs: o.durationMs, ...(o.tmpDir ? { tmpDir: o.tmpDir } : {}) } };
          const m = await forkChild<PeerMeasurement>(o.childEntry, 'peer', req, [...(o.childExecArgv ?? [])], o.warmupMs + o.durationMs + 120_000);
          peers.push({
            name: m.name,
            version: m.version,
            nodes: m.nodes,
            clients: m.clients,
            payloadBytes: m.payloadBytes,
            opsPerSec: round(m.opsPerSec, 1),
            p50Ms: round(m.latency.p50Ms),
            p99Ms: round(m.latency.p99Ms),
            errors: m.errors,
            ...(m.internalErrors ? { internalErrors: m.internalErrors } : {}),
            setup: m.setup,
          });
          log(`${label}: ${Math.round(m.opsPerSec)} ops/s`);
        } catch (err) {
          skipped.push({ what: label, reason: `failed: ${(err as Error).message}` });
        }
      }
    }
  }

  phase('peers');
  // 4. Failover.
  const failover: BenchReport['failover'] = [];
  for (const protocol of fProtocols) {
    const runs: number[] = [];
    const failures: string[] = [];
    for (let i = 0; i < o.failoverRuns; i++) {
      o.onStep?.(`failover ${protocol} run ${i + 1}/${o.failoverRuns}`);
      try {
        runs.push(
          round(
            await measureFailoverOnce({
              protocol,
              nodes: 3,
              childEntry: o.childEntry,
              ...(o.tickMs !== undefined ? { tickMs: o.tickMs } : {}),
              ...(o.tmpDir ? { tmpDir: o.tmpDir } : {}),
              ...(o.childExecArgv ? { childExecArgv: o.childExecArgv } : {}),
            }),
            1,
          ),
        );
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
    if (runs.length > 0) {
      failover.push({ protocol, ms: round(median(runs), 1), runsMs: runs, setup: '3 replica processes, ws + sqlite, SIGKILL of the leader, writes retried every 10 ms on the survivors', ...(failures.length ? { failures } : {}) });
      log(`failover ${protocol}: median ${median(runs).toFixed(0)} ms over ${runs.length} runs`);
    } else {
      skipped.push({ what: `failover ${protocol}`, reason: failures[0] ?? 'no run' });
    }
  }

  phase('failover');
  const report = parseBenchReport({
    machine: {
      ...machine,
      date: started.toISOString(),
      profile: o.full ? 'full' : Object.keys(o.filter).length ? 'custom' : 'quick',
      command: o.command,
      settings: {
        ...(o.repeat && o.repeat > 1 ? { repeat: `${o.repeat} (median run kept)` } : {}),
        warmupMs: o.warmupMs,
        durationMs: o.durationMs,
        baselineMs: o.baselineMs,
        tickMs: o.tickMs ?? 'runtime default (100)',
        stateMachine: 'counter (returns the index)',
      },
      elapsedSec: Math.round((Date.now() - started.getTime()) / 1000),
      phaseSec,
    },
    baselines,
    results,
    peers,
    failover,
    skipped,
    unavailablePeers: UNAVAILABLE_PEERS,
  });
  const goals = checkGoals(report);
  const full = { ...report, goals } as BenchReport;
  mkdirSync(o.outDir, { recursive: true });
  const files = { json: join(o.outDir, 'latest.json'), markdown: join(o.outDir, 'report.md'), svg: join(o.outDir, 'throughput.svg') };
  writeFileSync(files.json, `${JSON.stringify(full, null, 2)}\n`);
  writeFileSync(files.svg, await renderThroughputSvg(report.results));
  writeFileSync(files.markdown, `${renderMarkdown(full, { chartPath: 'throughput.svg' })}\n`);
  if (profDir && readdirSync(profDir).every((f) => f === '.gitignore')) rmSync(profDir, { recursive: true, force: true });
  return { report: full, files };
}

/**
 * JavaScript consensus libraries on npm that were tried and cannot be measured here, with the
 * reason (checked when this bench was written; see the README).
 */
export const UNAVAILABLE_PEERS: readonly { name: string; reason: string }[] = [
  { name: 'skiff', reason: 'does not load: it requires leveldown 1.x, which has no prebuilt binary and fails to compile on Node 20' },
  { name: 'liferaft', reason: 'does not install: its leveldown 3 dependency fails to compile on Node 20 (the maintained fork @markwylde/liferaft is measured instead)' },
];
