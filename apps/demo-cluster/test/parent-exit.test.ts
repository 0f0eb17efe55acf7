/**
 * `kill -TERM <pid of pnpm>` after `pnpm demo`: pnpm does not forward the signal, so the CLI,
 * started by a package-manager script, watches its parent. A wrapper process plays the
 * package manager: it starts `dist/cli.js` with `npm_lifecycle_event` set (directly, or through
 * `sh -c "true && node …"` as pnpm does), and is then SIGKILLed. The supervisor must shut down
 * cleanly (its own message, not a crash), stop every replica and free its port.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, freePortBlock, pidAlive, PROTOCOLS, tempDataDir, waitUntil, type ClusterJson } from './harness.js';

const protocol = PROTOCOLS[0] ?? 'raft';

/** Runs as `node -e WRAPPER <json args> <through shell: "sh" | "direct">`: spawns the CLI as a package-manager script would. */
const WRAPPER = `
const { spawn } = require('node:child_process');
const args = JSON.parse(process.argv[1]);
const env = { ...process.env, npm_lifecycle_event: 'demo' };
const quote = (s) => "'" + s.replace(/'/g, "'\\\\''") + "'";
const child = process.argv[2] === 'sh'
  ? spawn('sh', ['-c', 'true && ' + [process.execPath, ...args].map(quote).join(' ')], { stdio: ['ignore', 'inherit', 'inherit'], env })
  : spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], env });
console.log('wrapper child pid ' + child.pid);
setInterval(() => {}, 1 << 30);
`;

interface Started {
  wrapper: ChildProcess;
  output: string[];
  port: number;
  dataDir: string;
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function startThroughWrapper(through: 'sh' | 'direct'): Promise<Started> {
  const port = await freePortBlock(4);
  const dataDir = tempDataDir();
  const args = [CLI, '--nodes', '1', '--port', String(port), '--data-dir', dataDir, '--protocol', protocol];
  const wrapper = spawn(process.execPath, ['-e', WRAPPER, JSON.stringify(args), through], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  wrapper.stdout!.on('data', (c: Buffer) => output.push(c.toString('utf8')));
  wrapper.stderr!.on('data', (c: Buffer) => output.push(c.toString('utf8')));
  cleanups.push(() => {
    wrapper.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });
  await waitUntil('the gateway to listen', async () => output.join('').includes('gateway listening on'), 90_000).catch((err: Error) => {
    throw new Error(`${err.message}\n--- output ---\n${output.join('')}`);
  });
  return { wrapper, output, port, dataDir };
}

/** The supervisor's pid: a node process whose command line runs the CLI on this data dir. */
async function supervisorPid(s: Started): Promise<number> {
  const ps = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  const line = ps.split('\n').find((l) => l.includes(CLI) && l.includes(s.dataDir) && !l.includes(' -e ') && !/\bsh -c\b/.test(l));
  if (!line) throw new Error(`no supervisor process for ${s.dataDir} in ps output`);
  return Number(line.trim().split(/\s+/)[0]);
}

async function cluster(port: number): Promise<ClusterJson> {
  const res = await fetch(`http://127.0.0.1:${port}/api/cluster`);
  return (await res.json()) as ClusterJson;
}

async function portAnswers(port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/api/cluster`, { signal: AbortSignal.timeout(2000) });
    return true;
  } catch {
    return false;
  }
}

describe.each(['direct', 'sh'] as const)('started by a package-manager script (%s child)', (through) => {
  it('stops every replica and exits when the package manager is SIGKILLed', async () => {
    const s = await startThroughWrapper(through);
    const sup = await supervisorPid(s);
    cleanups.unshift(() => {
      if (pidAlive(sup)) process.kill(sup, 'SIGKILL');
    });
    const replicas = await waitUntil('the replica to report its pid', async () => {
      const pids = (await cluster(s.port)).nodes.map((n) => n.pid).filter((p): p is number => typeof p === 'number');
      return pids.length === 1 ? pids : null;
    });
    expect(pidAlive(sup)).toBe(true);
    expect(replicas.every(pidAlive)).toBe(true);

    s.wrapper.kill('SIGKILL');
    await waitUntil('the supervisor to exit', async () => !pidAlive(sup), 30_000);
    await waitUntil('every replica to exit', async () => replicas.every((p) => !pidAlive(p)), 15_000);
    expect(await portAnswers(s.port)).toBe(false);
    // The clean shutdown ran (as on SIGTERM), not the exit handler of a crash.
    const out = s.output.join('');
    // Direct child: its parent pid changes. Under the script's shell (which survives a SIGKILL of
    // the package manager), the package manager above the shell is watched.
    const who = through === 'direct' ? 'parent' : 'package manager';
    expect(out).toMatch(new RegExp(`synod demo: ${who} process \\d+ exited, stopping every replica`));
    expect(out).toContain('synod demo: stopped');
  });
});
