/**
 * The fuzzer's seeded pseudo-random generator (xoshiro128**, seeded through
 * splitmix32): the same seed gives the same sequence on every platform, so a
 * fuzz run is reproducible from its `--seed`.
 *
 * @module
 */

/**
 * The largest seed accepted: seeds are integers in 0..2^53-1.
 *
 * @example
 * ```ts
 * import { MAX_SEED } from "./prng.ts";
 * MAX_SEED; // 9007199254740991
 * ```
 */
export const MAX_SEED: number = Number.MAX_SAFE_INTEGER;

function splitmix32(state: { x: number }): number {
  state.x = (state.x + 0x9e37_79b9) >>> 0;
  let z = state.x;
  z = Math.imul(z ^ (z >>> 16), 0x85eb_ca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2_ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * A seeded generator of 32-bit integers and the choices the fuzzer makes.
 *
 * @example
 * ```ts
 * import { Prng } from "./prng.ts";
 *
 * const a = new Prng(42);
 * const b = new Prng(42);
 * a.nextU32() === b.nextU32(); // true: same seed, same sequence
 * a.int(6); // 0..5
 * ```
 */
export class Prng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;
  /** The seed this generator started from. */
  readonly seed: number;

  /** Creates a generator for `seed`, an integer in 0..2^53-1. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new RangeError(`seed must be an integer in 0..${MAX_SEED}, got ${seed}`);
    }
    this.seed = seed;
    const state = { x: (seed >>> 0) ^ Math.imul(Math.floor(seed / 2 ** 32), 0x632b_e5ab) };
    this.#s0 = splitmix32(state);
    this.#s1 = splitmix32(state);
    this.#s2 = splitmix32(state);
    this.#s3 = splitmix32(state);
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1;
  }

  /** The next unsigned 32-bit integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.#s1 << 9) >>> 0;
    this.#s2 = (this.#s2 ^ this.#s0) >>> 0;
    this.#s3 = (this.#s3 ^ this.#s1) >>> 0;
    this.#s1 = (this.#s1 ^ this.#s2) >>> 0;
    this.#s0 = (this.#s0 ^ this.#s3) >>> 0;
    this.#s2 = (this.#s2 ^ t) >>> 0;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** An integer in 0..n-1, without modulo bias; `n` in 1..2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) {
      throw new RangeError(`Prng.int: n must be an integer in 1..2^32, got ${n}`);
    }
    if (n === 1) return 0;
    const limit = 2 ** 32 - (2 ** 32 % n);
    let x = this.nextU32();
    while (x >= limit) x = this.nextU32();
    return x % n;
  }

  /** An integer in min..max (both included). */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  /** `true` with probability `p` (0..1). */
  chance(p: number): boolean {
    return this.nextU32() < p * 2 ** 32;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("Prng.pick: empty array");
    return items[this.int(items.length)];
  }

  /** `length` random bytes. */
  bytes(length: number): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(length);
    let i = 0;
    for (; i + 4 <= length; i += 4) {
      const x = this.nextU32();
      out[i] = x;
      out[i + 1] = x >>> 8;
      out[i + 2] = x >>> 16;
      out[i + 3] = x >>> 24;
    }
    if (i < length) {
      const x = this.nextU32();
      for (let k = 0; i < length; i++, k += 8) out[i] = x >>> k;
    }
    return out;
  }
}

/**
 * A fresh seed for a run without `--seed`: 32 random bits (short enough to retype).
 *
 * @example
 * ```ts
 * import { randomSeed } from "./prng.ts";
 *
 * const seed = randomSeed(); // e.g. 3141592653
 * ```
 */
export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}
