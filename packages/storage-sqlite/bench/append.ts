/**
 * Measures the durable append rate of SqliteStorage (not a test; numbers depend on the disk).
 *   pnpm --filter @synod/storage-sqlite bench [dir]
 * For each (entries per persist, payload bytes, synchronous) it appends for about 2 s of wall
 * time and prints entries/s, persists/s and MB/s. Each persist is one transaction (one fsync
 * with synchronous=full).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Entry, EntryType } from '@synod/log';
import { SqliteStorage, type SqliteSynchronous } from '../src/index.js';

const baseDir = process.argv[2] ?? tmpdir();
const cases: { batch: number; bytes: number; sync: SqliteSynchronous }[] = [
  { batch: 1, bytes: 100, sync: 'full' },
  { batch: 16, bytes: 100, sync: 'full' },
  { batch: 256, bytes: 100, sync: 'full' },
  { batch: 256, bytes: 1024, sync: 'full' },
  { batch: 1, bytes: 100, sync: 'normal' },
  { batch: 256, bytes: 100, sync: 'normal' },
];

for (const c of cases) {
  const dir = mkdtempSync(join(baseDir, 'synod-bench-'));
  const s = SqliteStorage.open(join(dir, 'bench.db'), { synchronous: c.sync });
  const data = new Uint8Array(c.bytes).fill(7);
  let index = 0;
  let persists = 0;
  const start = performance.now();
  let now = start;
  while (now - start < 2000) {
    const entries: Entry[] = new Array(c.batch);
    for (let i = 0; i < c.batch; i++) entries[i] = { index: ++index, term: 1, type: EntryType.Normal, data };
    s.persist({ entries, hardState: { term: 1, vote: 'n1', commit: index - c.batch } });
    persists++;
    now = performance.now();
  }
  const secs = (now - start) / 1000;
  const loadStart = performance.now();
  const n = s.load().entries.length;
  const loadMs = performance.now() - loadStart;
  s.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(
    `batch=${String(c.batch).padStart(3)} payload=${String(c.bytes).padStart(4)}B sync=${c.sync.padEnd(6)} ` +
      `${Math.round(index / secs).toString().padStart(8)} entries/s  ${Math.round(persists / secs).toString().padStart(6)} persists/s  ` +
      `${((index * c.bytes) / secs / 1e6).toFixed(1).padStart(6)} MB/s   load ${n} entries in ${loadMs.toFixed(0)} ms`,
  );
}
