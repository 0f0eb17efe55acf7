/**
 * SqliteStorage under the real runtime: `ReplicatedLog` driving the single-voter
 * `soloProtocol()` with virtual time, stopped and restarted on the same file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReplicatedLog, type StateMachine, utf8Decode, utf8Encode, VirtualScheduler } from '@synod/log';
import { nullTransport, settle, soloProtocol } from '@synod/log/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStorage } from './sqlite-storage.js';

/** Appends each command's text to a list; query returns the list. */
class ListMachine implements StateMachine<number, void, string[]> {
  items: string[] = [];
  apply(cmd: Uint8Array): number {
    this.items.push(utf8Decode(cmd));
    return this.items.length;
  }
  query(): string[] {
    return [...this.items];
  }
  snapshot(): Uint8Array {
    return utf8Encode(JSON.stringify(this.items));
  }
  restore(data: Uint8Array): void {
    this.items = JSON.parse(utf8Decode(data)) as string[];
  }
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function replica(path: string, snapshotEntries: number) {
  const scheduler = new VirtualScheduler(1_000_000);
  const sm = new ListMachine();
  const storage = SqliteStorage.open(path);
  const log = new ReplicatedLog({
    id: 'n1',
    protocol: soloProtocol(),
    storage,
    transport: nullTransport('n1'),
    stateMachine: sm,
    bootstrap: ['n1'],
    scheduler,
    seed: 3,
    snapshotThreshold: { entries: snapshotEntries },
  });
  return { scheduler, sm, storage, log };
}

describe('SqliteStorage under ReplicatedLog', () => {
  for (const snapshotEntries of [0, 7]) {
    it(`recovers every acknowledged command after stop and restart (snapshots every ${snapshotEntries || 'never'})`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'synod-sqlite-rt-'));
      dirs.push(dir);
      const path = join(dir, 'n1.db');
      const a = replica(path, snapshotEntries);
      await a.log.start();
      // Proposals made in the same turn are group-committed: far fewer persists than commands.
      const results = await settle(a.scheduler, Promise.all(Array.from({ length: 50 }, (_, i) => a.log.propose(utf8Encode(`c${i}`)))));
      expect(results[49]).toBe(50);
      for (let i = 50; i < 60; i++) await settle(a.scheduler, a.log.propose(utf8Encode(`c${i}`)));
      const persists = a.storage.stats().persists;
      expect(persists).toBeLessThan(60);
      if (snapshotEntries > 0) expect(a.storage.load().snapshot).not.toBeNull();
      await a.log.stop();
      expect(a.storage.closed).toBe(true);

      const b = replica(path, snapshotEntries);
      await b.log.start();
      expect(await settle(b.scheduler, b.log.read(undefined))).toEqual(Array.from({ length: 60 }, (_, i) => `c${i}`));
      expect(await settle(b.scheduler, b.log.propose(utf8Encode('after-restart')))).toBe(61);
      await b.log.stop();
    });
  }
});
