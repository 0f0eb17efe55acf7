/**
 * A membership client over a {@link Cluster} shaped like the demo gateway
 * (apps/demo-cluster/src/supervisor.ts): one change at a time; each change is sent to the
 * current leader and "resolves" once the node it was sent to has applied a configuration that
 * satisfies it (what `ReplicatedLog.changeMembership` waits for); on `NotLeaderError`,
 * `ConfigChangeInProgressError` or a timeout it is sent again, possibly to another leader.
 *
 * The test compares the configuration chosen in the log (the cluster's oracle) with a model that
 * applies each resolved change: once a change resolved, the chosen configuration must stay the
 * model's until the next change is asked for, and may only ever be the model's or the model
 * plus the change in flight. A configuration entry computed against an older configuration and
 * chosen later (a "ghost" member) breaks that.
 */
import {
  type Configuration,
  decodeConfiguration,
  type MembershipChange,
  type NodeId,
  SynodError,
} from '@synod/log';
import { PaxosMessageType as T } from '../messages.js';
import { Cluster, isType } from './cluster.js';

/** The configuration `id` applied last (its state machine holds the value keys of applied slots). */
export function appliedConfig(c: Cluster, id: NodeId): Configuration {
  const sm = c.applied(id);
  for (let i = sm.length - 1; i >= 0; i--) {
    const k = sm[i]!;
    if (k.startsWith('config:')) return decodeConfiguration(new Uint8Array(k.slice(7).split(',').map(Number)));
  }
  return c.initial;
}

/** Whether `cfg` satisfies `change` (the runtime's rule for resolving `changeMembership`). */
export function satisfies(cfg: Configuration, change: MembershipChange): boolean {
  switch (change.type) {
    case 'addLearner':
      return cfg.learners.includes(change.id);
    case 'addVoter':
      return cfg.voters.includes(change.id);
    case 'remove':
      return !cfg.voters.includes(change.id) && !cfg.learners.includes(change.id);
  }
}

/** The model's configuration after `change`, as sorted member lists. */
export function modelApply(cfg: Configuration, change: MembershipChange): Configuration {
  const voters = cfg.voters.filter((v) => v !== change.id);
  const learners = cfg.learners.filter((v) => v !== change.id);
  if (change.type === 'addVoter') voters.push(change.id);
  if (change.type === 'addLearner') learners.push(change.id);
  return { voters: voters.sort(), learners: learners.sort() };
}

/** Same members (ids only, order ignored). */
export function sameMembers(a: Configuration, b: Configuration): boolean {
  const eq = (x: readonly string[], y: readonly string[]) => x.length === y.length && [...x].sort().join() === [...y].sort().join();
  return eq(a.voters, b.voters) && eq(a.learners, b.learners);
}

const show = (c: Configuration) => `voters [${[...c.voters].sort().join(',')}] learners [${[...c.learners].sort().join(',')}]`;

export class MembershipClient {
  /** The configuration the resolved changes add up to. */
  model: Configuration;
  /** Changes resolved so far, in order. */
  readonly resolved: MembershipChange[] = [];
  /** Attempts sent (including retries). */
  attempts = 0;
  retries = 0;
  private queue: MembershipChange[];
  private current: { change: MembershipChange; node: NodeId | null; sentAt: number; waitUntil: number } | null = null;
  private steps = 0;

  constructor(
    private readonly c: Cluster,
    plan: readonly MembershipChange[],
    /** Steps after which an unresolved attempt is sent again (the gateway's TIMEOUT retry). */
    private readonly timeoutSteps = 60,
    /** Called with the leader right before a change is sent to it, and right after it accepted one. */
    private readonly hooks: { beforeSend?: (leader: NodeId, retry: boolean) => void; afterSend?: (leader: NodeId) => void } = {},
  ) {
    this.model = { voters: [...c.initial.voters].sort(), learners: [...c.initial.learners].sort() };
    this.queue = [...plan];
  }

  /** Every change of the plan resolved. */
  get done(): boolean {
    return this.current === null && this.queue.length === 0;
  }

  /** The change being worked on. */
  get inFlight(): MembershipChange | null {
    return this.current?.change ?? null;
  }

  /**
   * One step of the client: resolve, retry or send. `onResolved` runs after a change resolves
   * (e.g. to stop a removed member's process). Throws if the chosen configuration is neither the
   * model's nor the model's plus the change in flight.
   */
  step(onResolved?: (change: MembershipChange) => void): void {
    this.steps++;
    this.check();
    const cur = this.current;
    if (cur === null) {
      const next = this.queue.shift();
      if (!next) return;
      this.current = { change: next, node: null, sentAt: 0, waitUntil: 0 };
      this.send();
      return;
    }
    if (cur.node !== null && this.c.isUp(cur.node) && satisfies(appliedConfig(this.c, cur.node), cur.change)) {
      this.model = modelApply(this.model, cur.change);
      this.resolved.push(cur.change);
      this.current = null;
      onResolved?.(cur.change);
      this.check();
      return;
    }
    if (cur.node === null ? this.steps >= cur.waitUntil : this.steps - cur.sentAt >= this.timeoutSteps) {
      if (cur.node !== null) this.retries++;
      this.send();
    }
  }

  private send(): void {
    const cur = this.current!;
    const l = this.c.leader();
    const retry = cur.node !== null || cur.waitUntil > 0;
    cur.node = null;
    if (l === null) {
      cur.waitUntil = this.steps + 5;
      return;
    }
    this.attempts++;
    this.hooks.beforeSend?.(l, retry);
    try {
      this.c.core(l).proposeMembershipChange(cur.change);
      this.c.process(l);
      cur.node = l;
      cur.sentAt = this.steps;
      this.hooks.afterSend?.(l);
    } catch (err) {
      if (!(err instanceof SynodError)) throw err;
      // NotLeader, ConfigChangeInProgress, TransferInProgress: ask again a little later.
      cur.waitUntil = this.steps + 5;
    }
  }

  /** The chosen configuration is the model's, or (while a change is in flight) the model's plus that change. */
  check(): void {
    const chosen = this.c.chosenConfigAt(Number.MAX_SAFE_INTEGER);
    if (sameMembers(chosen, this.model)) return;
    const cur = this.current;
    if (cur && sameMembers(chosen, modelApply(this.model, cur.change))) return;
    throw new Error(
      `chosen configuration ${show(chosen)} is not what was asked: ${show(this.model)} after ${this.resolved.map((r) => `${r.type} ${r.id}`).join(', ')}` +
        (cur ? ` (in flight: ${cur.change.type} ${cur.change.id})` : ''),
    );
  }
}

/** What one {@link membershipSearch} run exercised. */
export interface MembershipSearchStats {
  resolved: number;
  retries: number;
  leaderChanges: number;
  isolations: number;
}

/** The demo's sequence: add a member as a learner, promote it, remove it; twice. */
export const DEMO_PLAN: readonly MembershipChange[] = [
  { type: 'addLearner', id: 'n4' },
  { type: 'addVoter', id: 'n4' },
  { type: 'remove', id: 'n4' },
  { type: 'addLearner', id: 'n5' },
  { type: 'addVoter', id: 'n5' },
  { type: 'remove', id: 'n5' },
];

/**
 * One seeded run of the ghost-member search: voters n1..n3 and joiners n4, n5; a
 * {@link MembershipClient} works through `plan` while the network loses, duplicates and reorders
 * messages, the leader is isolated and healed (often right after it accepted a change, with
 * writes in flight below it), voters start phase 1 at random, nodes crash and restart, and a
 * removed member's process is stopped for good. Then faults stop, every live node restarts and
 * each in turn starts phase 1, and the plan is finished. Throws (with the reason) as soon as the
 * chosen configuration is not what the resolved changes add up to.
 */
export function membershipSearch(seed: number, plan: readonly MembershipChange[] = DEMO_PLAN, steps = 3000, trace?: (what: string, c: Cluster) => void): MembershipSearchStats {
  const c = new Cluster({ ids: ['n1', 'n2', 'n3'], options: { electionTicks: 6 }, seed, joiners: ['n4', 'n5'] });
  const r = c.random;
  const stats: MembershipSearchStats = { resolved: 0, retries: 0, leaderChanges: 0, isolations: 0 };
  let writes = 0;
  const write = (l: NodeId) => {
    try {
      c.propose(l, `w${writes++}`);
    } catch (err) {
      if (!(err instanceof SynodError)) throw err;
    }
  };
  const isolate = (l: NodeId) => {
    trace?.(`isolate ${l}`, c);
    stats.isolations++;
    c.heal();
    if (r.next() < 0.5) c.drop(isType(T.Accept, l));
    c.isolate(l);
  };
  const client = new MembershipClient(c, plan, 40, {
    // The leader often has writes in flight when a change reaches it...
    beforeSend: (l, retry) => {
      if (!retry && r.next() < 0.6) for (let i = r.int(2, 10); i > 0; i--) write(l);
    },
    // ...and the demo's "isolate the leader" may follow at once (its Accepts partly lost).
    afterSend: (l) => {
      trace?.(`sent ${client.inFlight?.type} ${client.inFlight?.id} to ${l} last ${c.core(l).status().lastIndex} commit ${c.core(l).status().commitIndex}`, c);
      if (r.next() < 0.5) isolate(l);
    },
  });
  const gone = new Set<NodeId>();
  const live = () => c.ids.filter((id) => !gone.has(id));
  const onResolved = (ch: MembershipChange) => {
    trace?.(`resolved ${ch.type} ${ch.id}`, c);
    // The gateway stops a removed member's process for good.
    if (ch.type === 'remove') {
      gone.add(ch.id);
      c.crash(ch.id);
    }
    if (r.next() < 0.5) {
      // The user heals the partition and the leader changes soon after: a phase 1 that reaches
      // every live node, so whatever they hold above the watermark is recovered now.
      c.heal();
      const voters = c.upIds().filter((id) => !gone.has(id) && c.core(id).status().config.voters.includes(id));
      if (voters.length > 0) {
        c.expireStickiness();
        c.campaign(voters[r.int(0, voters.length - 1)]!);
        c.deliverAll();
      }
    }
  };
  let lastLeader: NodeId | null = null;
  for (let step = 0; step < steps && !client.done; step++) {
    client.step(onResolved);
    const l = c.leader();
    if (l !== lastLeader && l !== null) {
      trace?.(`leader ${l} term ${c.core(l).status().term} last ${c.core(l).status().lastIndex}`, c);
      stats.leaderChanges++;
      lastLeader = l;
    }
    const x = r.next();
    if (x < 0.35) {
      if (c.queue.length > 0) c.deliverMessage(c.queue.splice(r.int(0, c.queue.length - 1), 1)[0]!);
    } else if (x < 0.62) {
      c.tick();
    } else if (x < 0.625) {
      // Background writes are rare (the demo's user mostly clicks membership buttons).
      if (l) write(l);
    } else if (x < 0.7) {
      if (c.queue.length > 0) c.queue.splice(r.int(0, c.queue.length - 1), 1); // loss
    } else if (x < 0.72) {
      if (c.queue.length > 0) c.queue.push(c.queue[r.int(0, c.queue.length - 1)]!); // duplicate
    } else if (x < 0.75) {
      c.reorder();
    } else if (x < 0.77) {
      if (l) isolate(l);
    } else if (x < 0.78) {
      trace?.('heal', c);
      c.heal();
    } else if (x < 0.83) {
      // A voter's election timer fires (it has not heard from the leader lately).
      const voters = c.upIds().filter((id) => !gone.has(id) && c.core(id).status().config.voters.includes(id));
      if (voters.length > 0) {
        const id = voters[r.int(0, voters.length - 1)]!;
        c.expireStickiness();
        c.campaign(id);
      }
    } else if (x < 0.84) {
      const ids = live();
      const id = ids[r.int(0, ids.length - 1)]!;
      if (c.isUp(id)) c.crash(id);
    } else if (x < 0.87) {
      const down = live().filter((id) => !c.isUp(id));
      if (down.length > 0) c.restart(down[r.int(0, down.length - 1)]!);
    } else {
      c.deliverAll(r.int(1, 30));
    }
  }
  // Faults stop: every live member restarts and each in turn tries to lead.
  c.heal();
  c.release();
  for (const id of live()) if (c.isUp(id)) c.crash(id);
  for (const id of live()) c.restart(id);
  for (const id of live()) {
    if (!c.core(id).status().config.voters.includes(id)) continue;
    c.expireStickiness();
    c.campaign(id);
    c.run(15);
    client.check();
  }
  // Finish the plan if the faults left it unfinished.
  for (let t = 0; t < 3000 && !client.done; t++) {
    client.step(onResolved);
    c.tick();
    c.deliverAll();
  }
  if (!client.done) throw new Error(`plan not finished: ${client.resolved.length} of ${plan.length} changes resolved`);
  client.check();
  const l = c.waitLeader(2000);
  c.propose(l, 'final');
  const cfg = c.core(l).status().config;
  c.waitApplied('final', cfg.voters, 1000);
  if (!sameMembers(cfg, client.model)) throw new Error(`the leader's configuration ${show(cfg)} is not ${show(client.model)}`);
  c.checkPrefixes();
  stats.resolved = client.resolved.length;
  stats.retries = client.retries;
  return stats;
}
