/**
 * Randomized safety: many seeds of random ticks, deliveries (with reordering, drops and
 * duplicates), partitions, crashes and restarts, proposals, reads, compactions, transfers and
 * membership changes, checking Raft's safety properties after every step (Raft §5.2-5.4,
 * Figure 3) and convergence at the end.
 */
import { createRandom, type Entry, type Random, utf8Decode } from '@synod/log';
import { describe, expect, it } from 'vitest';
import type { RaftMessage } from './messages.js';
import { cmd, logOf, TestNetwork } from './test/network.js';

const SEEDS = 200;
const STEPS = 600;

interface Seen {
  leaders: Map<number, string>;
  committed: Map<number, { term: number; data: string; observedTerm: number }>;
  applied: Map<number, string>;
  appliedChecked: Map<string, number>;
  commit: WeakMap<object, number>;
  persistedCommit: Map<string, number>;
  leaderLogs: Map<string, { term: number; terms: Map<number, number> }>;
}

const dec = { decode: utf8Decode };
const key = (e: Entry) => `${e.type}:${dec.decode(e.data)}`;

function check(net: TestNetwork, seen: Seen, where: string): void {
  const fail = (msg: string) => {
    throw new Error(`${where}: ${msg}`);
  };
  const alive = [...net.nodes.values()].filter((n) => n.alive);
  for (const n of alive) {
    const st = n.core.status();
    const log = logOf(n.core);
    // applied <= committed <= last; snapshot <= applied
    if (!(st.snapshotIndex <= st.appliedIndex && st.appliedIndex <= st.commitIndex && st.commitIndex <= st.lastIndex)) {
      fail(`${n.id}: snapshot ${st.snapshotIndex} applied ${st.appliedIndex} commit ${st.commitIndex} last ${st.lastIndex}`);
    }
    // commit monotonic (in memory while up; durable across restarts)
    // (a restarted core starts from the durable commit, which never goes back; see below)
    const pc = seen.commit.get(n.core) ?? 0;
    if (st.commitIndex < pc) fail(`${n.id}: commit went back ${pc} -> ${st.commitIndex}`);
    seen.commit.set(n.core, st.commitIndex);
    // what was applied (handed to the state machine) is never undone by a restart
    if (st.commitIndex < n.appliedIndex) fail(`${n.id}: commit ${st.commitIndex} below applied state ${n.appliedIndex}`);
    const dc = n.storage.load().hardState.commit;
    if (dc < (seen.persistedCommit.get(n.id) ?? 0)) fail(`${n.id}: durable commit went back`);
    seen.persistedCommit.set(n.id, dc);
    // Election Safety
    if (st.role === 'leader') {
      const other = seen.leaders.get(st.term);
      if (other !== undefined && other !== n.id) fail(`two leaders in term ${st.term}: ${other} and ${n.id}`);
      seen.leaders.set(st.term, n.id);
      // Leader Append-Only
      let rec = seen.leaderLogs.get(n.id);
      if (!rec || rec.term !== st.term) {
        rec = { term: st.term, terms: new Map() };
        seen.leaderLogs.set(n.id, rec);
      }
      for (const [i, t] of rec.terms) {
        if (i > log.offset && log.term(i) !== t) fail(`leader ${n.id} rewrote index ${i}`);
      }
      for (let i = log.offset + 1; i <= log.lastIndex(); i++) rec.terms.set(i, log.term(i)!);
    } else {
      seen.leaderLogs.delete(n.id);
    }
    // Record committed entries
    for (let i = Math.max(log.offset + 1, 1); i <= st.commitIndex; i++) {
      const e = log.entry(i)!;
      const c = seen.committed.get(i);
      if (!c) seen.committed.set(i, { term: e.term, data: key(e), observedTerm: st.term });
      else if (c.term !== e.term || c.data !== key(e)) fail(`${n.id}: committed index ${i} differs (${c.term} vs ${e.term})`);
    }
    // State Machine Safety
    const from = seen.appliedChecked.get(n.id) ?? 0;
    for (let k = from; k < n.applied.length; k++) {
      const a = n.applied[k]!;
      const prev = seen.applied.get(a.index);
      if (prev === undefined) seen.applied.set(a.index, a.data);
      else if (prev !== a.data) fail(`${n.id}: applied ${a.data} at ${a.index}, another node applied ${prev}`);
    }
    seen.appliedChecked.set(n.id, n.applied.length);
  }
  // Leader Completeness: a leader of a later term holds every committed entry.
  for (const n of alive) {
    const st = n.core.status();
    if (st.role !== 'leader') continue;
    const log = logOf(n.core);
    for (const [i, c] of seen.committed) {
      if (c.observedTerm < st.term && i > log.offset && (log.term(i) !== c.term || key(log.entry(i)!) !== c.data)) {
        fail(`leader ${n.id} (term ${st.term}) lacks committed index ${i}`);
      }
    }
  }
  // Log Matching: same index and term => same entry and identical prefixes.
  for (let x = 0; x < alive.length; x++) {
    for (let y = x + 1; y < alive.length; y++) {
      const a = logOf(alive[x]!.core);
      const b = logOf(alive[y]!.core);
      const lo = Math.max(a.offset, b.offset) + 1;
      const hi = Math.min(a.lastIndex(), b.lastIndex());
      let top = -1;
      for (let i = hi; i >= lo; i--) {
        if (a.term(i) === b.term(i)) {
          top = i;
          break;
        }
      }
      for (let i = lo; i <= top; i++) {
        if (a.term(i) !== b.term(i) || key(a.entry(i)!) !== key(b.entry(i)!)) fail(`log matching broken between ${alive[x]!.id} and ${alive[y]!.id} at ${i}`);
      }
    }
  }
}

function randomRun(seed: number): { leaders: number; committed: number } {
  const rng: Random = createRandom(seed);
  const five = seed % 2 === 0;
  const membership = seed % 3 === 0;
  const asyncStorage = Math.floor(seed / 2) % 2 === 1;
  const ids = five ? ['a', 'b', 'c', 'd', 'e'] : ['a', 'b', 'c'];
  const joiners = membership ? [ids[ids.length - 1]!] : [];
  const net = new TestNetwork(ids, {
    seed,
    joiners,
    codec: seed % 5 === 0,
    asyncStorage,
    options: {
      preVote: seed % 4 !== 1,
      checkQuorum: seed % 4 !== 2,
      electionTicks: 3 + (seed % 4),
      maxSizePerMsg: 1 + (seed % 3) * 20,
      maxInflightMsgs: 1 + (seed % 8),
      trailingEntries: seed % 7,
      snapshotChunkBytes: 16 + (seed % 50),
      leaseRead: seed % 4 !== 2 && 3 + (seed % 4) >= 4,
    },
  });
  const seen: Seen = {
    leaders: new Map(),
    committed: new Map(),
    applied: new Map(),
    appliedChecked: new Map(),
    commit: new WeakMap(),
    persistedCommit: new Map(),
    leaderLogs: new Map(),
  };
  const dropRate = rng.next() * 0.15;
  let proposals = 0;
  let readId = 1;
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(0, xs.length - 1)]!;
  const crashed = () => ids.filter((i) => !net.node(i).alive);
  for (let step = 0; step < STEPS; step++) {
    const r = rng.next();
    if (r < 0.22) {
      for (const id of ids) if (net.node(id).alive) net.core(id).tick();
      net.drainAll();
    } else if (r < 0.4 && asyncStorage) {
      // finish the storage write of some nodes (their messages leave only now)
      for (const id of ids) if (rng.next() < 0.7) net.completeIo(id);
    } else if (r < 0.6) {
      // deliver a few messages in random order, dropping or duplicating some
      net.drainAll();
      const n = rng.int(1, 8);
      for (let k = 0; k < n && net.queue.length > 0; k++) {
        const i = rng.int(0, net.queue.length - 1);
        const m = net.queue.splice(i, 1)[0] as RaftMessage;
        if (rng.next() < dropRate) continue;
        if (rng.next() < 0.03) net.queue.push(m); // duplicate: it will be delivered again later
        if (!cut.has(`${m.from}>${m.to}`)) net.deliver(m);
      }
    } else if (r < 0.72) {
      const id = rng.next() < 0.6 ? (net.leader() ?? pick(ids)) : pick(ids);
      if (net.node(id).alive) {
        try {
          net.core(id).propose(cmd(`s${seed}-${proposals++}`));
        } catch {
          /* refused: fine */
        }
      }
    } else if (r < 0.82) {
      // crash (the leader, more often than not) or restart
      const down = crashed();
      if (down.length > 0 && rng.next() < 0.6) net.restart(pick(down));
      else if (down.length < Math.floor((ids.length - 1) / 2)) net.crash(rng.next() < 0.6 ? (net.leader() ?? pick(ids)) : pick(ids));
    } else if (r < 0.9) {
      cut.clear();
      const l = net.leader();
      if (l && rng.next() < 0.4) {
        // cut the leader off, possibly with one companion
        const mate = rng.next() < 0.5 ? pick(ids) : l;
        for (const b of ids) {
          if (b === l || b === mate) continue;
          for (const a of [l, mate]) {
            cut.add(`${a}>${b}`);
            cut.add(`${b}>${a}`);
          }
        }
      } else if (rng.next() < 0.6) {
        const shuffled = [...ids].sort(() => rng.next() - 0.5);
        const k = rng.int(1, ids.length - 1);
        const g1 = shuffled.slice(0, k);
        const g2 = shuffled.slice(k);
        for (const a of g1) for (const b of g2) {
          cut.add(`${a}>${b}`);
          cut.add(`${b}>${a}`);
        }
      }
    } else if (r < 0.93) {
      const id = pick(ids);
      const node = net.node(id);
      if (node.alive) {
        const st = node.core.status();
        if (st.appliedIndex > st.snapshotIndex) node.core.compact(st.appliedIndex, net.snapshotData(node));
      }
    } else if (r < 0.95) {
      const id = pick(ids);
      if (net.node(id).alive) {
        try {
          net.core(id).read(readId++, rng.next() < 0.5 ? 'linearizable' : 'lease');
        } catch {
          /* lease reads disabled for this seed */
        }
      }
    } else if (r < 0.97) {
      const l = net.leader();
      if (l) {
        try {
          net.core(l).transferLeadership(pick(ids));
        } catch {
          /* not a voter: fine */
        }
      }
    } else if (membership) {
      const l = net.leader();
      if (l) {
        const voters = net.status(l).config.voters;
        const id = pick(ids);
        const kind = rng.next();
        try {
          if (kind < 0.4) net.core(l).proposeMembershipChange({ type: 'addVoter', id });
          else if (kind < 0.6) net.core(l).proposeMembershipChange({ type: 'addLearner', id });
          else if (voters.length > 3) net.core(l).proposeMembershipChange({ type: 'remove', id });
        } catch {
          /* refused: fine */
        }
      }
    }
    if (!asyncStorage) net.drainAll();
    check(net, seen, `seed ${seed} step ${step}`);
  }
  // Heal everything and check convergence: identical state machines, every commit applied.
  cut.clear();
  for (const id of crashed()) net.restart(id);
  const members = () => {
    const l = net.leader();
    if (!l) return [];
    const c = net.status(l).config;
    return [...c.voters, ...c.learners];
  };
  let converged = false;
  for (let t = 0; t < 400 && !converged; t++) {
    net.tick(1);
    check(net, seen, `seed ${seed} heal ${t}`);
    const l = net.leader();
    if (l && net.status(l).commitIndex === net.status(l).lastIndex) {
      const ms = members();
      converged = ms.every((id) => net.status(id).appliedIndex === net.status(l).commitIndex);
    }
  }
  if (!converged) throw new Error(`seed ${seed}: did not converge after healing`);
  const l = net.leader()!;
  for (const id of members()) expect(net.appliedData(id)).toEqual(net.appliedData(l));
  // Everything ever committed is in the final state machine (nothing acknowledged is lost).
  const final = new Set(net.appliedData(l));
  for (const [, data] of seen.applied) if (!final.has(data)) throw new Error(`seed ${seed}: committed ${data} lost`);
  return { leaders: seen.leaders.size, committed: net.status(l).commitIndex };
}
const cut = new Set<string>();

/**
 * In the style of the 6.824 "Figure 8" tests: leaders crash right after accepting commands,
 * before their entries spread, while crashed servers come back; logs diverge term after term.
 */
function figure8Run(seed: number): { leaders: number; committed: number } {
  const rng: Random = createRandom(seed * 31 + 7);
  const ids = ['a', 'b', 'c', 'd', 'e'];
  const net = new TestNetwork(ids, {
    seed,
    codec: false,
    asyncStorage: seed % 2 === 0,
    options: { preVote: seed % 3 === 0, checkQuorum: false, electionTicks: 3 + (seed % 3), maxSizePerMsg: seed % 4 === 0 ? 64 : 1, maxInflightMsgs: 4 },
  });
  const seen: Seen = { leaders: new Map(), committed: new Map(), applied: new Map(), appliedChecked: new Map(), commit: new WeakMap(), persistedCommit: new Map(), leaderLogs: new Map() };
  const up = () => ids.filter((i) => net.node(i).alive);
  let n = 0;
  for (let step = 0; step < 400; step++) {
    const l = net.leader();
    if (l) {
      try {
        net.core(l).propose(cmd(`f${seed}-${n++}`));
      } catch {
        /* refused */
      }
    }
    const deliveries = rng.next() < 0.1 ? rng.int(10, 40) : rng.int(0, 4);
    for (let k = 0; k < deliveries; k++) {
      for (const id of up()) if (rng.next() < 0.5) net.completeIo(id);
      net.drainAll();
      if (net.queue.length === 0) break;
      const m = net.queue.splice(rng.int(0, net.queue.length - 1), 1)[0]!;
      net.deliver(m);
    }
    if (rng.next() < 0.5) for (const id of up()) net.core(id).tick();
    net.drainAll();
    if (l && net.node(l).alive && rng.next() < 0.15) net.crash(l);
    if (up().length < 3) net.restart(ids.filter((i) => !net.node(i).alive)[rng.int(0, 4 - up().length)]!);
    net.drainAll();
    check(net, seen, `figure8 seed ${seed} step ${step}`);
  }
  for (const id of ids) if (!net.node(id).alive) net.restart(id);
  let done = false;
  for (let t = 0; t < 300 && !done; t++) {
    net.tick(1);
    check(net, seen, `figure8 seed ${seed} heal ${t}`);
    const x = net.leader();
    done = x !== null && net.status(x).commitIndex === net.status(x).lastIndex && ids.every((id) => net.status(id).appliedIndex === net.status(x).commitIndex);
  }
  if (!done) throw new Error(`figure8 seed ${seed}: did not converge`);
  const x = net.leader()!;
  for (const id of ids) expect(net.appliedData(id)).toEqual(net.appliedData(x));
  return { leaders: seen.leaders.size, committed: net.status(x).commitIndex };
}

describe('randomized safety (Election Safety, Log Matching, Leader Completeness, State Machine Safety)', () => {
  it(`holds over ${SEEDS} seeds x ${STEPS} random steps, and every run converges once healed`, () => {
    let leaders = 0;
    let committed = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = randomRun(seed);
      leaders += r.leaders;
      committed += r.committed;
    }
    // The runs did real work: many elections and many commits.
    expect(leaders).toBeGreaterThan(SEEDS);
    expect(committed).toBeGreaterThan(SEEDS * 3);
  });

  it(`holds over ${SEEDS} seeds of Figure 8-style leader crashes (5 nodes, 400 steps), and every run converges`, () => {
    let leaders = 0;
    let committed = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = figure8Run(seed);
      leaders += r.leaders;
      committed += r.committed;
    }
    expect(leaders).toBeGreaterThan(SEEDS * 5);
    expect(committed).toBeGreaterThan(SEEDS * 10);
  });
});
