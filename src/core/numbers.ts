/**
 * Reading unsigned integers written in decimal or `0x` hexadecimal, as users
 * type control codes, sizes and seeds.
 *
 * @module
 */

/**
 * The value of `text` (decimal, or hexadecimal with `0x`; spaces around are
 * ignored), or `undefined` when it is not an integer in `0..max`.
 *
 * @example
 * ```ts
 * import { parseUnsigned } from "./numbers.ts";
 * parseUnsigned("0x800"); // 2048
 * parseUnsigned("70000", 0xffff); // undefined
 * ```
 */
export function parseUnsigned(
  text: string,
  max: number = Number.MAX_SAFE_INTEGER,
): number | undefined {
  const trimmed = text.trim();
  const value = /^0x[0-9a-f]+$/i.test(trimmed)
    ? parseInt(trimmed.slice(2), 16)
    : /^[0-9]+$/.test(trimmed)
    ? Number(trimmed)
    : NaN;
  return Number.isSafeInteger(value) && value <= max ? value : undefined;
}
