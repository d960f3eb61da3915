/**
 * The fuzzer's mutators: pure functions that derive a new input from an old
 * one (bit and byte flips, interesting values, pointer-like values, resizing),
 * and the tables of interesting values and boundary sizes they draw from.
 * None of them changes its argument.
 *
 * @module
 */
import type { Prng } from "./prng.ts";

/**
 * 16 MiB, the size class of the "huge" buffers (the reference driver's transfer limit).
 *
 * @example
 * ```ts
 * import { HUGE } from "./mutate.ts";
 * HUGE + 1; // 16777217: one past the limit
 * ```
 */
export const HUGE: number = 16 * 1024 * 1024;

/**
 * Byte values that often hit edge cases: zero, one, sign boundaries, all ones.
 *
 * @example
 * ```ts
 * import { INTERESTING_8 } from "./mutate.ts";
 * INTERESTING_8.includes(0x80); // true
 * ```
 */
export const INTERESTING_8: readonly number[] = [0x00, 0x01, 0x10, 0x20, 0x40, 0x7f, 0x80, 0xff];

/**
 * 32-bit values that often hit edge cases: sign and size boundaries, page
 * sizes, and the 16 MiB transfer limit and one past it.
 *
 * @example
 * ```ts
 * import { INTERESTING_32 } from "./mutate.ts";
 * INTERESTING_32.includes(4097); // true
 * ```
 */
export const INTERESTING_32: readonly number[] = [
  0,
  1,
  0xff,
  0x100,
  0x7fff,
  0x8000,
  0xffff,
  0x1_0000,
  4095,
  4096,
  4097,
  HUGE,
  HUGE + 1,
  0x7fff_ffff,
  0x8000_0000,
  0xffff_fffe,
  0xffff_ffff,
];

/**
 * 64-bit values that look like pointers or pointer-sized lengths: NULL, -1,
 * the start of the kernel half (0xFFFF8000_00000000), the kernel image area,
 * the highest user address, small integers and a non-canonical address.
 * Written into 8-byte-aligned slots by the `neither-pointers` strategy.
 *
 * @example
 * ```ts
 * import { POINTER_LIKE } from "./mutate.ts";
 * POINTER_LIKE.includes(0xffff_8000_0000_0000n); // true
 * ```
 */
export const POINTER_LIKE: readonly bigint[] = [
  0n,
  1n,
  8n,
  0x1000n,
  0x1_0000n,
  0xffff_ffffn,
  0x7fff_fffe_ffffn,
  0x7fff_ffff_0000n,
  0x4141_4141_4141_4141n,
  0x7fff_ffff_ffff_ffffn,
  0x8000_0000_0000_0000n,
  0xffff_8000_0000_0000n,
  0xffff_f780_0000_0000n,
  0xffff_f800_0000_0000n,
  0xffff_ffff_8000_0000n,
  0xffff_ffff_ffff_f000n,
  0xffff_ffff_ffff_ffffn,
];

/**
 * Buffer lengths at boundaries: tiny sizes, powers of two and their
 * neighbours, page-crossing 4095/4096/4097, 64 KiB, 1 MiB and 16 MiB (+1).
 *
 * @example
 * ```ts
 * import { BOUNDARY_LENGTHS } from "./mutate.ts";
 * BOUNDARY_LENGTHS.includes(4097); // true
 * ```
 */
export const BOUNDARY_LENGTHS: readonly number[] = [
  0,
  1,
  2,
  3,
  4,
  7,
  8,
  9,
  12,
  15,
  16,
  17,
  24,
  31,
  32,
  33,
  48,
  63,
  64,
  65,
  127,
  128,
  255,
  256,
  257,
  511,
  512,
  1023,
  1024,
  2048,
  4095,
  4096,
  4097,
  8191,
  8192,
  8193,
  65535,
  65536,
  65537,
  1 << 20,
  (1 << 20) + 1,
  HUGE - 1,
  HUGE,
  HUGE + 1,
];

/**
 * A boundary length no larger than `max`, drawn mostly from the small ones:
 * at most 8193 bytes 93% of the time, up to 1 MiB + 1 6%, the 16 MiB class 1%.
 *
 * @example
 * ```ts
 * import { Prng } from "./prng.ts";
 * import { boundaryLength } from "./mutate.ts";
 *
 * boundaryLength(new Prng(1), 4096) <= 4096; // true
 * ```
 */
export function boundaryLength(prng: Prng, max: number): number {
  const roll = prng.int(100);
  const limit = roll < 93 ? 8193 : roll < 99 ? (1 << 20) + 1 : Infinity;
  const choices = BOUNDARY_LENGTHS.filter((length) => length <= Math.min(limit, max));
  return choices.length === 0 ? 0 : prng.pick(choices);
}

function copy(data: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(data);
}

/**
 * A copy of `data` with bit `bit` (0 = lowest bit of byte 0) inverted.
 *
 * @example
 * ```ts
 * import { flipBit } from "./mutate.ts";
 * flipBit(new Uint8Array([0]), 1); // Uint8Array [2]
 * ```
 */
export function flipBit(data: Uint8Array, bit: number): Uint8Array<ArrayBuffer> {
  const out = copy(data);
  out[bit >>> 3] ^= 1 << (bit & 7);
  return out;
}

/**
 * A copy of `data` with byte `offset` inverted (XOR 0xFF).
 *
 * @example
 * ```ts
 * import { flipByte } from "./mutate.ts";
 * flipByte(new Uint8Array([0x4b, 0x42, 0x00]), 2); // Uint8Array [0x4b, 0x42, 0xff]
 * ```
 */
export function flipByte(data: Uint8Array, offset: number): Uint8Array<ArrayBuffer> {
  const out = copy(data);
  out[offset] ^= 0xff;
  return out;
}

/**
 * A copy of `data` with the little-endian integer `value` of `size` bytes
 * (1, 2, 4 or 8) written at `offset`; bytes past the end are dropped.
 *
 * @example
 * ```ts
 * import { writeValue } from "./mutate.ts";
 * writeValue(new Uint8Array(4), 0, 2, 0x1234n); // Uint8Array [0x34, 0x12, 0, 0]
 * ```
 */
export function writeValue(
  data: Uint8Array,
  offset: number,
  size: number,
  value: bigint,
): Uint8Array<ArrayBuffer> {
  const out = copy(data);
  for (let i = 0; i < size && offset + i < out.length; i++) {
    out[offset + i] = Number((value >> BigInt(8 * i)) & 0xffn);
  }
  return out;
}

/**
 * `data` resized to `length`: truncated, or extended with `fill` (a byte
 * value, or `"repeat"` to repeat `data`; zeros when `data` is empty).
 *
 * @example
 * ```ts
 * import { resize } from "./mutate.ts";
 * resize(new Uint8Array([1, 2]), 5, "repeat"); // Uint8Array [1, 2, 1, 2, 1]
 * resize(new Uint8Array([1, 2]), 1, 0); // Uint8Array [1]
 * ```
 */
export function resize(
  data: Uint8Array,
  length: number,
  fill: number | "repeat",
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  out.set(data.subarray(0, length));
  if (length <= data.length) return out;
  if (fill === "repeat" && data.length > 0) {
    // Doubling copies: fast even for 16 MiB.
    let filled = data.length;
    while (filled < length) {
      const chunk = Math.min(filled, length - filled);
      out.copyWithin(filled, 0, chunk);
      filled += chunk;
    }
  } else if (fill !== "repeat" && fill !== 0) {
    out.fill(fill, data.length);
  }
  return out;
}

/**
 * A copy of `data` (extended with zeros to a multiple of 8 bytes, at least 8)
 * with `count` 8-byte-aligned slots overwritten by {@link POINTER_LIKE} values.
 *
 * @example
 * ```ts
 * import { Prng } from "./prng.ts";
 * import { writePointers } from "./mutate.ts";
 *
 * writePointers(new Prng(7), new Uint8Array(3), 1).length; // 8
 * ```
 */
export function writePointers(
  prng: Prng,
  data: Uint8Array,
  count: number,
): Uint8Array<ArrayBuffer> {
  const length = Math.max(8, Math.ceil(data.length / 8) * 8);
  let out = resize(data, length, 0);
  const slots = length / 8;
  for (let i = 0; i < count; i++) {
    out = writeValue(out, prng.int(slots) * 8, 8, prng.pick(POINTER_LIKE));
  }
  return out;
}

/**
 * One random mutation of `data` (the "havoc" step): a bit or byte flip, an
 * interesting 8/16/32-bit value, a small addition, a random byte, a
 * pointer-like value at an aligned slot, an insertion or a deletion. Empty
 * input grows by a few random bytes.
 *
 * @example
 * ```ts
 * import { Prng } from "./prng.ts";
 * import { havoc } from "./mutate.ts";
 *
 * const mutated = havoc(new Prng(3), new Uint8Array(16));
 * ```
 */
export function havoc(prng: Prng, data: Uint8Array): Uint8Array<ArrayBuffer> {
  if (data.length === 0) return prng.bytes(prng.range(1, 8));
  const offset = prng.int(data.length);
  switch (prng.int(9)) {
    case 0:
      return flipBit(data, offset * 8 + prng.int(8));
    case 1:
      return flipByte(data, offset);
    case 2:
      return writeValue(data, offset, 1, BigInt(prng.pick(INTERESTING_8)));
    case 3:
      return writeValue(data, offset & ~1, 2, BigInt(prng.pick(INTERESTING_32) & 0xffff));
    case 4:
      return writeValue(data, offset & ~3, 4, BigInt(prng.pick(INTERESTING_32)));
    case 5: {
      const out = copy(data);
      out[offset] += prng.chance(0.5) ? prng.range(1, 35) : 256 - prng.range(1, 35);
      return out;
    }
    case 6: {
      const out = copy(data);
      out[offset] = prng.int(256);
      return out;
    }
    case 7:
      return writePointers(prng, data, 1);
    default: {
      if (prng.chance(0.5) || data.length === 1) {
        const inserted = prng.bytes(prng.range(1, 8));
        const out = new Uint8Array(data.length + inserted.length);
        out.set(data.subarray(0, offset));
        out.set(inserted, offset);
        out.set(data.subarray(offset), offset + inserted.length);
        return out;
      }
      const count = Math.min(prng.range(1, 8), data.length - offset);
      const out = new Uint8Array(data.length - count);
      out.set(data.subarray(0, offset));
      out.set(data.subarray(offset + count), offset);
      return out;
    }
  }
}

/**
 * Bytes of an input that deterministic walks cover; longer inputs are walked over this prefix.
 *
 * @example
 * ```ts
 * import { WALK_LIMIT } from "./mutate.ts";
 * WALK_LIMIT; // 64
 * ```
 */
export const WALK_LIMIT = 64;

/**
 * The number of steps of the deterministic walk over an input of `length`
 * bytes (see {@link walkStep}).
 *
 * @example
 * ```ts
 * import { walkLength } from "./mutate.ts";
 * walkLength(0); // 0
 * ```
 */
export function walkLength(length: number): number {
  const n = Math.min(length, WALK_LIMIT);
  return n + n * INTERESTING_8.length + 8 * n + Math.ceil(n / 4) * INTERESTING_32.length +
    Math.ceil(n / 8) * POINTER_LIKE.length;
}

/**
 * Step `step` of the deterministic walk over `data`, as AFL's deterministic
 * stages: every byte inverted, every byte set to each {@link INTERESTING_8}
 * value, every bit flipped, every aligned 32-bit word set to each
 * {@link INTERESTING_32} value, every aligned 64-bit slot set to each
 * {@link POINTER_LIKE} value. Returns `undefined` past the last step.
 *
 * @example
 * ```ts
 * import { walkStep } from "./mutate.ts";
 *
 * // Step 2 inverts byte 2: "KB\0" becomes "KB\xff".
 * walkStep(new Uint8Array([0x4b, 0x42, 0x00]), 2); // Uint8Array [0x4b, 0x42, 0xff]
 * ```
 */
export function walkStep(data: Uint8Array, step: number): Uint8Array<ArrayBuffer> | undefined {
  const n = Math.min(data.length, WALK_LIMIT);
  let s = step;
  if (s < n) return flipByte(data, s);
  s -= n;
  if (s < n * INTERESTING_8.length) {
    const offset = s % n;
    return writeValue(data, offset, 1, BigInt(INTERESTING_8[Math.floor(s / n)]));
  }
  s -= n * INTERESTING_8.length;
  if (s < 8 * n) return flipBit(data, s);
  s -= 8 * n;
  const words = Math.ceil(n / 4);
  if (s < words * INTERESTING_32.length) {
    return writeValue(data, (s % words) * 4, 4, BigInt(INTERESTING_32[Math.floor(s / words)]));
  }
  s -= words * INTERESTING_32.length;
  const slots = Math.ceil(n / 8);
  if (s < slots * POINTER_LIKE.length) {
    const grown = resize(data, Math.max(data.length, slots * 8), 0);
    return writeValue(grown, (s % slots) * 8, 8, POINTER_LIKE[Math.floor(s / slots)]);
  }
  return undefined;
}
