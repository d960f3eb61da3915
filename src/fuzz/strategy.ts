/**
 * The fuzzer's strategies: each turns the generator, the corpus and the
 * control codes into one test case (a code, input bytes and an output size).
 *
 * - `random`: random bytes of random (mostly small) length, random output sizes;
 * - `bitflip`: deterministic walks over the corpus (every byte inverted, interesting
 *   values, every bit, pointer-like slots), then stacked random mutations ("havoc");
 * - `lengths`: corpus inputs resized to boundary lengths (0, 1, powers of two ± 1,
 *   page-crossing 4095/4096/4097, up to 16 MiB + 1) with boundary output sizes;
 * - `neither-pointers`: pointer-like values (NULL, -1, 0xFFFF8000_00000000, small
 *   integers ...) in 8-byte-aligned slots, aimed at METHOD_NEITHER codes first;
 * - `fields`: structure-aware: exact lengths (every length 0..64, the sizes of
 *   requests the driver accepted, powers of two ± 3), and integer fields at
 *   aligned offsets set to boundaries, the request's own lengths ± 1, small
 *   counts and offsets, or values of the {@linkcode Dictionary} (words of the
 *   driver's outputs, and comparison operands when coverage is on).
 *
 * @module
 */
import type { Corpus } from "./corpus.ts";
import {
  boundaryLength,
  havoc,
  INTERESTING_32,
  resize,
  writePointers,
  writeValue,
} from "./mutate.ts";
import type { Prng } from "./prng.ts";

/**
 * The strategy names, in the order `--strategy` lists them.
 *
 * @example
 * ```ts
 * import { STRATEGIES } from "./strategy.ts";
 * STRATEGIES.join(","); // "random,bitflip,lengths,neither-pointers,fields"
 * ```
 */
export const STRATEGIES: readonly ["random", "bitflip", "lengths", "neither-pointers", "fields"] = [
  "random",
  "bitflip",
  "lengths",
  "neither-pointers",
  "fields",
];

/** Values kept at most per kind in a {@linkcode Dictionary}. */
const DICTIONARY_LIMIT = 256;

/**
 * What the driver told the fuzzer: request sizes it accepted, and 32- and
 * 64-bit values worth writing into inputs (words of its outputs, and
 * comparison operands from coverage). Each list keeps its first 256 values.
 *
 * @example
 * ```ts
 * import { Dictionary } from "./strategy.ts";
 *
 * const dictionary = new Dictionary();
 * dictionary.addWords(new Uint8Array([0x4b, 0x51, 0x53, 0x54]));
 * dictionary.values; // [0x5453514bn]
 * ```
 */
export class Dictionary {
  readonly #values: bigint[] = [];
  readonly #valueSet = new Set<bigint>();
  readonly #sizes: number[] = [];

  /** The values, in the order they were added. */
  get values(): readonly bigint[] {
    return this.#values;
  }

  /** Input and output sizes of accepted requests. */
  get sizes(): readonly number[] {
    return this.#sizes;
  }

  /** Adds a value (no zero, no duplicate, up to the limit). */
  add(value: bigint): void {
    if (value === 0n || this.#valueSet.has(value) || this.#values.length >= DICTIONARY_LIMIT) {
      return;
    }
    this.#valueSet.add(value);
    this.#values.push(value);
  }

  /** Adds the aligned 32-bit words of `data` (the first 64 bytes), and its 64-bit words above 2^32. */
  addWords(data: Uint8Array): void {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const end = Math.min(data.length, 64);
    for (let i = 0; i + 4 <= end; i += 4) this.add(BigInt(view.getUint32(i, true)));
    for (let i = 0; i + 8 <= end; i += 8) {
      const word = view.getBigUint64(i, true);
      if (word > 0xffff_ffffn) this.add(word);
    }
  }

  /** Adds the input and output size of a request the driver accepted. */
  addSize(input: number, output: number): void {
    for (const size of [input, output]) {
      if (this.#sizes.length < DICTIONARY_LIMIT && !this.#sizes.includes(size)) {
        this.#sizes.push(size);
      }
    }
  }
}

/**
 * A strategy name.
 *
 * @example
 * ```ts
 * import type { StrategyName } from "./strategy.ts";
 * const strategy: StrategyName = "lengths";
 * ```
 */
export type StrategyName = typeof STRATEGIES[number];

/**
 * One test case: what one IOCTL sends.
 *
 * @example
 * ```ts
 * import type { FuzzCase } from "./strategy.ts";
 * const c: FuzzCase = { code: 0x80222004, input: new Uint8Array(2), outputSize: 2, strategy: "random" };
 * ```
 */
export interface FuzzCase {
  /** The control code. */
  readonly code: number;
  /** The input bytes. */
  readonly input: Uint8Array;
  /** The output buffer size. */
  readonly outputSize: number;
  /** The strategy that made it. */
  readonly strategy: StrategyName;
}

/**
 * What a strategy draws from.
 *
 * @example
 * ```ts
 * import { Corpus } from "./corpus.ts";
 * import { Prng } from "./prng.ts";
 * import type { StrategyContext } from "./strategy.ts";
 *
 * const codes = [0x80222004];
 * const context: StrategyContext = { prng: new Prng(1), corpus: new Corpus(codes), codes, maxLength: 4096 };
 * ```
 */
export interface StrategyContext {
  /** The run's generator. */
  readonly prng: Prng;
  /** The run's corpus. */
  readonly corpus: Corpus;
  /** The control codes to send (not empty). */
  readonly codes: readonly number[];
  /** The largest input or output size, in bytes. */
  readonly maxLength: number;
  /** What the driver told the fuzzer so far (empty when omitted). */
  readonly dictionary?: Dictionary;
}

/**
 * Parses a `--strategy` list ("random,bitflip" ...; "all" for every one).
 * Returns the names, or the first unknown name as `{ unknown }`.
 *
 * @example
 * ```ts
 * import { parseStrategies } from "./strategy.ts";
 * parseStrategies("bitflip,lengths"); // ["bitflip", "lengths"]
 * parseStrategies("nope"); // { unknown: "nope" }
 * ```
 */
export function parseStrategies(text: string): StrategyName[] | { unknown: string } {
  const names = text.split(",").map((name) => name.trim().toLowerCase()).filter((name) => name);
  if (names.length === 1 && names[0] === "all") return [...STRATEGIES];
  const out: StrategyName[] = [];
  for (const name of names) {
    if (!(STRATEGIES as readonly string[]).includes(name)) return { unknown: name };
    if (!out.includes(name as StrategyName)) out.push(name as StrategyName);
  }
  return out.length === 0 ? { unknown: text } : out;
}

function clamp(length: number, max: number): number {
  return Math.max(0, Math.min(length, max));
}

function randomCase(context: StrategyContext): FuzzCase {
  const { prng, corpus, codes, maxLength } = context;
  const code = prng.pick(codes);
  const roll = prng.int(100);
  const length = clamp(
    roll < 50
      ? prng.int(65)
      : roll < 80
      ? prng.int(513)
      : roll < 95
      ? prng.int(4097)
      : boundaryLength(prng, maxLength),
    maxLength,
  );
  let input: Uint8Array;
  const kind = prng.int(100);
  if (kind < 60) {
    input = prng.bytes(length);
  } else if (kind < 80) {
    // Zeros with a few interesting 32-bit values at aligned offsets (written in place).
    const words = new Uint8Array(length);
    const view = new DataView(words.buffer);
    const writes = Math.min(64, Math.ceil(length / 16));
    for (let i = 0; i < writes && length >= 4; i++) {
      view.setUint32(prng.int(Math.floor(length / 4)) * 4, prng.pick(INTERESTING_32) >>> 0, true);
    }
    input = words;
  } else {
    const base = corpus.pick(prng).data;
    input = resize(base, length, 0);
    if (length > base.length) input.set(prng.bytes(length - base.length), base.length);
  }
  const out = prng.int(100);
  const outputSize = clamp(
    out < 40 ? boundaryLength(prng, Math.min(maxLength, 8193)) : out < 80 ? prng.int(4097) : length,
    maxLength,
  );
  return { code, input, outputSize, strategy: "random" };
}

function bitflipCase(context: StrategyContext): FuzzCase {
  const { prng, corpus, codes, maxLength } = context;
  if (corpus.pendingWalks > 0 && prng.chance(0.75)) {
    const walk = corpus.nextWalk();
    if (walk !== undefined) {
      return {
        code: walk.code,
        input: walk.input,
        outputSize: clamp(walk.entry.outputSize, maxLength),
        strategy: "bitflip",
      };
    }
  }
  const entry = corpus.pick(prng);
  let input: Uint8Array = entry.data;
  const rounds = 1 << prng.int(3);
  for (let i = 0; i < rounds; i++) input = havoc(prng, input);
  if (input.length > maxLength) input = input.subarray(0, maxLength);
  const outputSize = prng.chance(0.8) ? entry.outputSize : boundaryLength(prng, maxLength);
  return {
    code: prng.pick(codes),
    input,
    outputSize: clamp(outputSize, maxLength),
    strategy: "bitflip",
  };
}

function lengthsCase(context: StrategyContext): FuzzCase {
  const { prng, corpus, codes, maxLength } = context;
  const code = prng.pick(codes);
  const entry = corpus.pick(prng);
  const length = clamp(
    prng.chance(0.15) && entry.data.length > 0
      ? entry.data.length + prng.pick([-1, 1, 7, 8])
      : boundaryLength(prng, maxLength),
    maxLength,
  );
  const input = resize(entry.data, length, prng.pick([0, "repeat", 0xff, 0x41] as const));
  const roll = prng.int(100);
  const outputSize = clamp(
    roll < 50 ? boundaryLength(prng, maxLength) : roll < 75 ? length : entry.outputSize,
    maxLength,
  );
  return { code, input, outputSize, strategy: "lengths" };
}

function neitherCase(context: StrategyContext): FuzzCase {
  const { prng, corpus, codes, maxLength } = context;
  const neither = codes.filter((code) => (code & 3) === 3);
  const code = neither.length > 0 && prng.chance(0.75) ? prng.pick(neither) : prng.pick(codes);
  const base = prng.chance(0.5) ? corpus.pick(prng).data : new Uint8Array(8 * prng.range(1, 8));
  let input: Uint8Array = writePointers(prng, base.subarray(0, 4096), prng.range(1, 3));
  if (input.length > maxLength) input = input.subarray(0, maxLength);
  const outputSize = prng.chance(0.5)
    ? prng.pick([0, 8, 16, 64, 4096])
    : boundaryLength(prng, Math.min(maxLength, 65537));
  return { code, input, outputSize: clamp(outputSize, maxLength), strategy: "neither-pointers" };
}

/**
 * A length for the `fields` strategy: an exact small length (0..64) 40% of
 * the time, a size the driver accepted 30% (when there is one), else a power
 * of two up to 4096 plus or minus up to 3.
 *
 * @example
 * ```ts
 * import { Prng } from "./prng.ts";
 * import { exactLength } from "./strategy.ts";
 *
 * exactLength(new Prng(1), [12], 4096) <= 4096; // true
 * ```
 */
export function exactLength(prng: Prng, sizes: readonly number[], max: number): number {
  const roll = prng.int(100);
  if (roll < 40) return clamp(prng.int(65), max);
  if (roll < 70 && sizes.length > 0) return clamp(prng.pick(sizes), max);
  return clamp((1 << prng.int(13)) + prng.range(-3, 3), max);
}

function fieldsCase(context: StrategyContext): FuzzCase {
  const { prng, corpus, codes, maxLength } = context;
  const sizes = context.dictionary?.sizes ?? [];
  const values = context.dictionary?.values ?? [];
  const code = prng.pick(codes);
  const entry = corpus.pick(prng);
  const length = exactLength(prng, sizes, maxLength);
  const roll = prng.int(100);
  const outputSize = roll < 50
    ? exactLength(prng, sizes, maxLength)
    : roll < 75
    ? length
    : clamp(entry.outputSize, maxLength);
  let input: Uint8Array = resize(entry.data, length, 0);
  const writes = prng.range(1, 3);
  for (let i = 0; i < writes && length >= 4; i++) {
    const wide = length >= 8 && prng.chance(0.25);
    const size = wide ? 8 : 4;
    const offset = prng.int(Math.floor(length / size)) * size;
    const kind = prng.int(100);
    let value: bigint;
    if (kind < 30 && values.length > 0) value = prng.pick(values);
    else if (kind < 50) value = BigInt(prng.pick([length, outputSize]) + prng.range(-1, 1));
    else if (kind < 65) value = BigInt(prng.int(17)); // a count
    else if (kind < 75) value = BigInt(prng.int(Math.max(1, length)) & ~3); // an offset
    else value = BigInt(prng.pick(INTERESTING_32) >>> 0);
    input = writeValue(input, offset, size, BigInt.asUintN(size * 8, value));
  }
  return { code, input, outputSize, strategy: "fields" };
}

/**
 * One test case from `strategy`.
 *
 * @example
 * ```ts
 * import { Corpus } from "./corpus.ts";
 * import { Prng } from "./prng.ts";
 * import { generateCase } from "./strategy.ts";
 *
 * const codes = [0x80222004];
 * const c = generateCase("lengths", { prng: new Prng(9), corpus: new Corpus(codes), codes, maxLength: 4097 });
 * c.input.length <= 4097; // true
 * ```
 */
export function generateCase(strategy: StrategyName, context: StrategyContext): FuzzCase {
  switch (strategy) {
    case "random":
      return randomCase(context);
    case "bitflip":
      return bitflipCase(context);
    case "lengths":
      return lengthsCase(context);
    case "neither-pointers":
      return neitherCase(context);
    case "fields":
      return fieldsCase(context);
  }
}
