/**
 * The orchestrator's side of a ws replica process: fork it, send it requests, wait for answers
 * and events, and kill it (by its own pid, never by name).
 */
import { type ChildProcess, fork } from 'node:child_process';
import type { ReplicaInit, ReplicaReply, ReplicaRequest } from './ipc.js';

type RequestBody = ReplicaRequest extends infer R ? (R extends { rid: number } ? Omit<R, 'rid'> : never) : never;

/** A replica error reported over IPC. */
export class ReplicaRequestError extends Error {
  constructor(
    readonly code: string,
    name: string,
    message: string,
  ) {
    super(message);
    this.name = name;
  }
}

/** One forked replica process. */
export class ReplicaHandle {
  readonly child: ChildProcess;
  address = '';
  private nextRid = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private readonly exited: Promise<void>;
  /** Called on `window` events (the leader's measurement window opening or closing). */
  onWindow: ((phase: 'start' | 'end') => void) | null = null;
  fatal: string | null = null;

  constructor(
    readonly id: string,
    childEntry: string,
    execArgv: readonly string[] = [],
  ) {
    this.child = fork(childEntry, ['replica'], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
      execArgv: [...execArgv],
    });
    this.exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.on('message', (m: ReplicaReply) => {
      if (m.t === 'reply') {
        const p = this.pending.get(m.rid);
        if (!p) return;
        this.pending.delete(m.rid);
        if (m.ok) p.resolve(m.value);
        else p.reject(new ReplicaRequestError(m.error.code, m.error.name, m.error.message));
      } else if (m.t === 'window') {
        this.onWindow?.(m.phase);
      } else if (m.t === 'fatal') {
        this.fatal = m.message;
      }
    });
    this.child.once('exit', (code, signal) => {
      for (const p of this.pending.values()) p.reject(new ReplicaRequestError('EXITED', 'ReplicaExited', `replica ${id} exited (${signal ?? code})`));
      this.pending.clear();
    });
  }

  /**
   * Sends the init message and resolves with the replica's ws address once it runs; rejects
   * after `timeoutMs` (default 120 s: a child that compiles TypeScript through tsx on a loaded
   * CI machine can take tens of seconds to start; a built one takes well under one).
   */
  start(init: Omit<ReplicaInit, 't' | 'id'>, timeoutMs = 120_000): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`replica ${this.id} did not start within ${timeoutMs} ms`)), timeoutMs);
      const onMsg = (m: ReplicaReply) => {
        if (m.t === 'ready') {
          clearTimeout(timer);
          this.child.off('message', onMsg);
          this.address = m.address;
          resolve(m.address);
        }
      };
      this.child.on('message', onMsg);
      this.child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`replica ${this.id} exited during start (${code})`));
      });
      this.child.send({ ...init, t: 'init', id: this.id } satisfies ReplicaInit);
    });
  }

  /** Sends one request and resolves with its answer; rejects with {@link ReplicaRequestError}. */
  request<T>(body: RequestBody): Promise<T> {
    if (!this.alive) return Promise.reject(new ReplicaRequestError('EXITED', 'ReplicaExited', `replica ${this.id} is not running`));
    const rid = this.nextRid++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(rid, { resolve: resolve as (v: unknown) => void, reject });
      try {
        this.child.send({ ...body, rid } as ReplicaRequest);
      } catch (err) {
        this.pending.delete(rid);
        reject(err);
      }
    });
  }

  /** Whether the process still runs. */
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGKILLs the process (a crash) and resolves when it is gone. */
  async kill(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }

  /**
   * Asks the replica to stop cleanly (so a CPU profile gets written), then SIGKILLs it if it
   * has not exited within `graceMs`.
   */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.alive) return;
    this.request({ t: 'stop' }).catch(() => {});
    const timer = setTimeout(() => {
      if (this.alive) this.child.kill('SIGKILL');
    }, graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
