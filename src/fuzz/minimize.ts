/**
 * Minimization of a failing request: shrink its input (and output size) and
 * lower its integer fields while it still fails, within a bounded number of
 * attempts — each attempt that reproduces a crash costs a driver restart.
 *
 * @module
 */

/**
 * A request to minimize: input bytes and output size.
 *
 * @example
 * ```ts
 * import type { MinimizeCase } from "./minimize.ts";
 * const c: MinimizeCase = { input: new Uint8Array([0x4b, 0x42, 0xff, 1]), outputSize: 64 };
 * ```
 */
export interface MinimizeCase {
  /** The input bytes. */
  readonly input: Uint8Array;
  /** The output buffer size. */
  readonly outputSize: number;
}

/**
 * The outcome of {@linkcode minimize}.
 *
 * @example
 * ```ts
 * import type { MinimizeResult } from "./minimize.ts";
 * const r: MinimizeResult = { input: new Uint8Array(3), outputSize: 0, attempts: 9, reproduced: true };
 * ```
 */
export interface MinimizeResult extends MinimizeCase {
  /** Attempts made (calls of the predicate). */
  readonly attempts: number;
  /** Whether the original request failed again; when not, nothing was minimized. */
  readonly reproduced: boolean;
}

/**
 * How {@linkcode minimize} works.
 *
 * @example
 * ```ts
 * import type { MinimizeOptions } from "./minimize.ts";
 * const options: MinimizeOptions = { maxAttempts: 16, assumeFailing: true };
 * ```
 */
export interface MinimizeOptions {
  /** Attempts at most, including the first check of the original (default 48). */
  maxAttempts?: number;
  /** Skip the first check of the original (when the caller just saw it fail). */
  assumeFailing?: boolean;
}

function nonZero(data: Uint8Array): number {
  let count = 0;
  for (const byte of data) if (byte !== 0) count++;
  return count;
}

/**
 * Whether `a` is smaller than `b`: shorter input, then fewer non-zero input
 * bytes, then a smaller output size, then smaller 32-bit little-endian words
 * (their sum).
 *
 * @example
 * ```ts
 * import { smaller } from "./minimize.ts";
 * smaller({ input: new Uint8Array(2), outputSize: 0 }, { input: new Uint8Array(3), outputSize: 0 }); // true
 * ```
 */
export function smaller(a: MinimizeCase, b: MinimizeCase): boolean {
  if (a.input.length !== b.input.length) return a.input.length < b.input.length;
  const za = nonZero(a.input);
  const zb = nonZero(b.input);
  if (za !== zb) return za < zb;
  if (a.outputSize !== b.outputSize) return a.outputSize < b.outputSize;
  return wordSum(a.input) < wordSum(b.input);
}

function wordSum(data: Uint8Array): number {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let sum = 0;
  for (let i = 0; i + 4 <= data.length; i += 4) sum += view.getUint32(i, true);
  return sum;
}

/** Aligned 32-bit words the integer step lowers at most. */
const LOWERED_WORDS = 32;

/**
 * Shrinks `start` while `stillFails` says the request still fails:
 * output size 0, the shortest failing prefix (binary search), the lowest
 * failing value of each aligned 32-bit word (a length field of 255 that
 * needs to be only 5 becomes 5) and the shortest prefix again (the bytes such
 * a field asked for may now be too many), removal of chunks (halves,
 * quarters ... single bytes), zeroing of chunks, then the smallest failing
 * output size (binary search). Every
 * step keeps the smaller request only when it still fails; the result is
 * never larger than `start`. Deterministic, and bounded by `maxAttempts`.
 *
 * @example
 * ```ts
 * import { minimize } from "./minimize.ts";
 *
 * // Fails when the input starts with "KB" + 0xFF and is at least 16 bytes long.
 * const fails = (c: { input: Uint8Array }) =>
 *   Promise.resolve(c.input.length >= 16 && c.input[0] === 0x4b && c.input[1] === 0x42 && c.input[2] === 0xff);
 * const start = { input: new Uint8Array(64).fill(7).fill(0x4b, 0, 1).fill(0x42, 1, 2).fill(0xff, 2, 3), outputSize: 64 };
 * const result = await minimize(start, fails);
 * result.input.length; // 16
 * ```
 */
export async function minimize(
  start: MinimizeCase,
  stillFails: (candidate: MinimizeCase) => Promise<boolean>,
  options: MinimizeOptions = {},
): Promise<MinimizeResult> {
  const maxAttempts = options.maxAttempts ?? 48;
  let attempts = 0;
  const tried = new Set<string>();
  let best: MinimizeCase = { input: new Uint8Array(start.input), outputSize: start.outputSize };

  const budgetLeft = () => attempts < maxAttempts;
  /** Tries `candidate`; keeps it when it is smaller and still fails. */
  const attempt = async (candidate: MinimizeCase): Promise<boolean> => {
    if (!budgetLeft() || !smaller(candidate, best)) return false;
    const key = `${candidate.outputSize}:${Array.from(candidate.input).join(",")}`;
    if (tried.has(key)) return false;
    tried.add(key);
    attempts++;
    if (!(await stillFails(candidate))) return false;
    best = candidate;
    return true;
  };

  if (!options.assumeFailing) {
    attempts++;
    if (!(await stillFails(best))) {
      return { ...best, attempts, reproduced: false };
    }
  }

  // 1. No output buffer.
  if (best.outputSize > 0) await attempt({ input: best.input, outputSize: 0 });

  // 2. The shortest failing prefix.
  const shortestPrefix = async () => {
    let low = 0;
    let high = best.input.length;
    while (low < high && budgetLeft()) {
      const middle = Math.floor((low + high) / 2);
      const prefix = { input: best.input.subarray(0, middle).slice(), outputSize: best.outputSize };
      if (await attempt(prefix)) high = middle;
      else low = middle + 1;
    }
  };
  await shortestPrefix();

  // 3. Integer fields as low as they still fail (0 at once when that fails, else halved
  //    while the request fails, then a binary search); after a lowered one the prefix
  //    again: the bytes a length field asked for may now be too many. A magic number
  //    stops at the first halving.
  for (let offset = 0; offset + 4 <= best.input.length && offset < 4 * LOWERED_WORDS; offset += 4) {
    const withWord = (value: number) => {
      const input = new Uint8Array(best.input);
      new DataView(input.buffer).setUint32(offset, value, true);
      return { input, outputSize: best.outputSize };
    };
    const view = new DataView(best.input.buffer, best.input.byteOffset, best.input.byteLength);
    let high = view.getUint32(offset, true);
    let low = 0;
    // A word that does not matter goes to 0 at once.
    if (high > 0 && (await attempt(withWord(0)))) continue;
    while (high > 0 && budgetLeft()) {
      const half = high >>> 1;
      if (await attempt(withWord(half))) {
        high = half;
      } else {
        low = half + 1;
        break;
      }
    }
    while (low < high && budgetLeft()) {
      const middle = Math.floor((low + high) / 2);
      if (await attempt(withWord(middle))) high = middle;
      else low = middle + 1;
    }
    if (high < view.getUint32(offset, true)) await shortestPrefix();
  }

  // 4. Chunk removal, halves down to single bytes.
  for (
    let chunk = highestPowerOfTwo(best.input.length / 2);
    chunk >= 1 && budgetLeft();
    chunk >>= 1
  ) {
    for (let offset = 0; offset < best.input.length && budgetLeft();) {
      const input = new Uint8Array(best.input.length - Math.min(chunk, best.input.length - offset));
      input.set(best.input.subarray(0, offset));
      input.set(best.input.subarray(offset + chunk), offset);
      if (!(await attempt({ input, outputSize: best.outputSize }))) offset += chunk;
    }
  }

  // 5. Zeroing, halves down to single bytes.
  for (
    let chunk = highestPowerOfTwo(best.input.length / 2);
    chunk >= 1 && budgetLeft();
    chunk >>= 1
  ) {
    for (let offset = 0; offset < best.input.length && budgetLeft(); offset += chunk) {
      const part = best.input.subarray(offset, offset + chunk);
      if (nonZero(part) === 0) continue;
      const input = new Uint8Array(best.input);
      input.fill(0, offset, offset + chunk);
      await attempt({ input, outputSize: best.outputSize });
    }
  }

  // 6. The smallest failing output size (an over-read by the output length crashes only
  //    past the end of what it reads: the boundary is the finding).
  let low = 1;
  let high = best.outputSize;
  while (low < high && budgetLeft()) {
    const middle = Math.floor((low + high) / 2);
    if (await attempt({ input: best.input, outputSize: middle })) high = middle;
    else low = middle + 1;
  }

  return { ...best, attempts, reproduced: true };
}

function highestPowerOfTwo(value: number): number {
  let power = 1;
  while (power * 2 <= value) power *= 2;
  return value < 1 ? 0 : power;
}

/**
 * Shortens the requests sent before a state-dependent failure: removes
 * chunks of steps (halves, quarters ... single steps, the oldest first),
 * keeping each removal after which `stillFails` says the failure still
 * happens; the order of the rest is kept. Every removal that keeps the
 * failure costs a reproduced crash (a restart), so big chunks go first: one
 * step that matters among 8 takes 3 to 6 attempts. Never tries no steps at all
 * (the caller knows the request alone passes). At most `maxAttempts` calls
 * of `stillFails` (default: twice the steps).
 *
 * @example
 * ```ts
 * import { shortenSequence } from "./minimize.ts";
 *
 * // Fails when "select" came before, whatever else did.
 * const fails = (steps: readonly string[]) => Promise.resolve(steps.includes("select"));
 * const { steps } = await shortenSequence(["query", "select", "query", "write"], fails);
 * steps; // ["select"]
 * ```
 */
export async function shortenSequence<T>(
  steps: readonly T[],
  stillFails: (steps: readonly T[]) => Promise<boolean>,
  maxAttempts: number = 2 * steps.length,
): Promise<{ steps: T[]; attempts: number }> {
  let kept = [...steps];
  let attempts = 0;
  for (
    let chunk = highestPowerOfTwo(kept.length / 2);
    chunk >= 1 && attempts < maxAttempts;
    chunk >>= 1
  ) {
    for (let offset = 0; offset < kept.length && attempts < maxAttempts;) {
      const candidate = [...kept.slice(0, offset), ...kept.slice(offset + chunk)];
      if (candidate.length === 0) break;
      attempts++;
      if (await stillFails(candidate)) kept = candidate;
      else offset += chunk;
    }
  }
  return { steps: kept, attempts };
}
