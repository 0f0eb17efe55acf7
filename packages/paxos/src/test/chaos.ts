/**
 * A seeded random workload over a {@link Cluster}: delivery in random order, loss, duplication,
 * reordering, partitions, crashes and restarts, proposals and compactions. Used by the
 * randomized safety tests.
 */
import { type NodeId, SynodError } from '@synod/log';
import type { PaxosOptions } from '../options.js';
import { Cluster } from './cluster.js';

export interface ChaosStats {
  proposals: number;
  crashes: number;
  compactions: number;
  /** Membership changes the leader accepted. */
  changes: number;
}

/**
 * Runs `steps` random actions on a fresh cluster of `size` nodes. With `joiners`, those extra
 * nodes start empty and the leader is randomly asked to add and remove members.
 */
export function chaos(
  seed: number,
  size: number,
  steps: number,
  options: PaxosOptions = { electionTicks: 6 },
  joiners = 0,
): { c: Cluster; stats: ChaosStats } {
  const initial: NodeId[] = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const extra: NodeId[] = Array.from({ length: joiners }, (_, i) => `n${size + i + 1}`);
  const c = new Cluster({ ids: initial, joiners: extra, seed, options });
  const ids = [...initial, ...extra];
  const r = c.random;
  const stats: ChaosStats = { proposals: 0, crashes: 0, compactions: 0, changes: 0 };
  const pick = () => ids[r.int(0, ids.length - 1)]!;
  for (let step = 0; step < steps; step++) {
    const x = r.next();
    if (joiners > 0 && r.next() < 0.02) {
      const l = c.leader();
      if (l) {
        const id = pick();
        const type = (['addLearner', 'addVoter', 'remove'] as const)[r.int(0, 2)]!;
        try {
          c.core(l).proposeMembershipChange({ type, id });
          c.process(l);
          stats.changes++;
        } catch (err) {
          if (!(err instanceof SynodError)) throw err;
        }
      }
    }
    if (x < 0.4) {
      if (c.queue.length > 0) c.deliverMessage(c.queue.splice(r.int(0, c.queue.length - 1), 1)[0]!);
    } else if (x < 0.55) {
      c.tick();
    } else if (x < 0.6) {
      c.tick([pick()]);
    } else if (x < 0.75) {
      const id = r.next() < 0.6 ? (c.leader() ?? pick()) : pick();
      if (c.isUp(id)) {
        try {
          c.propose(id, `s${seed}-p${stats.proposals++}`);
        } catch (err) {
          if (!(err instanceof SynodError)) throw err;
        }
      }
    } else if (x < 0.8) {
      if (c.queue.length > 0) c.queue.splice(r.int(0, c.queue.length - 1), 1); // loss
    } else if (x < 0.82) {
      if (c.queue.length > 0) c.queue.push(c.queue[r.int(0, c.queue.length - 1)]!); // duplicate
    } else if (x < 0.84) {
      c.reorder();
    } else if (x < 0.85) {
      const id = pick();
      if (c.isUp(id)) {
        c.crash(id);
        stats.crashes++;
      }
    } else if (x < 0.88) {
      const down = ids.filter((id) => !c.isUp(id));
      if (down.length > 0) c.restart(down[r.int(0, down.length - 1)]!);
    } else if (x < 0.89) {
      c.heal();
      if (r.next() < 0.5) c.isolate(pick());
    } else if (x < 0.91) {
      const id = pick();
      if (c.isUp(id) && c.applied(id).length > 0) {
        c.compact(id);
        stats.compactions++;
      }
    } else {
      c.deliverAll(r.int(1, 30));
    }
  }
  return { c, stats };
}

/**
 * Heals the cluster, restarts every node, and requires a new write to be applied on every member
 * of the leader's configuration.
 */
export function healAndWrite(c: Cluster, tag: string): void {
  c.heal();
  for (const id of c.ids) if (!c.isUp(id)) c.restart(id);
  c.release();
  // Like a client: a proposal made to a leader that loses its leadership may be lost; retry.
  const key = `v:${tag}`;
  for (let attempt = 0; ; attempt++) {
    const l = c.waitLeader(3000);
    c.propose(l, tag);
    try {
      const cfg = c.core(l).status().config;
      const members = c.ids.filter((id) => cfg.voters.includes(id) || cfg.learners.includes(id));
      c.runUntil(() => members.every((id) => c.applied(id).includes(key)), 200);
      break;
    } catch (err) {
      if (attempt >= 10) throw err;
    }
  }
  c.checkPrefixes();
}
