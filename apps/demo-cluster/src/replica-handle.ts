/**
 * The supervisor's handle on one replica process: forks it, sends it requests over IPC with a
 * timeout, tracks whether it is alive and its last reported status.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { ReplicaError } from './errors.js';
import type { IpcEvent, IpcOperation, IpcResponse, ReplicaConfig, ReplicaStatus } from './ipc.js';

interface Pending {
  resolve(v: unknown): void;
  reject(e: unknown): void;
  timer: NodeJS.Timeout;
}

/** Options of {@link ReplicaHandle.start}. */
export interface StartOptions {
  readonly script: string;
  readonly config: ReplicaConfig;
  /** File the child's stdout and stderr are appended to. */
  readonly logFile: string;
  /** Also copy the child's output to this process's stderr, prefixed with the id. */
  readonly echo: boolean;
  /** How long to wait for the replica's `ready` event, in ms. */
  readonly readyTimeoutMs: number;
}

/**
 * Why a replica failed to start. `code` is `DATA_MISSING` when its SQLite file is missing or
 * empty although the member was initialized before (the storage refused with reason
 * `missing`), `START_FAILED` otherwise (e.g. its port is taken, it exited or did not become
 * ready in time). The process has exited when this is thrown.
 */
export class ReplicaStartError extends Error {
  constructor(
    readonly node: string,
    readonly code: 'DATA_MISSING' | 'START_FAILED',
    message: string,
  ) {
    super(message);
    this.name = 'ReplicaStartError';
  }
}

/** One replica process. */
export class ReplicaHandle {
  private child: ChildProcess | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private exitWaiters: (() => void)[] = [];
  private logStream: WriteStream | null = null;
  /** Last status the replica reported (kept after it dies). */
  lastStatus: ReplicaStatus | null = null;
  /** When {@link lastStatus} was received (ms since epoch). */
  lastStatusAt = 0;
  /** Whether the supervisor asked this replica to cut its peer links. */
  isolated = false;
  /** How the last incarnation ended. */
  lastExit: { code: number | null; signal: string | null } | null = null;
  /** Number of times the process was started. */
  starts = 0;

  constructor(
    readonly id: string,
    readonly port: number,
    private readonly onUnexpectedExit: (h: ReplicaHandle, code: number | null, signal: string | null) => void,
  ) {}

  /** Whether the process is running and answered `ready`. */
  get alive(): boolean {
    return this.child !== null && this.ready;
  }

  /** Whether a process exists (starting or running). */
  get running(): boolean {
    return this.child !== null;
  }

  private ready = false;
  private expectingExit = false;

  /** OS process id, or null. */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /**
   * Forks the replica and resolves once it reported `ready`. Rejects with
   * {@link ReplicaStartError} if it fails to start (after the process has exited).
   */
  start(opts: StartOptions): Promise<ReplicaStatus> {
    if (this.child) return Promise.reject(new Error(`replica ${this.id} is already running`));
    this.starts++;
    this.isolated = false;
    this.expectingExit = false;
    this.ready = false;
    this.logStream ??= createWriteStream(opts.logFile, { flags: 'a' });
    const child = fork(opts.script, [], {
      env: { ...process.env, SYNOD_REPLICA: JSON.stringify(opts.config) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    this.child = child;
    const stamp = () => new Date().toISOString();
    this.logStream.write(`--- ${stamp()} start #${this.starts} pid ${child.pid}\n`);
    const forward = (chunk: Buffer) => {
      this.logStream?.write(chunk);
      if (opts.echo) {
        for (const line of chunk.toString('utf8').split('\n')) if (line) process.stderr.write(`[${this.id}] ${line}\n`);
      }
    };
    child.stdout?.on('data', forward);
    child.stderr?.on('data', forward);

    return new Promise<ReplicaStatus>((resolve, reject) => {
      let settled = false;
      // A failure reported before `ready`: the start is rejected once the process has exited,
      // so the node is down (not half-running) when the caller sees the error.
      let startError: ReplicaStartError | null = null;
      const failStart = (err: ReplicaStartError) => {
        if (settled || startError) return;
        startError = err;
        clearTimeout(timer);
        this.expectingExit = true;
        setTimeout(() => {
          if (this.child === child) child.kill('SIGKILL');
        }, 3000).unref();
      };
      const timer = setTimeout(() => {
        failStart(new ReplicaStartError(this.id, 'START_FAILED', `replica ${this.id} did not become ready within ${opts.readyTimeoutMs} ms`));
        child.kill('SIGKILL');
      }, opts.readyTimeoutMs);
      child.on('message', (msg: IpcResponse | IpcEvent) => {
        if (!msg || typeof msg !== 'object') return;
        if (msg.t === 'res') {
          const p = this.pending.get(msg.id);
          if (!p) return;
          this.pending.delete(msg.id);
          clearTimeout(p.timer);
          if (msg.ok) p.resolve(msg.value);
          else p.reject(new ReplicaError(this.id, msg.error));
        } else if (msg.t === 'ready') {
          if (settled || startError) return;
          this.ready = true;
          this.setStatus(msg.status);
          settled = true;
          clearTimeout(timer);
          resolve(msg.status);
        } else if (msg.t === 'fatal') {
          this.logStream?.write(`--- ${stamp()} fatal: ${msg.error.code}${msg.error.reason ? ` (${msg.error.reason})` : ''} ${msg.error.message}\n`);
          const missing = msg.error.code === 'STORAGE_FAILED' && msg.error.reason === 'missing';
          failStart(new ReplicaStartError(this.id, missing ? 'DATA_MISSING' : 'START_FAILED', `replica ${this.id} failed to start: ${msg.error.message}`));
        }
      });
      child.on('error', (err) => {
        this.logStream?.write(`--- ${stamp()} process error: ${err.message}\n`);
      });
      child.on('exit', (code, signal) => {
        this.logStream?.write(`--- ${stamp()} exit code ${code} signal ${signal}\n`);
        const expected = this.expectingExit;
        this.child = null;
        this.ready = false;
        this.lastExit = { code, signal };
        for (const [id, p] of this.pending) {
          clearTimeout(p.timer);
          p.reject(new ReplicaError(this.id, { name: 'NodeDown', code: 'NODE_DOWN', message: `replica ${this.id} exited` }));
          this.pending.delete(id);
        }
        const waiters = this.exitWaiters;
        this.exitWaiters = [];
        for (const w of waiters) w();
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          reject(
            startError ??
              new ReplicaStartError(this.id, 'START_FAILED', `replica ${this.id} exited while starting (code ${code}, signal ${signal}); see its log`),
          );
        }
        if (!expected) this.onUnexpectedExit(this, code, signal);
      });
    });
  }

  private setStatus(s: ReplicaStatus): void {
    this.lastStatus = s;
    this.lastStatusAt = Date.now();
  }

  /**
   * Sends one operation and resolves with the replica's answer. Rejects with a
   * {@link ReplicaError}: the replica's SynodError, `NODE_DOWN` if the process is not running
   * or exits, or `TIMEOUT` if no answer came within `timeoutMs`.
   */
  request<T = unknown>(op: IpcOperation, timeoutMs: number): Promise<T> {
    const child = this.child;
    if (!child || !child.connected) {
      return Promise.reject(
        new ReplicaError(this.id, { name: 'NodeDown', code: 'NODE_DOWN', message: `replica ${this.id} is not running`, unsent: true }),
      );
    }
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) {
          reject(new ReplicaError(this.id, { name: 'TimeoutError', code: 'TIMEOUT', message: `replica ${this.id} did not answer in time` }));
        }
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          if (op.kind === 'status' || op.kind === 'isolate' || op.kind === 'heal' || op.kind === 'transfer') this.setStatus(v as ReplicaStatus);
          resolve(v as T);
        },
        reject,
        timer,
      });
      try {
        child.send({ t: 'req', id, op });
      } catch (err) {
        this.pending.delete(id);
        clearTimeout(timer);
        reject(new ReplicaError(this.id, { name: 'NodeDown', code: 'NODE_DOWN', message: `replica ${this.id}: ${(err as Error).message}`, unsent: true }));
      }
    });
  }

  /** Resolves once the current process (if any) has exited. */
  waitForExit(): Promise<void> {
    if (!this.child) return Promise.resolve();
    return new Promise((r) => this.exitWaiters.push(r));
  }

  /** SIGKILLs the process (a crash: nothing is flushed) and resolves once it exited. */
  async kill(): Promise<void> {
    if (!this.child) return;
    this.expectingExit = true;
    const done = this.waitForExit();
    this.child.kill('SIGKILL');
    await done;
  }

  /** Asks the replica to stop cleanly; SIGKILLs it after `graceMs`. Resolves once it exited. */
  async stop(graceMs = 3000): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.expectingExit = true;
    const done = this.waitForExit();
    try {
      if (child.connected) child.send({ t: 'req', id: 0, op: { kind: 'shutdown' } });
      else child.kill('SIGTERM');
    } catch {
      child.kill('SIGTERM');
    }
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), graceMs);
    await done;
    clearTimeout(timer);
  }

  /** Closes the log file (after the process exited). */
  close(): void {
    this.logStream?.end();
    this.logStream = null;
  }
}
