/**
 * Peer: `paxos` (bigeasy's Multi-Paxos, npm `paxos` 15.0.5), three islanders in this process.
 * The library is sans-IO like synod's cores: it takes the time as an argument, queues timer
 * events in `scheduler.events` and outgoing request/response rounds in `outbox`, and appends
 * what is chosen to its in-memory atomic `log`. There is no durable storage in the library.
 *
 * Driving loop (modelled on the library's own test network): a pump checks every islander's
 * timers, feeds their events back, and hands each outbox round to its addressees' `request`
 * (through a JSON copy, as a wire would) and their answers to the sender's `response`. One pump
 * runs per event-loop turn (`setImmediate`) while rounds are pending, plus every 10 ms for
 * timers, so a round costs one turn as with synod's memory transport. Clients `enqueue` on
 * the leader (the government's first majority member) and a write counts when it appears in
 * the leader's log. The government is a majority of 2 plus a minority of 1 (parliament size 3).
 */
import { createRequire } from 'node:module';
import { runClosedLoop } from '../load.js';
import type { PeerMeasurement, PeerRunOptions } from './liferaft.js';

interface Shifter<T> {
  shift(): T | null;
}
interface Islander {
  readonly id: string;
  readonly cookie: unknown;
  readonly government: { readonly majority: readonly string[]; readonly promise: string };
  readonly scheduler: { check(now: number): unknown; readonly events: { shifter(): Shifter<unknown> } };
  readonly outbox: { shifter(): Shifter<Round> };
  readonly log: { shifter(): Shifter<{ body?: { id?: number } } | null> };
  bootstrap(republic: number, now: number, properties: Record<string, unknown>): void;
  join(republic: number, cookie: unknown): void;
  embark(now: number, republic: number, id: string, cookie: unknown, properties: Record<string, unknown>, acclimated: boolean): { enqueued: boolean };
  enqueue(now: number, republic: number, message: unknown): { enqueued: boolean; leader?: string | null };
  event(e: unknown): void;
  request(now: number, request: unknown): unknown;
  response(now: number, cookie: unknown, responses: Record<string, unknown>): void;
}
interface Round {
  readonly from: string;
  readonly cookie: unknown;
  readonly responses: Record<string, unknown>;
  readonly envelopes: readonly { readonly to: string; readonly request: unknown; readonly responses: Record<string, unknown> }[];
}
type PaxosCtor = new (now: number, id: string, options: Record<string, unknown>) => Islander;

const REPUBLIC = 1;

/** Runs bigeasy's `paxos` with `nodes` islanders in this process under the closed loop. */
export async function runBigeasyPaxos(o: PeerRunOptions): Promise<PeerMeasurement> {
  const require = createRequire(import.meta.url);
  const Paxos = require('paxos') as PaxosCtor;
  const version = (require('paxos/package.json') as { version: string }).version;
  const t0 = Date.now();
  const now = () => Date.now() - t0;
  const islanders = new Map<string, { p: Islander; events: Shifter<unknown>; outbox: Shifter<Round> }>();
  for (let i = 0; i < o.nodes; i++) {
    const p = new Paxos(now(), String(i), { parliamentSize: o.nodes, ping: 100, timeout: 1000 });
    islanders.set(p.id, { p, events: p.scheduler.events.shifter(), outbox: p.outbox.shifter() });
  }
  // One pass: timers and events of every islander, then every pending round delivered.
  const pass = (): boolean => {
    let sent = false;
    for (const { p, events, outbox } of islanders.values()) {
      p.scheduler.check(now());
      for (let e = events.shift(); e != null; e = events.shift()) p.event(e);
      for (let r = outbox.shift(); r != null; r = outbox.shift()) {
        sent = true;
        for (const env of r.envelopes) env.responses[env.to] = islanders.get(env.to)!.p.request(now(), JSON.parse(JSON.stringify(env.request)));
        islanders.get(r.from)!.p.response(now(), r.cookie, r.responses);
      }
    }
    return sent;
  };
  // Set-up runs synchronously to quiescence: bootstrap the first islander, embark the others.
  const settle = () => {
    for (let i = 0; i < 1000 && pass(); i++);
  };
  const first = islanders.get('0')!.p;
  first.bootstrap(REPUBLIC, now(), { location: '0' });
  settle();
  for (const { p } of islanders.values()) {
    if (p === first) continue;
    p.join(REPUBLIC, now());
    const r = first.embark(now(), REPUBLIC, p.id, p.cookie, { location: p.id }, true);
    if (!r.enqueued) throw new Error(`paxos: islander ${p.id} could not embark`);
    settle();
  }
  const leader = islanders.get(first.government.majority[0]!)!.p;
  const committedLog = leader.log.shifter();
  const waiters = new Map<number, () => void>();
  let pumpScheduled = false;
  const pump = () => {
    pumpScheduled = false;
    if (pass()) schedule();
    for (let e = committedLog.shift(); e != null; e = committedLog.shift()) {
      const id = e.body?.id;
      if (typeof id === 'number') {
        const w = waiters.get(id);
        if (w) {
          waiters.delete(id);
          w();
        }
      }
    }
  };
  const schedule = () => {
    if (pumpScheduled) return;
    pumpScheduled = true;
    setImmediate(pump);
  };
  const timers = setInterval(schedule, 10);
  const payload = 'x'.repeat(o.payloadBytes);
  const timeout = o.commitTimeoutMs ?? 1000;
  let nextId = 1;
  try {
    const result = await runClosedLoop({
      clients: o.clients,
      warmupMs: o.warmupMs,
      durationMs: o.durationMs,
      op: () =>
        new Promise<void>((resolve, reject) => {
          const id = nextId++;
          const r = leader.enqueue(now(), REPUBLIC, { id, payload });
          if (!r.enqueued) {
            const e = new Error(`paxos: not enqueued (leader ${String(r.leader)})`);
            e.name = 'NotEnqueued';
            reject(e);
            return;
          }
          const timer = setTimeout(() => {
            waiters.delete(id);
            const e = new Error(`write ${id} not committed within ${timeout} ms`);
            e.name = 'CommitTimeout';
            reject(e);
          }, timeout);
          waiters.set(id, () => {
            clearTimeout(timer);
            resolve();
          });
          schedule();
        }),
    });
    return {
      ...result,
      name: 'paxos',
      version,
      nodes: o.nodes,
      clients: o.clients,
      payloadBytes: o.payloadBytes,
      setup: `bigeasy's Multi-Paxos, ${o.nodes} islanders in one process, in memory only (the library has no durable log), rounds delivered one event-loop turn apart through a JSON copy, commit = entry in the leader's log`,
    };
  } finally {
    clearInterval(timers);
  }
}
