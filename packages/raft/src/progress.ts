/**
 * What a leader knows about each follower (Raft Figure 2 nextIndex/matchIndex, plus the flow
 * control of etcd-io/raft's `tracker/progress.go`, re-thought for this core):
 * - `probe`: the leader does not know where the follower's log matches; it sends one
 *   AppendEntries at a time and waits for the answer (or the next heartbeat).
 * - `replicate`: the logs match up to `match`; the leader pipelines AppendEntries with an
 *   optimistic `next`, bounded by in-flight messages and bytes.
 * - `snapshot`: the follower needs entries the leader compacted; the leader streams its
 *   snapshot in chunks and returns to `probe` once the follower has it.
 */

/** Replication state of one follower. */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/**
 * A bounded FIFO of in-flight AppendEntries (last index and payload bytes of each), kept in a
 * ring buffer of parallel number arrays so that pipelining allocates nothing per message.
 */
export class Inflights {
  private readonly lastIndexes: number[];
  private readonly sizes: number[];
  private start = 0;
  /** Messages in flight. */
  count = 0;
  /** Payload bytes in flight. */
  bytes = 0;

  constructor(
    private readonly maxMsgs: number,
    private readonly maxBytes: number,
  ) {
    this.lastIndexes = new Array<number>(maxMsgs).fill(0);
    this.sizes = new Array<number>(maxMsgs).fill(0);
  }

  /** Records a message whose last entry is `lastIndex`, carrying `bytes` payload bytes. */
  add(lastIndex: number, bytes: number): void {
    if (this.count === this.maxMsgs) return; // callers check full() first; never overflow
    const slot = (this.start + this.count) % this.maxMsgs;
    this.lastIndexes[slot] = lastIndex;
    this.sizes[slot] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** Frees every message whose last index is <= `index` (acknowledged). */
  freeLE(index: number): void {
    while (this.count > 0 && this.lastIndexes[this.start]! <= index) {
      this.bytes -= this.sizes[this.start]!;
      this.start = (this.start + 1) % this.maxMsgs;
      this.count--;
    }
    if (this.count === 0) {
      this.start = 0;
      this.bytes = 0;
    }
  }

  /** Frees the oldest message (etcd: a heartbeat answer while full lets one more through). */
  freeFirstOne(): void {
    if (this.count > 0) this.freeLE(this.lastIndexes[this.start]!);
  }

  /** Whether no more messages may be sent. */
  full(): boolean {
    return this.count >= this.maxMsgs || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  /** Forgets everything in flight. */
  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}

/** The leader's view of one member (voter or learner), itself included. */
export class Progress {
  /** Highest index known to be replicated (and durable) on the member. */
  match = 0;
  /** Index of the next entry to send. */
  next: number;
  state: ProgressState = 'probe';
  /** In `probe`: an AppendEntries was sent and not yet answered (or a heartbeat passed). */
  probeSent = false;
  /** In `snapshot`: index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** In `snapshot`: bytes of the snapshot the member acknowledged. */
  snapshotAcked = 0;
  /** In `snapshot`: bytes of the snapshot sent (chunks in flight up to here). */
  snapshotSent = 0;
  /** In `snapshot`: the leader's tick at which the last chunk was sent (for retransmission). */
  snapshotSentTick = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** The leader's tick at which the member was last heard from (check-quorum). */
  lastActiveTick = 0;
  /** Highest heartbeat sequence number the member acknowledged in the current term. */
  heartbeatAck = 0;
  /** Highest commit index sent to the member (to avoid redundant commit-only messages). */
  sentCommit = 0;
  /** Whether the member is a learner (no vote). */
  isLearner: boolean;
  readonly inflights: Inflights;

  constructor(next: number, isLearner: boolean, maxInflightMsgs: number, maxInflightBytes: number) {
    this.next = next;
    this.isLearner = isLearner;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
  }

  /** Switches to `probe`: one message at a time from `next`. */
  becomeProbe(): void {
    if (this.state === 'snapshot') {
      // The member has (at least) the snapshot: continue right after it.
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
    } else {
      this.next = this.match + 1;
    }
    this.state = 'probe';
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }

  /** Switches to `replicate`: pipelining from `match + 1`. */
  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }

  /** Switches to `snapshot`, sending the snapshot at `index`. */
  becomeSnapshot(index: number): void {
    this.state = 'snapshot';
    this.pendingSnapshot = index;
    this.snapshotAcked = 0;
    this.snapshotSent = 0;
    this.probeSent = false;
    this.inflights.reset();
  }

  /**
   * Records an acknowledged index. Returns true if `match` grew. `next` never goes below
   * `match + 1`.
   */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (index > this.match) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < index + 1) this.next = index + 1;
    return updated;
  }

  /** Whether sending more AppendEntries must wait. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
