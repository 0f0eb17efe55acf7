/**
 * Membership configurations: validation, the binary form stored in `Config` entries and
 * snapshot metadata, and the membership changes a runtime can ask a core for.
 */
import { BinaryReader, BinaryWriter } from './binary.js';
import { InvalidConfigurationError, MalformedMessageError } from './errors.js';
import type { Configuration, NodeId } from './types.js';

/**
 * A membership change requested through `ReplicatedLog.changeMembership` (Raft thesis §4.3,
 * applied by joint consensus; §4.2.1 learners).
 * - `addLearner`: add a non-voting member that receives the log.
 * - `addVoter`: add a voting member, or promote an existing learner.
 * - `remove`: remove a voter or learner (the leader included).
 */
export type MembershipChange =
  | { readonly type: 'addLearner'; readonly id: NodeId; readonly address?: string }
  | { readonly type: 'addVoter'; readonly id: NodeId; readonly address?: string }
  | { readonly type: 'remove'; readonly id: NodeId };

const ID_RE = /^[^\s]{1,128}$/;

/**
 * Whether `id` is a valid {@link NodeId}: 1..128 characters, no whitespace, and not
 * `__proto__` (ids are used as record keys, e.g. in `Configuration.addresses`).
 */
export function isValidNodeId(id: unknown): id is NodeId {
  return typeof id === 'string' && ID_RE.test(id) && id !== '__proto__';
}

/** True while a joint configuration (C_old,new) is in effect. */
export function isJoint(config: Configuration): boolean {
  return config.outgoingVoters !== undefined;
}

/** Every voter of the configuration, incoming and outgoing, without duplicates. */
export function allVoters(config: Configuration): NodeId[] {
  if (!config.outgoingVoters) return [...config.voters];
  const set = new Set<NodeId>(config.voters);
  for (const v of config.outgoingVoters) set.add(v);
  return [...set];
}

/** Every member (voters of both halves and learners), without duplicates. */
export function allMembers(config: Configuration): NodeId[] {
  const set = new Set<NodeId>(allVoters(config));
  for (const l of config.learners) set.add(l);
  return [...set];
}

/** Whether `id` may vote in `config` (in either half of a joint configuration). */
export function isVoter(config: Configuration, id: NodeId): boolean {
  return config.voters.includes(id) || (config.outgoingVoters?.includes(id) ?? false);
}

/**
 * Checks a configuration and throws {@link InvalidConfigurationError} if it is unusable:
 * invalid ids, duplicates, a member both voter and learner, or an empty voter set.
 */
export function validateConfiguration(config: Configuration): void {
  const check = (ids: readonly NodeId[], what: string) => {
    const seen = new Set<NodeId>();
    for (const id of ids) {
      if (!isValidNodeId(id)) throw new InvalidConfigurationError(`invalid node id in ${what}: ${JSON.stringify(id)}`);
      if (seen.has(id)) throw new InvalidConfigurationError(`duplicate node id in ${what}: ${id}`);
      seen.add(id);
    }
  };
  check(config.voters, 'voters');
  check(config.learners, 'learners');
  if (config.outgoingVoters) check(config.outgoingVoters, 'outgoingVoters');
  if (config.voters.length === 0) throw new InvalidConfigurationError('a configuration needs at least one voter');
  for (const l of config.learners) {
    if (config.voters.includes(l) || config.outgoingVoters?.includes(l)) {
      throw new InvalidConfigurationError(`${l} is both a voter and a learner`);
    }
  }
}

/** Structural equality of two configurations (order of ids ignored). */
export function sameConfiguration(a: Configuration, b: Configuration): boolean {
  const eq = (x: readonly NodeId[] | undefined, y: readonly NodeId[] | undefined) => {
    if (x === undefined || y === undefined) return x === y;
    if (x.length !== y.length) return false;
    const s = new Set(x);
    return y.every((v) => s.has(v));
  };
  return eq(a.voters, b.voters) && eq(a.learners, b.learners) && eq(a.outgoingVoters, b.outgoingVoters);
}

/** Writes a configuration into `w` (used inside storage records and messages). */
export function writeConfiguration(w: BinaryWriter, config: Configuration): void {
  const list = (ids: readonly NodeId[]) => {
    w.uvarint(ids.length);
    for (const id of ids) w.string(id);
  };
  list(config.voters);
  list(config.learners);
  if (config.outgoingVoters) {
    w.u8(1);
    list(config.outgoingVoters);
  } else {
    w.u8(0);
  }
  const addrs = config.addresses ? Object.entries(config.addresses) : [];
  w.uvarint(addrs.length);
  for (const [id, addr] of addrs) {
    w.string(id);
    w.string(addr);
  }
}

/** Reads a configuration written by {@link writeConfiguration}; throws MalformedMessageError. */
export function readConfiguration(r: BinaryReader): Configuration {
  const readId = (): NodeId => {
    const id = r.string();
    if (!isValidNodeId(id)) throw new MalformedMessageError(`invalid node id ${JSON.stringify((id as string).slice(0, 80))} in a configuration`);
    return id;
  };
  const list = () => {
    const n = r.uvarint();
    if (n > r.remaining) throw new MalformedMessageError('configuration list longer than input');
    const out: NodeId[] = [];
    for (let i = 0; i < n; i++) out.push(readId());
    return out;
  };
  const voters = list();
  const learners = list();
  const joint = r.u8();
  const outgoingVoters = joint === 1 ? list() : undefined;
  if (joint > 1) throw new MalformedMessageError('invalid joint flag');
  const na = r.uvarint();
  if (na > r.remaining) throw new MalformedMessageError('address list longer than input');
  let addresses: Record<NodeId, string> | undefined;
  for (let i = 0; i < na; i++) {
    addresses ??= {};
    const id = readId();
    addresses[id] = r.string();
  }
  const config: { -readonly [K in keyof Configuration]: Configuration[K] } = { voters, learners };
  if (outgoingVoters) config.outgoingVoters = outgoingVoters;
  if (addresses) config.addresses = addresses;
  return config;
}

/** Encodes a configuration as the `data` of a `Config` entry. */
export function encodeConfiguration(config: Configuration): Uint8Array {
  const w = new BinaryWriter(64);
  writeConfiguration(w, config);
  return w.toBytes();
}

/** Decodes the `data` of a `Config` entry. Throws {@link MalformedMessageError}. */
export function decodeConfiguration(data: Uint8Array): Configuration {
  const r = new BinaryReader(data);
  const c = readConfiguration(r);
  r.expectEnd();
  return c;
}
