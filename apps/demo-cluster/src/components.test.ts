/**
 * One real replica in-process (ReplicatedLog + Raft + WebSocket transport + SQLite + KV, a
 * single-voter cluster, no child processes): the command size limit, the membership fence, and
 * the refusal to start an initialized replica from a missing or empty SQLite file.
 */
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeKvOperation } from './kv.js';
import { createReplicaParts, type ReplicaParts } from './components.js';
import type { IpcError, ReplicaConfig } from './ipc.js';
import { COMMAND_HEADROOM_BYTES, MAX_BODY_BYTES_LIMIT, MAX_COMMAND_BYTES, MAX_KEY_BYTES } from './limits.js';
import { handleOperation, toIpcError } from './replica-ops.js';

const dirs: string[] = [];
const started: ReplicaParts[] = [];
afterEach(async () => {
  for (const p of started.splice(0)) await p.log.stop().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function config(dir: string, overrides: Partial<ReplicaConfig> = {}): ReplicaConfig {
  return {
    id: 'n1',
    protocol: 'raft',
    port: 0,
    host: '127.0.0.1',
    dbPath: join(dir, 'n1.sqlite'),
    peers: {},
    bootstrap: ['n1'],
    create: true,
    maxCommandBytes: MAX_COMMAND_BYTES,
    tickMs: 10,
    snapshotEntries: 0,
    ...overrides,
  };
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'synod-replica-'));
  dirs.push(d);
  return d;
}

async function startReplica(cfg: ReplicaConfig): Promise<ReplicaParts> {
  const parts = await createReplicaParts(cfg, () => {});
  started.push(parts);
  await parts.log.start();
  // Leader, with an entry of its term committed and applied (so it accepts membership changes).
  const ready = () => {
    const s = parts.log.status();
    return s.role === 'leader' && s.commitIndex >= s.lastIndex && s.appliedIndex >= s.commitIndex && s.lastIndex > 1;
  };
  const deadline = Date.now() + 60_000;
  while (!ready() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(ready()).toBe(true);
  return parts;
}

const ipcErrorOf = async (p: Promise<unknown>): Promise<IpcError> => toIpcError(await p.then(() => null, (e: unknown) => e));

describe('replica parts (in-process)', () => {
  it('accepts the largest body the gateway allows with the longest key, and refuses a bigger command with COMMAND_TOO_LARGE', async () => {
    expect(MAX_BODY_BYTES_LIMIT + COMMAND_HEADROOM_BYTES).toBe(MAX_COMMAND_BYTES);
    const parts = await startReplica(config(tempDir()));
    const key = 'k'.repeat(MAX_KEY_BYTES);
    const value = new Uint8Array(MAX_BODY_BYTES_LIMIT).fill(7);
    expect(encodeKvOperation({ type: 'put', key, value }).length).toBeLessThanOrEqual(MAX_COMMAND_BYTES);
    const ok = (await handleOperation(parts, { kind: 'propose', op: { type: 'put', key, value }, session: null, timeoutMs: 20_000 })) as { index: number };
    expect(ok.index).toBeGreaterThan(0);
    const tooBig = new Uint8Array(MAX_COMMAND_BYTES + 1);
    const err = await ipcErrorOf(handleOperation(parts, { kind: 'propose', op: { type: 'put', key: 'x', value: tooBig }, session: null, timeoutMs: 5000 }));
    expect(err.code).toBe('COMMAND_TOO_LARGE');
    // The log keeps going.
    const after = (await handleOperation(parts, { kind: 'propose', op: { type: 'put', key: 'y', value: new Uint8Array([1]) }, session: null, timeoutMs: 5000 })) as { index: number; leader: string };
    expect(after.index).toBe(ok.index + 1);
    expect(after.leader).toBe('n1');
  }, 60_000);

  it('refuses a membership change that arrives after its notAfter, without proposing it', async () => {
    const parts = await startReplica(config(tempDir()));
    const lastIndex = parts.log.status().lastIndex;
    const late = await ipcErrorOf(
      handleOperation(parts, { kind: 'changeMembership', change: { type: 'addLearner', id: 'n9', address: 'ws://127.0.0.1:1' }, timeoutMs: 5000, notAfter: Date.now() - 1 }),
    );
    expect(late.code).toBe('TIMEOUT');
    expect(late.message).toMatch(/after its deadline/);
    expect(parts.log.status().lastIndex).toBe(lastIndex);
    expect(parts.log.status().config.learners).toEqual([]);
    // In time, the same change goes through.
    const ok = (await handleOperation(parts, {
      kind: 'changeMembership',
      change: { type: 'addLearner', id: 'n9', address: 'ws://127.0.0.1:1' },
      timeoutMs: 5000,
      notAfter: Date.now() + 5000,
    })) as { learners: string[] };
    expect(ok.learners).toEqual(['n9']);
  }, 60_000);

  it('refuses to start an initialized replica (create: false) whose SQLite file is missing or empty', async () => {
    const dir = tempDir();
    const first = await startReplica(config(dir));
    await handleOperation(first, { kind: 'propose', op: { type: 'put', key: 'k', value: new Uint8Array([1]) }, session: null, timeoutMs: 5000 });
    await first.log.stop();
    started.length = 0;
    // With its data it starts again, without bootstrap, and still has the key.
    const again = await startReplica(config(dir, { create: false, bootstrap: undefined }));
    expect(again.keyCount()).toBe(1);
    await again.log.stop();
    started.length = 0;

    truncateSync(join(dir, 'n1.sqlite'), 0);
    rmSync(join(dir, 'n1.sqlite-wal'), { force: true });
    const empty = await ipcErrorOf(createReplicaParts(config(dir, { create: false, bootstrap: undefined }), () => {}));
    expect(empty).toMatchObject({ code: 'STORAGE_FAILED', reason: 'missing' });
    expect(empty.message).toMatch(/0 bytes/);

    rmSync(join(dir, 'n1.sqlite'), { force: true });
    const missing = await ipcErrorOf(createReplicaParts(config(dir, { create: false, bootstrap: undefined }), () => {}));
    expect(missing).toMatchObject({ code: 'STORAGE_FAILED', reason: 'missing' });

    // A file that is not a database at all is refused too (another reason).
    writeFileSync(join(dir, 'n1.sqlite'), 'garbage, not sqlite '.repeat(100));
    const garbage = await ipcErrorOf(createReplicaParts(config(dir, { create: false, bootstrap: undefined }), () => {}));
    expect(garbage.code).toBe('STORAGE_FAILED');
  }, 60_000);

  it("refuses another cluster's, another protocol's or another node's SQLite file (reason 'mismatch')", async () => {
    const dir = tempDir();
    const first = await startReplica(config(dir, { clusterId: 'cluster-A-123' }));
    await first.log.stop();
    started.length = 0;
    const other = await ipcErrorOf(createReplicaParts(config(dir, { create: false, bootstrap: undefined, clusterId: 'cluster-B-456' }), () => {}));
    expect(other).toMatchObject({ code: 'STORAGE_FAILED', reason: 'mismatch' });
    expect(other.message).toMatch(/cluster-A-123/);
    const paxosOnRaft = await ipcErrorOf(createReplicaParts(config(dir, { create: false, bootstrap: undefined, clusterId: 'cluster-A-123', protocol: 'paxos' }), () => {}));
    expect(paxosOnRaft).toMatchObject({ code: 'STORAGE_FAILED', reason: 'mismatch' });
    // The right cluster, protocol and node start again.
    const again = await startReplica(config(dir, { create: false, bootstrap: undefined, clusterId: 'cluster-A-123' }));
    expect(again.log.status().stopped).toBe(false);
  }, 60_000);
});
