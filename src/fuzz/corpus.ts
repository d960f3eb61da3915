/**
 * The fuzzer's corpus: the inputs worth mutating (a few seeds, inputs that
 * produced a status not seen before for their code, and output bytes the
 * driver returned, which often are the structures it expects back) and the
 * queue of deterministic walks over them.
 *
 * @module
 */
import { walkLength, walkStep } from "./mutate.ts";
import type { Prng } from "./prng.ts";

/**
 * Where a corpus entry came from: a seed, an input that drew a new status, or
 * output bytes of the driver.
 *
 * @example
 * ```ts
 * import type { CorpusOrigin } from "./corpus.ts";
 * const origin: CorpusOrigin = "output";
 * ```
 */
export type CorpusOrigin = "seed" | "status" | "output" | "coverage";

/**
 * One input of the corpus.
 *
 * @example
 * ```ts
 * import { Corpus } from "./corpus.ts";
 * const entry = new Corpus([0x80222004]).entries[0]; // the first seed: empty input
 * ```
 */
export interface CorpusEntry {
  /** Its position in the order of addition, from 0. */
  readonly id: number;
  /** The input bytes. */
  readonly data: Uint8Array;
  /** The output size to send with it. */
  readonly outputSize: number;
  /** Where it came from. */
  readonly origin: CorpusOrigin;
}

/** A deterministic walk of one entry against one control code. */
interface Walk {
  entry: CorpusEntry;
  code: number;
  step: number;
  length: number;
  /** Steps taken since its last turn began. */
  burst: number;
}

/** Consecutive steps a walk takes per turn. */
const BURST = 8;

/**
 * One step of a walk: the mutated input to send with `code`.
 *
 * @example
 * ```ts
 * import { Corpus } from "./corpus.ts";
 * const step = new Corpus([0x80222004]).nextWalk(); // { entry, code: 0x80222004, input }
 * ```
 */
export interface WalkCase {
  /** The entry walked over. */
  readonly entry: CorpusEntry;
  /** The control code to send it with. */
  readonly code: number;
  /** The mutated input. */
  readonly input: Uint8Array;
}

/**
 * Limits of a {@link Corpus}.
 *
 * @example
 * ```ts
 * import { Corpus } from "./corpus.ts";
 * const corpus = new Corpus([0x80222004], { maxEntries: 64, maxOutputsPerCode: 4 });
 * ```
 */
export interface CorpusOptions {
  /** Entries kept at most (default 512); further additions are ignored. */
  maxEntries?: number;
  /** Output-derived entries kept per control code (default 8). */
  maxOutputsPerCode?: number;
  /** Longest entry kept, in bytes (default 4096). */
  maxEntryLength?: number;
}

/**
 * The inputs every run starts from: empty, zeros of 4, 8 and 16 bytes, 32 "A"s.
 *
 * @example
 * ```ts
 * import { SEED_INPUTS } from "./corpus.ts";
 * SEED_INPUTS[0].length; // 0
 * ```
 */
export const SEED_INPUTS: readonly Uint8Array[] = [
  new Uint8Array(0),
  new Uint8Array(4),
  new Uint8Array(8),
  new Uint8Array(16),
  new Uint8Array(32).fill(0x41),
];

/**
 * What tells two inputs apart: the length and an FNV-1a hash of the bytes.
 *
 * @example
 * ```ts
 * import { inputKey } from "./corpus.ts";
 * inputKey(new Uint8Array(4)); // "4:" followed by the hash in hex
 * ```
 */
export function inputKey(data: Uint8Array): string {
  let hash = 0x811c_9dc5;
  for (let i = 0; i < data.length; i++) hash = Math.imul(hash ^ data[i], 0x0100_0193) >>> 0;
  return `${data.length}:${hash.toString(16)}`;
}

/**
 * The corpus of one fuzz run. Every entry added is walked deterministically
 * (see `walkStep`) against every control code, other codes than the one whose
 * output it was first. Walks over the driver's own output (the structures it
 * hands out are often what it expects back) take three steps out of four;
 * the rest go to the walks over seeds and status-feedback inputs. Within each
 * group the walks take turns in the order they were added, 8 steps per turn.
 *
 * @example
 * ```ts
 * import { Corpus } from "./corpus.ts";
 *
 * const corpus = new Corpus([0x80232000, 0x80232400]);
 * corpus.add(new Uint8Array([0x4b, 0x42, 0, 1]), 64, "output", 0x80232000);
 * const next = corpus.nextWalk(); // the new entry's first step, sent with the first code
 * ```
 */
export class Corpus {
  readonly #entries: CorpusEntry[] = [];
  readonly #keys = new Set<string>();
  readonly #outputsPerCode = new Map<number, number>();
  /** Walks over output-derived entries. */
  readonly #primary: Walk[] = [];
  /** Walks over seeds and status-feedback entries. */
  readonly #secondary: Walk[] = [];
  #turn = 0;
  readonly #codes: readonly number[];
  readonly #maxEntries: number;
  readonly #maxOutputsPerCode: number;
  readonly #maxEntryLength: number;

  /** Creates a corpus for `codes`, holding the {@link SEED_INPUTS}. */
  constructor(codes: readonly number[], options: CorpusOptions = {}) {
    this.#codes = [...codes];
    this.#maxEntries = options.maxEntries ?? 512;
    this.#maxOutputsPerCode = options.maxOutputsPerCode ?? 8;
    this.#maxEntryLength = options.maxEntryLength ?? 4096;
    for (const seed of SEED_INPUTS) this.add(seed, 64, "seed");
  }

  /** The entries, in the order they were added. */
  get entries(): readonly CorpusEntry[] {
    return this.#entries;
  }

  /** Walks not finished yet. */
  get pendingWalks(): number {
    return this.#primary.length + this.#secondary.length;
  }

  /**
   * Adds `data` unless it is already there, too long, or a limit is reached;
   * returns the new entry or `undefined`. `code` is the control code whose
   * output it was (for the per-code limit of output-derived entries).
   */
  add(
    data: Uint8Array,
    outputSize: number,
    origin: CorpusOrigin,
    code?: number,
  ): CorpusEntry | undefined {
    if (data.length > this.#maxEntryLength || this.#entries.length >= this.#maxEntries) {
      return undefined;
    }
    const k = inputKey(data);
    if (this.#keys.has(k)) return undefined;
    if (origin === "output" && code !== undefined) {
      const count = this.#outputsPerCode.get(code) ?? 0;
      if (count >= this.#maxOutputsPerCode) return undefined;
      this.#outputsPerCode.set(code, count + 1);
    }
    this.#keys.add(k);
    const entry: CorpusEntry = {
      id: this.#entries.length,
      data: new Uint8Array(data),
      outputSize,
      origin,
    };
    this.#entries.push(entry);
    const length = walkLength(entry.data.length);
    if (length > 0) {
      const codes = [
        ...this.#codes.filter((c) => c !== code),
        ...this.#codes.filter((c) => c === code),
      ];
      const queue = origin === "output" || origin === "coverage" ? this.#primary : this.#secondary;
      for (const c of codes) queue.push({ entry, code: c, step: 0, length, burst: 0 });
    }
    return entry;
  }

  /** A random entry; output-derived and status entries are picked twice as often as seeds. */
  pick(prng: Prng): CorpusEntry {
    const entry = prng.pick(this.#entries);
    if (entry.origin === "seed" && this.#entries.length > SEED_INPUTS.length && prng.chance(0.5)) {
      return prng.pick(this.#entries);
    }
    return entry;
  }

  /** The next step of the pending walks, or `undefined` when none is left. */
  nextWalk(): WalkCase | undefined {
    while (this.pendingWalks > 0) {
      const primaryTurn = this.#turn++ % 4 !== 3;
      const queue = (primaryTurn && this.#primary.length > 0) || this.#secondary.length === 0
        ? this.#primary
        : this.#secondary;
      const walk = queue[0];
      const input = walk.step < walk.length ? walkStep(walk.entry.data, walk.step) : undefined;
      walk.step++;
      walk.burst++;
      if (input === undefined || walk.step >= walk.length) {
        queue.shift();
      } else if (walk.burst >= BURST) {
        walk.burst = 0;
        queue.push(queue.shift()!);
      }
      if (input !== undefined) return { entry: walk.entry, code: walk.code, input };
    }
    return undefined;
  }
}
