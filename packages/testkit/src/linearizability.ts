/**
 * Linearizability checking (Herlihy & Wing 1990) by the Wing–Gong–Lowe search: Wing & Gong's
 * backtracking over a list of call/return events (1993), with Lowe's memoisation of visited
 * configurations — the set of linearized operations (a bitset) plus the model state
 * ("Testing for linearizability", 2017). As in Porcupine, a history is first split into
 * independent partitions (for a key-value store: one per key, since linearizability is
 * compositional, Herlihy & Wing §3.3), and each partition is searched alone.
 *
 * Operations with an `unknown` outcome may have taken effect at any time after their
 * invocation, or never: their return is at +infinity and the search may leave them out.
 * Operations with a `fail` outcome did not happen and are ignored.
 */
import type { Operation } from './history.js';

/** The outcome of a model step. */
export interface StepResult<S> {
  /** Whether the observed output is possible from this state. */
  readonly ok: boolean;
  /** The state after the operation (meaningful only when `ok`). */
  readonly state: S;
}

/**
 * A sequential specification (Porcupine's `Model`). States must be treated as immutable.
 */
export interface Model<S, I, O> {
  /** The initial state. */
  init(): S;
  /**
   * Applies `input` to `state`. `output` is `undefined` for an operation with an unknown
   * outcome: then any output is acceptable and only the new state matters.
   */
  step(state: S, input: I, output: O | undefined): StepResult<S>;
  /**
   * A key for the state: equal states must give `===` keys, different states different keys
   * (used for memoisation).
   */
  key(state: S): string | number;
  /** Splits a history into independent sub-histories (e.g. by key). Default: one partition. */
  partition?(ops: readonly Operation<I, O>[]): Operation<I, O>[][];
  /** Whether `input` never changes the state (such operations are dropped when `unknown`). */
  readOnly?(input: I): boolean;
  /**
   * Whether `input`, when its output is not checked, sets a state that does not depend on the
   * state before (a blind write such as put or delete). Used to prune the search: an unknown
   * operation immediately followed by an unknown blind write is never observed. Default: none.
   */
  blindWrite?(input: I): boolean;
  /** A short description of an operation, for reports. */
  describe?(op: Operation<I, O>): string;
}

/** Options of {@link checkLinearizability}. */
export interface CheckOptions {
  /**
   * Upper bound on search steps per partition (model steps plus backtracks). When exceeded the
   * result is `unknown` rather than a verdict. Default 20,000,000.
   */
  readonly maxSteps?: number;
}

/** Why a partition is not linearizable: the deepest linearization the search found. */
export interface LinearizabilityFailure<I, O> {
  /** Index of the partition (in the model's partition order). */
  readonly partition: number;
  /** The operations of that partition that were checked (fail and read-only unknown ops removed). */
  readonly operations: readonly Operation<I, O>[];
  /** The longest linearizable prefix found, in linearization order. */
  readonly linearized: readonly Operation<I, O>[];
  /**
   * Operations that could not be linearized next: every remaining operation invoked before
   * the first pending completion. One of them must come next, and none fits the model.
   */
  readonly candidates: readonly Operation<I, O>[];
}

/** The verdict of {@link checkLinearizability}. */
export interface LinearizabilityResult<I, O> {
  /**
   * `ok`: linearizable; `illegal`: not linearizable (see `failure`); `unknown`: the step budget
   * ran out before a verdict.
   */
  readonly outcome: 'ok' | 'illegal' | 'unknown';
  /** Number of partitions checked. */
  readonly partitions: number;
  /** Total search steps. */
  readonly steps: number;
  /** Set when `outcome` is `illegal`: the first failing partition. */
  readonly failure?: LinearizabilityFailure<I, O>;
}

const CALL = 0;
const RET = 1;
const NIL = -1;

interface MemoEntry {
  /** Definite operations linearized. */
  readonly bits: Uint32Array;
  /** Unknown-outcome operations linearized. */
  readonly unknown: Uint32Array;
  readonly state: string | number;
}

/**
 * Checks whether `history` is linearizable with respect to `model`.
 *
 * Runs partitions one by one and stops at the first illegal one. Never throws for a
 * well-formed history; throws RangeError if an operation returns before it was called.
 */
export function checkLinearizability<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  options: CheckOptions = {},
): LinearizabilityResult<I, O> {
  const maxSteps = options.maxSteps ?? 20_000_000;
  const parts = model.partition ? model.partition(history) : [history.slice()];
  let steps = 0;
  let unknown = false;
  for (let p = 0; p < parts.length; p++) {
    const ops = parts[p]!.filter((o) => o.status !== 'fail' && !(o.status === 'unknown' && model.readOnly?.(o.input)));
    for (const o of ops) if (o.return < o.call) throw new RangeError(`operation ${o.id} returns before it is called`);
    const r = searchPartition(model, ops, maxSteps, -1);
    steps += r.steps;
    if (r.verdict === 'unknown') {
      unknown = true;
      continue;
    }
    if (r.verdict === 'illegal') {
      // Replay deterministically to the deepest configuration to report it.
      const again = searchPartition(model, ops, maxSteps, r.bestDepth);
      const linearized = again.stack.map((i) => ops[i]!);
      const done = new Set(again.stack);
      let firstReturn = Number.POSITIVE_INFINITY;
      for (let i = 0; i < ops.length; i++) if (!done.has(i) && ops[i]!.return < firstReturn) firstReturn = ops[i]!.return;
      const candidates = ops.filter((o, i) => !done.has(i) && o.call < firstReturn);
      return { outcome: 'illegal', partitions: parts.length, steps, failure: { partition: p, operations: ops, linearized, candidates } };
    }
  }
  return { outcome: unknown ? 'unknown' : 'ok', partitions: parts.length, steps };
}

interface SearchResult {
  verdict: 'ok' | 'illegal' | 'unknown';
  steps: number;
  bestDepth: number;
  /** Indexes into ops, in linearization order (final, or at `stopAtDepth`). */
  stack: number[];
}

function searchPartition<S, I, O>(model: Model<S, I, O>, ops: readonly Operation<I, O>[], maxSteps: number, stopAtDepth: number): SearchResult {
  const n = ops.length;
  // Definite operations (finite return) live in the main event list (call and return nodes);
  // unknown-outcome operations have only a call and live in a second list, ordered by call.
  // Candidates for the next linearization point are, in the order tried: the definite calls
  // before the first pending return, then the unknown calls made before that return. Trying
  // definite operations first visits configurations with the fewest unknown operations first,
  // so the subset rule of the memo table below prunes the rest.
  const dIndex = new Int32Array(n).fill(-1);
  const uIndex = new Int32Array(n).fill(-1);
  const evOp: number[] = [];
  const evKind: number[] = [];
  const evTime: number[] = [];
  const unknownOps: number[] = [];
  let nd = 0;
  let nu = 0;
  for (let i = 0; i < n; i++) {
    const o = ops[i]!;
    if (Number.isFinite(o.return)) {
      dIndex[i] = nd++;
      evOp.push(i, i);
      evKind.push(CALL, RET);
      evTime.push(o.call, o.return);
    } else {
      uIndex[i] = nu++;
      unknownOps.push(i);
    }
  }
  const m = evOp.length;
  const order = Array.from({ length: m }, (_, k) => k);
  // Calls before returns at equal times (the more permissive reading: they overlap).
  order.sort((a, b) => evTime[a]! - evTime[b]! || evKind[a]! - evKind[b]! || evOp[a]! - evOp[b]!);
  unknownOps.sort((a, b) => ops[a]!.call - ops[b]!.call || a - b);
  // Symmetry: unknown operations with identical inputs are interchangeable, so the later-called
  // one is only tried once the earlier-called one is linearized (any linearization using the
  // later one alone can use the earlier one in its place).
  const blind = new Uint8Array(n);
  if (model.blindWrite) for (const i of unknownOps) blind[i] = model.blindWrite(ops[i]!.input) ? 1 : 0;
  const twinBefore = new Int32Array(n).fill(-1);
  {
    const lastByInput = new Map<string, number>();
    for (const i of unknownOps) {
      const k = JSON.stringify(ops[i]!.input);
      const prevTwin = lastByInput.get(k);
      if (prevTwin !== undefined) twinBefore[i] = prevTwin;
      lastByInput.set(k, i);
    }
  }
  // Nodes: 0 = head of the main list, 1..m main events, m+1 = head of the unknown list,
  // m+2..m+1+nu unknown calls.
  const U0 = m + 1;
  const total = m + 2 + nu;
  const next = new Int32Array(total).fill(NIL);
  const prev = new Int32Array(total).fill(NIL);
  const kind = new Uint8Array(total);
  const opOf = new Int32Array(total).fill(-1);
  const timeOf = new Float64Array(total);
  const retNode = new Int32Array(n).fill(NIL);
  const link = (head: number, nodes: number[]) => {
    let p = head;
    for (const x of nodes) {
      next[p] = x;
      prev[x] = p;
      p = x;
    }
    next[p] = NIL;
  };
  const mainNodes: number[] = [];
  for (let k = 0; k < m; k++) {
    const node = k + 1;
    const ev = order[k]!;
    kind[node] = evKind[ev]!;
    opOf[node] = evOp[ev]!;
    timeOf[node] = evTime[ev]!;
    if (evKind[ev] === RET) retNode[evOp[ev]!] = node;
    mainNodes.push(node);
  }
  const unknownNodes: number[] = [];
  for (let k = 0; k < nu; k++) {
    const node = U0 + 1 + k;
    kind[node] = CALL;
    opOf[node] = unknownOps[k]!;
    timeOf[node] = ops[unknownOps[k]!]!.call;
    unknownNodes.push(node);
  }
  link(0, mainNodes);
  link(U0, unknownNodes);

  const unlink = (x: number) => {
    const p = prev[x]!;
    const q = next[x]!;
    next[p] = q;
    if (q !== NIL) prev[q] = p;
  };
  const relink = (x: number) => {
    const p = prev[x]!;
    const q = next[x]!;
    next[p] = x;
    if (q !== NIL) prev[q] = x;
  };
  const lift = (c: number) => {
    unlink(c);
    const r = retNode[opOf[c]!]!;
    if (r !== NIL) unlink(r);
  };
  const unlift = (c: number) => {
    const r = retNode[opOf[c]!]!;
    if (r !== NIL) relink(r);
    relink(c);
  };
  /** Time of the first pending return (there is one while definite ops remain). */
  const firstReturnTime = (): number => {
    let x = next[0]!;
    while (x !== NIL && kind[x] !== RET) x = next[x]!;
    return x === NIL ? Number.POSITIVE_INFINITY : timeOf[x]!;
  };

  // Memoisation (Lowe 2017): a configuration is (definite ops linearized, unknown ops
  // linearized, state). Definite sets are hashed (Zobrist) and compared exactly. A configuration
  // is pruned when one with the same definite set and state was visited using a SUBSET of its
  // unknown ops: that one can do everything this one can, since unknown ops may be left out.
  const dWords = (nd + 31) >>> 5;
  const uWords = (nu + 31) >>> 5;
  const dBits = new Uint32Array(dWords);
  const uBits = new Uint32Array(uWords);
  const zob = new Int32Array(n);
  let z = 0x9e3779b9 | 0;
  for (let i = 0; i < n; i++) {
    z ^= z << 13;
    z ^= z >>> 17;
    z ^= z << 5;
    zob[i] = z;
  }
  const memo = new Map<number, MemoEntry[]>();
  const hashOf = (h: number, key: string | number): number => {
    let x = h;
    if (typeof key === 'number') x = Math.imul(x ^ (key | 0), 0x85ebca6b) ^ Math.imul((key / 4294967296) | 0, 0xc2b2ae35);
    else for (let i = 0; i < key.length; i++) x = Math.imul(x ^ key.charCodeAt(i), 0x01000193);
    return x | 0;
  };
  const setBit = (i: number) => {
    const d = dIndex[i]!;
    if (d >= 0) dBits[d >>> 5]! |= 1 << (d & 31);
    else uBits[uIndex[i]! >>> 5]! |= 1 << (uIndex[i]! & 31);
  };
  const clearBit = (i: number) => {
    const d = dIndex[i]!;
    if (d >= 0) dBits[d >>> 5]! &= ~(1 << (d & 31));
    else uBits[uIndex[i]! >>> 5]! &= ~(1 << (uIndex[i]! & 31));
  };
  const seenOrAdd = (h: number, key: string | number): boolean => {
    const hh = hashOf(h, key);
    let bucket = memo.get(hh);
    if (bucket) {
      outer: for (const e of bucket) {
        if (e.state !== key) continue;
        for (let w = 0; w < dWords; w++) if (e.bits[w] !== dBits[w]) continue outer;
        for (let w = 0; w < uWords; w++) if ((e.unknown[w]! & ~uBits[w]!) !== 0) continue outer;
        return true;
      }
    } else {
      bucket = [];
      memo.set(hh, bucket);
    }
    bucket.push({ bits: dBits.slice(), unknown: uBits.slice(), state: key });
    return false;
  };

  let state = model.init();
  let h = 0;
  const stackNode: number[] = [];
  const stackState: S[] = [];
  let remaining = nd;
  let entry = next[0]!;
  /** While walking unknown calls: the time they must be called before. */
  let limit = -1;
  let steps = 0;
  let bestDepth = 0;
  const snapshot = () => stackNode.map((c) => opOf[c]!);

  while (remaining > 0) {
    if (stopAtDepth >= 0 && stackNode.length === stopAtDepth) {
      return { verdict: 'illegal', steps, bestDepth, stack: snapshot() };
    }
    if (++steps > maxSteps) return { verdict: 'unknown', steps, bestDepth, stack: [] };
    if (entry !== NIL && kind[entry] === RET && limit < 0) {
      // End of the definite candidates: go on with unknown calls made before this return.
      limit = timeOf[entry]!;
      entry = next[U0]!;
      continue;
    }
    if (entry !== NIL && kind[entry] === CALL && (limit < 0 || timeOf[entry]! <= limit)) {
      const i = opOf[entry]!;
      const op = ops[i]!;
      const twin = twinBefore[i]!;
      const top = stackNode.length > 0 ? opOf[stackNode[stackNode.length - 1]!]! : -1;
      if (
        (twin >= 0 && (uBits[uIndex[twin]! >>> 5]! & (1 << (uIndex[twin]! & 31))) === 0) ||
        (uIndex[i]! >= 0 && top >= 0 && uIndex[top]! >= 0 && blind[i] === 1)
      ) {
        entry = next[entry]!;
        continue;
      }
      const r = model.step(state, op.input, op.status === 'ok' ? op.output : undefined);
      if (r.ok) {
        setBit(i);
        const h2 = dIndex[i]! >= 0 ? h ^ zob[i]! : h;
        if (!seenOrAdd(h2, model.key(r.state))) {
          stackNode.push(entry);
          stackState.push(state);
          state = r.state;
          h = h2;
          lift(entry);
          if (dIndex[i]! >= 0) remaining--;
          if (stackNode.length > bestDepth) bestDepth = stackNode.length;
          entry = next[0]!;
          limit = -1;
          continue;
        }
        clearBit(i);
      }
      entry = next[entry]!;
      continue;
    }
    // No candidate left in this configuration: backtrack.
    const c = stackNode.pop();
    if (c === undefined) return { verdict: 'illegal', steps, bestDepth, stack: [] };
    state = stackState.pop()!;
    const i = opOf[c]!;
    clearBit(i);
    unlift(c);
    if (dIndex[i]! >= 0) {
      h ^= zob[i]!;
      remaining++;
      limit = -1;
    } else {
      limit = firstReturnTime();
    }
    entry = next[c]!;
  }
  return { verdict: 'ok', steps, bestDepth, stack: snapshot() };
}
