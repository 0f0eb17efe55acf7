/**
 * Binary codec of {@link PaxosMessage}s (the `MessageCodec` transports use) and the structural
 * check `step()` applies to messages that did not come through the codec (in-memory transports
 * hand objects over as they are).
 *
 * Layout: type u8 | from string | to string | fields of the type, integers as LEB128 varints.
 * Entry payloads are written once and read back as views into the input (no copy).
 */
import {
  BinaryReader,
  BinaryWriter,
  type Entry,
  EntryType,
  isValidNodeId,
  MalformedMessageError,
  type MessageCodec,
  readConfiguration,
  type SnapshotMeta,
  writeConfiguration,
} from '@synod/log';
import { type AcceptMessage, type PaxosMessage, PaxosMessageType as T, type PromiseMessage } from './messages.js';

const EMPTY = new Uint8Array(0);

function writeEntriesAt(w: BinaryWriter, entries: readonly Entry[], withTerm: boolean): void {
  w.uvarint(entries.length);
  let prev = 0;
  for (const e of entries) {
    // Slots ascend; a delta keeps contiguous runs at one byte per slot.
    w.uvarint(e.index - prev);
    prev = e.index;
    if (withTerm) w.uvarint(e.term);
    w.u8(e.type);
    w.bytes(e.data);
  }
}

function readEntriesAt(r: BinaryReader, round: number | null): Entry[] {
  const n = r.uvarint();
  // Every entry takes at least 3 bytes: a cheap bound against absurd counts.
  if (n * 3 > r.remaining) throw new MalformedMessageError('entry count larger than input');
  const out = new Array<Entry>(n);
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const delta = r.uvarint();
    if (delta < 1) throw new MalformedMessageError('entry slots must ascend');
    const index = prev + delta;
    if (!Number.isSafeInteger(index)) throw new MalformedMessageError('entry slot too large');
    prev = index;
    const term = round === null ? r.uvarint() : round;
    const type = r.u8();
    if (type > 2) throw new MalformedMessageError(`unknown entry type ${type}`);
    const data = r.bytes();
    out[i] = { index, term, type: type as EntryType, data };
  }
  return out;
}

function writeMeta(w: BinaryWriter, m: SnapshotMeta): void {
  w.uvarint(m.index).uvarint(m.term);
  writeConfiguration(w, m.config);
}

function readMeta(r: BinaryReader): SnapshotMeta {
  const index = r.uvarint();
  const term = r.uvarint();
  const config = readConfiguration(r);
  return { index, term, config };
}

function readId(r: BinaryReader): string {
  const s = r.string();
  if (!isValidNodeId(s)) throw new MalformedMessageError('invalid node id');
  return s;
}

function readBool(r: BinaryReader): boolean {
  const b = r.u8();
  if (b > 1) throw new MalformedMessageError(`invalid boolean ${b}`);
  return b === 1;
}

/**
 * The codec of the Paxos core's messages. `write` assumes a message that passes
 * {@link isValidPaxosMessage}; `read` throws only {@link MalformedMessageError} and returns
 * payloads as views into the input.
 */
export const paxosCodec: MessageCodec<PaxosMessage> = {
  write(w: BinaryWriter, m: PaxosMessage): void {
    w.u8(m.type).string(m.from).string(m.to);
    switch (m.type) {
      case T.Prepare:
        w.uvarint(m.round).uvarint(m.commit).u8(m.force ? 1 : 0).uvarint(m.transferRound).optString(m.transferOwner);
        return;
      case T.Promise:
        w.uvarint(m.round).uvarint(m.commit);
        writeEntriesAt(w, m.entries, true);
        return;
      case T.Nack:
        w.uvarint(m.round).uvarint(m.promisedRound).optString(m.promisedOwner).u8(m.lagging ? 1 : 0).uvarint(m.commit);
        return;
      case T.Accept:
        w.uvarint(m.round).uvarint(m.commit).uvarint(m.seq);
        writeEntriesAt(w, m.entries, false);
        return;
      case T.Accepted:
        w.uvarint(m.round).uvarint(m.match).uvarint(m.last).uvarint(m.seq);
        return;
      case T.Snapshot:
        w.uvarint(m.round);
        writeMeta(w, m.meta);
        w.uvarint(m.offset).uvarint(m.total).bytes(m.data);
        return;
      case T.SnapshotAck:
        w.uvarint(m.round).uvarint(m.index).uvarint(m.offset).uvarint(m.match);
        return;
      case T.TimeoutNow:
        w.uvarint(m.round);
        return;
      case T.Forward:
        w.uvarint(m.commands.length);
        for (const c of m.commands) w.bytes(c);
        return;
      case T.ReadIndex:
        w.uvarint(m.ctx);
        return;
      case T.ReadIndexResponse:
        w.uvarint(m.ctx).u8(m.ok ? 1 : 0).uvarint(m.index);
        return;
    }
  },

  read(r: BinaryReader): PaxosMessage {
    const type = r.u8();
    const from = readId(r);
    const to = readId(r);
    switch (type) {
      case T.Prepare: {
        const round = r.uvarint();
        const commit = r.uvarint();
        const force = readBool(r);
        const transferRound = r.uvarint();
        const transferOwner = r.optString();
        if (transferOwner !== null && !isValidNodeId(transferOwner)) throw new MalformedMessageError('invalid node id');
        return { type, from, to, round, commit, force, transferRound, transferOwner };
      }
      case T.Promise: {
        const round = r.uvarint();
        const commit = r.uvarint();
        const entries = readEntriesAt(r, null);
        return { type, from, to, round, commit, entries } satisfies PromiseMessage;
      }
      case T.Nack: {
        const round = r.uvarint();
        const promisedRound = r.uvarint();
        const promisedOwner = r.optString();
        if (promisedOwner !== null && !isValidNodeId(promisedOwner)) throw new MalformedMessageError('invalid node id');
        const lagging = readBool(r);
        const commit = r.uvarint();
        return { type, from, to, round, promisedRound, promisedOwner, lagging, commit };
      }
      case T.Accept: {
        const round = r.uvarint();
        const commit = r.uvarint();
        const seq = r.uvarint();
        const entries = readEntriesAt(r, round);
        return { type, from, to, round, commit, seq, entries } satisfies AcceptMessage;
      }
      case T.Accepted:
        return { type, from, to, round: r.uvarint(), match: r.uvarint(), last: r.uvarint(), seq: r.uvarint() };
      case T.Snapshot: {
        const round = r.uvarint();
        const meta = readMeta(r);
        const offset = r.uvarint();
        const total = r.uvarint();
        const data = r.bytes();
        if (offset + data.length > total) throw new MalformedMessageError('snapshot chunk beyond its total size');
        return { type, from, to, round, meta, offset, total, data };
      }
      case T.SnapshotAck:
        return { type, from, to, round: r.uvarint(), index: r.uvarint(), offset: r.uvarint(), match: r.uvarint() };
      case T.TimeoutNow:
        return { type, from, to, round: r.uvarint() };
      case T.Forward: {
        const n = r.uvarint();
        if (n > r.remaining) throw new MalformedMessageError('command count larger than input');
        const commands = new Array<Uint8Array>(n);
        for (let i = 0; i < n; i++) commands[i] = r.bytes();
        return { type, from, to, commands };
      }
      case T.ReadIndex:
        return { type, from, to, ctx: r.uvarint() };
      case T.ReadIndexResponse: {
        const ctx = r.uvarint();
        const ok = readBool(r);
        return { type, from, to, ctx, ok, index: r.uvarint() };
      }
      default:
        throw new MalformedMessageError(`unknown paxos message type ${type}`);
    }
  },
};

const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;

function validEntries(es: unknown, withTerm: boolean): boolean {
  if (!Array.isArray(es)) return false;
  let prev = 0;
  for (const e of es as unknown[]) {
    if (typeof e !== 'object' || e === null) return false;
    const x = e as Partial<Entry>;
    if (!isNat(x.index) || x.index <= prev) return false;
    if (withTerm && !isNat(x.term)) return false;
    if (x.type !== EntryType.Normal && x.type !== EntryType.NoOp && x.type !== EntryType.Config) return false;
    if (!isBytes(x.data)) return false;
    prev = x.index;
  }
  return true;
}

/**
 * Whether `m` is a structurally valid {@link PaxosMessage}: known type, valid ids, integer fields
 * in range, ascending entry slots. `step()` drops (and counts) anything else.
 */
export function isValidPaxosMessage(m: unknown): m is PaxosMessage {
  if (typeof m !== 'object' || m === null) return false;
  const x = m as Record<string, unknown>;
  if (!isValidNodeId(x.from) || !isValidNodeId(x.to)) return false;
  switch (x.type) {
    case T.Prepare:
      return (
        isNat(x.round) && isNat(x.commit) && typeof x.force === 'boolean' && isNat(x.transferRound) &&
        (x.transferOwner === null || isValidNodeId(x.transferOwner))
      );
    case T.Promise:
      return isNat(x.round) && isNat(x.commit) && validEntries(x.entries, true);
    case T.Nack:
      return (
        isNat(x.round) && isNat(x.promisedRound) && (x.promisedOwner === null || isValidNodeId(x.promisedOwner)) &&
        typeof x.lagging === 'boolean' && isNat(x.commit)
      );
    case T.Accept:
      return isNat(x.round) && isNat(x.commit) && isNat(x.seq) && validEntries(x.entries, false);
    case T.Accepted:
      return isNat(x.round) && isNat(x.match) && isNat(x.last) && isNat(x.seq);
    case T.Snapshot: {
      const meta = x.meta as SnapshotMeta | undefined;
      return (
        isNat(x.round) && typeof meta === 'object' && meta !== null && isNat(meta.index) && isNat(meta.term) &&
        typeof meta.config === 'object' && meta.config !== null && Array.isArray(meta.config.voters) &&
        Array.isArray(meta.config.learners) && isNat(x.offset) && isNat(x.total) && isBytes(x.data) &&
        (x.offset as number) + (x.data as Uint8Array).length <= (x.total as number)
      );
    }
    case T.SnapshotAck:
      return isNat(x.round) && isNat(x.index) && isNat(x.offset) && isNat(x.match);
    case T.TimeoutNow:
      return isNat(x.round);
    case T.Forward:
      return Array.isArray(x.commands) && (x.commands as unknown[]).every(isBytes);
    case T.ReadIndex:
      return isNat(x.ctx);
    case T.ReadIndexResponse:
      return isNat(x.ctx) && typeof x.ok === 'boolean' && isNat(x.index);
    default:
      return false;
  }
}

/** An empty payload shared by no-ops (never mutated). */
export const NO_DATA: Uint8Array = EMPTY;
