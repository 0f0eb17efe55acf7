/**
 * Smoke runs of every measuring path, tiny and short. They check shape and sanity (something
 * was measured), never speed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { measureInprocRoundTrips, measureSqliteAppend, measureWsRoundTrips } from './baselines.js';
import { measureFailoverOnce } from './failover.js';
import { runMemoryCell } from './memory-cell.js';
import { runBigeasyPaxos } from './peers/bigeasy-paxos.js';
import { runLiferaft } from './peers/liferaft.js';
import { summarizeProfileFile } from './profile.js';
import { runWsCell } from './ws-cell.js';

// Child processes run the TypeScript entry through tsx, reading workspace packages from src/.
const childEntry = fileURLToPath(new URL('./child.ts', import.meta.url));
const childExecArgv = ['--conditions=@synod/source', '--import', 'tsx'];

// Child processes compile TypeScript on start; a loaded CI machine needs more than the default.
vi.setConfig({ testTimeout: 120_000 });

describe('in-process cells', () => {
  it('raft, memory transport and storage, 3 nodes, 16 clients', async () => {
    const m = await runMemoryCell({ protocol: 'raft', transport: 'memory', storage: 'memory', nodes: 3, clients: 16, payloadBytes: 16 }, { warmupMs: 200, durationMs: 500 });
    expect(m.ops).toBeGreaterThan(0);
    expect(m.latency.count).toBe(m.ops);
    expect(m.latency.p99Ms).toBeGreaterThanOrEqual(m.latency.p50Ms);
    expect(m.commitIndex).toBeGreaterThanOrEqual(m.ops);
    expect(['n1', 'n2', 'n3']).toContain(m.leader);
    expect(m.processes).toBe(1);
    expect(m.peakRssMb).toBeGreaterThan(0);
  });

  it('paxos, memory transport and storage, 3 nodes, 16 clients, with a window profile', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'synod-bench-test-'));
    try {
      const m = await runMemoryCell({ protocol: 'paxos', transport: 'memory', storage: 'memory', nodes: 3, clients: 16, payloadBytes: 16 }, { warmupMs: 200, durationMs: 400, cpuProfDir: dir });
      expect(m.ops).toBeGreaterThan(0);
      expect(m.entriesPerPersist).toBeGreaterThan(0);
      expect(m.messagesPerOp).toBeGreaterThan(0);
      expect(m.profiles).toHaveLength(1);
      const s = summarizeProfileFile(m.profiles![0]!);
      expect(s.owners.some((o) => o.owner === '@synod/log')).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('raft, memory transport, SQLite storage, 1 client, 1 KiB payloads', async () => {
    const m = await runMemoryCell({ protocol: 'raft', transport: 'memory', storage: 'sqlite', nodes: 3, clients: 1, payloadBytes: 1024 }, { warmupMs: 100, durationMs: 400 });
    expect(m.ops).toBeGreaterThan(0);
    expect(m.errors).toBe(0);
  });
});

describe('baselines', () => {
  it('measure SQLite appends and in-process round trips', async () => {
    expect(measureSqliteAppend(16, 1, 100)).toBeGreaterThan(0);
    expect(measureSqliteAppend(1024, 256, 100)).toBeGreaterThan(0);
    expect(await measureInprocRoundTrips(1, 100)).toBeGreaterThan(0);
    expect(await measureInprocRoundTrips(256, 100)).toBeGreaterThan(0);
  });

  it('measure ws round trips to another process', async () => {
    const [serial, pipelined] = await measureWsRoundTrips(childEntry, [1, 64], 200, childExecArgv);
    expect(serial).toBeGreaterThan(0);
    expect(pipelined).toBeGreaterThan(0);
  });
});

describe('multi-process cells', () => {
  it('raft over ws with SQLite, 3 replica processes', async () => {
    const m = await runWsCell({ protocol: 'raft', transport: 'ws', storage: 'sqlite', nodes: 3, clients: 8, payloadBytes: 16 }, { warmupMs: 200, durationMs: 500, childExecArgv }, childEntry);
    expect(m.ops).toBeGreaterThan(0);
    expect(m.processes).toBe(3);
    expect(m.cpuPct).toBeGreaterThan(0);
    expect(m.peakRssMb).toBeGreaterThan(0);
  });

  it('failover: a write commits after SIGKILL of the leader', async () => {
    const ms = await measureFailoverOnce({ protocol: 'raft', nodes: 3, childEntry, childExecArgv, tickMs: 20 });
    expect(ms).toBeGreaterThan(0);
  });
});

describe('peers', () => {
  it('@markwylde/liferaft, 3 nodes in one process', async () => {
    const m = await runLiferaft({ nodes: 3, clients: 1, payloadBytes: 16, warmupMs: 100, durationMs: 500 });
    expect(m.name).toBe('@markwylde/liferaft');
    expect(m.ops).toBeGreaterThan(0);
    expect(m.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('paxos (bigeasy), 3 islanders in one process, 8 clients', async () => {
    const m = await runBigeasyPaxos({ nodes: 3, clients: 8, payloadBytes: 16, warmupMs: 100, durationMs: 400 });
    expect(m.name).toBe('paxos');
    expect(m.ops).toBeGreaterThan(0);
    expect(m.latency.count).toBe(m.ops);
  });
});
