/**
 * Shared helpers of the CLI commands: usage errors and number parsing.
 *
 * @module
 */
import { parseUnsigned } from "../core/numbers.ts";

/**
 * A mistake in the command line; the CLI prints it on one line and exits with 2.
 *
 * @example
 * ```ts
 * import { UsageError } from "./usage.ts";
 * const error = new UsageError('unknown command "frob"'); // the CLI exits with 2
 * ```
 */
export class UsageError extends Error {
  override name: string = "UsageError";
}

/**
 * Parses a non-negative integer given in decimal or `0x` hexadecimal, within `max`.
 *
 * @example
 * ```ts
 * import { parseInteger } from "./usage.ts";
 * parseInteger("0x800", "--function", 0xfff); // 2048
 * ```
 */
export function parseInteger(text: string | undefined, what: string, max: number): number {
  if (text === undefined) throw new UsageError(`${what} is required`);
  const value = parseUnsigned(text, max);
  if (value === undefined) {
    throw new UsageError(
      `${what} must be an integer in 0..0x${max.toString(16).toUpperCase()}, got "${text}"`,
    );
  }
  return value;
}
