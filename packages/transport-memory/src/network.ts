/**
 * An in-process network for synod replicas: every endpoint is a {@link Transport}, delivery runs
 * on an injected {@link Scheduler} (virtual time in tests and the simulator, real timers in the
 * benchmark), and every random decision comes from one seeded PRNG, so a seed replays a run
 * exactly. Faults (drop, delay, duplicate, reorder, partitions, one-way cuts, a message filter,
 * truncation) can be switched at run time.
 */
import {
  BinaryReader,
  BinaryWriter,
  createRandom,
  InvalidArgumentError,
  type Message,
  type MessageCodec,
  type NodeId,
  type Random,
  type Scheduler,
  type Transport,
  type TransportHandler,
  type TransportStats,
} from '@synod/log';

/**
 * What a {@link MessageFilter} decides for one message, before the random faults apply:
 * - `'deliver'`: let it through (random faults still apply);
 * - `'drop'`: lose it (counted as dropped);
 * - `'hold'`: park it until {@link MemoryNetwork.releaseHeld} or {@link MemoryNetwork.dropHeld};
 * - `'duplicate'`: deliver it twice (each copy with its own delay);
 * - `{ delayMs }`: deliver it after this many extra milliseconds (may overtake nothing, may be
 *   overtaken: it leaves the link's FIFO order, like a reordered message).
 */
export type FilterVerdict = 'deliver' | 'drop' | 'hold' | 'duplicate' | { readonly delayMs: number };

/**
 * A hook that sees every message at send time (after the link check) and decides its fate.
 * `from` is the sending endpoint's id (not the message's claimed `from`). Must not throw; if it
 * does, the exception propagates out of `send`.
 */
export type MessageFilter<M extends Message = Message> = (msg: M, from: NodeId, to: NodeId) => FilterVerdict;

/** Random faults, each switchable at run time with {@link MemoryNetwork.setFaults}. */
export interface NetworkFaults {
  /** Minimum one-way delay in ms (integer ≥ 0). Default 0. */
  readonly minDelayMs?: number;
  /**
   * Maximum one-way delay in ms (integer ≥ minDelayMs). Default: `minDelayMs`. Each message
   * draws a delay in [min, max]; a link stays FIFO under this delay (a message never overtakes
   * an earlier one on the same link) unless it is reordered.
   */
  readonly maxDelayMs?: number;
  /** Probability in [0, 1] that a message is lost. Default 0. */
  readonly dropRate?: number;
  /** Probability in [0, 1] that a message is delivered twice. Default 0. */
  readonly duplicateRate?: number;
  /**
   * Probability in [0, 1] that a message gets an extra random delay in [1, reorderMaxMs] ms and
   * leaves its link's FIFO order, so later messages can overtake it. Default 0.
   */
  readonly reorderRate?: number;
  /** Largest extra delay of a reordered message, in ms (integer ≥ 1). Default 10. */
  readonly reorderMaxMs?: number;
  /**
   * Probability in [0, 1] that an encoded message is truncated on the way (serialize mode only;
   * ignored otherwise). A truncated message always fails to decode and is counted as malformed
   * by the receiver. Default 0.
   */
  readonly corruptRate?: number;
}

/** Options of {@link MemoryNetwork}. */
export interface MemoryNetworkOptions<M extends Message = Message> extends NetworkFaults {
  /** The clock and timers deliveries run on (`VirtualScheduler` in tests, `realScheduler` in the bench). */
  readonly scheduler: Scheduler;
  /** Seed of the network's PRNG (32 bits). Default 1. The same seed and inputs replay the same run. */
  readonly seed?: number;
  /**
   * Route every message through a codec (write at send time, read at delivery), to exercise
   * codecs and to measure message sizes. `true` uses the sender's handler codec to write and the
   * receiver's to read; a codec uses that codec for both. Default `false`: messages are passed by
   * reference (they are immutable), the fast path.
   */
  readonly serialize?: boolean | MessageCodec<M>;
}

/** Counters of one endpoint ({@link TransportStats} plus network detail). */
export interface MemoryTransportStats extends TransportStats {
  /** Extra copies of this endpoint's messages created by duplication. */
  readonly duplicated: number;
  /** Messages of this endpoint currently parked by a filter's `'hold'`. */
  readonly held: number;
  /** Encoded bytes this endpoint sent (serialize mode only, else 0). */
  readonly bytesSent: number;
}

/** Totals over the whole network since it was created. */
export interface NetworkStats {
  /** Messages handed to `send` by any endpoint. */
  readonly sent: number;
  /** Messages handed to a handler's `onMessage`. */
  readonly delivered: number;
  /** Raw inputs given to {@link MemoryNetwork.injectBytes}. */
  readonly injected: number;
  /** Messages lost: faults, cut links, closed or unknown addressees, filters. */
  readonly dropped: number;
  /** Extra copies created by duplication. */
  readonly duplicated: number;
  /** Inputs that failed to decode (serialize mode, truncation, {@link MemoryNetwork.injectBytes}). */
  readonly malformed: number;
  /** Messages a codec failed to encode (a codec bug); they are dropped. */
  readonly encodeErrors: number;
  /** Messages currently parked by a filter's `'hold'`. */
  readonly held: number;
  /** Messages scheduled for delivery that have not been delivered or dropped yet. */
  readonly inFlight: number;
}

interface Batch<M extends Message> {
  from: MemoryEndpoint<M>[];
  to: NodeId[];
  items: unknown[];
  n: number;
}

interface Held<M extends Message> {
  readonly from: MemoryEndpoint<M>;
  readonly msg: M;
}

function newBatch<M extends Message>(): Batch<M> {
  return { from: [], to: [], items: [], n: 0 };
}

function checkRate(name: string, v: number): number {
  if (!(v >= 0 && v <= 1)) throw new InvalidArgumentError(`${name} must be in [0, 1], got ${v}`);
  return v;
}

function checkMs(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min} ms, got ${v}`);
  return v;
}

/**
 * An in-process network. Create one per simulated cluster, then `connect(id)` one endpoint per
 * replica and hand it to `ReplicatedLog` as its transport.
 *
 * Delivery semantics:
 * - always asynchronous (never inside `send`): a zero-delay message arrives in a batch run by
 *   `scheduler.defer`, a delayed one from a timer shared by every message due at the same ms;
 * - the addressee is looked up by id at delivery time: a closed endpoint gets nothing, and an
 *   endpoint reconnected under the same id (a restarted node) receives what is still in flight;
 * - link state (partition, isolation, one-way cuts) is checked at send time and again at
 *   delivery, so a partition also loses what was in flight across it;
 * - messages to unknown ids, from closed endpoints, or across a cut link are dropped and
 *   counted on the sender; nothing ever throws for network reasons.
 *
 * @example
 * const scheduler = new VirtualScheduler();
 * const net = new MemoryNetwork({ scheduler, seed: 7, minDelayMs: 1, maxDelayMs: 5 });
 * const a = net.connect('a'), b = net.connect('b');
 * await b.start({ codec, onMessage: (m) => console.log(m) });
 * a.send([{ type: 1, from: 'a', to: 'b' }]);
 * scheduler.advance(10);
 */
export class MemoryNetwork<M extends Message = Message> {
  /** The scheduler deliveries run on. */
  readonly scheduler: Scheduler;
  /** The seed this network was created with. */
  readonly seed: number;

  private readonly rng: Random;
  private readonly endpoints = new Map<NodeId, MemoryEndpoint<M>>();
  private readonly serializeMode: boolean;
  private readonly fixedCodec: MessageCodec<M> | null;
  private readonly writer = new BinaryWriter(1024);

  // Faults.
  private minDelay = 0;
  private maxDelay = 0;
  private dropRate = 0;
  private duplicateRate = 0;
  private reorderRate = 0;
  private reorderMax = 10;
  private corruptRate = 0;
  private filter: MessageFilter<M> | null = null;
  private groups: Map<NodeId, number> | null = null;
  private readonly isolated = new Set<NodeId>();
  private readonly cuts = new Map<NodeId, Set<NodeId>>();
  private cutCount = 0;
  /** True when no fault, delay, filter or serialization is active: send just enqueues. */
  private fast = true;
  /** True when some partition, isolation or cut is active. */
  private linksFaulty = false;

  // Zero-delay queue, double-buffered to avoid allocation.
  private queue: Batch<M> = newBatch();
  private spare: Batch<M> = newBatch();
  private flushScheduled = false;
  private queuedSince = 0; // when the zero-delay queue last became non-empty (ms)
  private readonly flushFn = (): void => this.flush();
  // Delayed deliveries, one batch (and one timer) per due time.
  private readonly buckets = new Map<number, Batch<M>>();
  // Per-link time of the latest FIFO-ordered delivery: from -> to -> at.
  private readonly lastAt = new Map<NodeId, Map<NodeId, number>>();
  private readonly heldMsgs: Held<M>[] = [];

  // Totals.
  private nSent = 0;
  private nDelivered = 0;
  private nDropped = 0;
  private nDuplicated = 0;
  private nMalformed = 0;
  private nEncodeErrors = 0;
  private nInjected = 0;
  private nInFlight = 0;

  /** @throws InvalidArgumentError when a rate is outside [0, 1] or a delay is not an integer ≥ 0. */
  constructor(options: MemoryNetworkOptions<M>) {
    this.scheduler = options.scheduler;
    this.seed = (options.seed ?? 1) >>> 0;
    this.rng = createRandom(this.seed);
    this.serializeMode = options.serialize !== undefined && options.serialize !== false;
    this.fixedCodec = typeof options.serialize === 'object' ? options.serialize : null;
    this.setFaults(options);
  }

  /**
   * Creates the endpoint (transport) of node `id`. If a previous endpoint of `id` was closed,
   * the new one replaces it (a restarted node at the same address).
   * @throws InvalidArgumentError if an open endpoint with this id exists, or the id is empty.
   */
  connect(id: NodeId): MemoryEndpoint<M> {
    if (typeof id !== 'string' || id.length === 0) throw new InvalidArgumentError('node id must be a non-empty string');
    if (this.endpoints.has(id)) throw new InvalidArgumentError(`an open endpoint for ${id} already exists`);
    const ep = new MemoryEndpoint<M>(this, id);
    this.endpoints.set(id, ep);
    return ep;
  }

  /** The open endpoint of `id`, if any. */
  endpoint(id: NodeId): MemoryEndpoint<M> | undefined {
    return this.endpoints.get(id);
  }

  /** Ids of the open endpoints, in connection order. */
  ids(): NodeId[] {
    return [...this.endpoints.keys()];
  }

  // ---------------------------------------------------------------- faults

  /**
   * Changes some random faults; omitted fields keep their value (except that setting only
   * `minDelayMs` raises `maxDelayMs` to it if lower). Takes effect for messages sent afterwards.
   * @throws InvalidArgumentError on a rate outside [0, 1] or a delay that is not an integer ≥ 0
   *   (nothing changes then).
   */
  setFaults(f: NetworkFaults): void {
    const minDelay = f.minDelayMs === undefined ? this.minDelay : checkMs('minDelayMs', f.minDelayMs, 0);
    const maxDelay = f.maxDelayMs === undefined ? Math.max(this.maxDelay, minDelay) : checkMs('maxDelayMs', f.maxDelayMs, 0);
    if (maxDelay < minDelay) throw new InvalidArgumentError(`maxDelayMs (${maxDelay}) < minDelayMs (${minDelay})`);
    const dropRate = f.dropRate === undefined ? this.dropRate : checkRate('dropRate', f.dropRate);
    const duplicateRate = f.duplicateRate === undefined ? this.duplicateRate : checkRate('duplicateRate', f.duplicateRate);
    const reorderRate = f.reorderRate === undefined ? this.reorderRate : checkRate('reorderRate', f.reorderRate);
    const reorderMax = f.reorderMaxMs === undefined ? this.reorderMax : checkMs('reorderMaxMs', f.reorderMaxMs, 1);
    const corruptRate = f.corruptRate === undefined ? this.corruptRate : checkRate('corruptRate', f.corruptRate);
    this.minDelay = minDelay;
    this.maxDelay = maxDelay;
    this.dropRate = dropRate;
    this.duplicateRate = duplicateRate;
    this.reorderRate = reorderRate;
    this.reorderMax = reorderMax;
    this.corruptRate = corruptRate;
    this.recompute();
  }

  /** The current random faults. */
  faults(): Required<NetworkFaults> {
    return {
      minDelayMs: this.minDelay,
      maxDelayMs: this.maxDelay,
      dropRate: this.dropRate,
      duplicateRate: this.duplicateRate,
      reorderRate: this.reorderRate,
      reorderMaxMs: this.reorderMax,
      corruptRate: this.corruptRate,
    };
  }

  /** Sets the loss probability in [0, 1]. @throws InvalidArgumentError outside [0, 1]. */
  setDropRate(p: number): void {
    this.setFaults({ dropRate: p });
  }

  /** Sets the one-way delay range in ms. @throws InvalidArgumentError unless 0 ≤ min ≤ max, integers. */
  setDelay(minMs: number, maxMs: number = minMs): void {
    this.setFaults({ minDelayMs: minMs, maxDelayMs: maxMs });
  }

  /** Sets the duplication probability in [0, 1]. @throws InvalidArgumentError outside [0, 1]. */
  setDuplicateRate(p: number): void {
    this.setFaults({ duplicateRate: p });
  }

  /**
   * Sets the reorder probability in [0, 1] and the largest extra delay in ms.
   * @throws InvalidArgumentError on a rate outside [0, 1] or maxMs not an integer ≥ 1.
   */
  setReorder(p: number, maxMs: number = this.reorderMax): void {
    this.setFaults({ reorderRate: p, reorderMaxMs: maxMs });
  }

  /** Sets the truncation probability (serialize mode only). @throws InvalidArgumentError outside [0, 1]. */
  setCorruptRate(p: number): void {
    this.setFaults({ corruptRate: p });
  }

  /** Installs (or with `null` removes) the message filter. */
  setFilter(filter: MessageFilter<M> | null): void {
    this.filter = filter;
    this.recompute();
  }

  /**
   * Splits the nodes into groups that cannot reach each other; replaces any earlier partition.
   * A node named in no group can reach nobody (it is its own group). A node always reaches
   * itself. Isolations and one-way cuts stay in force on top.
   * @throws InvalidArgumentError if a node is named in two groups.
   */
  partition(groups: readonly (readonly NodeId[])[]): void {
    const map = new Map<NodeId, number>();
    groups.forEach((g, i) => {
      for (const id of g) {
        if (map.has(id) && map.get(id) !== i) throw new InvalidArgumentError(`node ${id} is in two partition groups`);
        map.set(id, i);
      }
    });
    this.groups = map;
    this.recompute();
  }

  /** Cuts every link to and from `id` (both directions), until {@link rejoin} or {@link heal}. */
  isolate(id: NodeId): void {
    this.isolated.add(id);
    this.recompute();
  }

  /** Undoes {@link isolate} for `id` (partitions and cuts stay). */
  rejoin(id: NodeId): void {
    this.isolated.delete(id);
    this.recompute();
  }

  /** Cuts the one-way link `from → to` (messages `to → from` still pass). */
  cutLink(from: NodeId, to: NodeId): void {
    let s = this.cuts.get(from);
    if (!s) this.cuts.set(from, (s = new Set()));
    if (!s.has(to)) {
      s.add(to);
      this.cutCount++;
    }
    this.recompute();
  }

  /** Restores the one-way link `from → to` cut by {@link cutLink}. */
  restoreLink(from: NodeId, to: NodeId): void {
    const s = this.cuts.get(from);
    if (s?.delete(to)) this.cutCount--;
    this.recompute();
  }

  /**
   * Removes every partition, isolation and one-way cut. Random faults, the filter and held
   * messages are unchanged.
   */
  heal(): void {
    this.groups = null;
    this.isolated.clear();
    this.cuts.clear();
    this.cutCount = 0;
    this.recompute();
  }

  /** Whether a message from `from` to `to` would currently pass the link checks. */
  canReach(from: NodeId, to: NodeId): boolean {
    if (from === to) return true;
    if (!this.linksFaulty) return true;
    if (this.isolated.has(from) || this.isolated.has(to)) return false;
    if (this.cutCount > 0 && this.cuts.get(from)?.has(to)) return false;
    const g = this.groups;
    if (g) {
      const gf = g.get(from);
      if (gf === undefined || gf !== g.get(to)) return false;
    }
    return true;
  }

  /** Number of messages parked by the filter. */
  get heldCount(): number {
    return this.heldMsgs.length;
  }

  /**
   * Sends parked messages on (with no further delay or random faults; link state is still
   * checked at delivery), in the order they were held. With `pred`, only those it accepts.
   * @returns how many were released.
   */
  releaseHeld(pred?: (msg: M, from: NodeId, to: NodeId) => boolean): number {
    return this.takeHeld(pred, (h) => {
      h.from.heldNow--;
      const item = this.encode(h.from, h.msg);
      if (item === undefined) return;
      const now = this.scheduler.now();
      this.enqueue(h.from, h.msg.to, item, now, now);
    });
  }

  /**
   * Drops parked messages (counted as dropped on their senders). With `pred`, only those it accepts.
   * @returns how many were dropped.
   */
  dropHeld(pred?: (msg: M, from: NodeId, to: NodeId) => boolean): number {
    return this.takeHeld(pred, (h) => {
      h.from.heldNow--;
      h.from.nDropped++;
      this.nDropped++;
    });
  }

  /**
   * Delivers raw bytes to `to` as if they came off a wire: decoded with the addressee's handler
   * codec, counted as malformed (and dropped) if they fail to decode or have trailing bytes.
   * Asynchronous like every delivery. For testing how cores and codecs treat garbage.
   */
  injectBytes(to: NodeId, bytes: Uint8Array): void {
    this.nInjected++;
    this.nInFlight++;
    this.scheduler.defer(() => {
      this.nInFlight--;
      const dest = this.endpoints.get(to);
      if (!dest || !dest.handler) {
        this.nDropped++;
        return;
      }
      const msg = this.decode(dest, bytes, dest.handler.codec);
      if (msg !== undefined) this.handOver(dest, msg);
    });
  }

  /** Totals since the network was created. */
  stats(): NetworkStats {
    return {
      sent: this.nSent,
      delivered: this.nDelivered,
      injected: this.nInjected,
      dropped: this.nDropped,
      duplicated: this.nDuplicated,
      malformed: this.nMalformed,
      encodeErrors: this.nEncodeErrors,
      held: this.heldMsgs.length,
      inFlight: this.nInFlight,
    };
  }

  // ---------------------------------------------------------------- internals

  private recompute(): void {
    this.linksFaulty = this.groups !== null || this.isolated.size > 0 || this.cutCount > 0;
    this.fast =
      !this.serializeMode &&
      !this.linksFaulty &&
      this.filter === null &&
      this.maxDelay === 0 &&
      this.dropRate === 0 &&
      this.duplicateRate === 0 &&
      this.reorderRate === 0;
  }

  private takeHeld(pred: ((msg: M, from: NodeId, to: NodeId) => boolean) | undefined, fn: (h: Held<M>) => void): number {
    const keep: Held<M>[] = [];
    const take: Held<M>[] = [];
    for (const h of this.heldMsgs) (pred === undefined || pred(h.msg, h.from.id, h.msg.to) ? take : keep).push(h);
    this.heldMsgs.length = 0;
    this.heldMsgs.push(...keep);
    for (const h of take) fn(h);
    return take.length;
  }

  /** @internal Called by an endpoint's `send` for each message. */
  route(from: MemoryEndpoint<M>, msg: M): void {
    from.nSent++;
    this.nSent++;
    if (from.closed) {
      from.nDropped++;
      this.nDropped++;
      return;
    }
    if (this.fast) {
      // Hot path: no faults, no delay. Three array writes, no allocation.
      const q = this.queue;
      const n = q.n++;
      q.from[n] = from;
      q.to[n] = msg.to;
      q.items[n] = msg;
      this.nInFlight++;
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        this.scheduler.defer(this.flushFn);
      }
      return;
    }
    this.routeSlow(from, msg);
  }

  private routeSlow(from: MemoryEndpoint<M>, msg: M): void {
    const to = msg.to;
    if (!this.canReach(from.id, to)) return this.dropAt(from);
    let copies = 1;
    let forcedExtra = -1;
    if (this.filter) {
      const v = this.filter(msg, from.id, to);
      if (v === 'drop') return this.dropAt(from);
      if (v === 'hold') {
        from.heldNow++;
        this.heldMsgs.push({ from, msg });
        return;
      }
      if (v === 'duplicate') copies = 2;
      else if (typeof v === 'object' && v !== null) forcedExtra = Math.max(0, Math.floor(v.delayMs));
    }
    if (this.dropRate > 0 && this.rng.next() < this.dropRate) return this.dropAt(from);
    if (copies === 1 && this.duplicateRate > 0 && this.rng.next() < this.duplicateRate) copies = 2;
    const encoded = this.encode(from, msg);
    if (encoded === undefined) return;
    if (copies === 2) {
      from.nDuplicated++;
      this.nDuplicated++;
    }
    for (let c = 0; c < copies; c++) {
      let item: unknown = encoded;
      if (this.serializeMode && this.corruptRate > 0 && this.rng.next() < this.corruptRate) {
        const bytes = encoded as Uint8Array;
        item = bytes.subarray(0, bytes.length === 0 ? 0 : this.rng.int(0, bytes.length - 1));
      }
      let delay = this.maxDelay > this.minDelay ? this.rng.int(this.minDelay, this.maxDelay) : this.minDelay;
      let fifo = true;
      if (forcedExtra >= 0) {
        delay += forcedExtra;
        fifo = false;
      } else if (this.reorderRate > 0 && this.rng.next() < this.reorderRate) {
        delay += this.rng.int(1, this.reorderMax);
        fifo = false;
      }
      const now = this.scheduler.now(); // read once: a real clock may tick in between
      this.enqueue(from, to, item, now, fifo ? this.fifoAt(from.id, to, now, delay) : now + delay);
    }
  }

  /**
   * Clamps a delay so the message arrives no earlier than the link's previous FIFO message. A
   * message that would be due now while that previous one still waits in its batch (a real
   * timer running late) joins the batch, behind it, even if that batch is overdue.
   * @returns the due time (ms).
   */
  private fifoAt(from: NodeId, to: NodeId, now: number, delay: number): number {
    let m = this.lastAt.get(from);
    if (!m) this.lastAt.set(from, (m = new Map()));
    const last = m.get(to);
    let at = now + delay;
    if (last !== undefined && (last > at || (delay <= 0 && this.buckets.has(last)))) at = last;
    m.set(to, at);
    return at;
  }

  private dropAt(from: MemoryEndpoint<M>): void {
    from.nDropped++;
    this.nDropped++;
  }

  private encode(from: MemoryEndpoint<M>, msg: M): unknown {
    if (!this.serializeMode) return msg;
    const codec = this.fixedCodec ?? from.handler?.codec ?? this.endpoints.get(msg.to)?.handler?.codec;
    if (!codec) {
      this.dropAt(from);
      return undefined;
    }
    const w = this.writer;
    w.reset();
    try {
      codec.write(w, msg);
    } catch {
      this.nEncodeErrors++;
      this.dropAt(from);
      return undefined;
    }
    from.nBytesSent += w.pos;
    return w.toBytes();
  }

  private decode(dest: MemoryEndpoint<M>, bytes: Uint8Array, codec: MessageCodec<M>): M | undefined {
    try {
      const r = new BinaryReader(bytes);
      const msg = codec.read(r);
      r.expectEnd();
      return msg;
    } catch {
      // The codec contract allows only MalformedMessageError; anything else is treated the same
      // way (dropped and counted), never a crash.
      dest.nMalformed++;
      this.nMalformed++;
      return undefined;
    }
  }

  /** Queues `item` for delivery at time `at` (ms); `now` is the time it was sent. */
  private enqueue(from: MemoryEndpoint<M>, to: NodeId, item: unknown, now: number, at: number): void {
    this.nInFlight++;
    // A FIFO message clamped to a batch that is due (or overdue) but not delivered yet (a real
    // timer runs late) joins that batch, behind the earlier messages of its link.
    if (at <= now && (this.buckets.size === 0 || !this.buckets.has(at))) {
      const q = this.queue;
      if (q.n === 0) this.queuedSince = now;
      const n = q.n++;
      q.from[n] = from;
      q.to[n] = to;
      q.items[n] = item;
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        this.scheduler.defer(this.flushFn);
      }
      return;
    }
    let b = this.buckets.get(at);
    if (!b) {
      const batch = newBatch<M>();
      b = batch;
      this.buckets.set(at, batch);
      this.scheduler.setTimer(at - now, () => this.deliverDue(at, batch));
    }
    const n = b.n++;
    b.from[n] = from;
    b.to[n] = to;
    b.items[n] = item;
  }

  /**
   * Delivers the batch due at `at`, after every batch due earlier that is still waiting. A
   * virtual scheduler fires timers in due order anyway; real timers need not (Node computes
   * expiry from a cached loop time), and FIFO links rely on due order.
   */
  private deliverDue(at: number, batch: Batch<M>): void {
    if (this.buckets.get(at) !== batch) return; // already delivered with a later-due batch
    // Zero-delay messages sent before this batch was due go first (a real timer can fire before
    // the earlier-scheduled immediate that would have delivered them).
    if (this.queue.n > 0 && this.queuedSince < at) this.flush();
    this.deliverBefore(at);
    this.buckets.delete(at);
    this.deliverBatch(batch);
  }

  /** Delivers, in due order, every waiting batch due strictly before `at`. */
  private deliverBefore(at: number): void {
    let earlier: number[] | undefined;
    for (const k of this.buckets.keys()) if (k < at) (earlier ??= []).push(k);
    if (!earlier) return;
    earlier.sort((x, y) => x - y);
    for (const k of earlier) {
      const b = this.buckets.get(k);
      if (b === undefined) continue;
      this.buckets.delete(k);
      this.deliverBatch(b);
    }
  }


  private flush(): void {
    this.flushScheduled = false;
    const q = this.queue;
    this.queue = this.spare;
    this.spare = q;
    this.deliverBatch(q);
  }

  /**
   * Delivers every message of a batch. A handler that throws (a contract violation) does not
   * stop the batch; the first error is rethrown once the batch is done, so it surfaces in the
   * scheduler (and fails a test) while the network stays consistent.
   */
  private deliverBatch(b: Batch<M>): void {
    const n = b.n;
    const froms = b.from;
    const tos = b.to;
    const items = b.items;
    let error: unknown = undefined;
    let failed = false;
    for (let i = 0; i < n; i++) {
      const item = items[i];
      items[i] = undefined;
      try {
        this.deliverOne(froms[i]!, tos[i]!, item);
      } catch (err) {
        if (!failed) {
          failed = true;
          error = err;
        }
      }
    }
    b.n = 0;
    if (failed) throw error;
  }

  private deliverOne(from: MemoryEndpoint<M>, to: NodeId, item: unknown): void {
    this.nInFlight--;
    const dest = this.endpoints.get(to);
    if (dest === undefined || dest.handler === null || (this.linksFaulty && !this.canReach(from.id, to))) {
      from.nDropped++;
      this.nDropped++;
      return;
    }
    let msg: M;
    if (this.serializeMode) {
      const m = this.decode(dest, item as Uint8Array, this.fixedCodec ?? dest.handler.codec);
      if (m === undefined) return;
      msg = m;
    } else {
      msg = item as M;
    }
    this.handOver(dest, msg);
  }

  private handOver(dest: MemoryEndpoint<M>, msg: M): void {
    dest.nReceived++;
    this.nDelivered++;
    dest.handler!.onMessage(msg);
  }

  /** @internal Called by an endpoint's `close`. */
  detach(ep: MemoryEndpoint<M>): void {
    if (this.endpoints.get(ep.id) === ep) this.endpoints.delete(ep.id);
  }
}

/**
 * One node's endpoint on a {@link MemoryNetwork}: a {@link Transport}. Create it with
 * `network.connect(id)`.
 */
export class MemoryEndpoint<M extends Message = Message> implements Transport<M> {
  /** @internal */ handler: TransportHandler<M> | null = null;
  /** @internal */ closed = false;
  /** @internal */ nSent = 0;
  /** @internal */ nReceived = 0;
  /** @internal */ nDropped = 0;
  /** @internal */ nMalformed = 0;
  /** @internal */ nDuplicated = 0;
  /** @internal */ nBytesSent = 0;
  /** @internal */ heldNow = 0;

  /** @internal Use {@link MemoryNetwork.connect}. */
  constructor(
    /** The network this endpoint belongs to. */
    readonly network: MemoryNetwork<M>,
    /** This node's id. */
    readonly id: NodeId,
  ) {}

  /**
   * Starts delivering messages addressed to this node to `handler.onMessage`. Synchronous.
   * Messages that arrive before `start` are dropped.
   * @throws InvalidArgumentError if already started or closed.
   */
  start(handler: TransportHandler<M>): void {
    if (this.closed) throw new InvalidArgumentError(`endpoint ${this.id} is closed; connect a new one`);
    if (this.handler) throw new InvalidArgumentError(`endpoint ${this.id} already started`);
    this.handler = handler;
  }

  /**
   * Sends each message to its `to`. Never throws for network reasons and never delivers
   * synchronously; after `close()` messages are dropped (counted).
   */
  send(messages: readonly M[]): void {
    const net = this.network;
    for (let i = 0; i < messages.length; i++) net.route(this, messages[i]!);
  }

  /** Counters since this endpoint was connected. */
  stats(): MemoryTransportStats {
    return {
      sent: this.nSent,
      received: this.nReceived,
      dropped: this.nDropped,
      malformed: this.nMalformed,
      duplicated: this.nDuplicated,
      held: this.heldNow,
      bytesSent: this.nBytesSent,
    };
  }

  /** Whether `close()` was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Leaves the network (a crash or a shutdown): nothing more is delivered to this endpoint,
   * and `network.connect(id)` may create a new one. Idempotent, synchronous.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handler = null;
    this.network.detach(this);
  }
}
