import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type Entry, EntryType, InvalidArgumentError, type PersistBatch, StorageError } from '@synod/log';
import { storageConformance } from '@synod/log/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { APPLICATION_ID, ENTRY_CHUNK, SCHEMA_VERSION, SqliteStorage, SqliteStorageError } from './sqlite-storage.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'synod-sqlite-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

storageConformance('SqliteStorage (file, reopened)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'synod-sqlite-conf-'));
  const path = join(dir, 'node.db');
  return {
    open: () => SqliteStorage.open(path),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
});

const enc = new TextEncoder();
const entry = (index: number, term: number, text = `e${index}`, type: EntryType = EntryType.Normal): Entry => ({
  index,
  term,
  type,
  data: enc.encode(text),
});
const plain = (es: readonly Entry[]) => es.map((e) => ({ index: e.index, term: e.term, type: e.type, data: Array.from(e.data) }));

function reasonOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SqliteStorageError);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as SqliteStorageError).code).toBe('STORAGE_FAILED');
    return (err as SqliteStorageError).reason;
  }
  return undefined;
}

describe('SqliteStorage', () => {
  it('writes the schema version and the synod application id', () => {
    const path = join(tempDir(), 'a.db');
    SqliteStorage.open(path).close();
    const db = new Database(path, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.pragma('application_id', { simple: true })).toBe(APPLICATION_ID);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('runs in WAL mode with synchronous=FULL by default', () => {
    const path = join(tempDir(), 'a.db');
    const s = SqliteStorage.open(path);
    // Peek at the private connection: these settings are the durability contract.
    const db = (s as unknown as { db: Database.Database }).db;
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
    s.close();
  });

  it('loads only entries above the snapshot index', () => {
    const s = SqliteStorage.open(join(tempDir(), 'a.db'));
    s.persist({ entries: [1, 2, 3, 4].map((i) => entry(i, 1)) });
    // A snapshot without compactTo: entries 1..2 stay on disk but are not part of the state.
    s.persist({ snapshot: { meta: { index: 2, term: 1, config: { voters: ['a'], learners: [] } }, data: new Uint8Array([7]) } });
    expect(plain(s.load().entries)).toEqual(plain([entry(3, 1), entry(4, 1)]));
    expect(s.stats().entryCount).toBe(4);
    s.close();
  });

  it('applies the parts of a batch in the documented order (truncate, compact, snapshot, entries, hard state)', () => {
    const s = SqliteStorage.open(join(tempDir(), 'a.db'));
    s.persist({ entries: [1, 2, 3, 4, 5].map((i) => entry(i, 1)) });
    // truncateFrom 2 runs before the entries, so entry 2 (new) survives; compactTo 1 drops entry 1.
    s.persist({ truncateFrom: 2, compactTo: 1, entries: [entry(2, 2, 'new2'), entry(3, 2, 'new3')], hardState: { term: 2, vote: 'b', commit: 1 } });
    const st = s.load();
    expect(plain(st.entries)).toEqual(plain([entry(2, 2, 'new2'), entry(3, 2, 'new3')]));
    expect(st.hardState).toEqual({ term: 2, vote: 'b', commit: 1 });
    s.close();
  });

  it('batch inserts across the multi-row chunk boundary keep every entry', () => {
    const path = join(tempDir(), 'a.db');
    const s = SqliteStorage.open(path);
    const counts = [ENTRY_CHUNK - 1, ENTRY_CHUNK, ENTRY_CHUNK + 1, 3 * ENTRY_CHUNK + 5];
    let next = 1;
    for (const n of counts) {
      s.persist({ entries: Array.from({ length: n }, (_, i) => entry(next + i, 1 + (next + i) % 3)) });
      next += n;
    }
    s.close();
    const s2 = SqliteStorage.open(path);
    const st = s2.load();
    expect(st.entries.length).toBe(next - 1);
    st.entries.forEach((e, i) => {
      expect(e.index).toBe(i + 1);
      expect(e.term).toBe(1 + (i + 1) % 3);
      expect(new TextDecoder().decode(e.data)).toBe(`e${i + 1}`);
    });
    const stats = s2.stats();
    expect(stats.firstIndex).toBe(1);
    expect(stats.lastIndex).toBe(next - 1);
    s2.close();
  });

  it('stores entries given as views into a larger buffer (no stray bytes)', () => {
    const s = SqliteStorage.open(join(tempDir(), 'a.db'));
    const frame = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    s.persist({ entries: [{ index: 1, term: 1, type: EntryType.Normal, data: frame.subarray(3, 6) }] });
    const e = s.load().entries[0]!;
    expect(Array.from(e.data)).toEqual([3, 4, 5]);
    expect(e.data.constructor).toBe(Uint8Array);
    s.close();
  });

  it('counts persists, entries and bytes in stats()', () => {
    const s = SqliteStorage.open(join(tempDir(), 'a.db'));
    s.persist({ entries: [entry(1, 1, 'abc'), entry(2, 1, 'de')] });
    s.persist({ hardState: { term: 1, vote: null, commit: 2 } });
    s.persist({}); // nothing to write: no transaction
    const st = s.stats();
    expect(st.persists).toBe(2);
    expect(st.entriesWritten).toBe(2);
    expect(st.bytesWritten).toBe(5);
    expect(st.entryCount).toBe(2);
    expect(st.databaseBytes).toBeGreaterThan(0);
    s.close();
  });

  it('keeps the hard state across many overwrites and a reopen', () => {
    const path = join(tempDir(), 'a.db');
    const s = SqliteStorage.open(path);
    for (let t = 1; t <= 50; t++) s.persist({ hardState: { term: t, vote: t % 2 ? `n${t}` : null, commit: t - 1 } });
    s.close();
    const s2 = SqliteStorage.open(path);
    expect(s2.load().hardState).toEqual({ term: 50, vote: null, commit: 49 });
    s2.close();
  });

  it('checkpoint() folds the WAL into the database file and data survives', () => {
    const path = join(tempDir(), 'a.db');
    const s = SqliteStorage.open(path, { walAutocheckpointPages: 0 });
    s.persist({ entries: Array.from({ length: 500 }, (_, i) => entry(i + 1, 1, 'x'.repeat(200))) });
    s.checkpoint();
    expect(s.load().entries.length).toBe(500);
    s.close();
    const s2 = SqliteStorage.open(path);
    expect(s2.load().entries.length).toBe(500);
    s2.close();
  });

  it('keeps snapshot index and term up to 2^53-1 exactly', () => {
    const path = join(tempDir(), 'a.db');
    const s = SqliteStorage.open(path);
    const max = Number.MAX_SAFE_INTEGER;
    s.persist({ snapshot: { meta: { index: max, term: max - 1, config: { voters: ['a'], learners: [] } }, data: new Uint8Array([1]) } });
    s.close();
    const s2 = SqliteStorage.open(path);
    const snap = s2.load().snapshot!;
    expect(snap.meta.index).toBe(max);
    expect(snap.meta.term).toBe(max - 1);
    expect(s2.stats().snapshotIndex).toBe(max);
    s2.close();
  });

  it('works on an in-memory database', () => {
    const s = SqliteStorage.open(':memory:');
    s.persist({ entries: [entry(1, 1)], hardState: { term: 1, vote: 'a', commit: 1 } });
    expect(s.load().hardState.vote).toBe('a');
    s.close();
  });
});

describe('SqliteStorage bad input', () => {
  const invalid: [string, PersistBatch][] = [
    ['unsorted entries', { entries: [entry(3, 1), entry(2, 1)] }],
    ['duplicate entry index', { entries: [entry(3, 1), entry(3, 1)] }],
    ['entry index 0', { entries: [entry(0, 1)] }],
    ['negative term', { entries: [entry(5, -1)] }],
    ['fractional index', { entries: [entry(5.5, 1)] }],
    ['index above 2^53-1', { entries: [entry(2 ** 53, 1)] }],
    ['data not bytes', { entries: [{ index: 5, term: 1, type: EntryType.Normal, data: 'x' as unknown as Uint8Array }] }],
    ['entry type out of range', { entries: [{ index: 5, term: 1, type: 300 as EntryType, data: new Uint8Array() }] }],
    ['NaN truncateFrom', { truncateFrom: Number.NaN }],
    ['negative compactTo', { compactTo: -1 }],
    ['hard state with bad term', { hardState: { term: 1.5, vote: null, commit: 0 } }],
    ['hard state with a non-string vote', { hardState: { term: 1, vote: 7 as unknown as string, commit: 0 } }],
    ['snapshot without bytes', { snapshot: { meta: { index: 1, term: 1, config: { voters: ['a'], learners: [] } }, data: null as unknown as Uint8Array } }],
    ['snapshot without config', { snapshot: { meta: { index: 1, term: 1, config: null as never }, data: new Uint8Array() } }],
    // Shapes that used to reach SQLite or the encoder and fail there (reason io, or a load that fails later).
    ['snapshot config with numeric voters', { snapshot: { meta: { index: 1, term: 1, config: { voters: [1, 2] as never, learners: [] } }, data: new Uint8Array() } }],
    ['snapshot config with invalid node ids', { snapshot: { meta: { index: 1, term: 1, config: { voters: ['a b', ''], learners: [] } }, data: new Uint8Array() } }],
    ['snapshot config with a numeric learner', { snapshot: { meta: { index: 1, term: 1, config: { voters: ['a'], learners: [3] as never } }, data: new Uint8Array() } }],
    ['snapshot config with non-array outgoingVoters', { snapshot: { meta: { index: 1, term: 1, config: { voters: ['a'], learners: [], outgoingVoters: 'b' as never } }, data: new Uint8Array() } }],
    ['snapshot config with a non-string address', { snapshot: { meta: { index: 1, term: 1, config: { voters: ['a'], learners: [], addresses: { a: 7 as never } } }, data: new Uint8Array() } }],
    ['snapshot without meta', { snapshot: { data: new Uint8Array() } as never }],
    ['entries not an array', { entries: { 0: entry(3, 1) } as never }],
    ['a null entry', { entries: [entry(3, 1), null as never] }],
    ['hard state not an object', { hardState: 'term 3' as never }],
  ];

  for (const [name, bad] of invalid) {
    it(`rejects a batch with ${name} with InvalidArgumentError and leaves the database unchanged`, () => {
      const path = join(tempDir(), 'a.db');
      const s = SqliteStorage.open(path);
      s.persist({ entries: [entry(1, 1), entry(2, 1)], hardState: { term: 1, vote: 'a', commit: 1 } });
      const before = s.load();
      // Every invalid batch also carries valid parts that must not be written.
      const withValidParts: PersistBatch = { truncateFrom: 1, hardState: { term: 9, vote: 'z', commit: 2 }, ...bad };
      expect(() => s.persist(withValidParts)).toThrow(InvalidArgumentError);
      s.close();
      const s2 = SqliteStorage.open(path);
      const after = s2.load();
      expect(after.hardState).toEqual(before.hardState);
      expect(plain(after.entries)).toEqual(plain(before.entries));
      expect(after.snapshot).toBeNull();
      expect(s2.stats().persists).toBe(0);
      s2.close();
    });
  }

  it('rolls back the whole transaction when SQLite fails midway', () => {
    const path = join(tempDir(), 'a.db');
    const s = SqliteStorage.open(path);
    s.persist({ entries: [entry(1, 1)], hardState: { term: 1, vote: null, commit: 0 } });
    // Sabotage the hard-state write (the last step) so that the entries were already written
    // inside the transaction when it fails.
    const priv = s as unknown as { putHardState: { run: (...a: unknown[]) => unknown } };
    const orig = priv.putHardState;
    priv.putHardState = { run: () => { throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' }); } };
    let err: unknown;
    try {
      s.persist({ truncateFrom: 1, entries: [entry(1, 2, 'x'), entry(2, 2, 'y')], hardState: { term: 2, vote: null, commit: 0 } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SqliteStorageError);
    expect((err as SqliteStorageError).reason).toBe('io');
    priv.putHardState = orig;
    const st = s.load();
    expect(plain(st.entries)).toEqual(plain([entry(1, 1)]));
    expect(st.hardState.term).toBe(1);
    s.close();
  });

  it('opening a garbage file fails with not-a-database and leaves the file alone', () => {
    const path = join(tempDir(), 'garbage.db');
    const junk = new Uint8Array(8192);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919) & 0xff;
    writeFileSync(path, junk);
    expect(reasonOf(() => SqliteStorage.open(path))).toBe('not-a-database');
    expect(reasonOf(() => SqliteStorage.open(path))).toBe('not-a-database');
  });

  it('opening a text file fails with not-a-database', () => {
    const path = join(tempDir(), 'notes.txt');
    writeFileSync(path, 'these are my notes, not a database\n'.repeat(200));
    expect(reasonOf(() => SqliteStorage.open(path))).toBe('not-a-database');
  });

  it("opening another application's SQLite database fails with foreign-database and changes nothing", () => {
    const path = join(tempDir(), 'other.db');
    const db = new Database(path);
    db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users VALUES (1, \'ada\')');
    db.close();
    expect(reasonOf(() => SqliteStorage.open(path))).toBe('foreign-database');
    const again = new Database(path);
    expect(again.pragma('application_id', { simple: true })).toBe(0);
    expect(again.prepare('SELECT name FROM sqlite_schema WHERE type = \'table\'').pluck().all()).toEqual(['users']);
    again.close();
  });

  it('opening a database with another application id fails with foreign-database', () => {
    const path = join(tempDir(), 'other.db');
    const db = new Database(path);
    db.pragma('application_id = 1234');
    db.close();
    expect(reasonOf(() => SqliteStorage.open(path))).toBe('foreign-database');
  });

  it('opening a synod database with a newer schema fails with newer-schema', () => {
    const path = join(tempDir(), 'a.db');
    SqliteStorage.open(path).close();
    const db = new Database(path);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    let err: unknown;
    try {
      SqliteStorage.open(path);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SqliteStorageError);
    expect((err as SqliteStorageError).reason).toBe('newer-schema');
    expect((err as Error).message).toMatch(/schema version 2/);
  });

  it('a second open of a database in use fails with locked (exclusive by default)', () => {
    const path = join(tempDir(), 'a.db');
    const s = SqliteStorage.open(path);
    s.persist({ entries: [entry(1, 1)] });
    expect(reasonOf(() => SqliteStorage.open(path))).toBe('locked');
    s.close();
    const s2 = SqliteStorage.open(path);
    expect(s2.load().entries.length).toBe(1);
    s2.close();
  });

  describe('create: false (a replica that existed before)', () => {
    it('refuses a file that does not exist with missing, and creates nothing', () => {
      const dir = tempDir();
      const path = join(dir, 'gone.db');
      expect(reasonOf(() => SqliteStorage.open(path, { create: false }))).toBe('missing');
      expect(readdirSync(dir)).toEqual([]);
      // Also when the whole data directory is gone.
      expect(reasonOf(() => SqliteStorage.open(join(dir, 'no-such-dir', 'n1.db'), { create: false }))).toBe('missing');
      expect(existsSync(join(dir, 'no-such-dir'))).toBe(false);
    });

    it('refuses a database truncated to 0 bytes, leaving the file and its -wal untouched', () => {
      const path = join(tempDir(), 'n1.db');
      const s = SqliteStorage.open(path);
      s.persist({ hardState: { term: 3, vote: 'n2', commit: 1 }, entries: [entry(1, 1)] });
      s.close();
      truncateSync(path, 0);
      const wal = new Uint8Array([1, 2, 3, 4, 5]); // stands for a WAL left next to the emptied file
      writeFileSync(`${path}-wal`, wal);
      let err: unknown;
      try {
        SqliteStorage.open(path, { create: false });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SqliteStorageError);
      expect((err as SqliteStorageError).reason).toBe('missing');
      expect((err as Error).message).toMatch(/empty \(0 bytes\)/);
      expect(statSync(path).size).toBe(0);
      expect(Array.from(readFileSync(`${path}-wal`))).toEqual(Array.from(wal));
    });

    it('refuses a fresh SQLite file that holds no synod schema yet, and writes nothing to it', () => {
      const path = join(tempDir(), 'fresh.db');
      const raw = new Database(path);
      raw.pragma('user_version = 0'); // writes the header page: a valid, empty SQLite database
      raw.close();
      const before = readFileSync(path);
      expect(before.length).toBeGreaterThan(0);
      expect(reasonOf(() => SqliteStorage.open(path, { create: false }))).toBe('missing');
      expect(Array.from(readFileSync(path))).toEqual(Array.from(before));
      expect(existsSync(`${path}-wal`)).toBe(false);
      // The default (create: true) turns the same file into a synod database.
      SqliteStorage.open(path).close();
      const s = SqliteStorage.open(path, { create: false });
      expect(s.load().hardState).toEqual({ term: 0, vote: null, commit: 0 });
      s.close();
    });

    it('refuses :memory: (always new)', () => {
      expect(reasonOf(() => new SqliteStorage({ path: ':memory:', create: false }))).toBe('missing');
    });

    it('opens an existing synod database with its state; other typed errors are unchanged', () => {
      const dir = tempDir();
      const path = join(dir, 'n1.db');
      const s = SqliteStorage.open(path);
      s.persist({ hardState: { term: 2, vote: 'n1', commit: 1 }, entries: [entry(1, 1), entry(2, 2)] });
      s.close();
      const r = SqliteStorage.open(path, { create: false });
      const st = r.load();
      expect(st.hardState).toEqual({ term: 2, vote: 'n1', commit: 1 });
      expect(st.entries.map((e) => e.index)).toEqual([1, 2]);
      expect(reasonOf(() => SqliteStorage.open(path, { create: false }))).toBe('locked');
      r.close();

      const foreign = join(dir, 'foreign.db');
      const db = new Database(foreign);
      db.exec('CREATE TABLE t (x)');
      db.close();
      expect(reasonOf(() => SqliteStorage.open(foreign, { create: false }))).toBe('foreign-database');
      const garbage = join(dir, 'garbage.db');
      writeFileSync(garbage, new Uint8Array(8192).fill(7));
      expect(reasonOf(() => SqliteStorage.open(garbage, { create: false }))).toBe('not-a-database');
    });

    it('the default (create: true) still starts a new replica from a missing file', () => {
      const path = join(tempDir(), 'new.db');
      const s = SqliteStorage.open(path);
      expect(s.load()).toEqual({ hardState: { term: 0, vote: null, commit: 0 }, snapshot: null, entries: [] });
      s.close();
      expect(existsSync(path)).toBe(true);
    });
  });

  it('rejects bad options with InvalidArgumentError', () => {
    expect(() => new SqliteStorage({ path: '' })).toThrow(InvalidArgumentError);
    expect(() => SqliteStorage.open(join(tempDir(), 'a.db'), { synchronous: 'off' as never })).toThrow(InvalidArgumentError);
    expect(() => SqliteStorage.open(join(tempDir(), 'a.db'), { busyTimeoutMs: -1 })).toThrow(InvalidArgumentError);
  });

  it('every method after close fails with closed; close is idempotent', () => {
    const s = SqliteStorage.open(join(tempDir(), 'a.db'));
    s.close();
    s.close();
    expect(s.closed).toBe(true);
    expect(reasonOf(() => s.load())).toBe('closed');
    expect(reasonOf(() => s.persist({ entries: [entry(1, 1)] }))).toBe('closed');
    expect(reasonOf(() => s.stats())).toBe('closed');
  });

  it('detects values this package never writes as corrupt', () => {
    const path = join(tempDir(), 'a.db');
    SqliteStorage.open(path).close();
    const db = new Database(path);
    db.prepare('INSERT INTO entries (idx, term, type, data) VALUES (?, ?, 0, x\'00\')').run(BigInt(2) ** BigInt(60), 1);
    db.close();
    const s = SqliteStorage.open(path);
    expect(reasonOf(() => s.load())).toBe('corrupt');
    s.close();
  });
});
