/**
 * The supervisor: starts and watches the replica processes, remembers the member list, tracks
 * the leader from status polls, and routes client operations (writes in exactly-once client
 * sessions, reads at any consistency, membership changes, leadership transfer, faults).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { MembershipChange, ReadConsistency } from '@synod/log';
import { MAX_SLOT, MEMBER_ID_RE, readClusterFile, writeClusterFile, type ClusterFile, type MemberRecord } from './cluster-file.js';
import { peerAddress } from './components.js';
import { fromReplicaError, GatewayError, outcomeUnknown, ReplicaError } from './errors.js';
import type { IpcOperation, KvOperation, ProposeResult, ReadResult, ReplicaConfig, ReplicaStatus } from './ipc.js';
import { checkMaxBodyBytes, MAX_COMMAND_BYTES } from './limits.js';
import { ReplicaHandle, ReplicaStartError } from './replica-handle.js';

/** Protocols the demo can run. */
export type DemoProtocol = 'raft' | 'paxos';

/** Options of the demo (the CLI flags). */
export interface DemoOptions {
  /** Number of replicas of a new cluster (ignored when the data dir holds one). Default 3. */
  readonly nodes: number;
  /** Gateway port; replica `i` listens on `port + 1 + i`. Default 8080. */
  readonly port: number;
  /** Interface everything binds to. Default `127.0.0.1`. */
  readonly host: string;
  /** Where `cluster.json`, `<id>.sqlite` and `logs/<id>.log` live. Default `.synod/demo`. */
  readonly dataDir: string;
  /** Consensus protocol. Default `raft`. */
  readonly protocol: DemoProtocol;
  /** Milliseconds per consensus tick. Default 100. */
  readonly tickMs: number;
  /** How long a client request may take before it gets 503, in ms. Default 5000. */
  readonly requestTimeoutMs: number;
  /**
   * Largest request body, in bytes (larger gets 413). Default 1 MiB; at most
   * `MAX_BODY_BYTES_LIMIT` (8 MiB - 4 KiB), so that every accepted value fits in a command the
   * replicas accept (`MAX_COMMAND_BYTES`).
   */
  readonly maxBodyBytes: number;
  /** Snapshot after this many applied entries (0 disables). Default 10000. */
  readonly snapshotEntries: number;
  /** Copy replica output to stderr. Default false. */
  readonly verbose: boolean;
  /** Path of the built replica entry (dist/replica.js). */
  readonly replicaScript: string;
  /** Log line sink. Default: console.log. */
  readonly log?: (line: string) => void;
}

/** A node as `GET /api/cluster` shows it. */
export interface NodeView {
  readonly id: string;
  readonly alive: boolean;
  readonly role: string | null;
  readonly term: number | null;
  readonly leader: string | null;
  readonly commitIndex: number | null;
  readonly appliedIndex: number | null;
  readonly lastIndex: number | null;
  readonly snapshotIndex: number | null;
  readonly membership: 'voter' | 'learner' | 'none';
  readonly isolated: boolean;
  readonly pid: number | null;
  readonly port: number;
  readonly address: string;
  readonly keys: number | null;
}

/** `GET /api/cluster`. */
export interface ClusterView {
  readonly protocol: string;
  readonly leader: string | null;
  readonly voters: readonly string[];
  readonly learners: readonly string[];
  readonly nodes: readonly NodeView[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Error codes after which an operation is retried on the (possibly new) leader. */
const RETRYABLE = new Set([
  'NOT_LEADER',
  'NODE_DOWN',
  'STOPPED',
  'TIMEOUT',
  'TRANSFER_IN_PROGRESS',
  'UNCOMMITTED_LOG_FULL',
  'PROPOSAL_DROPPED',
  'LEASE_EXPIRED',
]);

interface Session {
  readonly id: number;
  seq: number;
}

type Config = { voters: string[]; learners: string[] };

/** Whether `config` already has `change` in effect. */
function satisfies(config: Config, change: MembershipChange): boolean {
  switch (change.type) {
    case 'addLearner':
      // A voter is not turned back into a learner by a retry.
      return config.learners.includes(change.id) || config.voters.includes(change.id);
    case 'addVoter':
      return config.voters.includes(change.id);
    case 'remove':
      return !config.voters.includes(change.id) && !config.learners.includes(change.id);
  }
}

/** What to tell a client whose membership change may still take effect. */
const UNKNOWN_CHANGE_HINT = 'the change may still take effect; check GET /api/cluster before trying again';

/** The process manager and request router. */
export class Supervisor {
  readonly options: DemoOptions;
  readonly dataDir: string;
  private cluster!: ClusterFile;
  private readonly handles = new Map<string, ReplicaHandle>();
  private pollTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly idleSessions: Session[] = [];
  /** Serializes membership changes (one at a time, as the protocols require). */
  private memberQueue: Promise<unknown> = Promise.resolve();
  private readonly log: (line: string) => void;
  /** Shared secret of this run's peer links (so two demos on one machine never talk to each other). */
  private readonly secret = randomBytes(16).toString('hex');

  constructor(options: DemoOptions) {
    this.options = options;
    this.dataDir = resolve(options.dataDir);
    this.log = options.log ?? ((l) => console.log(l));
    checkMaxBodyBytes(options.maxBodyBytes);
  }

  /** The protocol in use (from the data dir when it holds a cluster). */
  get protocol(): string {
    return this.cluster.protocol;
  }

  /**
   * Loads or creates the cluster description and starts every member. Rejects (everything
   * started is stopped again) if the cluster file is invalid or a replica fails to start, except
   * a replica whose SQLite file is missing or empty although it was initialized: that one stays
   * down with a logged reason (the others run; see the README on recovering it).
   */
  async start(): Promise<void> {
    mkdirSync(join(this.dataDir, 'logs'), { recursive: true });
    const existing = readClusterFile(this.dataDir);
    if (existing) {
      if (existing.protocol !== this.options.protocol) {
        throw new GatewayError(
          400,
          'PROTOCOL_MISMATCH',
          `${this.dataDir} holds a ${existing.protocol} cluster; run with --protocol ${existing.protocol} or use another --data-dir`,
        );
      }
      // Files written before `initialized` existed: a member whose SQLite file holds data has
      // been initialized.
      const migrated = existing.members.map((m) => (m.initialized === undefined ? { ...m, initialized: fileHasData(this.dbPathOf(m.id)) } : m));
      this.cluster = { ...existing, members: migrated, clusterId: existing.clusterId ?? newClusterId() };
      if (existing.clusterId === undefined || migrated.some((m, i) => m !== existing.members[i])) writeClusterFile(this.dataDir, this.cluster);
      this.log(`synod demo: found ${existing.members.length} member(s) in ${this.dataDir} (${existing.members.map((m) => m.id).join(', ')})`);
    } else {
      const ids = Array.from({ length: this.options.nodes }, (_, i) => `n${i + 1}`);
      this.cluster = {
        version: 1,
        protocol: this.options.protocol,
        clusterId: newClusterId(),
        bootstrap: ids,
        members: ids.map((id, slot) => ({ id, slot, bootstrap: true, initialized: false })),
      };
    }
    const highest = Math.max(...this.cluster.members.map((m) => this.portOf(m)));
    if (highest > 65_535) {
      throw new GatewayError(400, 'NO_PORT', `${this.dataDir}: a member's port (--port ${this.options.port} + 1 + its slot) would be ${highest}, above 65535; use a lower --port`);
    }
    if (!existing) writeClusterFile(this.dataDir, this.cluster);
    for (const m of this.cluster.members) this.handles.set(m.id, this.newHandle(m));
    const handles = [...this.handles.values()];
    const results = await Promise.allSettled(handles.map((h) => this.startHandle(h)));
    const failed: string[] = [];
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') return;
      const err = r.reason as Error;
      if (err instanceof ReplicaStartError && err.code === 'DATA_MISSING') {
        this.log(`synod demo: ${handles[i]!.id} stays down: ${err.message} ${recoveryHint(handles[i]!.id)}`);
      } else {
        failed.push(err.message);
      }
    });
    if (failed.length > 0) {
      await this.stop();
      throw new Error(failed.join('; '));
    }
    this.pollTimer = setInterval(() => void this.pollStatuses(), 200);
  }

  /** Creates the handle of one member (a seam for tests). */
  protected newHandle(m: MemberRecord): ReplicaHandle {
    return new ReplicaHandle(m.id, this.portOf(m), (h, code, signal) => {
      if (!this.stopped) this.log(`synod demo: replica ${h.id} exited unexpectedly (code ${code}, signal ${signal}); see ${this.logFileOf(h.id)}`);
    });
  }

  private portOf(m: MemberRecord): number {
    return this.options.port + 1 + m.slot;
  }

  private logFileOf(id: string): string {
    return join(this.dataDir, 'logs', `${id}.log`);
  }

  private dbPathOf(id: string): string {
    return join(this.dataDir, `${id}.sqlite`);
  }

  private member(id: string): MemberRecord | undefined {
    return this.cluster.members.find((m) => m.id === id);
  }

  private peers(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const m of this.cluster.members) out[m.id] = peerAddress(this.options.host, this.portOf(m));
    return out;
  }

  /**
   * How `h` starts: a member that was never initialized may create its SQLite file (and, if it
   * is one of a brand-new cluster's voters, bootstraps with the voter list); an initialized one
   * must find its file (`create: false`) and never gets the bootstrap list.
   */
  private replicaConfig(h: ReplicaHandle): ReplicaConfig {
    const m = this.member(h.id);
    const firstStart = m?.initialized !== true;
    return {
      id: h.id,
      protocol: this.cluster.protocol,
      port: h.port,
      host: this.options.host,
      dbPath: this.dbPathOf(h.id),
      peers: this.peers(),
      ...(m?.bootstrap === true && firstStart ? { bootstrap: this.cluster.bootstrap } : {}),
      create: firstStart,
      maxCommandBytes: MAX_COMMAND_BYTES,
      tickMs: this.options.tickMs,
      snapshotEntries: this.options.snapshotEntries,
      secret: this.secret,
      clusterId: this.cluster.clusterId!,
    };
  }

  /** Starts `h`'s process; once it runs, the member is recorded as initialized in cluster.json. */
  private async startHandle(h: ReplicaHandle): Promise<ReplicaStatus> {
    const status = await h.start({
      script: this.options.replicaScript,
      config: this.replicaConfig(h),
      logFile: this.logFileOf(h.id),
      echo: this.options.verbose,
      readyTimeoutMs: 20_000,
    });
    const m = this.member(h.id);
    if (m && m.initialized !== true) {
      this.cluster = { ...this.cluster, members: this.cluster.members.map((x) => (x.id === h.id ? { ...x, initialized: true } : x)) };
      writeClusterFile(this.dataDir, this.cluster);
    }
    return status;
  }

  /** Stops polling and every replica (cleanly, then SIGKILL after a grace period). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    await Promise.all([...this.handles.values()].map((h) => h.stop(3000)));
    for (const h of this.handles.values()) h.close();
  }

  /** Synchronous last resort on exit: SIGKILL whatever still runs. */
  killAllNow(): void {
    for (const h of this.handles.values()) {
      const pid = h.pid;
      if (pid !== null) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }

  // ------------------------------------------------------------------ status and leader

  private async pollStatuses(): Promise<void> {
    await Promise.all(
      [...this.handles.values()]
        .filter((h) => h.alive)
        .map((h) => h.request({ kind: 'status' }, 1000).catch(() => undefined)),
    );
  }

  private handle(id: string): ReplicaHandle {
    const h = this.handles.get(id);
    if (!h) throw new GatewayError(404, 'UNKNOWN_NODE', `no node ${JSON.stringify(id)}; see GET /api/cluster`);
    return h;
  }

  /** The leader the gateway routes to: an alive, non-isolated replica that reports itself leader (highest term wins). */
  leaderHandle(): ReplicaHandle | null {
    let best: ReplicaHandle | null = null;
    for (const h of this.handles.values()) {
      const s = h.lastStatus;
      if (!h.alive || h.isolated || !s || s.role !== 'leader') continue;
      if (!best || s.term > best.lastStatus!.term) best = h;
    }
    return best;
  }

  /** Waits until a leader is known or `deadline` (ms since epoch) passes; then throws 503 NO_LEADER. */
  async waitForLeader(deadline: number): Promise<ReplicaHandle> {
    for (;;) {
      const l = this.leaderHandle();
      if (l) return l;
      if (Date.now() >= deadline) {
        throw new GatewayError(503, 'NO_LEADER', 'no leader is known (is a quorum of voters alive and connected?); try again later');
      }
      await this.pollStatuses();
      if (this.leaderHandle()) continue;
      await sleep(Math.min(100, Math.max(0, deadline - Date.now())));
    }
  }

  /** The leader's status, asked now (the cached one may predate the last membership change). */
  private async freshLeaderStatus(deadline: number): Promise<ReplicaStatus> {
    for (;;) {
      const leader = await this.waitForLeader(deadline);
      const s = await leader.request<ReplicaStatus>({ kind: 'status' }, 2000).catch(() => null);
      if (s && s.role === 'leader') return s;
      if (s) this.demote(leader, s.leader);
      if (Date.now() >= deadline) throw new GatewayError(503, 'NO_LEADER', 'no leader is known; try again later');
      await sleep(50);
    }
  }

  /** Marks `h`'s cached status as not-leader (after a NotLeader answer) until the next poll. */
  private demote(h: ReplicaHandle, hint: string | null | undefined): void {
    const s = h.lastStatus;
    if (s && s.role === 'leader') h.lastStatus = { ...s, role: 'follower', leader: hint ?? null };
  }

  /** The replica `id` if it runs and is not isolated (a NotLeader hint worth following), else null. */
  private reachable(id: string | null): ReplicaHandle | null {
    const h = id === null ? undefined : this.handles.get(id);
    return h && h.alive && !h.isolated ? h : null;
  }

  /**
   * Runs `op` on the leader, following NotLeader hints and retrying retryable failures until
   * `deadline`. Non-retryable replica errors become gateway errors. `observe` sees every
   * replica error (e.g. to remember that an attempt's outcome is unknown).
   */
  private async onLeader<T>(deadline: number, run: (h: ReplicaHandle, remaining: number) => Promise<T>, observe?: (err: ReplicaError) => void): Promise<T> {
    let hint: string | null = null;
    let last: ReplicaError | null = null;
    for (;;) {
      let target = this.reachable(hint);
      hint = null;
      if (!target) {
        try {
          target = await this.waitForLeader(deadline);
        } catch (err) {
          if (last && err instanceof GatewayError && last.code !== 'NOT_LEADER' && last.code !== 'NODE_DOWN') {
            throw fromReplicaError(last, {}, 'the cluster did not answer in time: ');
          }
          throw err;
        }
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw last ? fromReplicaError(last, {}, 'the cluster did not answer in time: ') : new GatewayError(503, 'TIMEOUT', 'request timed out');
      }
      try {
        return await run(target, remaining);
      } catch (err) {
        if (!(err instanceof ReplicaError)) throw err;
        last = err;
        observe?.(err);
        if (!RETRYABLE.has(err.code)) throw fromReplicaError(err);
        if (err.code === 'NOT_LEADER') {
          this.demote(target, err.leaderHint);
          if (err.leaderHint && err.leaderHint !== target.id) hint = err.leaderHint;
          else await sleep(50);
        } else {
          if (err.code === 'NODE_DOWN' || err.code === 'STOPPED') this.demote(target, null);
          await sleep(100);
        }
        if (Date.now() >= deadline) throw fromReplicaError(err, {}, 'the cluster did not answer in time: ');
      }
    }
  }

  // ------------------------------------------------------------------ sessions

  private async acquireSession(deadline: number): Promise<Session> {
    const idle = this.idleSessions.pop();
    if (idle) return idle;
    const id = await this.onLeader(deadline, (h, remaining) => {
      const t = Math.min(remaining, 3000);
      return h.request<number>({ kind: 'openSession', timeoutMs: t }, t + 1000);
    });
    return { id, seq: 0 };
  }

  private releaseSession(s: Session): void {
    if (this.idleSessions.length < 64) this.idleSessions.push(s);
  }

  // ------------------------------------------------------------------ KV

  /**
   * Commits a KV write through the leader in a client session (exactly-once across retries and
   * failovers) and resolves once it is applied. With `node`, sends it to that replica only.
   *
   * Session reuse: after a success, or after a failure whose outcome is definite (every attempt
   * was refused before it entered the log, e.g. NOT_LEADER, COMMAND_TOO_LARGE, NO_LEADER, or
   * the state machine refused the command), the session goes back to the pool and its next
   * write uses the next `seq`. After a failure whose outcome is unknown (a timeout, a replica
   * that died with the write in flight) the session is dropped: its last command may still be
   * applied.
   */
  async write(op: KvOperation, node?: string): Promise<ProposeResult & { node: string }> {
    const timeout = this.options.requestTimeoutMs;
    const deadline = Date.now() + timeout;
    if (node !== undefined) return this.writeOnNode(this.handle(node), op, timeout);
    for (;;) {
      const session = await this.acquireSession(deadline);
      session.seq++;
      let unknown = false;
      try {
        const out = await this.onLeader(
          deadline,
          async (h, remaining) => {
            const t = Math.min(remaining, 3000);
            const res = await h.request<ProposeResult>({ kind: 'propose', op, session: { id: session.id, seq: session.seq }, timeoutMs: t }, t + 1000);
            return { ...res, node: h.id };
          },
          (err) => {
            // SESSION_EXPIRED is definite for that attempt (applied as a no-op refusal).
            if (outcomeUnknown(err) && err.code !== 'SESSION_EXPIRED') unknown = true;
          },
        );
        this.releaseSession(session);
        return out;
      } catch (err) {
        const code = err instanceof GatewayError ? err.code : null;
        // A session that expired before any attempt of this write could have entered the log
        // never applied it: retrying in a fresh session is safe. After an attempt whose
        // outcome is unknown it may have applied (then expired): retrying could apply it twice.
        if (code === 'SESSION_EXPIRED' && !unknown && Date.now() < deadline) continue;
        if (code === 'SESSION_EXPIRED' && unknown) {
          throw new GatewayError(503, 'SESSION_EXPIRED', 'the session expired after an attempt whose outcome is unknown: the write may or may not have been applied', { outcomeUnknown: true });
        }
        if (!unknown && code !== null && code !== 'SESSION_EXPIRED' && code !== 'STALE_SEQUENCE') this.releaseSession(session);
        throw err;
      }
    }
  }

  /** Sessions waiting for their next write (for tests and the README's claims). */
  idleSessionCount(): number {
    return this.idleSessions.length;
  }

  private async writeOnNode(h: ReplicaHandle, op: KvOperation, timeout: number): Promise<ProposeResult & { node: string }> {
    if (!h.alive) throw new GatewayError(409, 'NODE_DOWN', `node ${h.id} is not running; restart it with POST /api/nodes/${h.id}/restart`, { node: h.id });
    try {
      const res = await h.request<ProposeResult>({ kind: 'propose', op, session: null, timeoutMs: timeout }, timeout + 1000);
      return { ...res, node: h.id };
    } catch (err) {
      if (!(err instanceof ReplicaError)) throw err;
      if (h.isolated) {
        throw fromReplicaError(
          err,
          { isolated: true },
          `node ${h.id} is isolated from its peers, a minority that cannot commit writes (heal it with POST /api/nodes/${h.id}/heal): `,
        );
      }
      throw fromReplicaError(err, {}, `node ${h.id} could not commit the write: `);
    }
  }

  /** Reads a key at `consistency`, on the leader (or any replica for `stale`), or on `node`. */
  async read(key: string, consistency: ReadConsistency, node?: string): Promise<ReadResult & { node: string }> {
    const timeout = this.options.requestTimeoutMs;
    const deadline = Date.now() + timeout;
    if (node !== undefined) {
      const h = this.handle(node);
      if (!h.alive) throw new GatewayError(409, 'NODE_DOWN', `node ${h.id} is not running`, { node: h.id });
      try {
        const res = await h.request<ReadResult>({ kind: 'read', key, consistency, timeoutMs: timeout }, timeout + 1000);
        return { ...res, node: h.id };
      } catch (err) {
        if (!(err instanceof ReplicaError)) throw err;
        const why = h.isolated ? `node ${h.id} is isolated (only stale reads work there): ` : `node ${h.id} could not serve a ${consistency} read: `;
        throw fromReplicaError(err, h.isolated ? { isolated: true } : {}, why);
      }
    }
    if (consistency === 'stale') {
      const h = this.leaderHandle() ?? [...this.handles.values()].find((x) => x.alive && !x.isolated) ?? null;
      if (!h) throw new GatewayError(503, 'NO_REPLICA', 'no replica is running');
      const res = await h.request<ReadResult>({ kind: 'read', key, consistency, timeoutMs: timeout }, timeout + 1000).catch((err) => {
        throw err instanceof ReplicaError ? fromReplicaError(err) : err;
      });
      return { ...res, node: h.id };
    }
    return this.onLeader(deadline, async (h, remaining) => {
      const t = Math.min(remaining, 3000);
      const res = await h.request<ReadResult>({ kind: 'read', key, consistency, timeoutMs: t }, t + 1000);
      return { ...res, node: h.id };
    });
  }

  // ------------------------------------------------------------------ cluster view

  /** The current view of every node (fresh statuses, up to 1 s old). */
  async view(): Promise<ClusterView> {
    await this.pollStatuses();
    const leader = this.leaderHandle();
    const config = leader?.lastStatus ?? this.newestStatus();
    const voters = config?.voters ?? [];
    const learners = config?.learners ?? [];
    const nodes: NodeView[] = [];
    for (const m of this.cluster.members) {
      const h = this.handles.get(m.id)!;
      const s = h.lastStatus;
      const alive = h.alive;
      nodes.push({
        id: h.id,
        alive,
        role: alive && s ? s.role : null,
        term: s ? s.term : null,
        leader: alive && s ? s.leader : null,
        commitIndex: s ? s.commitIndex : null,
        appliedIndex: s ? s.appliedIndex : null,
        lastIndex: s ? s.lastIndex : null,
        snapshotIndex: s ? s.snapshotIndex : null,
        membership: voters.includes(h.id) ? 'voter' : learners.includes(h.id) ? 'learner' : 'none',
        isolated: h.isolated,
        pid: h.pid,
        port: h.port,
        address: peerAddress(this.options.host, h.port),
        keys: s ? s.keys : null,
      });
    }
    return { protocol: this.cluster.protocol, leader: leader?.id ?? null, voters, learners, nodes };
  }

  private newestStatus(): ReplicaStatus | null {
    let best: ReplicaStatus | null = null;
    for (const h of this.handles.values()) {
      const s = h.lastStatus;
      if (h.alive && s && (!best || s.term > best.term || (s.term === best.term && s.commitIndex > best.commitIndex))) best = s;
    }
    return best;
  }

  // ------------------------------------------------------------------ faults

  /** SIGKILLs a replica. 409 if it is not running. */
  async kill(id: string): Promise<NodeView> {
    const h = this.handle(id);
    if (!h.running) throw new GatewayError(409, 'NODE_DOWN', `node ${id} is not running`, { node: id });
    await h.kill();
    return this.nodeView(id);
  }

  /** Starts a stopped replica again on its data file and port. 409 if it is running. */
  async restart(id: string): Promise<NodeView> {
    const h = this.handle(id);
    if (h.running) throw new GatewayError(409, 'NODE_RUNNING', `node ${id} is already running; kill it first`, { node: id });
    try {
      await this.startHandle(h);
    } catch (err) {
      throw startFailure(id, err);
    }
    return this.nodeView(id);
  }

  private async nodeView(id: string): Promise<NodeView> {
    return (await this.view()).nodes.find((n) => n.id === id)!;
  }

  /** Cuts a replica off from every peer (both directions). */
  async isolate(id: string): Promise<NodeView> {
    const h = this.handle(id);
    if (!h.alive) throw new GatewayError(409, 'NODE_DOWN', `node ${id} is not running`, { node: id });
    await h.request({ kind: 'isolate' }, 5000).catch((err) => {
      throw err instanceof ReplicaError ? fromReplicaError(err) : err;
    });
    h.isolated = true;
    return this.nodeView(id);
  }

  /** Reconnects an isolated replica. */
  async heal(id: string): Promise<NodeView> {
    const h = this.handle(id);
    if (!h.alive) throw new GatewayError(409, 'NODE_DOWN', `node ${id} is not running`, { node: id });
    await h.request({ kind: 'heal' }, 5000).catch((err) => {
      throw err instanceof ReplicaError ? fromReplicaError(err) : err;
    });
    h.isolated = false;
    return this.nodeView(id);
  }

  /** Makes `id` the leader (Raft thesis §3.10) and resolves once it leads. */
  async transferLeadership(id: string): Promise<{ leader: string }> {
    const h = this.handle(id);
    if (!h.alive) throw new GatewayError(409, 'NODE_DOWN', `node ${id} is not running`, { node: id });
    if (h.isolated) throw new GatewayError(409, 'NODE_ISOLATED', `node ${id} is isolated; heal it first`, { node: id });
    const deadline = Date.now() + Math.max(this.options.requestTimeoutMs, 10_000);
    const leader = await this.waitForLeader(deadline);
    const voters = leader.lastStatus?.voters ?? [];
    if (!voters.includes(id)) throw new GatewayError(409, 'NOT_A_VOTER', `node ${id} is not a voter; only a voter can lead`, { node: id });
    if (leader.id === id) return { leader: id };
    await this.onLeader(deadline, (l, remaining) => {
      if (l.id === id) return Promise.resolve(l.lastStatus);
      const t = Math.min(remaining, 5000);
      return l.request({ kind: 'transfer', to: id, timeoutMs: t }, t + 1000);
    });
    // Wait until the gateway's own view agrees (the new leader reports itself).
    for (;;) {
      await this.pollStatuses();
      if (this.leaderHandle()?.id === id) return { leader: id };
      if (Date.now() >= deadline) throw new GatewayError(503, 'TIMEOUT', `leadership did not move to ${id} in time`, { node: id });
      await sleep(50);
    }
  }

  // ------------------------------------------------------------------ membership

  /** How long one add or remove may take in all, in ms: 3x the request timeout, at least 20 s (a seam for tests). */
  protected membershipTimeoutMs(): number {
    return Math.max(this.options.requestTimeoutMs * 3, 20_000);
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.memberQueue.then(fn, fn);
    this.memberQueue = run.catch(() => undefined);
    return run;
  }

  /**
   * Runs one membership change through the leader and resolves with the applied configuration.
   *
   * Retries are never blind: every request carries `notAfter` (the replica refuses it after
   * that instant, and this method waits for an answer until a second past it), so a request the
   * supervisor gave up on cannot be proposed later, behind a later membership call. After an
   * attempt whose outcome is unknown (timeout, replica died), the leader's settled configuration
   * is checked before trying again; a retry is the same change (a no-op in both cores if it is
   * already in effect), and changes are serialized, so a retry cannot undo a later call.
   *
   * Throws a GatewayError; when an attempt's outcome was unknown its `extra.outcome` is
   * `'unknown'` (the change may still take effect).
   */
  private async changeMembership(change: MembershipChange, deadline: number): Promise<Config> {
    let unknown = false;
    let hint: string | null = null;
    let last: ReplicaError | null = null;
    const failure = (err: unknown): unknown => {
      if (!unknown) return err;
      const base = err instanceof GatewayError ? err : last ? fromReplicaError(last) : new GatewayError(503, 'TIMEOUT', 'request timed out');
      return new GatewayError(base.status >= 500 ? base.status : 503, base.code, `${base.message}; ${UNKNOWN_CHANGE_HINT}`, { ...base.extra, outcome: 'unknown' });
    };
    const timedOut = () =>
      failure(last ? fromReplicaError(last, {}, 'the membership change did not complete in time: ') : new GatewayError(503, 'TIMEOUT', 'the membership change did not complete in time'));
    for (;;) {
      if (unknown) {
        const settled = await this.settledConfig(deadline);
        if (settled && satisfies(settled, change)) return settled;
      }
      let target = this.reachable(hint);
      hint = null;
      if (!target) {
        try {
          target = await this.waitForLeader(deadline);
        } catch (err) {
          throw failure(err);
        }
      }
      const remaining = deadline - Date.now();
      if (remaining < 500) throw timedOut();
      const t = Math.min(remaining, 10_000);
      try {
        return await target.request<Config>({ kind: 'changeMembership', change, timeoutMs: t, notAfter: Date.now() + t }, t + 1000);
      } catch (err) {
        if (!(err instanceof ReplicaError)) throw err;
        last = err;
        if (outcomeUnknown(err)) unknown = true;
        if (err.code === 'NOT_LEADER') {
          this.demote(target, err.leaderHint);
          if (err.leaderHint && err.leaderHint !== target.id) hint = err.leaderHint;
          else await sleep(50);
        } else if (RETRYABLE.has(err.code) || err.code === 'CONFIG_CHANGE_IN_PROGRESS') {
          if (err.code === 'NODE_DOWN' || err.code === 'STOPPED') this.demote(target, null);
          await sleep(150);
        } else {
          throw failure(fromReplicaError(err));
        }
        if (Date.now() >= deadline) throw timedOut();
      }
    }
  }

  /**
   * The leader's configuration once nothing is in flight (its commit index reached its last
   * index, so the newest configuration in its log is committed), or null if that does not
   * happen within about 2 s.
   */
  private async settledConfig(deadline: number): Promise<Config | null> {
    const until = Math.min(deadline - 500, Date.now() + 2000);
    while (Date.now() < until) {
      const l = this.leaderHandle();
      const s = l ? await l.request<ReplicaStatus>({ kind: 'status' }, 1000).catch(() => null) : await this.pollStatuses().then(() => null);
      if (s && s.role === 'leader' && s.commitIndex >= s.lastIndex && s.outgoingVoters === null) {
        return { voters: [...s.voters], learners: [...s.learners] };
      }
      await sleep(100);
    }
    return null;
  }

  /**
   * Starts a replica process for a new member and adds it as a learner, or as a voter (first
   * as a learner until it caught up, then promoted: Raft thesis §4.2.1). An existing learner
   * with `role: "voter"` is promoted.
   *
   * Nothing is half-added: if the new process fails to start (503 START_FAILED, e.g. its port
   * is taken), or the change was refused before it entered the log, the member is rolled back
   * (process stopped, files deleted, dropped from cluster.json). Only when the change's outcome
   * is unknown (503 with `outcome: "unknown"`) does the member stay, since it may become part
   * of the configuration.
   */
  addMember(id: string, role: 'learner' | 'voter'): Promise<{ id: string; role: string; voters: string[]; learners: string[] }> {
    if (!MEMBER_ID_RE.test(id)) {
      return Promise.reject(new GatewayError(400, 'INVALID_ID', 'id must be 1-64 characters of [A-Za-z0-9_.-], starting with a letter or digit'));
    }
    return this.serialize(async () => {
      const deadline = Date.now() + this.membershipTimeoutMs();
      const st = await this.freshLeaderStatus(deadline);
      if (st.voters.includes(id)) throw new GatewayError(409, 'MEMBER_EXISTS', `${id} is already a voter`);
      if (st.learners.includes(id) && role === 'learner') throw new GatewayError(409, 'MEMBER_EXISTS', `${id} is already a learner`);
      let h = this.handles.get(id);
      let created = false;
      if (!h) {
        const used = new Set(this.cluster.members.map((m) => m.slot));
        let slot = 0;
        while (used.has(slot)) slot++;
        if (slot > MAX_SLOT || this.options.port + 1 + slot > 65_535) {
          throw new GatewayError(409, 'NO_PORT', `no port left for a new member above --port ${this.options.port}`);
        }
        const record: MemberRecord = { id, slot, bootstrap: false, initialized: false };
        removeDataFiles(this.dataDir, id);
        this.cluster = { ...this.cluster, members: [...this.cluster.members, record] };
        writeClusterFile(this.dataDir, this.cluster);
        h = this.newHandle(record);
        this.handles.set(id, h);
        created = true;
        this.broadcastPeers();
      }
      if (!h.running) {
        try {
          await this.startHandle(h);
        } catch (err) {
          if (created) await this.dropMember(id);
          const e = startFailure(id, err);
          throw created ? new GatewayError(e.status, e.code, `${e.message}; ${id} was not added`, e.extra) : e;
        }
      }
      const address = peerAddress(this.options.host, h.port);
      let config: Config = { voters: [...st.voters], learners: [...st.learners] };
      try {
        if (!st.learners.includes(id)) config = await this.changeMembership({ type: 'addLearner', id, address }, deadline);
      } catch (err) {
        // Refused before it entered the log: undo. Unknown: it may still join, so it stays.
        if (created && !(err instanceof GatewayError && err.extra.outcome === 'unknown')) {
          await this.dropMember(id);
          if (err instanceof GatewayError) throw new GatewayError(err.status, err.code, `${err.message}; ${id} was not added`, err.extra);
        }
        throw err;
      }
      if (role === 'voter') {
        await this.waitCaughtUp(h, deadline);
        config = await this.changeMembership({ type: 'addVoter', id, address }, deadline);
      }
      return { id, role, ...config };
    });
  }

  /** Waits until `h` applied what the leader had committed when the wait began (best effort until deadline). */
  private async waitCaughtUp(h: ReplicaHandle, deadline: number): Promise<void> {
    const target = this.leaderHandle()?.lastStatus?.commitIndex ?? 0;
    while (Date.now() < deadline - 5000) {
      const s = await h.request<ReplicaStatus>({ kind: 'status' }, 1000).catch(() => null);
      if (s && s.appliedIndex >= target) return;
      await sleep(100);
    }
  }

  /**
   * Removes a member from the configuration, stops its process and deletes its data (SQLite
   * file and `logs/<id>.log`). The removal always goes through the leader, even when its
   * configuration does not list the member: a change adding it may still be in flight, and the
   * leader refuses a new change until that one is decided (removing a non-member is a no-op).
   */
  removeMember(id: string): Promise<{ id: string; voters: string[]; learners: string[] }> {
    return this.serialize(async () => {
      this.handle(id);
      const deadline = Date.now() + this.membershipTimeoutMs();
      const st = await this.freshLeaderStatus(deadline);
      if (st.voters.length === 1 && st.voters[0] === id) {
        throw new GatewayError(409, 'LAST_VOTER', `${id} is the only voter; add another voter first`);
      }
      const config = await this.changeMembership({ type: 'remove', id }, deadline);
      await this.dropMember(id);
      return { id, ...config };
    });
  }

  /** Stops a member's process, forgets it and deletes its files (SQLite, log) and its cluster.json entry. */
  private async dropMember(id: string): Promise<void> {
    const h = this.handles.get(id);
    if (h) {
      await h.stop(3000);
      h.close();
      this.handles.delete(id);
    }
    this.cluster = { ...this.cluster, members: this.cluster.members.filter((m) => m.id !== id) };
    writeClusterFile(this.dataDir, this.cluster);
    removeDataFiles(this.dataDir, id);
    rmSync(this.logFileOf(id), { force: true });
    this.broadcastPeers();
  }

  private broadcastPeers(): void {
    const op: IpcOperation = { kind: 'setPeers', peers: this.peers() };
    for (const h of this.handles.values()) if (h.alive) void h.request(op, 2000).catch(() => undefined);
  }

  /** Ids of the members, in order. */
  memberIds(): string[] {
    return this.cluster.members.map((m) => m.id);
  }
}

/** Whether the file exists and is not empty. */
function fileHasData(path: string): boolean {
  try {
    return statSync(path).size > 0;
  } catch {
    return false;
  }
}

/** How an operator recovers a member whose data is gone (see the README). */
function recoveryHint(id: string): string {
  return (
    `Restore ${id}.sqlite from a backup, or replace the member: DELETE /api/members/${id}, then ` +
    `POST /api/members {"id":"${id}","role":"voter"} (it starts empty and catches up from the leader).`
  );
}

/** The gateway answer for a replica that failed to start (the process has exited; the node stays down). */
function startFailure(id: string, err: unknown): GatewayError {
  if (err instanceof ReplicaStartError && err.code === 'DATA_MISSING') {
    return new GatewayError(409, 'DATA_MISSING', `${err.message} ${recoveryHint(id)}`, { node: id, reason: 'missing' });
  }
  return new GatewayError(503, 'START_FAILED', (err as Error)?.message ?? String(err), { node: id });
}

function removeDataFiles(dataDir: string, id: string): void {
  for (const suffix of ['.sqlite', '.sqlite-wal', '.sqlite-shm', '.sqlite-journal']) {
    const p = join(dataDir, `${id}${suffix}`);
    if (existsSync(p)) rmSync(p, { force: true });
  }
}

/** A fresh random cluster id (see the cluster file's `clusterId`). */
function newClusterId(): string {
  return randomBytes(12).toString('base64url');
}
