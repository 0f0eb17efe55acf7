/**
 * The supervisor's routing against scripted fake replicas (no processes): leader choice,
 * NotLeader hints, retries after a leader dies with the SAME session and sequence number
 * (exactly-once), 503 when no leader appears, and the persisted member list.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { MemberRecord } from './cluster-file.js';
import { GatewayError, ReplicaError } from './errors.js';
import type { IpcOperation, ReplicaStatus } from './ipc.js';
import { ReplicaHandle, type StartOptions } from './replica-handle.js';
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
  override async start(opts: StartOptions): Promise<ReplicaStatus> {
    this.startConfigs.push(opts.config);
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
  protected override newHandle(m: MemberRecord): ReplicaHandle {
    const h = new FakeHandle(m.id, 20_001 + m.slot, () => {});
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

async function makeSupervisor(overrides: Partial<DemoOptions> = {}): Promise<TestSupervisor> {
  const sup = new TestSupervisor({
    nodes: 3, port: 20_000, host: '127.0.0.1', dataDir: mkdtempSync(join(tmpdir(), 'synod-sup-')), protocol: 'raft',
    tickMs: 100, requestTimeoutMs: 1500, maxBodyBytes: 1024, snapshotEntries: 0, verbose: false, replicaScript: '/nonexistent',
    log: () => {}, ...overrides,
  });
  running.push(sup);
  await sup.start();
  return sup;
}

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

  it('persists the member list and refuses a data dir of another protocol', async () => {
    const sup = await makeSupervisor();
    const file = JSON.parse(readFileSync(join(sup.dataDir, 'cluster.json'), 'utf8'));
    expect(file).toEqual({
      version: 1,
      protocol: 'raft',
      bootstrap: ['n1', 'n2', 'n3'],
      members: [
        { id: 'n1', slot: 0, bootstrap: true },
        { id: 'n2', slot: 1, bootstrap: true },
        { id: 'n3', slot: 2, bootstrap: true },
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
      { id: 'n1', slot: 0, bootstrap: true },
      { id: 'n2', slot: 1, bootstrap: true },
      { id: 'n3', slot: 2, bootstrap: false },
    ]);
  });
});
