/**
 * The runtime's header on every `Normal` entry it proposes. Cores never look inside; the
 * runtime reads it back when the entry is applied, on every replica, to (1) resolve the
 * proposer's promise, (2) deduplicate session commands (Raft thesis §6.3), and (3) advance
 * the log's notion of time used to expire sessions deterministically.
 *
 * Layout: kind u8 | origin string | origin tag uvarint | request uvarint | time uvarint |
 * (kind = Session: session uvarint | seq uvarint) | (kind = CloseSession: session uvarint) |
 * command bytes (the rest).
 */
import { BinaryReader, BinaryWriter } from './binary.js';
import { MalformedMessageError } from './errors.js';
import type { NodeId } from './types.js';

/** Kinds of runtime entries. */
export const CommandKind = {
  /** A command without a session (at-least-once on retry). */
  Plain: 0,
  /** A command within a client session (exactly-once). */
  Session: 1,
  /** Opens a session; its id is the entry's index. */
  OpenSession: 2,
  /** Closes a session. */
  CloseSession: 3,
} as const;
/** One of the {@link CommandKind} values. */
export type CommandKind = (typeof CommandKind)[keyof typeof CommandKind];

/** A decoded command header plus the command payload (a view, no copy). */
export interface CommandEnvelope {
  readonly kind: CommandKind;
  /** Node whose runtime proposed it. */
  readonly origin: NodeId;
  /** Random tag of that runtime's incarnation, so a restarted node never matches old requests. */
  readonly originTag: number;
  /** Request number within that incarnation. */
  readonly request: number;
  /** Proposer's wall clock in ms when proposed. */
  readonly time: number;
  /** Session id (Session, CloseSession), else 0. */
  readonly session: number;
  /** Sequence number within the session (Session), else 0. */
  readonly seq: number;
  /** The application command. */
  readonly payload: Uint8Array;
}

/** Encodes a command and its header into one buffer (the only copy of the payload). */
export function encodeCommand(e: Omit<CommandEnvelope, 'payload'>, payload: Uint8Array): Uint8Array {
  const w = new BinaryWriter(32 + e.origin.length + payload.length);
  w.u8(e.kind).string(e.origin).uvarint(e.originTag).uvarint(e.request).uvarint(Math.max(0, Math.floor(e.time)));
  if (e.kind === CommandKind.Session) w.uvarint(e.session).uvarint(e.seq);
  else if (e.kind === CommandKind.CloseSession) w.uvarint(e.session);
  w.raw(payload);
  return w.finish();
}

/** Decodes {@link encodeCommand}'s output. Throws {@link MalformedMessageError}. */
export function decodeCommand(data: Uint8Array): CommandEnvelope {
  const r = new BinaryReader(data);
  const kind = r.u8();
  if (kind > 3) throw new MalformedMessageError(`unknown command kind ${kind}`);
  const origin = r.string();
  const originTag = r.uvarint();
  const request = r.uvarint();
  const time = r.uvarint();
  let session = 0;
  let seq = 0;
  if (kind === CommandKind.Session) {
    session = r.uvarint();
    seq = r.uvarint();
  } else if (kind === CommandKind.CloseSession) {
    session = r.uvarint();
  }
  const payload = r.raw(r.remaining);
  return { kind: kind as CommandKind, origin, originTag, request, time, session, seq, payload };
}
