/**
 * `raftCodec`: the binary form of {@link RaftMessage}s, built on `BinaryWriter`/`BinaryReader`
 * from `@synod/log` (LEB128 varints, length-prefixed bytes). No JSON; entry payloads and
 * snapshot chunks are decoded as views into the input (no copies). Entries of an AppendEntries
 * are written without their index (it follows from prevLogIndex).
 *
 * Layout: type u8 | from string | to string | term uvarint | type-specific fields.
 */
import {
  type BinaryReader,
  type BinaryWriter,
  type Entry,
  EntryType,
  isValidNodeId,
  MalformedMessageError,
  type MessageCodec,
  readConfiguration,
  writeConfiguration,
} from '@synod/log';
import { type RaftMessage, RaftMessageType, type ReadMode, type ReadStatus } from './messages.js';

function bool(r: BinaryReader): boolean {
  const b = r.u8();
  if (b > 1) throw new MalformedMessageError(`invalid boolean ${b}`);
  return b === 1;
}

function nodeId(r: BinaryReader, what: string): string {
  const s = r.string();
  if (!isValidNodeId(s)) throw new MalformedMessageError(`invalid node id in ${what}`);
  return s;
}

function count(r: BinaryReader, minBytesEach: number): number {
  const n = r.uvarint();
  if (n * minBytesEach > r.remaining) throw new MalformedMessageError('element count longer than input');
  return n;
}

function writeIds(w: BinaryWriter, ids: readonly number[]): void {
  w.uvarint(ids.length);
  for (const id of ids) w.uvarint(id);
}

function readIds(r: BinaryReader): number[] {
  const n = count(r, 1);
  const ids = new Array<number>(n);
  for (let i = 0; i < n; i++) ids[i] = r.uvarint();
  return ids;
}

/**
 * Binary codec of Raft messages. `read` throws only {@link MalformedMessageError} (unknown
 * type, truncated input, invalid ids, booleans or entry types, inconsistent sizes). Semantic
 * checks (e.g. a term of 0 on a vote) are left to the core, which drops and counts them.
 */
export const raftCodec: MessageCodec<RaftMessage> = {
  write(w: BinaryWriter, m: RaftMessage): void {
    w.u8(m.type).string(m.from).string(m.to).uvarint(m.term);
    switch (m.type) {
      case RaftMessageType.Vote:
      case RaftMessageType.PreVote:
        w.uvarint(m.lastLogIndex).uvarint(m.lastLogTerm).u8(m.transfer ? 1 : 0);
        return;
      case RaftMessageType.VoteResponse:
      case RaftMessageType.PreVoteResponse:
        w.u8(m.granted ? 1 : 0);
        return;
      case RaftMessageType.Append: {
        w.uvarint(m.prevLogIndex).uvarint(m.prevLogTerm).uvarint(m.leaderCommit).uvarint(m.entries.length);
        const ents = m.entries;
        for (let i = 0; i < ents.length; i++) {
          const e = ents[i]!;
          w.uvarint(e.term).u8(e.type).bytes(e.data);
        }
        return;
      }
      case RaftMessageType.AppendResponse:
        w.u8(m.success ? 1 : 0).uvarint(m.index).uvarint(m.conflictIndex).uvarint(m.conflictTerm);
        return;
      case RaftMessageType.Heartbeat:
        w.uvarint(m.commit).uvarint(m.seq);
        return;
      case RaftMessageType.HeartbeatResponse:
        w.uvarint(m.seq).u8(m.unverified ? 1 : 0);
        return;
      case RaftMessageType.InstallSnapshot:
        w.uvarint(m.meta.index).uvarint(m.meta.term);
        writeConfiguration(w, m.meta.config);
        w.uvarint(m.size).uvarint(m.offset).bytes(m.data);
        return;
      case RaftMessageType.SnapshotResponse:
        w.uvarint(m.index).uvarint(m.offset);
        return;
      case RaftMessageType.TimeoutNow:
        return;
      case RaftMessageType.Propose:
        w.uvarint(m.commands.length);
        for (const c of m.commands) w.bytes(c);
        return;
      case RaftMessageType.ReadIndex:
        w.u8(m.mode).uvarint(m.nonce);
        writeIds(w, m.ids);
        return;
      case RaftMessageType.ReadIndexResponse:
        w.u8(m.status).uvarint(m.index).optString(m.leaderHint).uvarint(m.nonce);
        writeIds(w, m.ids);
        return;
    }
  },

  read(r: BinaryReader): RaftMessage {
    const type = r.u8();
    const from = nodeId(r, 'from');
    const to = nodeId(r, 'to');
    const term = r.uvarint();
    switch (type) {
      case RaftMessageType.Vote:
      case RaftMessageType.PreVote: {
        const lastLogIndex = r.uvarint();
        const lastLogTerm = r.uvarint();
        const transfer = bool(r);
        return { type, from, to, term, lastLogIndex, lastLogTerm, transfer };
      }
      case RaftMessageType.VoteResponse:
      case RaftMessageType.PreVoteResponse:
        return { type, from, to, term, granted: bool(r) };
      case RaftMessageType.Append: {
        const prevLogIndex = r.uvarint();
        const prevLogTerm = r.uvarint();
        const leaderCommit = r.uvarint();
        const n = count(r, 3);
        const entries = new Array<Entry>(n);
        for (let i = 0; i < n; i++) {
          const eterm = r.uvarint();
          const etype = r.u8();
          if (etype !== EntryType.Normal && etype !== EntryType.NoOp && etype !== EntryType.Config) {
            throw new MalformedMessageError(`invalid entry type ${etype}`);
          }
          const index = prevLogIndex + 1 + i;
          if (index > Number.MAX_SAFE_INTEGER) throw new MalformedMessageError('entry index overflow');
          entries[i] = { index, term: eterm, type: etype, data: r.bytes() };
        }
        return { type, from, to, term, prevLogIndex, prevLogTerm, leaderCommit, entries };
      }
      case RaftMessageType.AppendResponse: {
        const success = bool(r);
        const index = r.uvarint();
        const conflictIndex = r.uvarint();
        const conflictTerm = r.uvarint();
        return { type, from, to, term, success, index, conflictIndex, conflictTerm };
      }
      case RaftMessageType.Heartbeat: {
        const commit = r.uvarint();
        const seq = r.uvarint();
        return { type, from, to, term, commit, seq };
      }
      case RaftMessageType.HeartbeatResponse: {
        const seq = r.uvarint();
        return { type, from, to, term, seq, unverified: bool(r) };
      }
      case RaftMessageType.InstallSnapshot: {
        const index = r.uvarint();
        const sterm = r.uvarint();
        const config = readConfiguration(r);
        const size = r.uvarint();
        const offset = r.uvarint();
        const data = r.bytes();
        if (offset + data.length > size) throw new MalformedMessageError('snapshot chunk beyond its size');
        return { type, from, to, term, meta: { index, term: sterm, config }, size, offset, data };
      }
      case RaftMessageType.SnapshotResponse: {
        const index = r.uvarint();
        const offset = r.uvarint();
        return { type, from, to, term, index, offset };
      }
      case RaftMessageType.TimeoutNow:
        return { type, from, to, term };
      case RaftMessageType.Propose: {
        const n = count(r, 1);
        const commands = new Array<Uint8Array>(n);
        for (let i = 0; i < n; i++) commands[i] = r.bytes();
        return { type, from, to, term, commands };
      }
      case RaftMessageType.ReadIndex: {
        const mode = r.u8();
        if (mode > 1) throw new MalformedMessageError(`invalid read mode ${mode}`);
        const nonce = r.uvarint();
        return { type, from, to, term, mode: mode as ReadMode, nonce, ids: readIds(r) };
      }
      case RaftMessageType.ReadIndexResponse: {
        const status = r.u8();
        if (status > 2) throw new MalformedMessageError(`invalid read status ${status}`);
        const index = r.uvarint();
        const leaderHint = r.optString();
        if (leaderHint !== null && !isValidNodeId(leaderHint)) throw new MalformedMessageError('invalid leader hint');
        const nonce = r.uvarint();
        return { type, from, to, term, status: status as ReadStatus, index, leaderHint, nonce, ids: readIds(r) };
      }
      default:
        throw new MalformedMessageError(`unknown raft message type ${type}`);
    }
  },
};
