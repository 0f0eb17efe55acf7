/**
 * A small seeded PRNG (sfc32, the "small fast counting" generator from PractRand), the only
 * source of randomness a core may use, so a seed replays a run exactly.
 */

/** A deterministic random source. */
export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [lo, hi] inclusive. */
  int(lo: number, hi: number): number;
  /** A new independent generator derived from this one (for handing to a sub-component). */
  fork(): Random;
}

/**
 * Creates a generator from a 32-bit seed (any number is reduced to 32 bits).
 * The same seed always yields the same sequence on every JavaScript engine.
 */
export function createRandom(seed: number): Random {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next32 = (): number => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 15; i++) next32();
  const rng: Random = {
    next: () => next32() / 4294967296,
    int: (lo, hi) => lo + Math.floor((next32() / 4294967296) * (hi - lo + 1)),
    fork: () => createRandom(next32()),
  };
  return rng;
}
