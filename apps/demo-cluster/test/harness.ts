/**
 * Test harness: runs `node dist/cli.js` as a real process tree, talks HTTP to its gateway, and
 * waits for conditions with generous deadlines (never asserts on timing).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PKG_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = join(PKG_DIR, 'dist', 'cli.js');

/** Protocols the end-to-end suites run for (override with SYNOD_DEMO_PROTOCOLS=raft or =paxos). */
export const PROTOCOLS: readonly ('raft' | 'paxos')[] = (process.env.SYNOD_DEMO_PROTOCOLS ?? 'raft,paxos')
  .split(',')
  .map((s) => s.trim())
  .filter((s): s is 'raft' | 'paxos' => s === 'raft' || s === 'paxos');

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A base port such that `base .. base+count-1` are all free (below the ephemeral range). */
export async function freePortBlock(count: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 10_000);
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await portFree(p);
    if (ok) return base;
  }
  throw new Error('no free port block found');
}

/** A fresh temporary data directory. */
export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'synod-demo-test-'));
}

/** Polls `fn` until it returns a truthy value (returned) or `timeoutMs` passes (throws with the last value/error). */
export async function waitUntil<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    }
    await sleep(intervalMs);
  }
}

/** A node in `GET /api/cluster`. */
export interface NodeJson {
  id: string;
  alive: boolean;
  role: string | null;
  term: number | null;
  leader: string | null;
  commitIndex: number | null;
  appliedIndex: number | null;
  lastIndex: number | null;
  snapshotIndex: number | null;
  membership: 'voter' | 'learner' | 'none';
  isolated: boolean;
  pid: number | null;
  port: number;
}

/** `GET /api/cluster`. */
export interface ClusterJson {
  protocol: string;
  leader: string | null;
  voters: string[];
  learners: string[];
  nodes: NodeJson[];
}

/** An HTTP answer. */
export interface Answer {
  status: number;
  text: string;
  headers: Headers;
  json<T = any>(): T;
}

/** A running `dist/cli.js`. */
export class DemoProcess {
  readonly output: string[] = [];
  private exited: Promise<number | null>;
  private exitCode: number | null | undefined = undefined;

  private constructor(
    readonly proc: ChildProcess,
    readonly port: number,
    readonly dataDir: string,
  ) {
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code) => {
        this.exitCode = code;
        resolve(code);
      });
    });
    const collect = (chunk: Buffer) => this.output.push(chunk.toString('utf8'));
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
  }

  /** Spawns the demo and resolves once the gateway listens and a leader is known. */
  static async start(opts: { protocol: string; nodes?: number; port: number; dataDir: string; extra?: string[] }): Promise<DemoProcess> {
    const args = [
      CLI,
      '--nodes',
      String(opts.nodes ?? 3),
      '--port',
      String(opts.port),
      '--data-dir',
      opts.dataDir,
      '--protocol',
      opts.protocol,
      ...(opts.extra ?? []),
    ];
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const demo = new DemoProcess(proc, opts.port, opts.dataDir);
    try {
      await waitUntil(
        'the gateway to listen',
        async () => {
          if (demo.exitCode !== undefined) throw new Error(`demo exited with ${demo.exitCode}: ${demo.output.join('')}`);
          return demo.output.join('').includes('gateway listening on');
        },
        90_000,
      );
      await demo.waitForLeader(undefined, 90_000);
    } catch (err) {
      await demo.kill();
      throw new Error(`${(err as Error).message}\n--- demo output ---\n${demo.output.join('')}`);
    }
    return demo;
  }

  /**
   * Starts a new demo in a fresh temporary data dir on a free block of `ports` ports. Another
   * process on the machine may take a port between the check and the bind (other suites also
   * pick random ports): then it tries again with a new block and a new data dir, up to 3 times.
   */
  static async startFresh(opts: { protocol: string; nodes?: number; ports: number; extra?: string[] }): Promise<DemoProcess> {
    for (let attempt = 1; ; attempt++) {
      const port = await freePortBlock(opts.ports);
      const dataDir = tempDataDir();
      try {
        return await DemoProcess.start({ protocol: opts.protocol, nodes: opts.nodes ?? 3, port, dataDir, ...(opts.extra ? { extra: opts.extra } : {}) });
      } catch (err) {
        rmSync(dataDir, { recursive: true, force: true });
        if (attempt >= 3 || !/EADDRINUSE|address already in use|cannot listen/.test((err as Error).message)) throw err;
      }
    }
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** One HTTP request to the gateway. */
  async request(method: string, path: string, body?: string | Uint8Array, headers: Record<string, string> = {}): Promise<Answer> {
    const res = await fetch(`${this.url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    return { status: res.status, text, headers: res.headers, json: () => JSON.parse(text) };
  }

  async cluster(): Promise<ClusterJson> {
    const a = await this.request('GET', '/api/cluster');
    if (a.status !== 200) throw new Error(`GET /api/cluster answered ${a.status}: ${a.text}`);
    return a.json<ClusterJson>();
  }

  /** Waits until the gateway knows a leader (optionally one that is not `notId`). */
  async waitForLeader(notId?: string, timeoutMs = 60_000): Promise<string> {
    return waitUntil(
      notId ? `a leader other than ${notId}` : 'a leader',
      async () => {
        const c = await this.cluster();
        return c.leader && c.leader !== notId ? c.leader : null;
      },
      timeoutMs,
    );
  }

  /** PUT with retries on 503 (a failover may be in progress), until the write answers 200 (up to 60 s). */
  async put(key: string, value: string, query = ''): Promise<Answer> {
    return waitUntil(`PUT ${key}`, async () => {
      const a = await this.request('PUT', `/kv/${encodeURIComponent(key)}${query}`, value);
      if (a.status === 200) return a;
      if (a.status === 503) return null;
      throw new Error(`PUT ${key} answered ${a.status}: ${a.text}`);
    }, 60_000);
  }

  /** SIGTERMs the demo and resolves with its exit code once it exited. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.exitCode === undefined) this.proc.kill(signal);
    return this.exited;
  }

  /** Kills the demo hard (test cleanup). */
  async kill(): Promise<void> {
    if (this.exitCode === undefined) this.proc.kill('SIGKILL');
    await this.exited;
  }
}

/** Whether a process with this pid exists and is not a zombie (an exited child nobody reaped yet). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ..." where S is the state; Z = zombie, X = dead.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true; // no procfs: trust kill(0)
  }
}
