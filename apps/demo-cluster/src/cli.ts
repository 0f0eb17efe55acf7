#!/usr/bin/env node
/**
 * `pnpm demo [--nodes 3] [--port 8080] [--data-dir .synod/demo] [--protocol raft|paxos]`:
 * starts the supervisor and the replicas, prints the URL, stays in the foreground. Ctrl-C or
 * SIGTERM stops every replica; so does the exit of the package manager that ran the script.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_OPTIONS, MAX_BODY_BYTES_LIMIT, MAX_COMMAND_BYTES, startDemo, type DemoProtocol, type RunningDemo } from './index.js';
import { packageManagerAncestors, startedByPackageManager, watchParent } from './parent-watch.js';

function int(min: number, max: number) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`expected an integer, got ${JSON.stringify(v)}`);
    const n = Number(v);
    if (n < min || n > max) throw new InvalidArgumentError(`expected ${min}..${max}, got ${n}`);
    return n;
  };
}

const program = new Command()
  .name('synod-demo')
  .description('Run a synod cluster as real processes (WebSocket peer links, one SQLite file each) behind an HTTP gateway.')
  .option('--nodes <n>', 'replicas of a new cluster (a data dir that holds a cluster keeps its members)', int(1, 9), DEFAULT_OPTIONS.nodes)
  .option('--port <port>', 'gateway port; replica i listens on port+1+i', int(1, 65000), DEFAULT_OPTIONS.port)
  .option('--data-dir <dir>', 'where cluster.json, <id>.sqlite and logs/ live', DEFAULT_OPTIONS.dataDir)
  .addOption(new Option('--protocol <name>', 'consensus protocol').choices(['raft', 'paxos']).default(DEFAULT_OPTIONS.protocol))
  .option('--host <addr>', 'interface to bind (keep it on loopback)', DEFAULT_OPTIONS.host)
  .option('--tick-ms <ms>', 'milliseconds per consensus tick', int(1, 10_000), DEFAULT_OPTIONS.tickMs)
  .option('--request-timeout-ms <ms>', 'how long a request may wait (for a leader, a commit) before 503', int(100, 600_000), DEFAULT_OPTIONS.requestTimeoutMs)
  .option(
    '--max-body-bytes <n>',
    `largest request body (larger gets 413); at most ${MAX_BODY_BYTES_LIMIT}, which leaves room for the command header within the replicas' ${MAX_COMMAND_BYTES}-byte command limit`,
    int(1, MAX_BODY_BYTES_LIMIT),
    DEFAULT_OPTIONS.maxBodyBytes,
  )
  .option('--snapshot-entries <n>', 'snapshot after this many applied entries (0 = never)', int(0, 10_000_000), DEFAULT_OPTIONS.snapshotEntries)
  .option('--verbose', 'copy replica output to stderr', false)
  .allowExcessArguments(false);

program.parse(process.argv.filter((a, i) => !(i >= 2 && a === '--')));
const o = program.opts<{
  nodes: number;
  port: number;
  dataDir: string;
  protocol: DemoProtocol;
  host: string;
  tickMs: number;
  requestTimeoutMs: number;
  maxBodyBytes: number;
  snapshotEntries: number;
  verbose: boolean;
}>();

if (o.port + o.nodes > 65_535) program.error(`error: --port ${o.port} leaves no room for ${o.nodes} replica ports above it`);

let demo: RunningDemo | null = null;
let exiting = false;

async function shutdown(signal: string): Promise<void> {
  if (exiting) return;
  exiting = true;
  console.log(`synod demo: ${signal}, stopping every replica...`);
  const force = setTimeout(() => {
    demo?.supervisor.killAllNow();
    process.exit(1);
  }, 8000);
  try {
    await demo?.stop();
  } finally {
    clearTimeout(force);
    console.log('synod demo: stopped');
    process.exit(0);
  }
}

process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGHUP', () => void shutdown('SIGHUP'));
// Started by a package-manager script (`pnpm demo`)? A SIGTERM to pnpm is not forwarded to us:
// stop as on SIGTERM when our parent (or the package manager above the script's shell) goes away.
// Run directly (`node dist/cli.js`), nothing is watched.
if (startedByPackageManager(process.env)) {
  const ppid = process.ppid;
  watchParent({ initialPpid: ppid, ancestors: packageManagerAncestors(ppid), onGone: (reason) => void shutdown(reason) });
}
// Whatever happens, never leave a replica behind.
process.on('exit', () => demo?.supervisor.killAllNow());

try {
  demo = await startDemo(o);
} catch (err) {
  console.error(`synod demo: ${(err as Error).message}`);
  process.exit(1);
}
if (exiting) {
  await demo.stop();
} else {
  const v = await demo.supervisor.view();
  console.log(`synod demo: ${v.protocol} cluster of ${v.nodes.length} replicas (${v.nodes.map((n) => `${n.id}@${n.port}`).join(', ')}), data in ${demo.supervisor.dataDir}`);
  console.log(`synod demo: gateway listening on ${demo.url}`);
  console.log('synod demo: Ctrl-C to stop');
}
