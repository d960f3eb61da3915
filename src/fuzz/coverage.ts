/**
 * Coverage feedback from a driver built with the kit's coverage runtime
 * (driver/kit/kbcov.h: `-fsanitize-coverage=trace-pc,trace-cmp`): its edge
 * counters and recent comparison operands, read from the named section the
 * driver creates, mapped read-only.
 *
 * @module
 */
import { KbridgeError } from "../core/errors.ts";
import { openSharedMemory, type SharedMemory } from "../io/shared_memory.ts";

/** The section layout: the single definition is driver/kit/kbcov.h. */
const MAGIC = 0x7643624b; // "KbCv"
const VERSION = 1;
const MAP_OFFSET = 32;
const CMP_BYTES = 24;
const OFFSET_VERSION = 4;
const OFFSET_MAP_SIZE = 8;
const OFFSET_CMP_SLOTS = 12;
const OFFSET_CMP_WRITES = 16;
/** Map and ring sizes a reader accepts (kbcov.h uses 8192 and 256). */
const MAX_MAP_SIZE = 1 << 20;
const MAX_CMP_SLOTS = 1 << 16;

/**
 * The section of a coverage build is missing or is not one.
 *
 * @example
 * ```ts
 * import { CoverageError } from "./coverage.ts";
 * new CoverageError("Global\\KbCov-x", "magic 0x0 is not KbCv").message;
 * // "kbridge: Global\\KbCov-x is no coverage section: magic 0x0 is not KbCv"
 * ```
 */
export class CoverageError extends KbridgeError {
  /** `"CoverageError"`. */
  override name: string = "CoverageError";
  /** The section's name. */
  readonly section: string;

  /** Creates the error for the section `section`; `reason` says what is wrong. */
  constructor(section: string, reason: string, options?: ErrorOptions) {
    super(`kbridge: ${section} is no coverage section: ${reason}`, options);
    this.section = section;
  }
}

/**
 * One comparison the driver made: its operand size in bytes and both operands.
 *
 * @example
 * ```ts
 * import type { Comparison } from "./coverage.ts";
 * const c: Comparison = { size: 4, arg1: 0x4b42abcdn, arg2: 0n };
 * ```
 */
export interface Comparison {
  /** Operand size in bytes (1, 2, 4 or 8). */
  readonly size: number;
  /** The first operand (the constant, for a comparison with one). */
  readonly arg1: bigint;
  /** The second operand. */
  readonly arg2: bigint;
}

/**
 * What the driver did since the previous {@linkcode CoverageFeedback.collect}.
 *
 * @example
 * ```ts
 * import type { CoverageDelta } from "./coverage.ts";
 * const delta: CoverageDelta = { newCoverage: true, comparisons: [] };
 * ```
 */
export interface CoverageDelta {
  /** Whether an edge was hit for the first time, or with a hit count of a new class. */
  readonly newCoverage: boolean;
  /** The comparisons recorded (the latest ones when more than the ring holds). */
  readonly comparisons: readonly Comparison[];
}

/** AFL's hit-count classes: 1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128-255, as one bit each. */
const BUCKETS = new Uint8Array(256).map((_, n) =>
  n === 0 ? 0 : n <= 3 ? 1 << (n - 1) : n < 8 ? 8 : n < 16 ? 16 : n < 32 ? 32 : n < 128 ? 64 : 128
);

/**
 * The default coverage section of a service: `Global\KbCov-<service>`.
 *
 * @example
 * ```ts
 * import { coverageSectionName } from "./coverage.ts";
 * coverageSectionName("kbmagic"); // "Global\\KbCov-kbmagic"
 * ```
 */
export function coverageSectionName(service: string): string {
  return `Global\\KbCov-${service}`;
}

/**
 * A driver's coverage section, mapped read-only: new edges and comparison
 * operands per request, for the {@linkcode Fuzzer}'s `coverage` option.
 * Under Wine only (the runtime compiles out of Windows builds).
 *
 * @example
 * ```ts ignore
 * import { CoverageFeedback } from "./coverage.ts";
 * using coverage = CoverageFeedback.open("Global\\KbCov-kbmagic");
 * // ... a request ...
 * const { newCoverage, comparisons } = coverage.collect();
 * ```
 */
export class CoverageFeedback implements Disposable {
  /** The section's name. */
  readonly name: string;
  #memory: SharedMemory;
  #mapSize: number;
  #slots: number;
  /** The counters at the previous collect. */
  #previous: Uint8Array;
  /** Per edge: the hit-count classes seen so far. */
  readonly #virgin: Uint8Array;
  #writes = 0;
  #edges = 0;

  private constructor(name: string, memory: SharedMemory, mapSize: number, slots: number) {
    this.name = name;
    this.#memory = memory;
    this.#mapSize = mapSize;
    this.#slots = slots;
    this.#virgin = new Uint8Array(mapSize);
    this.#previous = new Uint8Array(mapSize);
    this.resync();
  }

  /**
   * Maps the section `name` (e.g. {@linkcode coverageSectionName}) and checks its header.
   *
   * @throws {CoverageError} when there is no such section, or its header is wrong.
   */
  static open(name: string): CoverageFeedback {
    const { memory, mapSize, slots } = mapSection(name);
    return new CoverageFeedback(name, memory, mapSize, slots);
  }

  /** Edges seen so far (distinct map entries with any hit). */
  get edges(): number {
    return this.#edges;
  }

  /**
   * Maps the section again (after the driver was restarted: it may be a new
   * one) and takes its current state as the starting point; what was seen
   * before stays seen.
   *
   * @throws {CoverageError} like {@linkcode CoverageFeedback.open}, or when the sizes changed.
   */
  reopen(): void {
    const { memory, mapSize, slots } = mapSection(this.name);
    if (mapSize !== this.#mapSize || slots !== this.#slots) {
      memory.close();
      throw new CoverageError(this.name, "its map or ring size changed across a restart");
    }
    this.#memory.close();
    this.#memory = memory;
    this.resync();
  }

  /** Takes the section's current counters and comparison count as the starting point. */
  resync(): void {
    const bytes = this.#memory.bytes;
    this.#previous = bytes.slice(MAP_OFFSET, MAP_OFFSET + this.#mapSize);
    this.#writes = this.#header().getUint32(OFFSET_CMP_WRITES, true);
  }

  #header(): DataView {
    return new DataView(this.#memory.buffer, 0, MAP_OFFSET);
  }

  /** What the driver did since the previous call (or the last resync). */
  collect(): CoverageDelta {
    const bytes = this.#memory.bytes;
    const size = this.#mapSize;
    const current = new Uint32Array(this.#memory.buffer, MAP_OFFSET, size / 4);
    const previous = new Uint32Array(this.#previous.buffer, 0, size / 4);
    let newCoverage = false;
    for (let word = 0; word < current.length; word++) {
      if (current[word] === previous[word]) continue;
      for (let i = word * 4; i < word * 4 + 4; i++) {
        const now = bytes[MAP_OFFSET + i];
        const bucket = BUCKETS[(now - this.#previous[i]) & 0xff];
        this.#previous[i] = now;
        if (bucket === 0 || (this.#virgin[i] & bucket) !== 0) continue;
        if (this.#virgin[i] === 0) this.#edges++;
        this.#virgin[i] |= bucket;
        newCoverage = true;
      }
    }
    return { newCoverage, comparisons: this.#comparisons() };
  }

  #comparisons(): Comparison[] {
    const view = new DataView(this.#memory.buffer);
    const writes = view.getUint32(OFFSET_CMP_WRITES, true);
    // Fewer writes than before: the driver reset its section (a restart without a reopen).
    if (writes < this.#writes) this.#writes = 0;
    const first = Math.max(this.#writes, writes - this.#slots);
    this.#writes = writes;
    const ring = MAP_OFFSET + this.#mapSize;
    const found: Comparison[] = [];
    for (let n = first; n < writes; n++) {
      const slot = ring + (n % this.#slots) * CMP_BYTES;
      // Sequence n + 1 is written last: anything else is a slot overwritten or being written.
      if (view.getUint32(slot + 4, true) !== ((n + 1) >>> 0)) continue;
      const size = view.getUint32(slot, true);
      if (size !== 1 && size !== 2 && size !== 4 && size !== 8) continue;
      const bits = BigInt(size * 8);
      found.push({
        size,
        arg1: BigInt.asUintN(Number(bits), view.getBigUint64(slot + 8, true)),
        arg2: BigInt.asUintN(Number(bits), view.getBigUint64(slot + 16, true)),
      });
    }
    return found;
  }

  /** Unmaps the section. */
  close(): void {
    this.#memory.close();
  }

  /** Same as {@linkcode CoverageFeedback.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Maps `name` read-only and validates its header. */
function mapSection(name: string): { memory: SharedMemory; mapSize: number; slots: number } {
  let memory: SharedMemory;
  try {
    memory = openSharedMemory(name, { access: "read" });
  } catch (error) {
    throw new CoverageError(
      name,
      `it cannot be opened (is the driver a coverage build, kbridge lab build --coverage, and loaded?): ${
        (error as Error).message
      }`,
      { cause: error },
    );
  }
  const fail = (reason: string): never => {
    memory.close();
    throw new CoverageError(name, reason);
  };
  if (memory.size < MAP_OFFSET) fail(`${memory.size} bytes are less than its header`);
  const header = new DataView(memory.buffer, 0, MAP_OFFSET);
  const magic = header.getUint32(0, true);
  if (magic !== MAGIC) fail(`magic 0x${magic.toString(16)} is not KbCv`);
  const version = header.getUint32(OFFSET_VERSION, true);
  if (version !== VERSION) fail(`version ${version} is not ${VERSION}`);
  const mapSize = header.getUint32(OFFSET_MAP_SIZE, true);
  const slots = header.getUint32(OFFSET_CMP_SLOTS, true);
  if (mapSize === 0 || mapSize % 4 !== 0 || mapSize > MAX_MAP_SIZE) {
    fail(`map size ${mapSize} is not a multiple of 4 in 4..${MAX_MAP_SIZE}`);
  }
  if (slots === 0 || slots > MAX_CMP_SLOTS) {
    fail(`ring size ${slots} is not in 1..${MAX_CMP_SLOTS}`);
  }
  if (memory.size < MAP_OFFSET + mapSize + slots * CMP_BYTES) {
    fail(`${memory.size} bytes cannot hold a ${mapSize}-byte map and ${slots} comparisons`);
  }
  return { memory, mapSize, slots };
}

/**
 * A request to send again with one comparison operand put in place of the
 * other (see {@linkcode solveComparisons}).
 *
 * @example
 * ```ts
 * import type { SolvedCase } from "./coverage.ts";
 * const c: SolvedCase = { input: new Uint8Array(12), outputSize: 64 };
 * ```
 */
export interface SolvedCase {
  /** The input bytes. */
  readonly input: Uint8Array;
  /** The output buffer size. */
  readonly outputSize: number;
}

/** Offsets at which one operand is replaced, at most (an all-zero input matches everywhere). */
const MAX_MATCHES = 16;

function encode(value: bigint, size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = Number((value >> BigInt(8 * i)) & 0xffn);
  return bytes;
}

/**
 * Input-to-state solving (lazily): for each comparison of `comparisons` one of whose
 * operands appears in `input` (little-endian, in the operand's size, 2 bytes
 * or more), the input with the other operand written there; when an operand
 * equals the input length or the output size, the request resized to the
 * other one (up to `maxLength`). Magic values and exact sizes get solved
 * instead of guessed.
 *
 * @example
 * ```ts
 * import { solveComparisons } from "./coverage.ts";
 * const input = new Uint8Array([0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0]);
 * const [solved] = solveComparisons(input, 64, [{ size: 4, arg1: 0x4b42abcdn, arg2: 0x04030201n }], 4096);
 * // a generator: take as many as wanted
 * solved.input; // [0, 0, 0, 0, 0xcd, 0xab, 0x42, 0x4b, 0, 0, 0, 0]
 * ```
 */
export function* solveComparisons(
  input: Uint8Array,
  outputSize: number,
  comparisons: readonly Comparison[],
  maxLength: number,
): Generator<SolvedCase> {
  for (const { size, arg1, arg2 } of comparisons) {
    if (arg1 === arg2) continue;
    for (const [seen, wanted] of [[arg2, arg1], [arg1, arg2]]) {
      // seen !== wanted: a size equal to `seen` is changed.
      if (wanted <= BigInt(maxLength)) {
        const length = Number(wanted);
        if (seen === BigInt(input.length)) {
          const resized = new Uint8Array(length);
          resized.set(input.subarray(0, length));
          yield { input: resized, outputSize };
        }
        if (seen === BigInt(outputSize)) yield { input, outputSize: length };
      }
      if (size < 2 || input.length < size) continue;
      const pattern = encode(seen, size);
      const replacement = encode(wanted, size);
      let matches = 0;
      // indexOf finds candidates for the first byte natively: a scan per comparison stays cheap.
      for (
        let offset = input.indexOf(pattern[0]);
        offset >= 0 && offset + size <= input.length && matches < MAX_MATCHES;
        offset = input.indexOf(pattern[0], offset + 1)
      ) {
        if (!pattern.every((byte, i) => input[offset + i] === byte)) continue;
        const patched = new Uint8Array(input);
        patched.set(replacement, offset);
        yield { input: patched, outputSize };
        matches++;
      }
    }
  }
}
