/**
 * Which physical limit bounds a cell, and the cell's ratio to it.
 *
 * Every cell is bounded by its transport and, with SQLite, by its storage. Each bound has two
 * baselines, one per regime: with ONE client an operation cannot be batched with another, so
 * the bound is the serial rate (one SQLite transaction per entry, one round trip at a time);
 * with more clients the runtime batches (many entries per transaction and per message), so the
 * bound is the pipelined/batched rate. The cell's limit is the lowest applicable baseline, and
 * `ratioToLimit = opsPerSec / limit`. Baselines count entries (SQLite) or messages (transports)
 * per second, so batching can push a ratio above 1: a replicated write then costs less than one
 * raw transport message.
 */
import type { CellSpec } from './matrix.js';

/** A measured baseline: name and rate per second. */
export interface BaselineRate {
  readonly name: string;
  readonly opsPerSec: number;
}

/** Names of the baselines, built the same way by the measuring code and by {@link limitFor}. */
export const BASELINE = {
  sqliteSingle: (payloadBytes: number) => `sqlite-append-single-${payloadBytes}B`,
  sqliteBatched: (payloadBytes: number) => `sqlite-append-batched-${payloadBytes}B`,
  inprocSerial: 'inproc-roundtrip-serial',
  inprocPipelined: 'inproc-roundtrip-pipelined',
  wsSerial: 'ws-roundtrip-serial',
  wsPipelined: 'ws-roundtrip-pipelined',
} as const;

/** The baseline names that may bound `cell` (present or not in a run). */
export function candidateLimits(cell: Pick<CellSpec, 'transport' | 'storage' | 'clients' | 'payloadBytes'>): string[] {
  const serial = cell.clients <= 1;
  const out: string[] = [];
  if (cell.transport === 'memory') out.push(serial ? BASELINE.inprocSerial : BASELINE.inprocPipelined);
  else out.push(serial ? BASELINE.wsSerial : BASELINE.wsPipelined);
  if (cell.storage === 'sqlite') out.push(serial ? BASELINE.sqliteSingle(cell.payloadBytes) : BASELINE.sqliteBatched(cell.payloadBytes));
  return out;
}

/** The lowest measured baseline among the cell's candidates, or null if none was measured. */
export function limitFor(cell: Pick<CellSpec, 'transport' | 'storage' | 'clients' | 'payloadBytes'>, baselines: readonly BaselineRate[]): BaselineRate | null {
  let best: BaselineRate | null = null;
  for (const name of candidateLimits(cell)) {
    const b = baselines.find((x) => x.name === name);
    if (!b || !(b.opsPerSec > 0)) continue;
    if (!best || b.opsPerSec < best.opsPerSec) best = b;
  }
  return best;
}

/** `opsPerSec / limit.opsPerSec`, rounded to 4 decimals; null without a limit. */
export function ratioToLimit(opsPerSec: number, limit: BaselineRate | null): number | null {
  if (!limit || !(limit.opsPerSec > 0) || !Number.isFinite(opsPerSec) || opsPerSec < 0) return null;
  return Math.round((opsPerSec / limit.opsPerSec) * 10_000) / 10_000;
}
