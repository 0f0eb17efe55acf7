/**
 * Storage and state machine wrappers the simulator puts around each replica: a
 * {@link SimStorage} that survives simulated crashes and lets the invariant checkers see every
 * persisted batch (and can be told to misbehave, for negative controls), and a
 * {@link RecordingStateMachine} that reports every applied command.
 */
import {
  type ApplyContext,
  type Entry,
  type HardState,
  MemoryStorage,
  type PersistBatch,
  type PersistedState,
  type StateMachine,
  type Storage,
} from '@synod/log';

/**
 * Deliberate storage bugs, for negative controls only (the simulator must catch them):
 * - `forget-vote`: after a crash, the hard state comes back without the vote (Raft `votedFor`)
 *   or, for Paxos ({@link SimStorage.forgetPromise}), without the promise (ballot 0) — as a
 *   store that did not fsync its hard state would.
 */
export type StorageBug = 'forget-vote';

/**
 * A {@link MemoryStorage} kept across simulated crashes (what was persisted stays, the rest is
 * lost), with a shadow copy of the log for cheap inspection and an observer of every batch.
 */
export class SimStorage implements Storage {
  private readonly inner = new MemoryStorage();
  /** The log as persisted (index → entry), mirrored for inspection. */
  readonly shadow = new Map<number, Entry>();
  /** Latest persisted hard state. */
  hardState: HardState = { term: 0, vote: null, commit: 0 };
  /** Index of the latest persisted snapshot (0 if none). */
  snapshotIndex = 0;
  private crashed = false;

  /**
   * @param onPersist called with every batch before it is applied (the shadow still shows the
   *   log before it; the runtime has sent nothing of that Ready yet).
   * @param afterPersist called after the batch is applied.
   * @param bug a deliberate bug (negative controls), default none.
   */
  constructor(
    private readonly onPersist: (batch: PersistBatch) => void = () => {},
    private readonly afterPersist: (batch: PersistBatch) => void = () => {},
    private readonly bug: StorageBug | null = null,
  ) {}

  load(): PersistedState {
    this.inner.reopen();
    const st = this.inner.load();
    if (this.crashed && this.bug === 'forget-vote') {
      this.crashed = false;
      // Raft keeps its term and loses votedFor; Paxos loses its promise (back to no promise).
      const term = this.forgetPromise ? 0 : st.hardState.term;
      return { ...st, hardState: { term, vote: null, commit: st.hardState.commit } };
    }
    this.crashed = false;
    return st;
  }

  /** Set by the simulator for Paxos: `forget-vote` then also forgets the promise. */
  forgetPromise = false;

  persist(batch: PersistBatch): void {
    this.onPersist(batch);
    this.inner.persist(batch);
    if (batch.truncateFrom != null) for (const k of [...this.shadow.keys()]) if (k >= batch.truncateFrom) this.shadow.delete(k);
    if (batch.compactTo != null) for (const k of [...this.shadow.keys()]) if (k <= batch.compactTo) this.shadow.delete(k);
    if (batch.snapshot) this.snapshotIndex = batch.snapshot.meta.index;
    if (batch.entries) for (const e of batch.entries) this.shadow.set(e.index, e);
    if (batch.hardState) this.hardState = batch.hardState;
    this.afterPersist(batch);
  }

  close(): void {
    this.inner.close();
  }

  /** Marks a crash: the next `load()` sees what survived. */
  crash(): void {
    this.crashed = true;
  }

  /** Highest index in the persisted log (or the snapshot index if the log is empty). */
  lastIndex(): number {
    let last = this.snapshotIndex;
    for (const k of this.shadow.keys()) if (k > last) last = k;
    return last;
  }
}

/** What a {@link RecordingStateMachine} reports for each applied command. */
export interface AppliedCommand<R> {
  readonly index: number;
  readonly command: Uint8Array;
  readonly result: R;
}

/**
 * Wraps a state machine and reports every applied command and every restore, so the simulator
 * can compare what replicas applied at each index.
 */
export class RecordingStateMachine<R, Q, QR> implements StateMachine<R, Q, QR> {
  /**
   * @param inner the real state machine.
   * @param onApply called after each apply.
   * @param onRestore called after each restore from a snapshot.
   */
  constructor(
    readonly inner: StateMachine<R, Q, QR>,
    private readonly onApply: (c: AppliedCommand<R>) => void,
    private readonly onRestore: () => void = () => {},
  ) {}

  apply(command: Uint8Array, ctx: ApplyContext): R {
    const result = this.inner.apply(command, ctx);
    this.onApply({ index: ctx.index, command, result });
    return result;
  }
  query(query: Q): QR {
    return this.inner.query(query);
  }
  snapshot(): Uint8Array {
    return this.inner.snapshot();
  }
  restore(data: Uint8Array): void {
    this.inner.restore(data);
    this.onRestore();
  }
  encodeResult(result: R): Uint8Array {
    return this.inner.encodeResult!(result);
  }
  decodeResult(bytes: Uint8Array): R {
    return this.inner.decodeResult!(bytes);
  }
}
