/**
 * Hexadecimal text for bytes and 32-bit values, as the CLI, the fuzzer's
 * reproducers and the error messages write them.
 *
 * @module
 */

/**
 * Bytes as lower-case hex, pairs joined by `separator` (none by default).
 *
 * @example
 * ```ts
 * import { toHex } from "./hex.ts";
 * toHex(new Uint8Array([0x4b, 0x42, 0xff])); // "4b42ff"
 * toHex(new Uint8Array([0x68, 0x69]), " "); // "68 69"
 * ```
 */
export function toHex(data: Uint8Array, separator: string = ""): string {
  const digits = new Array<string>(data.length);
  for (let i = 0; i < data.length; i++) digits[i] = data[i].toString(16).padStart(2, "0");
  return digits.join(separator);
}

/**
 * The inverse of {@linkcode toHex} without separators; `undefined` for text
 * that is no even run of hex digits.
 *
 * @example
 * ```ts
 * import { fromHex } from "./hex.ts";
 * fromHex("4b42ff"); // Uint8Array [0x4b, 0x42, 0xff]
 * ```
 */
export function fromHex(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (text.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(text)) return undefined;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * A 32-bit value (control code, NTSTATUS) as `0x` and 8 upper-case hex digits.
 *
 * @example
 * ```ts
 * import { hex32 } from "./hex.ts";
 * hex32(0x80222004); // "0x80222004"
 * hex32(-1073741789); // "0xC0000023"
 * ```
 */
export function hex32(value: number): string {
  return `0x${(value >>> 0).toString(16).toUpperCase().padStart(8, "0")}`;
}
