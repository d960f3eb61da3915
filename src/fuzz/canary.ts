/**
 * Output checks of the fuzzer: the canary (the output buffer is filled with a
 * pattern before each call; a byte past the bytes returned that changed is a
 * finding) and kernel-pointer leaks (8-byte-aligned output values in
 * 0xFFFF8000_00000000..0xFFFFFFFF_FFFFFFFF that the input did not contain).
 *
 * @module
 */

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
 * Fills `buffer` with the canary pattern.
 *
 * @example
 * ```ts
 * import { fillCanary } from "./canary.ts";
 * const out = fillCanary(new Uint8Array(4)); // Uint8Array [0xcb, 0xde, 0x5a, 0xa5]
 * ```
 */
export function fillCanary(buffer: Uint8Array): Uint8Array {
  const first = Math.min(8, buffer.length);
  for (let i = 0; i < first; i++) buffer[i] = CANARY[i];
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
 * One kernel-pointer-like value found in an output.
 *
 * @example
 * ```ts
 * import type { KernelPointer } from "./canary.ts";
 * const hit: KernelPointer = { offset: 8, value: 0xffff_a001_2345_6780n };
 * ```
 */
export interface KernelPointer {
  /** Its offset in the output (a multiple of 8). */
  readonly offset: number;
  /** The value. */
  readonly value: bigint;
}

const KERNEL_HIGH = 0xffff_8000;
const ALL_ONES = 0xffff_ffff_ffff_ffffn;

/** The 8-byte little-endian values of `data` (at any offset) that fall in the kernel range. */
function kernelValuesIn(data: Uint8Array): Set<bigint> {
  const found = new Set<bigint>();
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i + 8 <= data.length; i++) {
    if (data[i + 7] !== 0xff || data[i + 6] !== 0xff) continue;
    if (view.getUint32(i + 4, true) >= KERNEL_HIGH) found.add(view.getBigUint64(i, true));
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
 * The kernel-pointer-like values of `output` (8-byte-aligned, in
 * 0xFFFF8000_00000000..0xFFFFFFFF_FFFFFFFF) that look like a leak: not -1,
 * not found anywhere in `input` (an echo is no leak), and more of them than
 * random bytes explain. The last test keeps large random-looking outputs
 * (e.g. a 16 MiB pattern fill, where about one 8-byte slot in 2^17 falls in
 * the range by chance) quiet: with the byte frequencies of the output's other
 * bytes, the chance that random data holds that many such values must be
 * below `threshold` (default 1e-4).
 *
 * @example
 * ```ts
 * import { kernelPointers } from "./canary.ts";
 *
 * const out = new Uint8Array(16);
 * new DataView(out.buffer).setBigUint64(8, 0xffff_a001_2345_6780n, true);
 * kernelPointers(out, new Uint8Array()); // [{ offset: 8, value: 0xffffa00123456780n }]
 * ```
 */
export function kernelPointers(
  output: Uint8Array,
  input: Uint8Array,
  threshold = 1e-4,
): KernelPointer[] {
  const view = new DataView(output.buffer, output.byteOffset, output.byteLength);
  const hits: KernelPointer[] = [];
  for (let offset = 0; offset + 8 <= output.length; offset += 8) {
    if (view.getUint32(offset + 4, true) < KERNEL_HIGH) continue;
    const value = view.getBigUint64(offset, true);
    if (value !== ALL_ONES) hits.push({ offset, value });
  }
  if (hits.length === 0) return hits;
  const fromInput = kernelValuesIn(input);
  const leaks = hits.filter((hit) => !fromInput.has(hit.value));
  if (leaks.length === 0) return leaks;
  // Byte frequencies outside the candidate slots, with add-one smoothing.
  const inSlot = new Set(hits.map((hit) => hit.offset));
  let total = 0;
  let ones = 0;
  let high = 0;
  for (let offset = 0; offset < output.length; offset += 8) {
    if (inSlot.has(offset)) continue;
    const end = Math.min(offset + 8, output.length);
    for (let i = offset; i < end; i++) {
      total++;
      if (output[i] === 0xff) ones++;
      if (output[i] >= 0x80) high++;
    }
  }
  const pOnes = (ones + 1) / (total + 256);
  const pHigh = (high + 128) / (total + 256);
  const slots = Math.floor(output.length / 8);
  const lambda = slots * pOnes * pOnes * pHigh;
  return poissonTail(lambda, leaks.length) < threshold ? leaks : [];
}
