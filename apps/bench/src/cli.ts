#!/usr/bin/env node
/**
 * `pnpm bench` (node apps/bench/dist/cli.js): runs the quick profile by default, `--full` for
 * the whole matrix; prints progress and a table, writes bench-results/latest.json, report.md
 * and throughput.svg at the repository root.
 */
import { Command, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CellFilter, parseIntList, parseList, PROTOCOLS, STORAGES, TRANSPORTS } from './matrix.js';
import { renderTerminalTable } from './report.js';
import { runBench } from './run.js';

const here = dirname(fileURLToPath(import.meta.url));

/** The repository root (the directory with pnpm-workspace.yaml above this file), else the cwd. */
function repoRoot(): string {
  let dir = here;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

const seconds = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 3600) throw new Error(`${what} must be a number of seconds in (0, 3600], got ${v}`);
  return n;
};

const program = new Command()
  .name('synod-bench')
  .description('Throughput and latency of synod (raft, paxos) against the physical limits of this machine and peer libraries.')
  .option('--full', 'run the whole matrix (96 cells) instead of the quick profile', false)
  .option('--protocols <list>', `only these protocols (${PROTOCOLS.join(',')})`)
  .option('--transports <list>', `only these transports (${TRANSPORTS.join(',')})`)
  .option('--storages <list>', `only these storages (${STORAGES.join(',')})`)
  .option('--nodes <list>', 'only these cluster sizes (e.g. 3,5)')
  .option('--clients <list>', 'only these client counts (e.g. 1,16,256)')
  .option('--payloads <list>', 'only these payload sizes in bytes (e.g. 16,1024)')
  .option('--duration <s>', 'measurement window of each cell, seconds (default: 2.5 quick, 5 full)', seconds('--duration'))
  .option('--repeat <n>', 'run every cell n times and keep the run with the median throughput', (v) => parseIntList(v, '--repeat', 20)[0]!)
  .option('--warmup <s>', 'warm-up of each cell, excluded from results, seconds', seconds('--warmup'), 1)
  .option('--baseline-duration <s>', 'measurement time of each baseline sample, seconds', seconds('--baseline-duration'), 0.5)
  .option('--baselines-once', 'measure the baselines only before the cells (default: before and after, keeping the best of each)', false)
  .option('--tick-ms <ms>', 'ReplicatedLog tick in ms (default: the runtime default, 100)', (v) => parseIntList(v, '--tick-ms', 10_000)[0]!)
  .option('--no-baselines', 'skip the physical-limit baselines')
  .option('--no-peers', 'skip the peer libraries')
  .option('--peer-clients <list>', 'client counts of the peer runs (default: 1 quick, 1,16 full)')
  .option('--no-failover', 'skip the failover measurement')
  .option('--failover-runs <n>', 'failover runs per protocol (the median is reported; default 3 quick, 5 full)', (v) => parseIntList(v, '--failover-runs', 100)[0]!)
  .option('--profile', 'write V8 CPU profiles of every cell (node --cpu-prof) to <out>/profiles and summarize them in the report', false)
  .option('--out <dir>', 'output directory (default: <repo>/bench-results)')
  .addOption(new Option('--tmp-dir <dir>', 'parent directory of the temporary SQLite files (default: the OS temp dir)'))
  .option('--quiet', 'no progress bar or per-step lines', false);

async function main(): Promise<void> {
  program.parse();
  const o = program.opts<{
    full: boolean;
    protocols?: string;
    transports?: string;
    storages?: string;
    nodes?: string;
    clients?: string;
    payloads?: string;
    duration?: number;
    warmup: number;
    repeat?: number;
    baselineDuration: number;
    baselinesOnce: boolean;
    tickMs?: number;
    baselines: boolean;
    peers: boolean;
    peerClients?: string;
    failover: boolean;
    failoverRuns?: number;
    profile: boolean;
    out?: string;
    tmpDir?: string;
    quiet: boolean;
  }>();
  const filter: { -readonly [K in keyof CellFilter]: CellFilter[K] } = {};
  if (o.protocols) filter.protocols = parseList(o.protocols, PROTOCOLS, '--protocols');
  if (o.transports) filter.transports = parseList(o.transports, TRANSPORTS, '--transports');
  if (o.storages) filter.storages = parseList(o.storages, STORAGES, '--storages');
  if (o.nodes) filter.nodes = parseIntList(o.nodes, '--nodes', 9);
  if (o.clients) filter.clients = parseIntList(o.clients, '--clients', 4096);
  if (o.payloads) filter.payloads = parseIntList(o.payloads, '--payloads', 1 << 20);
  const outDir = resolve(o.out ?? join(repoRoot(), 'bench-results'));
  const tty = Boolean(process.stderr.isTTY) && !o.quiet;
  const bar = tty ? new SingleBar({ format: 'bench {bar} {value}/{total} {step}', hideCursor: true, clearOnComplete: true, stream: process.stderr }) : null;
  let total = 0;
  let done = -1;
  const logs: string[] = [];
  const started = Date.now();
  const { report, files } = await runBench({
    full: o.full,
    filter,
    ...(o.repeat ? { repeat: o.repeat } : {}),
    warmupMs: o.warmup * 1000,
    durationMs: (o.duration ?? (o.full ? 5 : 2.5)) * 1000,
    baselineMs: o.baselineDuration * 1000,
    ...(o.tickMs !== undefined ? { tickMs: o.tickMs } : {}),
    baselines: o.baselines,
    baselinesTwice: !o.baselinesOnce,
    peers: o.peers,
    peerClients: parseIntList(o.peerClients ?? (o.full ? '1,16' : '1'), '--peer-clients', 4096),
    failover: o.failover,
    failoverRuns: o.failoverRuns ?? (o.full ? 5 : 3),
    profile: o.profile,
    outDir,
    command: ['pnpm bench', ...process.argv.slice(2).filter((a) => a !== '--quiet')].join(' '),
    childEntry: join(here, 'child.js'),
    ...(o.tmpDir ? { tmpDir: resolve(o.tmpDir) } : {}),
    onPlan: (n) => {
      total = n;
      bar?.start(n, 0, { step: '' });
    },
    onStep: (label) => {
      done++;
      if (bar) bar.update(done, { step: label });
      else if (!o.quiet) process.stderr.write(`[${done + 1}/${total}] ${label}\n`);
    },
    onLog: (line) => {
      logs.push(line);
      if (!bar && !o.quiet) process.stderr.write(`  ${line}\n`);
    },
  });
  if (bar) {
    bar.update(total, { step: 'done' });
    bar.stop();
  }
  process.stdout.write(`${renderTerminalTable(report)}\n`);
  const skipped = (report as { skipped?: { what: string; reason: string }[] }).skipped ?? [];
  for (const s of skipped) process.stdout.write(`not run: ${s.what}: ${s.reason}\n`);
  process.stdout.write(`\n${files.json}\n${files.markdown}\n${files.svg}\n(${Math.round((Date.now() - started) / 1000)} s)\n`);
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
