/**
 * Builds a replica's parts for the bench: the protocol (loaded by name, so a protocol package
 * that has not landed yet only skips its cells), the storage and the state machine.
 */
import {
  BinaryReader,
  BinaryWriter,
  type ApplyContext,
  type ConsensusProtocol,
  type MaybePromise,
  MemoryStorage,
  type PersistBatch,
  type PersistedState,
  type StateMachine,
  type Storage,
} from '@synod/log';
import { SqliteStorage } from '@synod/storage-sqlite';
import { join } from 'node:path';
import type { Protocol, StorageKind } from './matrix.js';

/** A protocol package that cannot be loaded (not built or not landed yet). */
export class UnavailableError extends Error {
  override readonly name = 'UnavailableError';
}

const PROTOCOL_MODULES: Record<Protocol, { readonly specifier: string; readonly factory: string }> = {
  raft: { specifier: '@synod/raft', factory: 'raft' },
  paxos: { specifier: '@synod/paxos', factory: 'paxos' },
};

/**
 * Loads `@synod/<protocol>` and calls its factory with `options`. Throws
 * {@link UnavailableError} if the package cannot be imported or has no factory.
 */
export async function loadProtocol(name: Protocol, options: Record<string, unknown> = {}): Promise<ConsensusProtocol<any>> {
  const m = PROTOCOL_MODULES[name];
  let mod: Record<string, unknown>;
  try {
    // A variable specifier keeps tsc and tsup from resolving it at build time.
    const spec: string = m.specifier;
    mod = (await import(spec)) as Record<string, unknown>;
  } catch (err) {
    throw new UnavailableError(`${m.specifier} cannot be loaded: ${(err as Error).message.split('\n')[0]}`);
  }
  const factory = mod[m.factory];
  if (typeof factory !== 'function') throw new UnavailableError(`${m.specifier} has no ${m.factory}() export`);
  return (factory as (o: Record<string, unknown>) => ConsensusProtocol<any>)(options);
}

/** Whether a protocol package loads, without keeping it. */
export async function protocolAvailable(name: Protocol): Promise<string | null> {
  try {
    await loadProtocol(name);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Builds one replica's storage. `sqlite` uses `@synod/storage-sqlite` with its own defaults
 * (WAL, synchronous=FULL) in `dir/<id>.db`.
 */
export function createStorage(kind: StorageKind, dir: string, id: string): CountingStorage {
  if (kind === 'memory') return new CountingStorage(new MemoryStorage());
  return new CountingStorage(new SqliteStorage({ path: join(dir, `${id}.db`) }));
}

/**
 * A {@link Storage} wrapper that counts `persist` calls and the entries they carry, so a cell
 * can report its batching (entries per persist, i.e. per SQLite transaction and fsync).
 */
export class CountingStorage implements Storage {
  /** `persist` calls so far. */
  persists = 0;
  /** Entries written so far. */
  entries = 0;
  constructor(readonly inner: Storage) {}
  load(): MaybePromise<PersistedState> {
    return this.inner.load();
  }
  persist(batch: PersistBatch): MaybePromise<void> {
    this.persists++;
    this.entries += batch.entries?.length ?? 0;
    return this.inner.persist(batch);
  }
  close(): MaybePromise<void> {
    return this.inner.close();
  }
}

/** Counters of one replica's I/O (see {@link CountingStorage} and `Transport.stats`). */
export interface IoCounters {
  readonly persists: number;
  readonly entries: number;
  /** Messages handed to the transport. */
  readonly messages: number;
}

/** Sums I/O counters. */
export function sumIo(list: readonly IoCounters[]): IoCounters {
  return list.reduce((a, b) => ({ persists: a.persists + b.persists, entries: a.entries + b.entries, messages: a.messages + b.messages }), { persists: 0, entries: 0, messages: 0 });
}

/** Batching figures over a window from two counter samples summed over every replica. */
export function batchingOf(start: IoCounters, end: IoCounters, ops: number, windowMs: number): { persistsPerSec: number; entriesPerPersist: number; messagesPerOp: number } {
  const persists = end.persists - start.persists;
  const entries = end.entries - start.entries;
  const messages = end.messages - start.messages;
  const r = (n: number) => Math.round(n * 100) / 100;
  return {
    persistsPerSec: r((persists / windowMs) * 1000),
    entriesPerPersist: persists > 0 ? r(entries / persists) : 0,
    messagesPerOp: ops > 0 ? r(messages / ops) : 0,
  };
}

/**
 * The bench's state machine: it counts applied commands and their bytes and returns the
 * command's log index, so the measured cost is consensus, not the application. Snapshots are
 * 16 bytes.
 */
export class CounterStateMachine implements StateMachine<number, 'count' | 'bytes', number> {
  private commands = 0;
  private bytes = 0;

  apply(command: Uint8Array, ctx: ApplyContext): number {
    this.commands++;
    this.bytes += command.length;
    return ctx.index;
  }

  query(q: 'count' | 'bytes'): number {
    return q === 'count' ? this.commands : this.bytes;
  }

  snapshot(): Uint8Array {
    return new BinaryWriter(16).uvarint(this.commands).uvarint(this.bytes).finish();
  }

  restore(data: Uint8Array): void {
    const r = new BinaryReader(data);
    this.commands = r.uvarint();
    this.bytes = r.uvarint();
  }

  encodeResult(result: number): Uint8Array {
    return new BinaryWriter(8).uvarint(result).finish();
  }

  decodeResult(bytes: Uint8Array): number {
    return new BinaryReader(bytes).uvarint();
  }
}

/** A command payload of `bytes` bytes (a recognisable pattern, never all zeros). */
export function makePayload(bytes: number): Uint8Array {
  const p = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) p[i] = (i * 31 + 7) & 0xff;
  return p;
}
