/**
 * Output checks of the fuzzer: the canary (the output buffer is filled with a
 * pattern before each call; a byte past the bytes returned that changed is a
 * finding), pointer leaks (8-byte-aligned output values that point into the
 * driver's address ranges and that no input contained) and stale bytes (bytes
 * inside the returned length that differ between two runs of the same
 * request).
 *
 * @module
 */
import type { AddressRange } from "./ranges.ts";

/**
 * The canary's 8-byte pattern; byte `i` of a buffer is `CANARY[i % 8]`.
 *
 * @example
 * ```ts
 * import { CANARY } from "./canary.ts";
 * CANARY.length; // 8
 * ```
 */
export const CANARY: readonly number[] = [0xcb, 0xde, 0x5a, 0xa5, 0x3c, 0xc3, 0x96, 0x69];

/**
 * The second pre-fill of the stale-bytes check: every canary byte inverted,
 * so that no byte of it equals the canary's at the same offset.
 *
 * @example
 * ```ts
 * import { CANARY, INVERSE_CANARY } from "./canary.ts";
 * INVERSE_CANARY[0] === (CANARY[0] ^ 0xff); // true
 * ```
 */
export const INVERSE_CANARY: readonly number[] = CANARY.map((byte) => byte ^ 0xff);

/**
 * Fills `buffer` with the canary pattern (or another 8-byte `pattern`).
 *
 * @example
 * ```ts
 * import { fillCanary } from "./canary.ts";
 * const out = fillCanary(new Uint8Array(4)); // Uint8Array [0xcb, 0xde, 0x5a, 0xa5]
 * ```
 */
export function fillCanary(buffer: Uint8Array, pattern: readonly number[] = CANARY): Uint8Array {
  const first = Math.min(8, buffer.length);
  for (let i = 0; i < first; i++) buffer[i] = pattern[i];
  // Doubling copies keep the period of 8.
  let filled = first;
  while (filled < buffer.length) {
    const chunk = Math.min(filled, buffer.length - filled);
    buffer.copyWithin(filled, 0, chunk);
    filled += chunk;
  }
  return buffer;
}

/**
 * The offset of the first byte at or after `from` that no longer holds the
 * canary pattern, or -1 when none changed.
 *
 * @example
 * ```ts
 * import { canaryDamage, fillCanary } from "./canary.ts";
 *
 * const out = fillCanary(new Uint8Array(16));
 * out[9] = 0;
 * canaryDamage(out, 4); // 9
 * canaryDamage(out, 10); // -1
 * ```
 */
export function canaryDamage(buffer: Uint8Array, from: number): number {
  let i = Math.max(0, from);
  const end = buffer.length;
  // Bytes up to an 8-aligned offset, then whole 8-byte groups as two 32-bit words.
  for (; i < end && (i & 7) !== 0; i++) if (buffer[i] !== CANARY[i & 7]) return i;
  if (end - i >= 8) {
    const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    const w0 = (CANARY[0] | CANARY[1] << 8 | CANARY[2] << 16 | CANARY[3] << 24) >>> 0;
    const w1 = (CANARY[4] | CANARY[5] << 8 | CANARY[6] << 16 | CANARY[7] << 24) >>> 0;
    for (; i + 8 <= end; i += 8) {
      if (view.getUint32(i, true) !== w0 || view.getUint32(i + 4, true) !== w1) break;
    }
  }
  for (; i < end; i++) if (buffer[i] !== CANARY[i & 7]) return i;
  return -1;
}

/**
 * One pointer-like value found in an output: it falls in one of the driver's
 * address ranges.
 *
 * @example
 * ```ts
 * import type { PointerHit } from "./canary.ts";
 * const hit: PointerHit = { offset: 8, value: 0xffff_a001_2345_6780n, label: "kernel" };
 * ```
 */
export interface PointerHit {
  /** Its offset in the output (a multiple of 8). */
  readonly offset: number;
  /** The value. */
  readonly value: bigint;
  /** The label of the range it falls in. */
  readonly label: string;
}

/** Below this no driver address lies (the NULL page area); small integers are no pointers. */
const LOWEST_POINTER = 0x1_0000;

/** The high 32 bits of the lowest and of the highest address of `ranges`, computed once per list. */
const highWordCache = new WeakMap<readonly AddressRange[], { lowHigh: number; highHigh: number }>();

function highWordBounds(ranges: readonly AddressRange[]): { lowHigh: number; highHigh: number } {
  let bounds = highWordCache.get(ranges);
  if (bounds === undefined) {
    const starts = ranges.map((r) => r.start);
    const lasts = ranges.map((r) => r.end - 1n);
    const lowest = starts.reduce((a, b) => a < b ? a : b);
    const highest = lasts.reduce((a, b) => a > b ? a : b);
    bounds = { lowHigh: Number(lowest >> 32n), highHigh: Number(highest >> 32n) };
    highWordCache.set(ranges, bounds);
  }
  return bounds;
}

/**
 * The `values` that occur as 8 little-endian bytes at any offset of one of
 * `inputs`. One pass over the inputs' bytes, whatever the number of values:
 * each offset's low 32 bits (a Number) are looked up first. Testing each
 * value against each input was quadratic: a 64 KiB output of heap-range
 * words against 64 KiB inputs took seconds per request.
 */
function occurringValues(
  values: readonly bigint[],
  inputs: readonly Uint8Array[],
): Set<bigint> {
  const highsByLow = new Map<number, Set<number>>();
  for (const value of values) {
    const low = Number(value & 0xffff_ffffn);
    let highs = highsByLow.get(low);
    if (highs === undefined) highsByLow.set(low, highs = new Set());
    highs.add(Number(value >> 32n));
  }
  const found = new Set<bigint>();
  for (const input of inputs) {
    const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
    for (let i = 0; i + 8 <= input.length; i++) {
      const highs = highsByLow.get(view.getUint32(i, true));
      if (highs?.has(view.getUint32(i + 4, true))) found.add(view.getBigUint64(i, true));
    }
  }
  return found;
}

/** P(X >= k) for X ~ Poisson(lambda). */
function poissonTail(lambda: number, k: number): number {
  if (k <= 0) return 1;
  let term = Math.exp(-lambda);
  let below = term;
  for (let i = 1; i < k; i++) {
    term *= lambda / i;
    below += term;
  }
  return Math.max(0, 1 - below);
}

/**
 * The chance that an 8-byte slot of random bytes, drawn with the byte
 * frequencies `p`, falls in `range`: the bytes the range's first and last
 * address share from the top must all match, and the next one fall between.
 */
function chanceIn(range: AddressRange, p: (byte: number) => number): number {
  const last = range.end - 1n;
  let chance = 1;
  for (let shift = 56n; shift >= 0n; shift -= 8n) {
    const a = Number((range.start >> shift) & 0xffn);
    const b = Number((last >> shift) & 0xffn);
    if (a === b) {
      chance *= p(a);
      continue;
    }
    let between = 0;
    for (let byte = a; byte <= b; byte++) between += p(byte);
    return chance * between;
  }
  return chance;
}

/**
 * The 8-byte-aligned values of `output` that point into `ranges` and look
 * like a leak: at least 0x10000, no multiple of 0x10000 (sizes and flags
 * are), not -1, not found anywhere in `inputs` (the request's input and
 * earlier ones: an echo, or a value stored before and read back, is no leak),
 * and more of them than random bytes explain. The last test keeps large
 * random-looking outputs (e.g. a 16 MiB pattern fill, where about one 8-byte
 * slot in 2^17 falls in the kernel half by chance) quiet: with the byte
 * frequencies of the output's other bytes, the chance that random data holds
 * that many such values must be below `threshold` (default 1e-4).
 *
 * @example
 * ```ts
 * import { pointerValues } from "./canary.ts";
 * import { KERNEL_RANGES } from "./ranges.ts";
 *
 * const out = new Uint8Array(16);
 * new DataView(out.buffer).setBigUint64(8, 0xffff_a001_2345_6780n, true);
 * pointerValues(out, await KERNEL_RANGES.ranges(), []);
 * // [{ offset: 8, value: 0xffffa00123456780n, label: "kernel" }]
 * ```
 */
export function pointerValues(
  output: Uint8Array,
  ranges: readonly AddressRange[],
  inputs: readonly Uint8Array[],
  threshold = 1e-4,
): PointerHit[] {
  const view = new DataView(output.buffer, output.byteOffset, output.byteLength);
  const hits: PointerHit[] = [];
  if (ranges.length === 0) return hits;
  // Every request's output is scanned: the high 32 bits of each word, a Number, rule out
  // most words before any BigInt is made.
  const { lowHigh, highHigh } = highWordBounds(ranges);
  for (let offset = 0; offset + 8 <= output.length; offset += 8) {
    const high = view.getUint32(offset + 4, true);
    if (high < lowHigh || high > highHigh) continue;
    const low = view.getUint32(offset, true);
    // Below LOWEST_POINTER, a multiple of 0x10000 (sizes and flags), or all ones.
    if ((low & 0xffff) === 0 || (high === 0 && low < LOWEST_POINTER)) continue;
    if (high === 0xffff_ffff && low === 0xffff_ffff) continue;
    const value = view.getBigUint64(offset, true);
    const range = ranges.find((r) => value >= r.start && value < r.end);
    if (range !== undefined) hits.push({ offset, value, label: range.label });
  }
  if (hits.length === 0) return hits;
  const held = occurringValues(hits.map((hit) => hit.value), inputs);
  const leaks = hits.filter((hit) => !held.has(hit.value));
  if (leaks.length === 0) return leaks;
  // Byte frequencies outside the candidate slots, with add-one smoothing.
  const inSlot = new Set(hits.map((hit) => hit.offset));
  const counts = new Uint32Array(256);
  let total = 0;
  for (let offset = 0; offset < output.length; offset += 8) {
    if (inSlot.has(offset)) continue;
    const end = Math.min(offset + 8, output.length);
    for (let i = offset; i < end; i++, total++) counts[output[i]]++;
  }
  const p = (byte: number) => (counts[byte] + 1) / (total + 256);
  const perSlot = ranges.reduce((sum, range) => sum + chanceIn(range, p), 0);
  const lambda = Math.floor(output.length / 8) * perSlot;
  return poissonTail(lambda, leaks.length) < threshold ? leaks : [];
}

/**
 * What {@linkcode staleBytes} found: how many returned bytes differ between
 * the two runs, how many of them are the runs' own pre-fill (bytes the driver
 * never wrote), and the first and last offset that differ.
 *
 * @example
 * ```ts
 * import type { StaleBytes } from "./canary.ts";
 * const stale: StaleBytes = { differing: 56, prefill: 0, first: 8, last: 63 };
 * ```
 */
export interface StaleBytes {
  /** Bytes that differ. */
  readonly differing: number;
  /** Of them, bytes that hold each run's own pre-fill (0 unless counted, see {@linkcode StaleOptions}). */
  readonly prefill: number;
  /** The first offset that differs. */
  readonly first: number;
  /** The last offset that differs. */
  readonly last: number;
}

/**
 * How {@linkcode staleBytes} compares.
 *
 * @example
 * ```ts
 * import type { StaleOptions } from "./canary.ts";
 * const options: StaleOptions = { countPrefill: false };
 * ```
 */
export interface StaleOptions {
  /**
   * The first run's request sent again at once with the same pre-fill: a
   * byte that differs there already is the driver's own varying output (a
   * nonce, a random object name, a clock), not memory it left unwritten.
   */
  readonly repeat?: Uint8Array;
  /**
   * Whether returned bytes that are the caller's own pre-fill count (default
   * true). They do for METHOD_BUFFERED: the driver returned bytes it never
   * wrote, which on Windows come from the system buffer's pool. They do not
   * for the direct and neither methods: there the output is the caller's own
   * memory, so unwritten bytes are the caller's bytes, not the kernel's.
   */
  readonly countPrefill?: boolean;
}

/** Two values of a word less than this apart are a counter or a time stamp. */
const COUNTER_DELTA = 1n << 20n;

/**
 * Compares the returned bytes of two runs of the same request, the first
 * with the output pre-filled with {@linkcode CANARY}, the second with
 * {@linkcode INVERSE_CANARY} (and other requests in between, so the
 * driver's allocations come from another history). Bytes the driver computes
 * from the input are the same in both; bytes that differ are either stale
 * memory or the pre-fill shining through. An aligned 8-byte word whose two
 * values are less than 2^20 apart is taken for a counter or a time stamp,
 * and so are up to 8 other differing bytes (unless pre-fill); `undefined`
 * when nothing looks stale.
 *
 * @example
 * ```ts
 * import { fillCanary, INVERSE_CANARY, staleBytes } from "./canary.ts";
 *
 * const a = fillCanary(new Uint8Array(32));
 * const b = fillCanary(new Uint8Array(32), INVERSE_CANARY);
 * a.fill(0, 0, 4); b.fill(0, 0, 4); // the driver wrote 4 bytes and returned 32
 * staleBytes(a, b); // { differing: 28, prefill: 28, first: 4, last: 31 }
 * staleBytes(a, b, { countPrefill: false }); // undefined: a direct-I/O caller's own bytes
 * ```
 */
export function staleBytes(
  first: Uint8Array,
  second: Uint8Array,
  options: StaleOptions = {},
): StaleBytes | undefined {
  const { repeat, countPrefill = true } = options;
  const length = Math.min(first.length, second.length);
  let differing = 0;
  let prefill = 0;
  let firstOffset = -1;
  let lastOffset = -1;
  const a = new DataView(first.buffer, first.byteOffset, first.byteLength);
  const b = new DataView(second.buffer, second.byteOffset, second.byteLength);
  for (let i = 0; i < length; i++) {
    if (first[i] === second[i] || (repeat !== undefined && repeat[i] !== first[i])) continue;
    const isPrefill = first[i] === CANARY[i & 7] && second[i] === INVERSE_CANARY[i & 7];
    if (isPrefill && !countPrefill) continue;
    const word = i & ~7;
    if (!isPrefill && word + 8 <= length) {
      // A word that moved by less than 2^20 is a counter or a time stamp, not stale memory.
      const delta = a.getBigUint64(word, true) - b.getBigUint64(word, true);
      if ((delta < 0n ? -delta : delta) < COUNTER_DELTA) continue;
    }
    differing++;
    if (isPrefill) prefill++;
    if (firstOffset < 0) firstOffset = i;
    lastOffset = i;
  }
  if (prefill < 4 && differing <= 8) return undefined;
  return { differing, prefill, first: firstOffset, last: lastOffset };
}
