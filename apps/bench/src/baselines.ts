/**
 * The physical limits of this machine, measured in the same run as the cells:
 *
 * - `sqlite-append-single-<N>B`: entries/s appended to `@synod/storage-sqlite` with its own
 *   settings (WAL, synchronous=FULL), one entry per `persist` (one transaction, one fsync);
 * - `sqlite-append-batched-<N>B`: the same with 256 entries per `persist` (group commit);
 * - `inproc-roundtrip-serial`: request/response round trips per second between two endpoints
 *   of `@synod/transport-memory` on real timers, one in flight;
 * - `inproc-roundtrip-pipelined`: the same with 256 in flight, one message per `send`;
 * - `ws-roundtrip-serial` / `ws-roundtrip-pipelined`: the same between two OS processes over a
 *   raw `ws` WebSocket on loopback (16-byte binary frames).
 */
import { EntryType, type Entry, realScheduler, type Message } from '@synod/log';
import { SqliteStorage } from '@synod/storage-sqlite';
import { MemoryNetwork } from '@synod/transport-memory';
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { makePayload } from './components.js';
import { BASELINE } from './ratio.js';

/** One measured baseline. */
export interface BaselineResult {
  readonly name: string;
  /** Rate per second (entries or round trips). */
  readonly opsPerSec: number;
  /** `entries/s` or `round trips/s`. */
  readonly unit: string;
  /** What was measured, in one sentence. */
  readonly description: string;
  /** Every sample taken (the rate kept is the best). */
  readonly samples?: readonly number[];
}

/** In-flight window of the pipelined baselines, and the batch size of the batched SQLite one. */
export const PIPELINE_WINDOW = 256;

/**
 * Appends entries of `payloadBytes` to a fresh SqliteStorage for `durationMs`, `batch` entries
 * per `persist`, and returns entries per second.
 */
export function measureSqliteAppend(payloadBytes: number, batch: number, durationMs: number, tmpDir = tmpdir()): number {
  const dir = mkdtempSync(join(tmpDir, 'synod-bench-sqlite-'));
  const storage = new SqliteStorage({ path: join(dir, 'baseline.db') });
  try {
    storage.load();
    const data = makePayload(payloadBytes);
    let index = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < durationMs) {
      const entries: Entry[] = new Array(batch);
      for (let i = 0; i < batch; i++) entries[i] = { index: ++index, term: 1, type: EntryType.Normal, data };
      storage.persist({ entries });
      t = performance.now();
    }
    return (index / (t - t0)) * 1000;
  } finally {
    storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface PingMessage extends Message {
  readonly seq: number;
}

/**
 * Round trips per second between two endpoints of a MemoryNetwork on real timers, with
 * `window` requests in flight (each message sent with its own `send` call).
 */
export async function measureInprocRoundTrips(window: number, durationMs: number): Promise<number> {
  const net = new MemoryNetwork<PingMessage>({ scheduler: realScheduler });
  const a = net.connect('a');
  const b = net.connect('b');
  const codec = { write() {}, read(): PingMessage { throw new Error('unused'); } };
  let done = 0;
  let stopAt = Infinity;
  let t0 = 0;
  let tEnd = 0;
  let inFlight = 0;
  return new Promise<number>((resolve) => {
    b.start({ codec, onMessage: (m) => b.send([{ type: 2, from: 'b', to: 'a', seq: m.seq }]) });
    a.start({
      codec,
      onMessage: (m) => {
        done++;
        inFlight--;
        const now = performance.now();
        if (now < stopAt) {
          inFlight++;
          a.send([{ type: 1, from: 'a', to: 'b', seq: m.seq + 1 }]);
        } else if (inFlight === 0) {
          tEnd = now;
          void Promise.all([a.close(), b.close()]).then(() => resolve((done / (tEnd - t0)) * 1000));
        }
      },
    });
    t0 = performance.now();
    stopAt = t0 + durationMs;
    for (let i = 0; i < window; i++) {
      inFlight++;
      a.send([{ type: 1, from: 'a', to: 'b', seq: i * 1_000_000 }]);
    }
  });
}

/**
 * Round trips per second over a raw `ws` WebSocket between this process and an echo server in
 * a child process (`childEntry` run with role `echo`), `window` 16-byte frames in flight.
 */
export async function measureWsRoundTrips(childEntry: string, windows: readonly number[], durationMs: number, execArgv: readonly string[] = []): Promise<number[]> {
  const child = fork(childEntry, ['echo'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [...execArgv] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { t: string; port: number }) => (m.t === 'listening' ? resolve(m.port) : reject(new Error('bad echo reply'))));
      child.once('exit', (code) => reject(new Error(`echo server exited with ${code}`)));
    });
    const out: number[] = [];
    for (const w of windows) out.push(await wsRoundTrips(port, w, durationMs));
    return out;
  } finally {
    killChild(child);
  }
}

async function wsRoundTrips(port: number, window: number, durationMs: number): Promise<number> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const frame = makePayload(16);
  // Warm the connection up for 200 ms first.
  for (const [ms, counted] of [
    [Math.min(200, durationMs), false],
    [durationMs, true],
  ] as const) {
    const rate = await new Promise<number>((resolve) => {
      let done = 0;
      let inFlight = 0;
      const t0 = performance.now();
      const stopAt = t0 + ms;
      const onMessage = () => {
        done++;
        inFlight--;
        const now = performance.now();
        if (now < stopAt) {
          inFlight++;
          ws.send(frame);
        } else if (inFlight === 0) {
          ws.off('message', onMessage);
          resolve((done / (now - t0)) * 1000);
        }
      };
      ws.on('message', onMessage);
      for (let i = 0; i < window; i++) {
        inFlight++;
        ws.send(frame);
      }
    });
    if (counted) {
      ws.close();
      return rate;
    }
  }
  throw new Error('unreachable');
}

/** Kills a child process this module started, by its pid. */
export function killChild(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** Options of {@link measureBaselines}. */
export interface BaselineOptions {
  /** Payload sizes of the SQLite baselines. */
  readonly payloads: readonly number[];
  /** Measurement time of each baseline, in ms. */
  readonly durationMs: number;
  /** The bench's child entry (dist/child.js), for the ws echo server. */
  readonly childEntry: string;
  /** Skip the ws baselines. */
  readonly skipWs?: boolean;
  /** Node flags of the echo server process. */
  readonly childExecArgv?: readonly string[];
  readonly tmpDir?: string;
  /** Called before each baseline with its name. */
  readonly onStep?: (name: string) => void;
}

/** Measures every baseline, in a fixed order. */
export async function measureBaselines(o: BaselineOptions): Promise<BaselineResult[]> {
  const out: BaselineResult[] = [];
  for (const p of o.payloads) {
    o.onStep?.(BASELINE.sqliteSingle(p));
    out.push({
      name: BASELINE.sqliteSingle(p),
      opsPerSec: measureSqliteAppend(p, 1, o.durationMs, o.tmpDir),
      unit: 'entries/s',
      description: `SqliteStorage.persist of one ${p}-byte entry per transaction (WAL, synchronous=FULL): the fsync rate`,
    });
    o.onStep?.(BASELINE.sqliteBatched(p));
    out.push({
      name: BASELINE.sqliteBatched(p),
      opsPerSec: measureSqliteAppend(p, PIPELINE_WINDOW, o.durationMs, o.tmpDir),
      unit: 'entries/s',
      description: `SqliteStorage.persist of ${PIPELINE_WINDOW} ${p}-byte entries per transaction (group commit)`,
    });
  }
  o.onStep?.(BASELINE.inprocSerial);
  out.push({
    name: BASELINE.inprocSerial,
    opsPerSec: await measureInprocRoundTrips(1, o.durationMs),
    unit: 'round trips/s',
    description: 'request/response through @synod/transport-memory on real timers, one in flight',
  });
  o.onStep?.(BASELINE.inprocPipelined);
  out.push({
    name: BASELINE.inprocPipelined,
    opsPerSec: await measureInprocRoundTrips(PIPELINE_WINDOW, o.durationMs),
    unit: 'round trips/s',
    description: `request/response through @synod/transport-memory, ${PIPELINE_WINDOW} in flight, one message per send`,
  });
  if (!o.skipWs) {
    o.onStep?.(`${BASELINE.wsSerial} + ${BASELINE.wsPipelined}`);
    const [serial, pipelined] = await measureWsRoundTrips(o.childEntry, [1, PIPELINE_WINDOW], o.durationMs, o.childExecArgv ?? []);
    out.push({
      name: BASELINE.wsSerial,
      opsPerSec: serial!,
      unit: 'round trips/s',
      description: '16-byte binary frames echoed by another process over a raw ws WebSocket on loopback, one in flight',
    });
    out.push({
      name: BASELINE.wsPipelined,
      opsPerSec: pipelined!,
      unit: 'round trips/s',
      description: `the same with ${PIPELINE_WINDOW} frames in flight`,
    });
  }
  return out;
}
