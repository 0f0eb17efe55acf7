/**
 * {@link SqliteStorage}: the durable {@link Storage} of synod, over SQLite through
 * `better-sqlite3`.
 *
 * Every {@link SqliteStorage.persist} call is ONE SQLite transaction in WAL mode with
 * `synchronous=FULL`, so a whole `Ready` (hard state, truncation, compaction, snapshot and any
 * number of entries) costs one WAL fsync: the runtime's natural group commit. Statements are
 * prepared once; entries are inserted with multi-row statements ({@link ENTRY_CHUNK} rows at a
 * time) to keep the number of JS-to-native calls low.
 *
 * Schema (version {@link SCHEMA_VERSION}, stored in `PRAGMA user_version`; the file is marked
 * as synod's with `PRAGMA application_id` = {@link APPLICATION_ID}):
 *
 * ```sql
 * entries    (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, type INTEGER NOT NULL, data BLOB NOT NULL, crc INTEGER)
 * hard_state (id INTEGER PRIMARY KEY CHECK (id = 0), term INTEGER NOT NULL, vote TEXT, commit_index INTEGER NOT NULL, crc INTEGER)
 * snapshot   (id INTEGER PRIMARY KEY CHECK (id = 0), idx INTEGER NOT NULL, term INTEGER NOT NULL, config BLOB NOT NULL, data BLOB NOT NULL, crc INTEGER)
 * meta       (key TEXT PRIMARY KEY, value TEXT NOT NULL)
 * ```
 *
 * `snapshot.config` is the snapshot's configuration encoded with `writeConfiguration` from
 * `@synod/log`. `crc` is the row's CRC-32 (see `checksum.ts`), verified by `load()`; it is NULL
 * (not verified) in rows written before the column existed. The `crc` columns and the `meta`
 * table (the file's {@link SqliteStorageIdentity}: keys `cluster_id`, `protocol`, `node_id`) were
 * added to schema version 1 without changing its number: opening an older file adds them, and
 * older builds ignore them.
 */
import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { entryChecksum, hardStateChecksum, snapshotChecksum } from './checksum.js';
import {
  BinaryReader,
  BinaryWriter,
  type Configuration,
  EMPTY_HARD_STATE,
  type Entry,
  type EntryType,
  type HardState,
  InvalidArgumentError,
  isValidNodeId,
  type PersistBatch,
  type PersistedState,
  type Snapshot,
  type Storage,
  StorageError,
  readConfiguration,
  validateBatch,
  writeConfiguration,
} from '@synod/log';

/** Version of the on-disk schema this build writes (`PRAGMA user_version`). */
export const SCHEMA_VERSION = 1;

/** `PRAGMA application_id` of a synod database: the ASCII bytes "SYND" (0x53594e44). */
export const APPLICATION_ID = 0x53594e44;

/** Number of entries inserted by one multi-row INSERT statement. */
export const ENTRY_CHUNK = 64;

/**
 * Why a {@link SqliteStorageError} was raised:
 * - `not-a-database`: the file exists but is not an SQLite database (or is corrupt);
 * - `foreign-database`: an SQLite database that was not created by synod;
 * - `newer-schema`: a synod database written by a newer version of this package;
 * - `locked`: another connection (usually another process) holds the database;
 * - `missing`: with `create: false`, the file does not exist, is empty (0 bytes) or holds no
 *   synod schema yet: the replica's durable state is gone (see {@link SqliteStorageOptions.create});
 * - `corrupt`: the database holds values this package never writes (e.g. integers above 2^53-1),
 *   a row whose checksum does not match its content, or a synod schema with a table or column
 *   missing or renamed;
 * - `mismatch`: the file belongs to another cluster, protocol or node than the
 *   {@link SqliteStorageOptions.identity} given (the message names the field, the stored value and
 *   the given value); nothing was written;
 * - `closed`: the storage was used after {@link SqliteStorage.close};
 * - `io`: any other SQLite failure (disk full, I/O error, permissions...).
 */
export type SqliteStorageErrorReason =
  | 'not-a-database'
  | 'foreign-database'
  | 'newer-schema'
  | 'locked'
  | 'missing'
  | 'corrupt'
  | 'mismatch'
  | 'closed'
  | 'io';

/**
 * The typed error of this package: a {@link StorageError} (code `STORAGE_FAILED`) with a
 * machine-readable {@link SqliteStorageError.reason}. The underlying SQLite error, if any, is
 * the `cause` (its `code` is e.g. `SQLITE_NOTADB`, `SQLITE_FULL`, `SQLITE_BUSY`).
 */
export class SqliteStorageError extends StorageError {
  /** See {@link SqliteStorageErrorReason}. */
  readonly reason: SqliteStorageErrorReason;
  constructor(reason: SqliteStorageErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}

/**
 * SQLite's `synchronous` setting for the WAL (https://sqlite.org/pragma.html#pragma_synchronous):
 * - `full` (default): the WAL is fsynced at every commit; a persist is durable when it returns,
 *   even across power loss. The only setting that meets the {@link Storage} contract.
 * - `extra`: like `full`, and also syncs the directory after the WAL is reset.
 * - `normal`: the WAL is synced only at checkpoints. Survives a process crash (SIGKILL) but
 *   may lose the last commits on power loss or an OS crash. For benchmarks only: a replica that
 *   forgets a vote or an acknowledged entry can break consensus safety.
 */
export type SqliteSynchronous = 'full' | 'extra' | 'normal';

/**
 * Who a database file belongs to, stored in the file's `meta` table and checked on open (see
 * {@link SqliteStorageOptions.identity}). Each field is a string of 1..256 characters.
 */
export interface SqliteStorageIdentity {
  /** The cluster the replica belongs to (e.g. a name or UUID chosen when the cluster was created). */
  readonly clusterId?: string;
  /** The consensus protocol that wrote the file, e.g. `'raft'` or `'paxos'`: their logs and hard states are not interchangeable. */
  readonly protocol?: string;
  /** The replica's node id. */
  readonly nodeId?: string;
}

/** Options of {@link SqliteStorage}. */
export interface SqliteStorageOptions {
  /** Path of the database file (created with its directory's permissions if missing). `:memory:` works for tests. */
  readonly path: string;
  /**
   * Create the file and schema if missing. Default `true` (the first start of a new replica).
   *
   * Pass `false` once the replica has existed (it has voted, promised or acknowledged entries):
   * then a database file that does not exist, is 0 bytes, or holds no synod schema yet makes the
   * constructor throw {@link SqliteStorageError} with reason `missing`, instead of starting the
   * replica from an empty state that silently forgets its votes and log (which can break
   * consensus safety; etcd likewise refuses to start a member whose data directory lost its
   * WAL). Nothing is created or written in that case: a 0-byte file is checked before SQLite
   * opens it, so a `-wal` file next to it is left untouched for inspection. A synod database
   * with an empty log (created, never persisted to) opens normally.
   */
  readonly create?: boolean;
  /** WAL sync mode. Default `full`. See {@link SqliteSynchronous}. */
  readonly synchronous?: SqliteSynchronous;
  /**
   * Hold an exclusive lock on the database for the life of the connection
   * (`PRAGMA locking_mode=EXCLUSIVE`), so a second process (a misconfigured second replica)
   * cannot open the same file: it fails with {@link SqliteStorageError} `locked`. Also lets
   * SQLite keep the WAL index in process memory instead of a `-shm` file. Default `true`.
   */
  readonly exclusive?: boolean;
  /** How long to wait for a lock held by another connection, in ms. Default 0 (fail at once). */
  readonly busyTimeoutMs?: number;
  /** Checkpoint the WAL into the main file after it reaches this many pages (SQLite's `wal_autocheckpoint`). Default 1000 (about 4 MiB); 0 disables automatic checkpoints. */
  readonly walAutocheckpointPages?: number;
  /** SQLite page cache size in KiB (`PRAGMA cache_size = -N`). Default 16384 (16 MiB). */
  readonly cacheSizeKiB?: number;
  /**
   * Who this file belongs to. On open, each given field is compared with the value stored in the
   * file: a field the file does not store yet (a new file, or one written before identities
   * existed) is stored, in the same transaction that creates or confirms the schema; a stored
   * value that differs makes the constructor throw {@link SqliteStorageError} with reason
   * `mismatch` (the message names the field, the stored and the given value), and nothing is
   * written. Fields not given are neither checked nor stored. Default none (no check).
   *
   * This refuses a replica started on another cluster's file (same node id, copied or
   * misconfigured data directory), on a file written by the other protocol, or on another
   * node's file: any of these would let it vote and campaign with state it never had (a higher
   * term from the other cluster can make it leader and overwrite this cluster's log).
   */
  readonly identity?: SqliteStorageIdentity;
}

/** Counters and sizes reported by {@link SqliteStorage.stats}. */
export interface SqliteStorageStats {
  /** Database file path. */
  readonly path: string;
  /** Successful `persist` calls (transactions committed) since open. */
  readonly persists: number;
  /** Entries written (inserted or replaced) since open. */
  readonly entriesWritten: number;
  /** Entry payload bytes written since open (`data` only). */
  readonly bytesWritten: number;
  /** Entries currently stored (including any at or below the snapshot index). */
  readonly entryCount: number;
  /** Lowest stored entry index, or 0 if the log is empty. */
  readonly firstIndex: number;
  /** Highest stored entry index, or 0 if the log is empty. */
  readonly lastIndex: number;
  /** Index of the stored snapshot, or 0 if none. */
  readonly snapshotIndex: number;
  /** Size of the main database file in bytes (`page_count * page_size`; the WAL not included). */
  readonly databaseBytes: number;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** The schema of a new file. */
const SCHEMA = `
CREATE TABLE entries (
  idx  INTEGER PRIMARY KEY,
  term INTEGER NOT NULL,
  type INTEGER NOT NULL,
  data BLOB    NOT NULL,
  crc  INTEGER
);
CREATE TABLE hard_state (
  id           INTEGER PRIMARY KEY CHECK (id = 0),
  term         INTEGER NOT NULL,
  vote         TEXT,
  commit_index INTEGER NOT NULL,
  crc          INTEGER
);
CREATE TABLE snapshot (
  id     INTEGER PRIMARY KEY CHECK (id = 0),
  idx    INTEGER NOT NULL,
  term   INTEGER NOT NULL,
  config BLOB    NOT NULL,
  data   BLOB    NOT NULL,
  crc    INTEGER
);
`;

const META_SCHEMA = `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`;

/**
 * The tables and columns this package reads and writes, with the primary key of each. An
 * existing synod file must have all of them (the `crc` columns and `meta` are added when
 * missing: files from before they existed).
 */
const REQUIRED_TABLES: Readonly<Record<string, { readonly columns: readonly string[]; readonly pk: string }>> = {
  entries: { columns: ['idx', 'term', 'type', 'data'], pk: 'idx' },
  hard_state: { columns: ['id', 'term', 'vote', 'commit_index'], pk: 'id' },
  snapshot: { columns: ['id', 'idx', 'term', 'config', 'data'], pk: 'id' },
};

/** Identity fields and their keys in the `meta` table. */
const IDENTITY_KEYS = [
  ['clusterId', 'cluster_id'],
  ['protocol', 'protocol'],
  ['nodeId', 'node_id'],
] as const;

type Row = unknown[];

/**
 * Durable {@link Storage} over one SQLite file. Synchronous: every method returns (or throws)
 * when the work is done, so `persist` blocks the event loop for one fsync. One instance per
 * replica; by default it holds an exclusive lock on the file.
 *
 * Errors: the constructor throws {@link SqliteStorageError} (`not-a-database`,
 * `foreign-database`, `newer-schema`, `corrupt` for a damaged schema, `mismatch` for another
 * identity, `locked`, `missing` with `create: false`, `io`) and {@link InvalidArgumentError} for
 * bad options. `load` throws `corrupt` for a row that does not match its checksum. `persist` throws {@link InvalidArgumentError} for an invalid batch (nothing is
 * written) and {@link SqliteStorageError} (`io`) if SQLite fails (the transaction is rolled
 * back). Any method after `close()` throws {@link SqliteStorageError} (`closed`).
 *
 * @example
 * ```ts
 * const storage = SqliteStorage.open('./data/n1.db');
 * storage.persist({ hardState: { term: 1, vote: 'n1', commit: 0 }, entries: [{ index: 1, term: 1, type: 1, data: new Uint8Array() }] });
 * const { hardState, entries } = storage.load();
 * storage.close();
 * ```
 */
export class SqliteStorage implements Storage {
  /** The database file path. */
  readonly path: string;
  /**
   * The identity stored in the file after open (the given fields included): only the fields it
   * holds. Empty for a file opened without `identity` that never had one.
   */
  readonly identity: SqliteStorageIdentity;
  private db: Database.Database | null;
  private readonly insertOne: Database.Statement;
  private readonly insertChunk: Database.Statement;
  private readonly truncateStmt: Database.Statement;
  private readonly compactStmt: Database.Statement;
  private readonly putHardState: Database.Statement;
  private readonly putSnapshot: Database.Statement;
  private readonly tx: (batch: PersistBatch) => void;
  private readonly chunkParams: unknown[] = new Array(ENTRY_CHUNK * 5);
  private persists = 0;
  private entriesWritten = 0;
  private bytesWritten = 0;

  /**
   * Opens (or creates) the database at `options.path`. Throws {@link SqliteStorageError} or
   * {@link InvalidArgumentError}; see the class docs.
   */
  constructor(options: SqliteStorageOptions) {
    const o = normalizeOptions(options);
    this.path = o.path;
    if (!o.create) requireExistingFile(o.path);
    let db: Database.Database;
    try {
      db = new Database(o.path, { fileMustExist: !o.create, timeout: o.busyTimeoutMs });
    } catch (err) {
      throw translate(err, `cannot open ${o.path}`);
    }
    try {
      this.identity = initialize(db, o);
      this.insertOne = db.prepare('INSERT OR REPLACE INTO entries (idx, term, type, data, crc) VALUES (?, ?, ?, ?, ?)');
      this.insertChunk = db.prepare(
        `INSERT OR REPLACE INTO entries (idx, term, type, data, crc) VALUES ${Array.from({ length: ENTRY_CHUNK }, () => '(?, ?, ?, ?, ?)').join(', ')}`,
      );
      this.truncateStmt = db.prepare('DELETE FROM entries WHERE idx >= ?');
      this.compactStmt = db.prepare('DELETE FROM entries WHERE idx <= ?');
      this.putHardState = db.prepare('INSERT OR REPLACE INTO hard_state (id, term, vote, commit_index, crc) VALUES (0, ?, ?, ?, ?)');
      this.putSnapshot = db.prepare('INSERT OR REPLACE INTO snapshot (id, idx, term, config, data, crc) VALUES (0, ?, ?, ?, ?, ?)');
      this.tx = db.transaction((batch: PersistBatch) => this.write(batch));
    } catch (err) {
      db.close();
      throw err instanceof SqliteStorageError ? err : translate(err, `cannot open ${o.path}`);
    }
    this.db = db;
  }

  /** Same as `new SqliteStorage({ ...options, path })`. */
  static open(path: string, options: Omit<SqliteStorageOptions, 'path'> = {}): SqliteStorage {
    return new SqliteStorage({ ...options, path });
  }

  /**
   * Reads the persisted state: the hard state (or the empty one), the snapshot (or `null`), and
   * the stored entries above the snapshot index, ascending. Entry and snapshot `data` are fresh
   * `Uint8Array`s owned by the caller. Every row read is checked against its stored CRC-32
   * (rows written before checksums existed have none and are not checked). Throws
   * {@link SqliteStorageError} (`closed`, `corrupt` for a value this package never writes or a
   * checksum mismatch, `io`).
   */
  load(): PersistedState {
    const db = this.requireOpen();
    try {
      const hsRow = db.prepare('SELECT term, vote, commit_index, crc FROM hard_state WHERE id = 0').raw(true).get() as Row | undefined;
      let hardState: HardState = EMPTY_HARD_STATE;
      if (hsRow) {
        const vote = hsRow[1];
        if (vote !== null && typeof vote !== 'string') throw corrupt('hard_state.vote is not text');
        hardState = { term: safeInt(hsRow[0], 'hard_state.term'), vote, commit: safeInt(hsRow[2], 'hard_state.commit_index') };
        checkCrc(hsRow[3], () => hardStateChecksum(hardState.term, hardState.vote, hardState.commit), 'the hard state');
      }
      const snapRow = db.prepare('SELECT idx, term, config, data, crc FROM snapshot WHERE id = 0').raw(true).get() as Row | undefined;
      let snapshot: Snapshot | null = null;
      if (snapRow) {
        const index = safeInt(snapRow[0], 'snapshot.idx');
        const term = safeInt(snapRow[1], 'snapshot.term');
        const configBytes = bytes(snapRow[2], 'snapshot.config');
        const data = bytes(snapRow[3], 'snapshot.data');
        checkCrc(snapRow[4], () => snapshotChecksum(index, term, configBytes, data), `the snapshot at index ${index}`);
        snapshot = { meta: { index, term, config: decodeConfig(configBytes) }, data };
      }
      const from = snapshot ? snapshot.meta.index : 0;
      const entries: Entry[] = [];
      const rows = db.prepare('SELECT idx, term, type, data, crc FROM entries WHERE idx > ? ORDER BY idx').raw(true).iterate(from) as IterableIterator<Row>;
      for (const r of rows) {
        const e: Entry = {
          index: safeInt(r[0], 'entries.idx'),
          term: safeInt(r[1], 'entries.term'),
          type: entryType(r[2]),
          data: bytes(r[3], 'entries.data'),
        };
        if (r[4] !== null) checkCrc(r[4], () => entryChecksum(e.index, e.term, e.type, e.data), `entry ${e.index}`);
        entries.push(e);
      }
      return { hardState, snapshot, entries };
    } catch (err) {
      throw err instanceof SqliteStorageError ? err : translate(err, 'load failed');
    }
  }

  /**
   * Applies one batch in one transaction, in the order `truncateFrom`, `compactTo`,
   * `snapshot`, `entries` (upsert by index), `hardState`, and returns once it is durable (one
   * WAL fsync with `synchronous=full`). The batch is validated first (its shape, `validateBatch`
   * from `@synod/log`, votes, entry types, snapshot bytes and configuration): an invalid batch
   * throws {@link InvalidArgumentError} and writes nothing. Each row is stored with its CRC-32. A SQLite failure rolls the transaction
   * back and throws {@link SqliteStorageError}.
   */
  persist(batch: PersistBatch): void {
    this.requireOpen();
    validate(batch);
    if (!needsWrite(batch)) return;
    try {
      this.tx(batch);
    } catch (err) {
      throw err instanceof SqliteStorageError ? err : translate(err, 'persist failed');
    } finally {
      // Do not keep references to the caller's buffers in the reused parameter array.
      if (this.chunkParams[3] !== undefined) this.chunkParams.fill(undefined);
    }
    this.persists++;
  }

  /**
   * Copies the WAL into the main database file and truncates the WAL
   * (`PRAGMA wal_checkpoint(TRUNCATE)`). SQLite does this on its own (see
   * `walAutocheckpointPages`); call it to bound the WAL's disk use, e.g. after a snapshot.
   */
  checkpoint(): void {
    const db = this.requireOpen();
    try {
      db.pragma('wal_checkpoint(TRUNCATE)');
    } catch (err) {
      throw translate(err, 'checkpoint failed');
    }
  }

  /**
   * Runs SQLite's `PRAGMA integrity_check` (reads the whole file; O(size)) and returns the
   * problems it reports, or an empty array if the database is consistent. Throws
   * {@link SqliteStorageError} (`closed`, `io`).
   */
  integrityCheck(): string[] {
    const db = this.requireOpen();
    try {
      const rows = db.pragma('integrity_check', { simple: false }) as { integrity_check: string }[];
      const problems = rows.map((r) => r.integrity_check).filter((m) => m !== 'ok');
      return problems;
    } catch (err) {
      throw translate(err, 'integrity check failed');
    }
  }

  /** Counters since open and current sizes. Throws {@link SqliteStorageError} (`closed`). */
  stats(): SqliteStorageStats {
    const db = this.requireOpen();
    const agg = db.prepare('SELECT count(*), coalesce(min(idx), 0), coalesce(max(idx), 0) FROM entries').raw(true).get() as Row;
    const snap = db.prepare('SELECT idx FROM snapshot WHERE id = 0').pluck().get() as number | undefined;
    const pageCount = db.pragma('page_count', { simple: true }) as number;
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    return {
      path: this.path,
      persists: this.persists,
      entriesWritten: this.entriesWritten,
      bytesWritten: this.bytesWritten,
      entryCount: agg[0] as number,
      firstIndex: agg[1] as number,
      lastIndex: agg[2] as number,
      snapshotIndex: snap ?? 0,
      databaseBytes: pageCount * pageSize,
    };
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.db === null;
  }

  /** Closes the database (checkpointing the WAL) and releases the lock. Idempotent. */
  close(): void {
    const db = this.db;
    if (!db) return;
    this.db = null;
    try {
      db.close();
    } catch (err) {
      throw translate(err, 'close failed');
    }
  }

  private requireOpen(): Database.Database {
    if (!this.db) throw new SqliteStorageError('closed', `SqliteStorage ${this.path} is closed`);
    return this.db;
  }

  /** Runs inside the transaction. */
  private write(batch: PersistBatch): void {
    if (batch.truncateFrom != null) this.truncateStmt.run(batch.truncateFrom);
    if (batch.compactTo != null) this.compactStmt.run(batch.compactTo);
    const snap = batch.snapshot;
    if (snap) {
      const w = new BinaryWriter(64);
      writeConfiguration(w, snap.meta.config);
      const config = w.finish();
      const { index, term } = snap.meta;
      this.putSnapshot.run(index, term, config, snap.data, snapshotChecksum(index, term, config, snap.data));
    }
    const entries = batch.entries;
    if (entries && entries.length > 0) {
      const n = entries.length;
      const params = this.chunkParams;
      let i = 0;
      let bytes = 0;
      for (; i + ENTRY_CHUNK <= n; i += ENTRY_CHUNK) {
        for (let j = 0; j < ENTRY_CHUNK; j++) {
          const e = entries[i + j]!;
          const p = j * 5;
          params[p] = e.index;
          params[p + 1] = e.term;
          params[p + 2] = e.type;
          params[p + 3] = e.data;
          params[p + 4] = entryChecksum(e.index, e.term, e.type, e.data);
          bytes += e.data.length;
        }
        this.insertChunk.run(params);
      }
      for (; i < n; i++) {
        const e = entries[i]!;
        this.insertOne.run(e.index, e.term, e.type, e.data, entryChecksum(e.index, e.term, e.type, e.data));
        bytes += e.data.length;
      }
      this.entriesWritten += n;
      this.bytesWritten += bytes;
    }
    const hs = batch.hardState;
    if (hs) this.putHardState.run(hs.term, hs.vote, hs.commit, hardStateChecksum(hs.term, hs.vote, hs.commit));
  }
}

interface NormalizedOptions {
  path: string;
  create: boolean;
  synchronous: SqliteSynchronous;
  exclusive: boolean;
  busyTimeoutMs: number;
  walAutocheckpointPages: number;
  cacheSizeKiB: number;
  identity: SqliteStorageIdentity;
}

function normalizeOptions(options: SqliteStorageOptions): NormalizedOptions {
  if (!options || typeof options !== 'object') throw new InvalidArgumentError('SqliteStorage needs an options object with a path');
  const { path } = options;
  if (typeof path !== 'string' || path.length === 0) throw new InvalidArgumentError('SqliteStorage: path must be a non-empty string');
  const synchronous = options.synchronous ?? 'full';
  if (synchronous !== 'full' && synchronous !== 'extra' && synchronous !== 'normal') {
    throw new InvalidArgumentError(`SqliteStorage: synchronous must be 'full', 'extra' or 'normal', got ${String(synchronous)}`);
  }
  const nonNegInt = (v: number | undefined, name: string, dflt: number) => {
    const x = v ?? dflt;
    if (!Number.isSafeInteger(x) || x < 0) throw new InvalidArgumentError(`SqliteStorage: ${name} must be a non-negative integer, got ${x}`);
    return x;
  };
  return {
    path,
    create: options.create ?? true,
    synchronous,
    exclusive: options.exclusive ?? true,
    busyTimeoutMs: nonNegInt(options.busyTimeoutMs, 'busyTimeoutMs', 0),
    walAutocheckpointPages: nonNegInt(options.walAutocheckpointPages, 'walAutocheckpointPages', 1000),
    cacheSizeKiB: nonNegInt(options.cacheSizeKiB, 'cacheSizeKiB', 16 * 1024),
    identity: normalizeIdentity(options.identity),
  };
}

function normalizeIdentity(identity: SqliteStorageIdentity | undefined): SqliteStorageIdentity {
  if (identity === undefined) return {};
  if (identity === null || typeof identity !== 'object') throw new InvalidArgumentError('SqliteStorage: identity must be an object');
  const out: { -readonly [K in keyof SqliteStorageIdentity]: string } = {};
  for (const [field] of IDENTITY_KEYS) {
    const v: unknown = identity[field];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v.length === 0 || v.length > 256) {
      throw new InvalidArgumentError(`SqliteStorage: identity.${field} must be a string of 1..256 characters, got ${JSON.stringify(v)}`);
    }
    out[field] = v;
  }
  return out;
}

/**
 * Sets pragmas, checks the file is a synod database of a known, intact schema and belongs to
 * the given identity, creates (or completes) the schema and stores missing identity fields.
 * Returns the identity the file holds afterwards. Every check runs before the first write.
 */
function initialize(db: Database.Database, o: NormalizedOptions): SqliteStorageIdentity {
  // locking_mode must be set before the first access so that WAL mode keeps its index in heap
  // memory (no -shm file) and the lock is held from the first write on.
  if (o.exclusive) db.pragma('locking_mode = EXCLUSIVE');
  // The first real read: fails with SQLITE_NOTADB on a file that is not a database.
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  let fresh = false;
  if (appId === 0 && version === 0) {
    const tables = db.prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").pluck().get() as number;
    if (tables > 0) throw new SqliteStorageError('foreign-database', `${o.path} is an SQLite database that was not created by synod`);
    // Checked before anything below writes to the file.
    if (!o.create) throw missing(o.path, 'holds no synod schema yet');
    fresh = true;
  } else if (appId !== APPLICATION_ID) {
    throw new SqliteStorageError('foreign-database', `${o.path} is an SQLite database of another application (application_id ${appId})`);
  } else if (version > SCHEMA_VERSION) {
    throw new SqliteStorageError(
      'newer-schema',
      `${o.path} has schema version ${version}, newer than ${SCHEMA_VERSION} which this version of @synod/storage-sqlite understands; upgrade the package`,
    );
  }
  // Read-only checks first, so that a damaged or foreign file is reported as such (not as an
  // I/O error on a read-only file) and is never written to.
  if (!fresh) {
    checkSchema(db, o.path);
    checkIdentity(readIdentity(db), o.identity, o.path);
  }
  const mode = db.pragma('journal_mode = WAL', { simple: true }) as string;
  if (mode !== 'wal' && mode !== 'memory') throw new SqliteStorageError('io', `${o.path}: could not enable WAL mode (got ${mode})`);
  db.pragma(`synchronous = ${o.synchronous.toUpperCase()}`);
  db.pragma(`wal_autocheckpoint = ${o.walAutocheckpointPages}`);
  db.pragma(`cache_size = -${o.cacheSizeKiB}`);
  db.pragma('foreign_keys = OFF');
  // Creating (or confirming) the schema is a write: with exclusive locking it takes the lock
  // that is then held until close. The checks are repeated under that lock (authoritative when
  // another connection could have written in between, i.e. with exclusive: false).
  let identity: SqliteStorageIdentity = {};
  db.transaction(() => {
    if (fresh) {
      db.exec(SCHEMA);
    } else {
      checkSchema(db, o.path);
      // Files from before checksums: add the columns (NULL, not verified, in existing rows).
      for (const table of Object.keys(REQUIRED_TABLES)) {
        if (!columnsOf(db, table).some((c) => c.name === 'crc')) db.exec(`ALTER TABLE ${table} ADD COLUMN crc INTEGER`);
      }
    }
    if (!tableExists(db, 'meta')) db.exec(META_SCHEMA);
    const stored = readIdentity(db);
    checkIdentity(stored, o.identity, o.path);
    const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
    for (const [field, key] of IDENTITY_KEYS) {
      const given = o.identity[field];
      if (given !== undefined && stored[field] === undefined) put.run(key, given);
    }
    identity = Object.freeze({ ...stored, ...o.identity });
    if (appId === 0) db.pragma(`application_id = ${APPLICATION_ID}`);
    if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
  return identity;
}

interface ColumnInfo {
  name: string;
  pk: number;
}

function columnsOf(db: Database.Database, table: string): ColumnInfo[] {
  return db.prepare('SELECT name, pk FROM pragma_table_info(?)').all(table) as ColumnInfo[];
}

function tableExists(db: Database.Database, table: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?").pluck().get(table) !== undefined;
}

/**
 * Checks that an existing synod file has every table and column this package uses (a dropped
 * table or a renamed column would otherwise read as an empty log next to a hard state that says
 * otherwise). Throws {@link SqliteStorageError} `corrupt`.
 */
function checkSchema(db: Database.Database, path: string): void {
  const tables: [string, { readonly columns: readonly string[]; readonly pk: string }][] = Object.entries(REQUIRED_TABLES);
  if (tableExists(db, 'meta')) tables.push(['meta', { columns: ['key', 'value'], pk: 'key' }]);
  for (const [table, spec] of tables) {
    const cols = columnsOf(db, table);
    if (cols.length === 0) throw corrupt(`${path} is a synod database (schema version 1) without its table ${table}: it was altered outside synod`);
    const names = new Set(cols.map((c) => c.name));
    for (const c of spec.columns) {
      if (!names.has(c)) throw corrupt(`${path}: table ${table} has no column ${c} (it has ${[...names].join(', ')}): it was altered outside synod`);
    }
    const pk = cols.filter((c) => c.pk > 0).map((c) => c.name);
    if (pk.length !== 1 || pk[0] !== spec.pk) throw corrupt(`${path}: the primary key of table ${table} is not ${spec.pk}: it was altered outside synod`);
  }
}

/** The identity stored in the file (no `meta` table: none). Throws `corrupt` on a non-text value. */
function readIdentity(db: Database.Database): SqliteStorageIdentity {
  if (!tableExists(db, 'meta')) return {};
  const rows = db.prepare('SELECT key, value FROM meta').raw(true).all() as Row[];
  const byKey = new Map(rows.map((r) => [r[0], r[1]]));
  const out: { -readonly [K in keyof SqliteStorageIdentity]: string } = {};
  for (const [field, key] of IDENTITY_KEYS) {
    const v = byKey.get(key);
    if (v === undefined) continue;
    if (typeof v !== 'string') throw corrupt(`meta.${key} is not text`);
    out[field] = v;
  }
  return out;
}

/** Throws {@link SqliteStorageError} `mismatch` if a given field differs from the stored one. */
function checkIdentity(stored: SqliteStorageIdentity, given: SqliteStorageIdentity, path: string): void {
  for (const [field] of IDENTITY_KEYS) {
    const g = given[field];
    const st = stored[field];
    if (g === undefined || st === undefined || g === st) continue;
    throw new SqliteStorageError(
      'mismatch',
      `${path} belongs to ${field} ${JSON.stringify(st)}, but ${field} ${JSON.stringify(g)} was given: refusing to open it ` +
        '(a replica on another cluster\'s, protocol\'s or node\'s data would vote and campaign with state it never had). ' +
        'Point the replica at its own data directory; nothing was written.',
    );
  }
}

/**
 * With `create: false`: the file must exist and be non-empty. Checked with `stat` before SQLite
 * opens the file, because SQLite treats a 0-byte file as a new database and deletes a `-wal`
 * file found next to it.
 */
function requireExistingFile(path: string): void {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (err) {
    if ((err as { code?: unknown })?.code === 'ENOENT') throw missing(path, 'does not exist', err);
    throw new SqliteStorageError('io', `cannot open ${path}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  if (size === 0) throw missing(path, 'is empty (0 bytes)');
}

function missing(path: string, what: string, cause?: unknown): SqliteStorageError {
  return new SqliteStorageError(
    'missing',
    `${path} ${what}, and create: false says this replica existed before: refusing to start it from an empty state ` +
      '(it would forget its votes and log). Restore its data, or remove it from the cluster and add it back as a new member.',
    cause === undefined ? undefined : { cause },
  );
}

function needsWrite(b: PersistBatch): boolean {
  return b.truncateFrom != null || b.compactTo != null || !!b.snapshot || !!b.hardState || (b.entries !== undefined && b.entries.length > 0);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/**
 * The batch's shape, `validateBatch` from @synod/log, and what this schema needs (votes, entry
 * types, snapshot bytes, a configuration that `readConfiguration` can read back). Throws
 * InvalidArgumentError; runs before anything is written.
 */
function validate(batch: PersistBatch): void {
  const raw: unknown = batch;
  if (!isObject(raw)) throw new InvalidArgumentError('persist needs a batch object');
  const { entries, hardState: hs, snapshot: snap } = raw;
  if (entries != null) {
    if (!Array.isArray(entries)) throw new InvalidArgumentError('batch.entries must be an array');
    for (const e of entries) if (!isObject(e)) throw new InvalidArgumentError('every entry must be an object');
  }
  if (hs != null && !isObject(hs)) throw new InvalidArgumentError('batch.hardState must be an object');
  if (snap != null && (!isObject(snap) || !isObject(snap.meta))) throw new InvalidArgumentError('batch.snapshot must be an object with meta');
  validateBatch(batch);
  if (batch.hardState) {
    const vote: unknown = batch.hardState.vote;
    if (vote !== null && typeof vote !== 'string') throw new InvalidArgumentError('hardState.vote must be a string or null');
  }
  if (batch.entries) {
    for (const e of batch.entries) {
      if (!Number.isInteger(e.type) || e.type < 0 || e.type > 255) throw new InvalidArgumentError(`entry.type must be an integer 0..255, got ${e.type}`);
    }
  }
  if (batch.snapshot) {
    if (!(batch.snapshot.data instanceof Uint8Array)) throw new InvalidArgumentError('snapshot.data must be a Uint8Array');
    validateConfigShape(batch.snapshot.meta.config);
  }
}

/**
 * A snapshot configuration must be storable and readable back: `voters` and `learners` arrays
 * (and `outgoingVoters` if present) of valid node ids (`isValidNodeId`), `addresses` (if
 * present) a record of valid node id to string. Throws InvalidArgumentError.
 */
function validateConfigShape(c: unknown): void {
  if (!isObject(c)) throw new InvalidArgumentError('snapshot.meta.config must be a Configuration');
  const ids = (v: unknown, what: string, optional: boolean) => {
    if (v === undefined && optional) return;
    if (!Array.isArray(v)) throw new InvalidArgumentError(`snapshot.meta.config.${what} must be an array of node ids`);
    for (const id of v) {
      if (!isValidNodeId(id)) throw new InvalidArgumentError(`snapshot.meta.config.${what} holds an invalid node id: ${JSON.stringify(id)}`);
    }
  };
  ids(c.voters, 'voters', false);
  ids(c.learners, 'learners', false);
  ids(c.outgoingVoters, 'outgoingVoters', true);
  const addrs = c.addresses;
  if (addrs !== undefined) {
    if (!isObject(addrs)) throw new InvalidArgumentError('snapshot.meta.config.addresses must be a record of node id to address');
    for (const [id, a] of Object.entries(addrs)) {
      if (!isValidNodeId(id) || typeof a !== 'string') {
        throw new InvalidArgumentError(`snapshot.meta.config.addresses holds an invalid entry: ${JSON.stringify(id)} -> ${JSON.stringify(a)}`);
      }
    }
  }
}

function safeInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw corrupt(`${what} is not an integer in 0..2^53-1: ${String(v)}`);
  return v;
}

function entryType(v: unknown): EntryType {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) throw corrupt(`entries.type is invalid: ${String(v)}`);
  return v as EntryType;
}

/** A view of a blob returned by better-sqlite3 (a fresh Buffer), as a plain Uint8Array (no copy). */
function bytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw corrupt(`${what} is not a blob`);
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function decodeConfig(b: Uint8Array): Configuration {
  try {
    const r = new BinaryReader(b);
    const c = readConfiguration(r);
    r.expectEnd();
    return c;
  } catch (err) {
    throw new SqliteStorageError('corrupt', `snapshot.config does not decode: ${(err as Error).message}`, { cause: err });
  }
}

/** Compares a stored `crc` (NULL: written before checksums, not checked) with the row's checksum. */
function checkCrc(stored: unknown, compute: () => number, what: string): void {
  if (stored === null) return;
  if (typeof stored !== 'number' || !Number.isInteger(stored) || stored < 0 || stored > 0xffffffff) throw corrupt(`the checksum of ${what} is invalid: ${String(stored)}`);
  const actual = compute();
  if (actual !== stored) {
    throw corrupt(
      `${what} does not match its checksum (stored 0x${stored.toString(16).padStart(8, '0')}, computed 0x${actual.toString(16).padStart(8, '0')}): ` +
        'the file was corrupted on disk or altered outside synod',
    );
  }
}

function corrupt(message: string): SqliteStorageError {
  return new SqliteStorageError('corrupt', message);
}

/** Maps a better-sqlite3 error to a {@link SqliteStorageError}. */
function translate(err: unknown, context: string): SqliteStorageError {
  if (err instanceof SqliteStorageError) return err;
  const code = (err as { code?: unknown })?.code;
  const msg = (err as Error)?.message ?? String(err);
  if (code === 'SQLITE_NOTADB') return new SqliteStorageError('not-a-database', `${context}: not an SQLite database (${msg})`, { cause: err });
  if (code === 'SQLITE_CORRUPT') return new SqliteStorageError('corrupt', `${context}: database is corrupt (${msg})`, { cause: err });
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new SqliteStorageError('locked', `${context}: database is locked by another connection (${msg})`, { cause: err });
  }
  return new SqliteStorageError('io', `${context}: ${msg}`, { cause: err });
}
