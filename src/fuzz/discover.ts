/**
 * Which control codes a driver accepts: parsing of `--codes` (a list, a
 * range, or `discover`) and discovery by brute force: every function of the
 * given device types with each of the four methods, access `ANY` first and
 * then the other accesses, within a budget of probes.
 *
 * What "unknown code" looks like is learnt from the driver itself (a
 * differential baseline): codes that cannot exist ({@linkcode BASELINE_CODES},
 * device type 0) are sent with each of the {@linkcode PROBE_SIZES} first, and
 * a candidate is accepted only when, for some size pair, it answers unlike
 * all of them. A driver that checks lengths before it looks at the code (and
 * answers `STATUS_INVALID_PARAMETER` to every empty request) is thereby
 * scanned right. A request that pends (and is then cancelled), hangs or kills
 * the driver always counts as accepted.
 *
 * @module
 */
import { ctlCode } from "../core/ctl_code.ts";
import { parseUnsigned } from "../core/numbers.ts";
import { hex32 } from "../core/hex.ts";

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
  /** Probes at most (default {@linkcode DEFAULT_DISCOVER_BUDGET}); codes past it are not probed. */
  readonly budget?: number;
  /** Called every 256 candidates and at the end. */
  readonly onProgress?: (probed: number, total: number, accepted: number) => void;
}

/**
 * The input and output sizes each candidate is probed with, in order, until
 * it answers unlike the baseline: empty, then 64 and 1024 bytes (past the
 * minimum lengths most drivers check before they look at the code).
 *
 * @example
 * ```ts
 * import { PROBE_SIZES } from "./discover.ts";
 * PROBE_SIZES[0]; // { input: 0, output: 0 }
 * ```
 */
export const PROBE_SIZES: readonly { readonly input: number; readonly output: number }[] = [
  { input: 0, output: 0 },
  { input: 64, output: 64 },
  { input: 1024, output: 1024 },
];

/**
 * Codes that cannot exist, whose answers are the baseline of "unknown code":
 * device type 0 (no device has it), functions spread over the whole range,
 * every method.
 *
 * @example
 * ```ts
 * import { BASELINE_CODES } from "./discover.ts";
 * BASELINE_CODES.length; // 6
 * ```
 */
export const BASELINE_CODES: readonly number[] = [0x3a5, 0x5c3, 0x7e1, 0xa5a, 0xc3c, 0xe1e].map(
  (fn, i) => ctlCode({ deviceType: 0, function: fn, method: i % 4, access: 0 }),
);

/**
 * Share of the candidates past which discovery warns that the driver seems
 * to accept everything (its answers do not tell codes apart).
 *
 * @example
 * ```ts
 * import { ACCEPT_WARNING_SHARE } from "./discover.ts";
 * ACCEPT_WARNING_SHARE; // 0.25
 * ```
 */
export const ACCEPT_WARNING_SHARE = 0.25;

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
 * Probes discovery sends at most unless told otherwise: enough for two device
 * types' vendor functions (2 x 32,768 codes) with every size pair.
 *
 * @example
 * ```ts
 * import { DEFAULT_DISCOVER_BUDGET } from "./discover.ts";
 * DEFAULT_DISCOVER_BUDGET; // 262144
 * ```
 */
export const DEFAULT_DISCOVER_BUDGET = 0x4_0000;

/**
 * The result of {@linkcode discoverCodes}.
 *
 * @example
 * ```ts
 * import type { DiscoverResult } from "./discover.ts";
 * const r: DiscoverResult = {
 *   codes: [0x80222000], statuses: { "0x80222000": "OK" }, probes: 8192, truncated: false,
 *   baseline: { "0/0": ["STATUS_INVALID_DEVICE_REQUEST"] },
 * };
 * ```
 */
export interface DiscoverResult {
  /** The accepted codes, ascending. */
  readonly codes: number[];
  /** How each accepted code answered unlike the baseline (hex code → `in/out status`). */
  readonly statuses: Record<string, string>;
  /** Probes sent, the baseline's included. */
  readonly probes: number;
  /** Whether the budget ran out before every code was probed. */
  readonly truncated: boolean;
  /** The answers of codes that cannot exist, per size pair (`in/out` → answers). */
  readonly baseline: Record<string, string[]>;
  /** Set when a large share of the candidates was accepted (see {@linkcode ACCEPT_WARNING_SHARE}). */
  readonly warning?: string;
}

/**
 * The answer to one probe: a signature that tells answers apart (the status,
 * and the bytes returned of a success), and whether it always counts as
 * accepted (pended, hung, crashed).
 *
 * @example
 * ```ts
 * import type { ProbeAnswer } from "./discover.ts";
 * const answer: ProbeAnswer = { signature: "PENDED", always: true };
 * ```
 */
export interface ProbeAnswer {
  /** The answer, e.g. `STATUS_INVALID_PARAMETER` or `OK 16`. */
  readonly signature: string;
  /** Whether it reached a handler whatever the baseline says. */
  readonly always: boolean;
}

/** A probe: sends `code` with an input of `input` zero bytes and an output of `output` bytes. */
export type Probe = (code: number, input: number, output: number) => Promise<ProbeAnswer>;

/**
 * Learns the baseline, then probes each of `candidates` (at most `budget`
 * probes in all) and returns the accepted ones (see the module's description).
 *
 * @example
 * ```ts
 * import { discoverCodes } from "./discover.ts";
 *
 * // A driver that rejects empty requests before its switch, and knows two codes.
 * const known = new Set([0x80222000, 0x80222004]);
 * const probe = (code: number, input: number) =>
 *   Promise.resolve({
 *     signature: input === 0 ? "STATUS_INVALID_PARAMETER" : known.has(code) ? "OK 0" : "STATUS_INVALID_DEVICE_REQUEST",
 *     always: false,
 *   });
 * const result = await discoverCodes(probe, [0x80222000, 0x80222004, 0x80222008]);
 * result.codes; // [0x80222000, 0x80222004]
 * ```
 */
export async function discoverCodes(
  probe: Probe,
  candidates: Iterable<number>,
  options: {
    readonly total?: number;
    readonly budget?: number;
    readonly onProgress?: (probed: number, total: number, accepted: number) => void;
  } = {},
): Promise<DiscoverResult> {
  const budget = options.budget ?? DEFAULT_DISCOVER_BUDGET;
  const pairs = PROBE_SIZES.map((pair) => ({ ...pair, label: `${pair.input}/${pair.output}` }));
  const baseline = new Map<string, Set<string>>();
  let probes = 0;
  for (const pair of pairs) {
    const answers = new Set<string>();
    for (const code of BASELINE_CODES) {
      probes++;
      answers.add((await probe(code, pair.input, pair.output)).signature);
    }
    baseline.set(pair.label, answers);
  }
  const accepted: number[] = [];
  const statuses: Record<string, string> = {};
  let candidatesSeen = 0;
  let truncated = false;
  const total = options.total ?? NaN;
  for (const code of candidates) {
    if (probes >= budget) {
      truncated = true;
      break;
    }
    candidatesSeen++;
    for (const pair of pairs) {
      if (probes >= budget) break;
      probes++;
      const answer = await probe(code, pair.input, pair.output);
      if (answer.always || !baseline.get(pair.label)!.has(answer.signature)) {
        accepted.push(code);
        statuses[hex32(code)] = `${pair.label} ${answer.signature}`;
        break;
      }
    }
    if (candidatesSeen % 256 === 0) options.onProgress?.(candidatesSeen, total, accepted.length);
  }
  options.onProgress?.(candidatesSeen, total, accepted.length);
  accepted.sort((a, b) => a - b);
  const share = accepted.length / Math.max(1, candidatesSeen);
  const warning = accepted.length > 16 && share > ACCEPT_WARNING_SHARE
    ? `${accepted.length} of ${candidatesSeen} codes (${Math.round(share * 100)}%) answer ` +
      "unlike codes that cannot exist: the driver's answers may not tell its codes apart; " +
      "give the codes with --codes"
    : undefined;
  return {
    codes: accepted,
    statuses,
    probes,
    truncated,
    baseline: Object.fromEntries([...baseline].map(([label, set]) => [label, [...set].sort()])),
    ...(warning !== undefined ? { warning } : {}),
  };
}

/**
 * A code list summarized for people: runs of consecutive codes as
 * `first-last (n)`, at most `limit` items and a count of the rest.
 *
 * @example
 * ```ts
 * import { summarizeCodes } from "./discover.ts";
 * summarizeCodes([0x80222000, 0x80222001, 0x80222002, 0x80222010]);
 * // "0x80222000-0x80222002 (3), 0x80222010"
 * ```
 */
export function summarizeCodes(codes: readonly number[], limit = 12): string {
  const sorted = [...codes].sort((a, b) => a - b);
  const runs: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    runs.push(
      j === i ? hex32(sorted[i]) : `${hex32(sorted[i])}-${hex32(sorted[j])} (${j - i + 1})`,
    );
    i = j + 1;
  }
  if (runs.length <= limit) return runs.join(", ");
  return `${runs.slice(0, limit).join(", ")}, and ${runs.length - limit} more runs`;
}
