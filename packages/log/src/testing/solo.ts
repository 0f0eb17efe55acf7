/**
 * `soloProtocol()`: the smallest correct consensus core, a single voter that commits an entry
 * as soon as it is durable. It exists to test the runtime, storages and state machines without
 * a real protocol; it has no peers, so every message it gets is dropped and counted.
 */
import type { MembershipChange } from '../config.js';
import type { ConsensusCore, ConsensusProtocol, CoreInit, CoreReadMode, CoreStatus, Message, MessageCodec, Ready, ReadState } from '../core.js';
import { InvalidArgumentError, MalformedMessageError, UnsupportedError } from '../errors.js';
import { type Configuration, EMPTY_CONFIGURATION, type Entry, EntryType, type HardState, type Snapshot } from '../types.js';

const noCodec: MessageCodec<Message> = {
  write() {
    throw new UnsupportedError('the solo protocol sends no messages');
  },
  read() {
    throw new MalformedMessageError('the solo protocol receives no messages');
  },
};

class SoloCore implements ConsensusCore<Message> {
  readonly id: string;
  private term: number;
  private commit: number;
  private applied: number;
  private log: Entry[] = [];
  private offset: number; // index of log[0] - 1
  private snapIndex: number;
  private snapTerm: number;
  private config: Configuration;
  private pendingHard: HardState | null = null;
  private unstable: Entry[] = [];
  private persistedIndex: number;
  private reads: ReadState[] = [];
  private waitingReads: { id: number; index: number }[] = [];
  private snapshot: Snapshot | null = null;
  private compactTo: number | null = null;
  private dropped = 0;

  constructor(init: CoreInit) {
    this.id = init.id;
    const st = init.state;
    this.term = st.hardState.term;
    this.commit = st.hardState.commit;
    this.snapIndex = st.snapshot?.meta.index ?? 0;
    this.snapTerm = st.snapshot?.meta.term ?? 0;
    this.applied = this.snapIndex;
    this.offset = this.snapIndex;
    this.log = [...st.entries];
    this.config = st.snapshot?.meta.config ?? EMPTY_CONFIGURATION;
    this.persistedIndex = this.lastIndex();
    if (this.config.voters.length === 0 && init.bootstrap) this.config = init.bootstrap;
    if (this.config.voters.length !== 1 || this.config.voters[0] !== this.id) {
      throw new UnsupportedError('the solo protocol needs exactly one voter: itself');
    }
    this.term += 1;
    this.pendingHard = { term: this.term, vote: this.id, commit: this.commit };
    this.append(EntryType.NoOp, new Uint8Array(0));
  }

  private lastIndex(): number {
    return this.offset + this.log.length;
  }

  private append(type: EntryType, data: Uint8Array): void {
    const e: Entry = { index: this.lastIndex() + 1, term: this.term, type, data };
    this.log.push(e);
    this.unstable.push(e);
  }

  tick(): void {}
  step(_msg: Message): void {
    this.dropped++;
  }
  propose(data: Uint8Array): void {
    this.append(EntryType.Normal, data);
  }
  proposeMembershipChange(_change: MembershipChange): void {
    throw new UnsupportedError('the solo protocol has a fixed membership');
  }
  read(id: number, _mode: CoreReadMode): void {
    // A single voter is its own quorum: the read index is the last index (once committed).
    this.waitingReads.push({ id, index: this.lastIndex() });
  }
  transferLeadership(): void {
    throw new UnsupportedError('the solo protocol has no one to transfer to');
  }
  compact(index: number, data: Uint8Array): void {
    if (index > this.applied) throw new InvalidArgumentError(`cannot compact to ${index}: applied is ${this.applied}`);
    const e = this.log[index - this.offset - 1];
    const term = e ? e.term : this.snapTerm;
    this.snapshot = { meta: { index, term, config: this.config }, data };
    this.log = this.log.slice(index - this.offset);
    this.offset = index;
    this.snapIndex = index;
    this.snapTerm = term;
    this.compactTo = index;
  }
  hasReady(): boolean {
    return (
      this.pendingHard !== null || this.unstable.length > 0 || this.persistedIndex > this.commit ||
      this.commit > this.applied || this.snapshot !== null ||
      this.waitingReads.some((r) => r.index <= this.commit)
    );
  }
  ready(): Ready<Message> {
    // Entries persisted by an earlier Ready are committed now (quorum of one).
    if (this.persistedIndex > this.commit) {
      this.commit = this.persistedIndex;
      this.pendingHard = { term: this.term, vote: this.id, commit: this.commit };
    }
    const committed: Entry[] = [];
    for (let i = this.applied + 1; i <= this.commit; i++) {
      const e = this.log[i - this.offset - 1];
      if (e) committed.push(e);
    }
    const reads = this.waitingReads.filter((r) => r.index <= this.commit).map((r) => ({ id: r.id, index: r.index }));
    this.waitingReads = this.waitingReads.filter((r) => r.index > this.commit);
    return {
      hardState: this.pendingHard,
      truncateFrom: null,
      compactTo: this.compactTo,
      snapshot: this.snapshot,
      entries: this.unstable,
      messages: [],
      committed,
      reads: [...this.reads, ...reads],
    };
  }
  advance(rd: Ready<Message>): void {
    if (rd.hardState === this.pendingHard) this.pendingHard = null;
    const last = rd.entries[rd.entries.length - 1];
    if (last) this.persistedIndex = Math.max(this.persistedIndex, last.index);
    this.unstable = this.unstable.slice(rd.entries.length);
    const c = rd.committed[rd.committed.length - 1];
    if (c) this.applied = c.index;
    if (rd.snapshot === this.snapshot) this.snapshot = null;
    if (rd.compactTo === this.compactTo) this.compactTo = null;
    this.reads = [];
  }
  status(): CoreStatus {
    return {
      id: this.id,
      role: 'leader',
      term: this.term,
      leader: this.id,
      commitIndex: this.commit,
      appliedIndex: this.applied,
      lastIndex: this.lastIndex(),
      snapshotIndex: this.snapIndex,
      config: this.config,
      transferring: false,
      droppedMessages: this.dropped,
    };
  }
}

/**
 * A single-voter protocol for tests of runtimes, storages and state machines. Bootstrap it with
 * exactly one voter, the node itself; it throws UnsupportedError otherwise.
 */
export function soloProtocol(): ConsensusProtocol<Message> {
  return { name: 'solo', codec: noCodec, create: (init) => new SoloCore(init) };
}
