/**
 * The supervisor's routing against scripted fake replicas (no processes): leader choice,
 * NotLeader hints, retries after a leader dies with the SAME session and sequence number
 * (exactly-once), 503 when no leader appears, and the persisted member list.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { MemberRecord } from './cluster-file.js';
import { GatewayError, ReplicaError } from './errors.js';
import type { IpcOperation, ReplicaStatus } from './ipc.js';
import { MAX_BODY_BYTES_LIMIT, MAX_COMMAND_BYTES } from './limits.js';
import { ReplicaHandle, ReplicaStartError, type StartOptions } from './replica-handle.js';
import { Supervisor, type DemoOptions } from './supervisor.js';

type Script = (op: IpcOperation, h: FakeHandle) => Promise<unknown>;

function status(id: string, role: string, term: number, leader: string | null): ReplicaStatus {
  return {
    id, protocol: 'raft', role, term, leader, commitIndex: 1, appliedIndex: 1, lastIndex: 1, snapshotIndex: 0,
    voters: ['n1', 'n2', 'n3'], learners: [], outgoingVoters: null, transferring: false, isolated: false, keys: 0,
    pendingProposals: 0, stopped: false, error: null,
  };
}

class FakeHandle extends ReplicaHandle {
  up = false;
  role = 'follower';
  term = 1;
  leaderId: string | null = null;
  readonly log: IpcOperation[] = [];
  script: Script = async () => {
    throw new ReplicaError(this.id, { name: 'X', code: 'UNSUPPORTED', message: 'not scripted' });
  };

  override get alive(): boolean {
    return this.up;
  }
  override get running(): boolean {
    return this.up;
  }
  override get pid(): number | null {
    return this.up ? 1 : null;
  }
  startConfigs: StartOptions['config'][] = [];
  /** Set to make the next starts fail (the process "exits" before ready). */
  startError: Error | null = null;
  override async start(opts: StartOptions): Promise<ReplicaStatus> {
    this.startConfigs.push(opts.config);
    if (this.startError) throw this.startError;
    this.up = true;
    return this.snapshot();
  }
  snapshot(): ReplicaStatus {
    return status(this.id, this.role, this.term, this.leaderId);
  }
  override async request<T>(op: IpcOperation): Promise<T> {
    if (!this.up) throw new ReplicaError(this.id, { name: 'NodeDown', code: 'NODE_DOWN', message: 'down' });
    if (op.kind === 'status') {
      this.lastStatus = this.snapshot();
      return this.lastStatus as T;
    }
    this.log.push(op);
    return (await this.script(op, this)) as T;
  }
  override async kill(): Promise<void> {
    this.up = false;
  }
  override async stop(): Promise<void> {
    this.up = false;
  }
  override close(): void {}
}

class TestSupervisor extends Supervisor {
  readonly fakes = new Map<string, FakeHandle>();
  /** Runs on every new handle before it is used (e.g. to make its start fail). */
  onNewHandle: (h: FakeHandle) => void = () => {};
  protected override membershipTimeoutMs(): number {
    return Math.max(this.options.requestTimeoutMs * 3, 1500);
  }
  protected override newHandle(m: MemberRecord): ReplicaHandle {
    const h = new FakeHandle(m.id, 20_001 + m.slot, () => {});
    this.onNewHandle(h);
    this.fakes.set(m.id, h);
    return h;
  }
  fake(id: string): FakeHandle {
    return this.fakes.get(id)!;
  }
}

const running: Supervisor[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) {
    await s.stop();
    rmSync(s.dataDir, { recursive: true, force: true });
  }
});

function options(overrides: Partial<DemoOptions> = {}): DemoOptions {
  return {
    nodes: 3, port: 20_000, host: '127.0.0.1', dataDir: mkdtempSync(join(tmpdir(), 'synod-sup-')), protocol: 'raft',
    tickMs: 100, requestTimeoutMs: 1500, maxBodyBytes: 1024, snapshotEntries: 0, verbose: false, replicaScript: '/nonexistent',
    log: () => {}, ...overrides,
  };
}

async function makeSupervisor(overrides: Partial<DemoOptions> = {}, setup?: (sup: TestSupervisor) => void): Promise<TestSupervisor> {
  const sup = new TestSupervisor(options(overrides));
  running.push(sup);
  setup?.(sup);
  await sup.start();
  return sup;
}

const readCluster = (sup: Supervisor) => JSON.parse(readFileSync(join(sup.dataDir, 'cluster.json'), 'utf8'));
const proposals = (h: FakeHandle) => h.log.flatMap((o) => (o.kind === 'propose' ? [o.session] : []));
const changes = (h: FakeHandle) => h.log.flatMap((o) => (o.kind === 'changeMembership' ? [o.change] : []));

function lead(sup: TestSupervisor, id: string, term: number): void {
  for (const h of sup.fakes.values()) {
    h.role = h.id === id ? 'leader' : 'follower';
    h.term = term;
    h.leaderId = id;
  }
}

const put = (key: string) => ({ type: 'put' as const, key, value: new Uint8Array([1]) });

describe('Supervisor routing (fake replicas)', () => {
  it('writes on the leader in a session with increasing sequence numbers', async () => {
    const sup = await makeSupervisor();
    lead(sup, 'n2', 2);
    const n2 = sup.fake('n2');
    n2.script = async (op) => (op.kind === 'openSession' ? 41 : { index: 9, existed: false });
    const a = await sup.write(put('a'));
    const b = await sup.write(put('b'));
    expect(a).toEqual({ index: 9, existed: false, node: 'n2' });
    expect(b.node).toBe('n2');
    const proposals = n2.log.filter((o) => o.kind === 'propose');
    expect(proposals.map((o) => (o.kind === 'propose' ? o.session : null))).toEqual([
      { id: 41, seq: 1 },
      { id: 41, seq: 2 },
    ]);
    // One session was opened for both writes.
    expect(n2.log.filter((o) => o.kind === 'openSession')).toHaveLength(1);
  });

  it('retries a write whose leader died on the new leader with the same session and seq (exactly-once)', async () => {
    const sup = await makeSupervisor({ requestTimeoutMs: 5000 });
    lead(sup, 'n1', 2);
    const n1 = sup.fake('n1');
    const n3 = sup.fake('n3');
    n1.script = async (op, h) => {
      if (op.kind === 'openSession') return 7;
      // The leader crashes with the write in flight (it may or may not have committed).
      h.up = false;
      lead(sup, 'n3', 3);
      throw new ReplicaError('n1', { name: 'NodeDown', code: 'NODE_DOWN', message: 'replica n1 exited' });
    };
    n3.script = async () => ({ index: 12, existed: false });
    const r = await sup.write(put('k'));
    expect(r.node).toBe('n3');
    const first = n1.log.find((o) => o.kind === 'propose');
    const retry = n3.log.find((o) => o.kind === 'propose');
    expect(first && first.kind === 'propose' ? first.session : null).toEqual({ id: 7, seq: 1 });
    expect(retry && retry.kind === 'propose' ? retry.session : null).toEqual({ id: 7, seq: 1 });
  });

  it('follows a NotLeader hint', async () => {
    const sup = await makeSupervisor();
    lead(sup, 'n1', 2);
    const n1 = sup.fake('n1');
    n1.script = async (op) => {
      if (op.kind === 'openSession') return 3;
      throw new ReplicaError('n1', { name: 'NotLeaderError', code: 'NOT_LEADER', message: 'not the leader; try n2', leaderHint: 'n2' });
    };
    sup.fake('n2').script = async () => ({ index: 5, existed: true });
    const r = await sup.write(put('x'));
    expect(r).toEqual({ index: 5, existed: true, node: 'n2' });
  });

  it('answers 503 NO_LEADER when no leader shows up before the deadline', async () => {
    const sup = await makeSupervisor({ requestTimeoutMs: 300 });
    const err = await sup.write(put('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).status).toBe(503);
    expect((err as GatewayError).code).toBe('NO_LEADER');
    const readErr = await sup.read('x', 'linearizable').catch((e: unknown) => e);
    expect((readErr as GatewayError).code).toBe('NO_LEADER');
  });

  it('prefers the leader with the highest term and never routes to an isolated node', async () => {
    const sup = await makeSupervisor();
    lead(sup, 'n3', 4);
    sup.fake('n1').role = 'leader'; // a stale leader of an older term
    sup.fake('n1').term = 2;
    await sup.view();
    expect(sup.leaderHandle()?.id).toBe('n3');
    sup.fake('n3').script = async () => sup.fake('n3').snapshot();
    await sup.isolate('n3');
    expect(sup.leaderHandle()?.id).toBe('n1');
  });

  it('passes non-retryable replica errors through with a status', async () => {
    const sup = await makeSupervisor();
    lead(sup, 'n1', 2);
    sup.fake('n1').script = async (op) => {
      if (op.kind === 'openSession') return 1;
      throw new ReplicaError('n1', { name: 'InvalidArgumentError', code: 'INVALID_ARGUMENT', message: 'key contains a lone surrogate' });
    };
    const err = (await sup.write(put('x')).catch((e: unknown) => e)) as GatewayError;
    expect(err.status).toBe(400);
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatch(/surrogate/);
  });

  it('answers 409 NODE_DOWN for a named node that is not running, 503 NODE_DOWN for one that exits mid-request (as the README says)', async () => {
    const sup = await makeSupervisor();
    lead(sup, 'n1', 2);
    await sup.kill('n2');
    const down = async (p: Promise<unknown>) => (await p.catch((e: unknown) => e)) as GatewayError;
    for (const err of [
      await down(sup.write(put('x'), 'n2')),
      await down(sup.read('x', 'stale', 'n2')),
      await down(sup.read('x', 'linearizable', 'n2')),
      await down(sup.kill('n2')),
      await down(sup.isolate('n2')),
      await down(sup.heal('n2')),
      await down(sup.transferLeadership('n2')),
    ]) {
      expect(err).toBeInstanceOf(GatewayError);
      expect([err.status, err.code, err.extra.node]).toEqual([409, 'NODE_DOWN', 'n2']);
    }
    // Nothing was sent to n2.
    expect(sup.fake('n2').log).toEqual([]);
    // n3 dies while it handles a write sent to it alone: the outcome is unknown, 503.
    sup.fake('n3').script = async (_op, h) => {
      h.up = false;
      throw new ReplicaError('n3', { name: 'NodeDown', code: 'NODE_DOWN', message: 'replica n3 exited' });
    };
    const midway = await down(sup.write(put('y'), 'n3'));
    expect([midway.status, midway.code]).toEqual([503, 'NODE_DOWN']);
  });

  it('persists the member list and refuses a data dir of another protocol', async () => {
    const sup = await makeSupervisor();
    const file = JSON.parse(readFileSync(join(sup.dataDir, 'cluster.json'), 'utf8'));
    expect(file).toEqual({
      version: 1,
      protocol: 'raft',
      clusterId: expect.stringMatching(/^[A-Za-z0-9_-]{16}$/),
      bootstrap: ['n1', 'n2', 'n3'],
      members: [
        { id: 'n1', slot: 0, bootstrap: true, initialized: true },
        { id: 'n2', slot: 1, bootstrap: true, initialized: true },
        { id: 'n3', slot: 2, bootstrap: true, initialized: true },
      ],
    });
    await sup.stop();
    const other = new TestSupervisor({ ...sup.options, protocol: 'paxos' });
    const err = await other.start().catch((e: unknown) => e);
    expect((err as GatewayError).code).toBe('PROTOCOL_MISMATCH');
    // The same protocol with another --nodes keeps the stored members.
    const again = new TestSupervisor({ ...sup.options, nodes: 5 });
    running.push(again);
    await again.start();
    expect(again.memberIds()).toEqual(['n1', 'n2', 'n3']);
    // Every replica gets the cluster's id, the same on every run.
    expect(again.fake('n2').startConfigs.at(-1)!.clusterId).toBe(file.clusterId);
    expect(sup.fake('n1').startConfigs[0]!.clusterId).toBe(file.clusterId);
  });

  it('removes a member and re-adds its id as a learner that does not bootstrap', async () => {
    const sup = await makeSupervisor();
    lead(sup, 'n1', 2);
    expect(sup.fake('n3').startConfigs[0]!.bootstrap).toEqual(['n1', 'n2', 'n3']);
    const changes: unknown[] = [];
    sup.fake('n1').script = async (op) => {
      if (op.kind !== 'changeMembership') throw new Error(`unexpected ${op.kind}`);
      changes.push(op.change);
      return op.change.type === 'remove' ? { voters: ['n1', 'n2'], learners: [] } : { voters: ['n1', 'n2'], learners: ['n3'] };
    };
    const removed = await sup.removeMember('n3');
    expect(removed).toEqual({ id: 'n3', voters: ['n1', 'n2'], learners: [] });
    expect(sup.memberIds()).toEqual(['n1', 'n2']);
    // The leader's status now shows the smaller configuration.
    for (const h of sup.fakes.values()) h.snapshot = () => ({ ...status(h.id, h.role, h.term, h.leaderId), voters: ['n1', 'n2'] });
    await sup.view();
    const added = await sup.addMember('n3', 'learner');
    expect(added).toMatchObject({ id: 'n3', role: 'learner', learners: ['n3'] });
    expect(changes).toEqual([
      { type: 'remove', id: 'n3' },
      { type: 'addLearner', id: 'n3', address: 'ws://127.0.0.1:20003' },
    ]);
    const readded = sup.fake('n3');
    expect(readded.startConfigs).toHaveLength(1);
    expect(readded.startConfigs[0]!.bootstrap).toBeUndefined();
    const file = JSON.parse(readFileSync(join(sup.dataDir, 'cluster.json'), 'utf8'));
    expect(file.members).toEqual([
      { id: 'n1', slot: 0, bootstrap: true, initialized: true },
      { id: 'n2', slot: 1, bootstrap: true, initialized: true },
      { id: 'n3', slot: 2, bootstrap: false, initialized: true },
    ]);
  });
});

describe('Supervisor: sizes, initialized members, start failures (fake replicas)', () => {
  it('refuses a body limit that would not fit in a replica command, and passes maxCommandBytes to every replica', async () => {
    expect(() => new TestSupervisor(options({ maxBodyBytes: MAX_BODY_BYTES_LIMIT + 1 }))).toThrow(/maxBodyBytes/);
    expect(() => new TestSupervisor(options({ maxBodyBytes: 0 }))).toThrow(/maxBodyBytes/);
    const sup = await makeSupervisor({ maxBodyBytes: MAX_BODY_BYTES_LIMIT });
    for (const id of ['n1', 'n2', 'n3']) expect(sup.fake(id).startConfigs[0]!.maxCommandBytes).toBe(MAX_COMMAND_BYTES);
  });

  it('bootstraps and creates storage only on the first start; later starts must find their data', async () => {
    const sup = await makeSupervisor();
    for (const id of ['n1', 'n2', 'n3']) {
      expect(sup.fake(id).startConfigs[0]).toMatchObject({ create: true, bootstrap: ['n1', 'n2', 'n3'] });
    }
    expect(readCluster(sup).members.every((m: { initialized: boolean }) => m.initialized)).toBe(true);
    // A restart of the same process...
    await sup.kill('n2');
    await sup.restart('n2');
    const again = sup.fake('n2').startConfigs[1]!;
    expect(again.create).toBe(false);
    expect(again.bootstrap).toBeUndefined();
    // ...and a new run on the same data dir.
    await sup.stop();
    const next = await makeSupervisor({ dataDir: sup.dataDir });
    for (const id of ['n1', 'n2', 'n3']) {
      const c = next.fake(id).startConfigs[0]!;
      expect(c.create).toBe(false);
      expect(c.bootstrap).toBeUndefined();
    }
  });

  it('infers initialized for a cluster file written before the field existed, from the SQLite file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'synod-sup-'));
    writeFileSync(
      join(dir, 'cluster.json'),
      JSON.stringify({ version: 1, protocol: 'raft', bootstrap: ['n1', 'n2'], members: [{ id: 'n1', slot: 0, bootstrap: true }, { id: 'n2', slot: 1, bootstrap: true }] }),
    );
    writeFileSync(join(dir, 'n1.sqlite'), 'not empty');
    writeFileSync(join(dir, 'n2.sqlite'), '');
    const sup = await makeSupervisor({ dataDir: dir });
    expect(sup.fake('n1').startConfigs[0]).toMatchObject({ create: false });
    expect(sup.fake('n1').startConfigs[0]!.bootstrap).toBeUndefined();
    expect(sup.fake('n2').startConfigs[0]).toMatchObject({ create: true, bootstrap: ['n1', 'n2'] });
    // A file from before clusterId existed gets one, saved for the next runs.
    const saved = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as { clusterId?: string };
    expect(saved.clusterId).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(sup.fake('n1').startConfigs[0]!.clusterId).toBe(saved.clusterId);
  });

  it('keeps a member whose data is missing down with 409 DATA_MISSING, and the others running', async () => {
    const sup = await makeSupervisor();
    lead(sup, 'n1', 2);
    await sup.kill('n2');
    sup.fake('n2').startError = new ReplicaStartError('n2', 'DATA_MISSING', 'replica n2 failed to start: n2.sqlite is empty (0 bytes)');
    const err = (await sup.restart('n2').catch((e: unknown) => e)) as GatewayError;
    expect(err).toBeInstanceOf(GatewayError);
    expect(err.status).toBe(409);
    expect(err.code).toBe('DATA_MISSING');
    expect(err.extra).toMatchObject({ node: 'n2', reason: 'missing' });
    expect(err.message).toMatch(/DELETE \/api\/members\/n2/);
    const v = await sup.view();
    expect(v.nodes.find((n) => n.id === 'n2')!.alive).toBe(false);
    expect(v.nodes.filter((n) => n.alive).map((n) => n.id)).toEqual(['n1', 'n3']);
    // Any other start failure is a 503 with the reason.
    sup.fake('n2').startError = new ReplicaStartError('n2', 'START_FAILED', 'replica n2 failed to start: listen EADDRINUSE');
    const other = (await sup.restart('n2').catch((e: unknown) => e)) as GatewayError;
    expect(other.status).toBe(503);
    expect(other.code).toBe('START_FAILED');
    expect(other.message).toMatch(/EADDRINUSE/);
  });

  it('starts the cluster without a member whose data is missing, but refuses other start failures', async () => {
    const lines: string[] = [];
    const sup = await makeSupervisor({ log: (l) => lines.push(l) }, (s) => {
      s.onNewHandle = (h) => {
        if (h.id === 'n3') h.startError = new ReplicaStartError('n3', 'DATA_MISSING', 'replica n3 failed to start: n3.sqlite does not exist');
      };
    });
    expect(sup.fake('n3').up).toBe(false);
    expect(sup.fake('n1').up).toBe(true);
    expect(lines.join('\n')).toMatch(/n3 stays down: .*does not exist/);
    const broken = new TestSupervisor(options());
    broken.onNewHandle = (h) => {
      if (h.id === 'n2') h.startError = new ReplicaStartError('n2', 'START_FAILED', 'replica n2 failed to start: listen EADDRINUSE');
    };
    await expect(broken.start()).rejects.toThrow(/EADDRINUSE/);
    expect(broken.fake('n1').up).toBe(false); // everything started was stopped again
    rmSync(broken.dataDir, { recursive: true, force: true });
  });
});

describe('Supervisor: membership changes (fake replicas)', () => {
  const settled = (h: FakeHandle, voters: string[], learners: string[]) => {
    h.snapshot = () => ({ ...status(h.id, h.role, h.term, h.leaderId), voters, learners });
  };

  it('rolls a member back when its process cannot start (503 START_FAILED, nothing half-added)', async () => {
    const sup = await makeSupervisor();
    lead(sup, 'n1', 2);
    sup.onNewHandle = (h) => {
      if (h.id === 'n4') h.startError = new ReplicaStartError('n4', 'START_FAILED', 'replica n4 failed to start: listen EADDRINUSE 127.0.0.1:20004');
    };
    const err = (await sup.addMember('n4', 'voter').catch((e: unknown) => e)) as GatewayError;
    expect(err.status).toBe(503);
    expect(err.code).toBe('START_FAILED');
    expect(err.message).toMatch(/EADDRINUSE.*n4 was not added/);
    expect(sup.memberIds()).toEqual(['n1', 'n2', 'n3']);
    expect(readCluster(sup).members.map((m: { id: string }) => m.id)).toEqual(['n1', 'n2', 'n3']);
    expect(changes(sup.fake('n1'))).toEqual([]);
    // The id and slot are free again.
    sup.onNewHandle = () => {};
    sup.fake('n1').script = async (op) => (op.kind === 'changeMembership' ? { voters: ['n1', 'n2', 'n3'], learners: ['n4'] } : undefined);
    expect(await sup.addMember('n4', 'learner')).toMatchObject({ id: 'n4', learners: ['n4'] });
    expect(readCluster(sup).members.find((m: { id: string }) => m.id === 'n4')).toEqual({ id: 'n4', slot: 3, bootstrap: false, initialized: true });
  });

  it('rolls back when the leader refuses the change, keeps the member when the outcome is unknown', async () => {
    const sup = await makeSupervisor({ requestTimeoutMs: 300 });
    lead(sup, 'n1', 2);
    sup.fake('n1').script = async () => {
      throw new ReplicaError('n1', { name: 'InvalidConfigurationError', code: 'INVALID_CONFIGURATION', message: 'quorums do not intersect' });
    };
    const refused = (await sup.addMember('n4', 'learner').catch((e: unknown) => e)) as GatewayError;
    expect(refused.status).toBe(400);
    expect(refused.message).toMatch(/n4 was not added/);
    expect(sup.memberIds()).toEqual(['n1', 'n2', 'n3']);
    // The replica times out: the learner entry may be in the log.
    sup.fake('n1').script = async () => {
      throw new ReplicaError('n1', { name: 'TimeoutError', code: 'TIMEOUT', message: 'membership change not committed in time' });
    };
    const unknown = (await sup.addMember('n5', 'learner').catch((e: unknown) => e)) as GatewayError;
    expect(unknown.status).toBe(503);
    expect(unknown.extra.outcome).toBe('unknown');
    expect(unknown.message).toMatch(/may still take effect/);
    expect(sup.memberIds()).toEqual(['n1', 'n2', 'n3', 'n5']);
  }, 60_000);

  it('fences every change with notAfter and re-checks the settled configuration before retrying after a timeout', async () => {
    const sup = await makeSupervisor();
    lead(sup, 'n1', 2);
    const n1 = sup.fake('n1');
    let calls = 0;
    n1.script = async (op) => {
      if (op.kind !== 'changeMembership') return undefined;
      calls++;
      // The change commits, but the answer is lost (the replica timed out waiting for it).
      settled(n1, ['n1', 'n2', 'n3'], ['n4']);
      throw new ReplicaError('n1', { name: 'TimeoutError', code: 'TIMEOUT', message: 'membership change not committed in time' });
    };
    const before = Date.now();
    const r = await sup.addMember('n4', 'learner');
    expect(r.learners).toEqual(['n4']);
    expect(calls).toBe(1); // no second proposal: the configuration already had it
    const op = n1.log.find((o) => o.kind === 'changeMembership');
    expect(op && op.kind === 'changeMembership' ? op.notAfter : 0).toBeGreaterThan(before);
    expect(op && op.kind === 'changeMembership' ? op.notAfter - op.timeoutMs : Infinity).toBeLessThanOrEqual(Date.now());
  });

  it('retries the same change when the configuration is not settled, and never a different one', async () => {
    const sup = await makeSupervisor({ requestTimeoutMs: 5000 });
    lead(sup, 'n1', 2);
    const n1 = sup.fake('n1');
    let attempt = 0;
    n1.script = async (op) => {
      if (op.kind !== 'changeMembership') return undefined;
      attempt++;
      if (attempt === 1) throw new ReplicaError('n1', { name: 'TimeoutError', code: 'TIMEOUT', message: 'timed out' });
      if (attempt === 2) throw new ReplicaError('n1', { name: 'ConfigChangeInProgressError', code: 'CONFIG_CHANGE_IN_PROGRESS', message: 'busy' });
      return { voters: ['n1', 'n2'], learners: [] };
    };
    const r = await sup.removeMember('n3');
    expect(r.voters).toEqual(['n1', 'n2']);
    expect(changes(n1)).toEqual([{ type: 'remove', id: 'n3' }, { type: 'remove', id: 'n3' }, { type: 'remove', id: 'n3' }]);
  }, 30_000);

  it('removes through the log even when the leader does not list the member (an add may be in flight)', async () => {
    const sup = await makeSupervisor({ requestTimeoutMs: 500 });
    lead(sup, 'n1', 2);
    const n1 = sup.fake('n1');
    // n4 is in cluster.json (say an earlier add timed out) but not in the leader's configuration.
    n1.script = async (op) => {
      if (op.kind !== 'changeMembership') return undefined;
      return op.change.type === 'addLearner'
        ? Promise.reject(new ReplicaError('n1', { name: 'TimeoutError', code: 'TIMEOUT', message: 't' }))
        : { voters: ['n1', 'n2', 'n3'], learners: [] };
    };
    await makeUnknownAdd(sup, 'n4');
    const r = await sup.removeMember('n4');
    expect(r).toEqual({ id: 'n4', voters: ['n1', 'n2', 'n3'], learners: [] });
    expect(changes(n1).at(-1)).toEqual({ type: 'remove', id: 'n4' });
    expect(sup.memberIds()).toEqual(['n1', 'n2', 'n3']);
  }, 60_000);
});

/** Adds `id` with a leader that times out, so the member stays with an unknown outcome. */
async function makeUnknownAdd(sup: TestSupervisor, id: string): Promise<void> {
  const err = (await sup.addMember(id, 'learner').catch((e: unknown) => e)) as GatewayError;
  expect(err.extra.outcome).toBe('unknown');
  expect(sup.memberIds()).toContain(id);
}

describe('Supervisor: client sessions (fake replicas)', () => {
  it('reuses a session with the next seq after a definite failure, drops it after an unknown outcome', async () => {
    const sup = await makeSupervisor({ requestTimeoutMs: 800 });
    lead(sup, 'n1', 2);
    const n1 = sup.fake('n1');
    let nextSession = 1;
    let mode: 'ok' | 'too-large' | 'timeout' = 'ok';
    n1.script = async (op) => {
      if (op.kind === 'openSession') return nextSession++;
      if (mode === 'too-large') throw new ReplicaError('n1', { name: 'CommandTooLargeError', code: 'COMMAND_TOO_LARGE', message: 'too large' });
      if (mode === 'timeout') throw new ReplicaError('n1', { name: 'TimeoutError', code: 'TIMEOUT', message: 'timed out' });
      return { index: 3, existed: false, leader: 'n1' };
    };
    await sup.write(put('a'));
    mode = 'too-large';
    const e1 = (await sup.write(put('b')).catch((e: unknown) => e)) as GatewayError;
    expect(e1.status).toBe(413);
    expect(sup.idleSessionCount()).toBe(1);
    mode = 'ok';
    await sup.write(put('c'));
    expect(proposals(n1)).toEqual([
      { id: 1, seq: 1 },
      { id: 1, seq: 2 },
      { id: 1, seq: 3 },
    ]);
    mode = 'timeout';
    const e2 = (await sup.write(put('d')).catch((e: unknown) => e)) as GatewayError;
    expect(e2.status).toBe(503);
    expect(sup.idleSessionCount()).toBe(0); // seq 4 may still be applied: the session is gone
    mode = 'ok';
    await sup.write(put('e'));
    expect(proposals(n1).at(-1)).toEqual({ id: 2, seq: 1 });
  }, 30_000);

  it('retries in a fresh session when the session expired before the write, never after an unknown outcome', async () => {
    const sup = await makeSupervisor({ requestTimeoutMs: 5000 });
    lead(sup, 'n1', 2);
    const n1 = sup.fake('n1');
    let nextSession = 1;
    const answers: ('expired' | 'timeout' | 'ok')[] = ['expired', 'ok'];
    n1.script = async (op) => {
      if (op.kind === 'openSession') return nextSession++;
      const a = answers.shift() ?? 'ok';
      if (a === 'expired') throw new ReplicaError('n1', { name: 'SessionExpiredError', code: 'SESSION_EXPIRED', message: 'session expired' });
      if (a === 'timeout') throw new ReplicaError('n1', { name: 'TimeoutError', code: 'TIMEOUT', message: 'timed out' });
      return { index: 3, existed: false, leader: 'n1' };
    };
    await sup.write(put('a')); // expired at once: nothing of this write entered the log
    expect(proposals(n1)).toEqual([
      { id: 1, seq: 1 },
      { id: 2, seq: 1 },
    ]);
    // A first attempt times out (it may have been applied), the retry finds the session expired:
    // the outcome is unknown, so no fresh session may apply it again.
    answers.push('timeout', 'expired');
    const err = (await sup.write(put('b')).catch((e: unknown) => e)) as GatewayError;
    expect(err).toBeInstanceOf(GatewayError);
    expect(err.code).toBe('SESSION_EXPIRED');
    expect(err.extra.outcomeUnknown).toBe(true);
    expect(proposals(n1).filter((p) => p?.id === 3)).toEqual([]);
  }, 30_000);

  it('reuses the session after NO_LEADER (nothing was sent)', async () => {
    const sup = await makeSupervisor({ requestTimeoutMs: 300 });
    lead(sup, 'n1', 2);
    const n1 = sup.fake('n1');
    n1.script = async (op) => (op.kind === 'openSession' ? 9 : { index: 3, existed: false, leader: 'n1' });
    await sup.write(put('a'));
    for (const h of sup.fakes.values()) h.role = 'follower';
    await sup.view();
    const err = (await sup.write(put('b')).catch((e: unknown) => e)) as GatewayError;
    expect(err.code).toBe('NO_LEADER');
    expect(sup.idleSessionCount()).toBe(1);
  });
});
