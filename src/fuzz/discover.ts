/**
 * Which control codes a driver accepts: parsing of `--codes` (a list, a
 * range, or `discover`) and discovery by brute force, the way IOCTL
 * brute-forcers do it: every function of the given device types with each of
 * the four methods, access `ANY` first and then the other accesses, within a
 * budget of probes. A code is accepted unless the driver answers
 * `STATUS_INVALID_DEVICE_REQUEST` / `ERROR_INVALID_FUNCTION` (or
 * `STATUS_NOT_IMPLEMENTED`); a request that pends (and is then cancelled) or
 * kills the driver counts as accepted.
 *
 * @module
 */
import { ctlCode } from "../core/ctl_code.ts";
import type { CallOutcome } from "./target.ts";
import { parseUnsigned } from "../core/numbers.ts";
import { hex32 } from "../core/hex.ts";

const STATUS_NOT_IMPLEMENTED = 0xc000_0002;
const STATUS_INVALID_DEVICE_REQUEST = 0xc000_0010;
const ERROR_INVALID_FUNCTION = 1;

/**
 * Whether `outcome` says the driver does not know the control code.
 *
 * @example
 * ```ts
 * import { isInvalidRequest } from "./discover.ts";
 * isInvalidRequest({ kind: "error", status: "STATUS_INVALID_DEVICE_REQUEST", win32: 1, ntStatus: 0xC0000010 }); // true
 * isInvalidRequest({ kind: "pended" }); // false: it reached a handler
 * ```
 */
export function isInvalidRequest(outcome: CallOutcome): boolean {
  if (outcome.kind !== "error") return false;
  if (outcome.ntStatus !== undefined) {
    return outcome.ntStatus === STATUS_INVALID_DEVICE_REQUEST ||
      outcome.ntStatus === STATUS_NOT_IMPLEMENTED;
  }
  return outcome.win32 === ERROR_INVALID_FUNCTION;
}

/**
 * What `--codes` asks for.
 *
 * @example
 * ```ts
 * import type { CodeSpec } from "./discover.ts";
 * const spec: CodeSpec = { kind: "range", first: 0x80222000, last: 0x80222010 };
 * ```
 */
export type CodeSpec =
  | { readonly kind: "discover" }
  | { readonly kind: "list"; readonly codes: readonly number[] }
  | { readonly kind: "range"; readonly first: number; readonly last: number };

/**
 * Codes a `--codes` range may span at most.
 *
 * @example
 * ```ts
 * import { MAX_RANGE } from "./discover.ts";
 * MAX_RANGE; // 65536
 * ```
 */
export const MAX_RANGE = 0x1_0000;

/**
 * Parses `first-last` (or `first..last`) of integers within `max`; a single
 * number is a range of one. Returns an error message instead when malformed.
 *
 * @example
 * ```ts
 * import { parseRange } from "./discover.ts";
 * parseRange("0x800-0xfff", 0xfff); // { first: 0x800, last: 0xfff }
 * parseRange("9-3", 0xfff); // "9-3: the first value is larger than the last"
 * ```
 */
export function parseRange(text: string, max: number): { first: number; last: number } | string {
  const parts = text.includes("..") ? text.split("..") : text.split("-");
  if (parts.length > 2) return `${text}: a range is <first>-<last>`;
  const first = parseUnsigned(parts[0], max);
  const last = parts.length === 2 ? parseUnsigned(parts[1], max) : first;
  if (first === undefined || last === undefined) {
    return `${text}: need integers in 0..0x${max.toString(16).toUpperCase()} (decimal or 0x hex)`;
  }
  if (first > last) return `${text}: the first value is larger than the last`;
  return { first, last };
}

/**
 * Parses a comma-separated list of integers within `max`, or returns an error message.
 *
 * @example
 * ```ts
 * import { parseList } from "./discover.ts";
 * parseList("0x22, 0x8022", 0xffff); // [0x22, 0x8022]
 * ```
 */
export function parseList(text: string, max: number): number[] | string {
  const out: number[] = [];
  for (const part of text.split(",")) {
    if (part.trim() === "") continue;
    const value = parseUnsigned(part, max);
    if (value === undefined) {
      return `"${part.trim()}" is no integer in 0..0x${max.toString(16).toUpperCase()}`;
    }
    if (!out.includes(value)) out.push(value);
  }
  return out.length > 0 ? out : "the list is empty";
}

/**
 * Parses `--codes`: `discover`, a list (`0x80222000,0x80222004`) or a range
 * (`0x80222000-0x80222fff`, at most {@linkcode MAX_RANGE} codes). Returns an
 * error message instead when malformed.
 *
 * @example
 * ```ts
 * import { parseCodeSpec } from "./discover.ts";
 * parseCodeSpec("discover"); // { kind: "discover" }
 * parseCodeSpec("0x80222000,0x80222004"); // { kind: "list", codes: [0x80222000, 0x80222004] }
 * ```
 */
export function parseCodeSpec(text: string): CodeSpec | string {
  const trimmed = text.trim();
  if (trimmed.toLowerCase() === "discover") return { kind: "discover" };
  if (/^[^,]+(-|\.\.)[^,]+$/.test(trimmed)) {
    const range = parseRange(trimmed, 0xffff_ffff);
    if (typeof range === "string") return range;
    if (range.last - range.first + 1 > MAX_RANGE) {
      return `${trimmed}: a range may span at most ${MAX_RANGE} codes`;
    }
    return { kind: "range", ...range };
  }
  const codes = parseList(trimmed, 0xffff_ffff);
  return typeof codes === "string" ? codes : { kind: "list", codes };
}

/**
 * The codes of a list or range spec, in order.
 *
 * @example
 * ```ts
 * import { codesOf } from "./discover.ts";
 * codesOf({ kind: "range", first: 4, last: 6 }); // [4, 5, 6]
 * ```
 */
export function codesOf(spec: Exclude<CodeSpec, { kind: "discover" }>): number[] {
  if (spec.kind === "list") return [...spec.codes];
  return Array.from({ length: spec.last - spec.first + 1 }, (_, i) => spec.first + i);
}

/**
 * What discovery probes: device types and functions.
 *
 * @example
 * ```ts
 * import type { DiscoverOptions } from "./discover.ts";
 * const options: DiscoverOptions = { deviceTypes: [0x8022], functions: { first: 0x800, last: 0xfff } };
 * ```
 */
export interface DiscoverOptions {
  /** Device types to scan (e.g. 0x22, 0x8022). */
  readonly deviceTypes: readonly number[];
  /** First and last function (default 0x800..0xFFF, the vendor range). */
  readonly functions?: { readonly first: number; readonly last: number };
  /** Probes at most (default 0x10000); codes past it are not probed. */
  readonly budget?: number;
  /** Called every 256 probes and at the end. */
  readonly onProgress?: (probed: number, total: number, accepted: number) => void;
}

/**
 * The order discovery probes codes in: access ANY for every device type,
 * function and method first, then READ, WRITE and READ_WRITE.
 *
 * @example
 * ```ts
 * import { discoveryOrder } from "./discover.ts";
 * [...discoveryOrder([0x8022], { first: 0x800, last: 0x800 })].length; // 16: 4 methods x 4 accesses
 * ```
 */
export function* discoveryOrder(
  deviceTypes: readonly number[],
  functions: { readonly first: number; readonly last: number },
): Generator<number, void, undefined> {
  for (let access = 0; access < 4; access++) {
    for (const deviceType of deviceTypes) {
      for (let fn = functions.first; fn <= functions.last; fn++) {
        for (let method = 0; method < 4; method++) {
          yield ctlCode({ deviceType, function: fn, method, access });
        }
      }
    }
  }
}

/**
 * The result of {@linkcode discoverCodes}.
 *
 * @example
 * ```ts
 * import type { DiscoverResult } from "./discover.ts";
 * const r: DiscoverResult = { codes: [0x80222000], statuses: { "0x80222000": "OK" }, probes: 8192, truncated: false };
 * ```
 */
export interface DiscoverResult {
  /** The accepted codes, ascending. */
  readonly codes: number[];
  /** The first answer to each accepted code (hex code → status). */
  readonly statuses: Record<string, string>;
  /** Probes sent. */
  readonly probes: number;
  /** Whether the budget ran out before every code was probed. */
  readonly truncated: boolean;
}

/**
 * The answer to one probe: whether the code was accepted, and the status seen.
 *
 * @example
 * ```ts
 * import type { ProbeAnswer } from "./discover.ts";
 * const answer: ProbeAnswer = { accepted: true, status: "PENDED" };
 * ```
 */
export interface ProbeAnswer {
  /** Whether the driver knows the code. */
  readonly accepted: boolean;
  /** The status it answered with. */
  readonly status: string;
}

/**
 * Probes every code of {@linkcode discoveryOrder} with `probe` (which sends
 * the code, e.g. with no input and no output, and handles crashes) and
 * returns the accepted ones.
 *
 * @example
 * ```ts
 * import { discoverCodes } from "./discover.ts";
 *
 * const known = new Set([0x80222000, 0x80222004]);
 * const result = await discoverCodes(
 *   (code) => Promise.resolve({ accepted: known.has(code), status: known.has(code) ? "OK" : "INVALID" }),
 *   { deviceTypes: [0x8022] },
 * );
 * result.codes; // [0x80222000, 0x80222004]
 * ```
 */
export async function discoverCodes(
  probe: (code: number) => Promise<ProbeAnswer>,
  options: DiscoverOptions,
): Promise<DiscoverResult> {
  const functions = options.functions ?? { first: 0x800, last: 0xfff };
  const total = options.deviceTypes.length * (functions.last - functions.first + 1) * 16;
  const budget = options.budget ?? 0x1_0000;
  const accepted: number[] = [];
  const statuses: Record<string, string> = {};
  let probes = 0;
  for (const code of discoveryOrder(options.deviceTypes, functions)) {
    if (probes >= budget) break;
    probes++;
    const answer = await probe(code);
    if (answer.accepted) {
      accepted.push(code);
      statuses[hex32(code)] = answer.status;
    }
    if (probes % 256 === 0) options.onProgress?.(probes, Math.min(total, budget), accepted.length);
  }
  options.onProgress?.(probes, Math.min(total, budget), accepted.length);
  accepted.sort((a, b) => a - b);
  return { codes: accepted, statuses, probes, truncated: probes < total };
}
