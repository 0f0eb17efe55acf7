/**
 * Helpers shared by every cell runner: finding the leader, proposing through it, and sampling
 * this process's CPU time and peak RSS.
 */
import { type ReplicatedLog, SynodError } from '@synod/log';

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `logs` every 5 ms until one reports itself leader; rejects after `timeoutMs`.
 */
export async function waitForLeader<L extends ReplicatedLog<any, any, any>>(logs: readonly L[], timeoutMs = 30_000): Promise<L> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const l of logs) {
      if (!l.running) continue;
      const s = l.status();
      if (s.role === 'leader') return l;
    }
    if (Date.now() > deadline) throw new Error(`no leader elected within ${timeoutMs} ms`);
    await sleep(5);
  }
}

/**
 * Proposes `command` until one proposal commits through a leader (the first write of a term
 * also waits for the new leader's no-op). Used before measuring, so warm-up starts from a
 * leader that can commit.
 */
export async function firstCommit<L extends ReplicatedLog<any, any, any>>(logs: readonly L[], command: Uint8Array, timeoutMs = 30_000): Promise<L> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown = null;
  while (Date.now() < deadline) {
    const leader = await waitForLeader(logs, Math.max(1, deadline - Date.now()));
    try {
      await leader.propose(command, { timeoutMs: 2_000 });
      return leader;
    } catch (err) {
      lastErr = err;
      await sleep(10);
    }
  }
  throw new Error(`no write committed within ${timeoutMs} ms: ${(lastErr as Error)?.message ?? 'no leader'}`);
}

/** The error code of a synod error (`NOT_LEADER`, `TIMEOUT`...), or the error's name. */
export function errorCode(err: unknown): string {
  if (err instanceof SynodError) return err.code;
  return (err as Error)?.name ?? 'Error';
}

/** CPU time of this process so far, in microseconds (user + system). */
export function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Peak resident set size of this process so far, in MiB. */
export function peakRssMb(): number {
  // resourceUsage().maxRSS is in KiB on Linux.
  return Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10;
}
