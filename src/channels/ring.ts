/**
 * The consumer side of the shared single-producer/single-consumer ring whose
 * layout `driver/kbridge.h` defines (`KBRIDGE_RING_HEADER`, `KBRIDGE_RECORD_HEADER`).
 * It reads the memory in place through an `ArrayBuffer` over the mapping
 * (`Deno.UnsafePointerView.getArrayBuffer`); index loads and stores use
 * `Atomics` for ordering.
 *
 * @module
 */
import { copyBytes } from "../core/copy.ts";
import { CorruptRingError } from "../core/errors.ts";
import { hex32 } from "../core/hex.ts";
import type { MessageBatch } from "./batch.ts";
import { RecordHeader, Ring, RingHeader } from "./ring_layout.ts";

const HEAD = RingHeader.offsets.head / 4;
const DROPPED = RingHeader.offsets.dropped / 4;
const PRODUCER_CLOSED = RingHeader.offsets.producerClosed / 4;
const TAIL = RingHeader.offsets.tail / 4;
const CONSUMER_WAITING = RingHeader.offsets.consumerWaiting / 4;
const RECORD = RecordHeader.size;
/** 32-bit word offsets of the record header's fields. */
const LENGTH_WORD = RecordHeader.offsets.length / 4;
const FLAGS_WORD = RecordHeader.offsets.flags / 4;
const SEQUENCE_WORD = RecordHeader.offsets.sequence / 4;
const TIMESTAMP_WORD = RecordHeader.offsets.timestamp / 4;
const ALIGN_MASK = Ring.ALIGN - 1;
const PAD = Ring.RECORD_PAD;
/** Most records one walk of `drain` takes. */
const RUN_RECORDS = 4096;
/** The cap of a walk that has none (an integer: the walk compares integers). */
const MAX_RECORDS = 0x7fff_ffff;

/**
 * Called for each message by `drain`. `data` is a view of the shared memory,
 * valid only until the callback returns: copy it (`data.slice()`) to keep it.
 *
 * @example
 * ```ts ignore
 * const callback: MessageCallback = (data, sequence) => console.log(sequence, data.length);
 * await subscription.drain(callback, { timeoutMs: 1000 });
 * ```
 */
export type MessageCallback = (data: Uint8Array, sequence: number, timestamp: number) => void;

/**
 * Reads records from a ring in shared memory. The owner of the mapping keeps
 * it alive for the reader's lifetime. The other side can write anything into
 * the memory, so every value read from it is checked before use: a value the
 * layout rules out throws a {@linkcode CorruptRingError}, never a read
 * outside the ring or an endless loop.
 *
 * @example
 * ```ts ignore
 * const reader = new RingReader(Deno.UnsafePointerView.getArrayBuffer(view, size));
 * reader.drain((data, sequence) => console.log(sequence, data.length));
 * ```
 */
export class RingReader {
  readonly #indices: Int32Array;
  readonly #data: Uint8Array;
  /** The mapping `#data` views, from `Ring.HEADER_SIZE` on: payload views are made from it. */
  readonly #memory: ArrayBuffer;
  readonly #words: Uint32Array<ArrayBuffer>;
  /** `#words` as signed words, for the checks (`#span`, `#walk`). */
  readonly #signedWords: Int32Array<ArrayBuffer>;
  /** Record offsets of the current walk of `drain`. */
  readonly #offsets = new Int32Array(RUN_RECORDS + 1);
  readonly #mask: number;
  #tail: number;
  /** Whether the consumer holds the records of a `scan`, and where the tail goes once released. */
  #holding = false;
  #scanned = 0;
  /** The tail after the records of the last `#run`. */
  #runEnd = 0;
  /** Set by `#first` and `#walk`: the first ready record's span, and where a walk ended. */
  #firstSpan = 0;
  #walkEnd = 0;

  /**
   * Checks the header (magic, version, header size, a power-of-two capacity
   * within limits that fits `memory`) and the tail of the ring in `memory`.
   */
  constructor(memory: ArrayBuffer) {
    if (memory.byteLength < Ring.HEADER_SIZE) {
      throw new CorruptRingError(
        `a view of ${memory.byteLength} bytes is smaller than the ${Ring.HEADER_SIZE}-byte header`,
      );
    }
    const header = RingHeader.decode(new Uint8Array(memory, 0, Ring.HEADER_SIZE));
    const capacity = header.capacity;
    const wrong = header.magic !== Ring.MAGIC
      ? `magic ${hex32(header.magic)} is not ${hex32(Ring.MAGIC)} ("BRNG")`
      : header.version !== Ring.VERSION
      ? `version ${header.version} is not ${Ring.VERSION}`
      : header.headerSize !== Ring.HEADER_SIZE
      ? `header size ${header.headerSize} is not ${Ring.HEADER_SIZE}`
      : capacity < Ring.MIN_BYTES || capacity > Ring.MAX_BYTES || (capacity & (capacity - 1)) !== 0
      ? `capacity ${capacity} is not a power of two in ${Ring.MIN_BYTES}..${Ring.MAX_BYTES}`
      : Ring.HEADER_SIZE + capacity > memory.byteLength
      ? `capacity ${capacity} does not fit a view of ${memory.byteLength} bytes`
      : undefined;
    if (wrong !== undefined) throw new CorruptRingError(wrong);
    this.#indices = new Int32Array(memory, 0, Ring.HEADER_SIZE / 4);
    this.#data = new Uint8Array(memory, Ring.HEADER_SIZE, capacity);
    this.#memory = memory;
    this.#words = new Uint32Array(memory, Ring.HEADER_SIZE, capacity / 4);
    this.#signedWords = new Int32Array(memory, Ring.HEADER_SIZE, capacity / 4);
    this.#mask = capacity - 1;
    const tail = Atomics.load(this.#indices, TAIL) | 0;
    if ((tail & ALIGN_MASK) !== 0) {
      throw new CorruptRingError(`tail ${hex32(tail)} is not a multiple of ${Ring.ALIGN}`);
    }
    this.#tail = tail;
  }

  /** Data bytes of the ring. */
  get capacity(): number {
    return this.#mask + 1;
  }

  /** Messages the producer dropped because the ring was full. */
  get dropped(): number {
    return Atomics.load(this.#indices, DROPPED) >>> 0;
  }

  /** Whether the producer has said no more records will come. */
  get producerClosed(): boolean {
    return Atomics.load(this.#indices, PRODUCER_CLOSED) !== 0;
  }

  /** Whether a record is ready to read. */
  get hasData(): boolean {
    return Atomics.load(this.#indices, HEAD) !== this.#tail;
  }

  /**
   * The producer's head, checked against the reader's tail: on the 8-byte
   * grid and at most the capacity ahead, so every step of a read loop
   * advances towards it and ends on it. Once the memory is gone the ring
   * reads as empty.
   */
  #head(): number {
    if (this.#unmapped) return this.#tail;
    const head = Atomics.load(this.#indices, HEAD) | 0;
    if ((head & ALIGN_MASK) !== 0) {
      throw new CorruptRingError(`head ${hex32(head)} is not a multiple of ${Ring.ALIGN}`);
    }
    if (((head - this.#tail) >>> 0) > this.#mask + 1) {
      throw new CorruptRingError(
        `head ${hex32(head)} is more than the capacity ${this.capacity} ahead of tail ${
          hex32(this.#tail)
        }`,
      );
    }
    return head;
  }

  /**
   * The bytes the record at `offset` (on the grid) takes, checked against
   * the end of the ring and the `published` bytes up to the head; negated
   * for a pad record, which covers the rest of the ring. The header is read
   * from `words` at byte `offset + shift`: the ring, or a copy of it.
   */
  #span(offset: number, published: number, words: Int32Array, shift: number): number {
    const word = (offset + shift) >> 2;
    const toEnd = this.#mask + 1 - offset;
    const length = words[word + LENGTH_WORD] >>> 0;
    if ((words[word + FLAGS_WORD] & PAD) !== 0) {
      // A record always fits at offset 0, so no pad starts there; a pad carries no payload.
      if (offset === 0 || length !== 0 || toEnd > published) {
        throw new CorruptRingError(
          `pad record (length ${length}) at offset ${offset} with ${published} bytes published`,
        );
      }
      return -toEnd;
    }
    const span = (RECORD + length + ALIGN_MASK) & ~ALIGN_MASK;
    if (toEnd < RECORD || length > toEnd - RECORD || span > published) {
      throw new CorruptRingError(
        `record of ${length} bytes at offset ${offset} with ${toEnd} bytes to the end of the ring ` +
          `and ${published} published`,
      );
    }
    return span;
  }

  /**
   * Checks the head and, with every rule, the first ready record; a pad
   * record at the tail (it fills the end of the ring) is given back first, so
   * the next record is at offset 0. Returns the head; the first record's span
   * is `#firstSpan` (0 when the ring is empty).
   *
   * @throws {CorruptRingError} when the head or the first record is one the layout rules out
   */
  #first(): number {
    const head = this.#head();
    let tail = this.#tail;
    this.#firstSpan = 0;
    if (tail === head) return head;
    let span = this.#span(tail & this.#mask, (head - tail) >>> 0, this.#signedWords, 0);
    if (span < 0) {
      tail = (tail - span) | 0;
      this.#tail = tail;
      Atomics.store(this.#indices, TAIL, tail);
      if (tail === head) return head;
      span = this.#span(0, (head - tail) >>> 0, this.#signedWords, 0);
    }
    this.#firstSpan = span;
    return head;
  }

  /**
   * The records that lie whole, one after the other, from ring offset `from`
   * to `stop`, their headers read from `words` at byte `offset + shift` (the
   * ring, or a copy of it); at most `max`, their offsets written to `offsets`
   * (when given) from index `index` on. Returns the index after the last;
   * where it ends is `#walkEnd`. `from`, `stop` and `shift` are on the 8-byte
   * grid; `stop` is within the published bytes and the ring, so a record that
   * fits passes every check of `#span`: this loop need check only that; the
   * first that does not fit ends it (a bad one is found by `#first` when it
   * is first). The words are signed (unsigned ones made V8 compare lengths as
   * doubles): a length of 2^31 or more reads negative and ends the walk.
   */
  #walk(
    words: Int32Array,
    shift: number,
    from: number,
    stop: number,
    offsets: Int32Array | undefined,
    index: number,
    max: number,
  ): number {
    // In words of `words`: stepping a word index runs faster than a byte offset shifted per record.
    const lastWord = (stop - RECORD + shift) >> 2;
    let word = (from + shift) >> 2;
    let count = index;
    // The next record's place depends on the length just read; while lengths repeat, the
    // step is the last one's, so the processor runs ahead instead of waiting for each load.
    let lastLength = -1;
    let lastStep = 0;
    while (word <= lastWord && count < max) {
      const length = words[word + LENGTH_WORD];
      if (
        (words[word + FLAGS_WORD] & PAD) !== 0 || length < 0 || length > (lastWord - word) << 2
      ) break;
      if (offsets !== undefined) offsets[count] = (word << 2) - shift;
      count++;
      if (length !== lastLength) {
        lastLength = length;
        lastStep = ((RECORD + length + ALIGN_MASK) & ~ALIGN_MASK) >> 2;
      }
      word += lastStep;
    }
    this.#walkEnd = (word << 2) - shift;
    return count;
  }

  /**
   * The walk over the ring in place that `drain` and `scan` use: writes to
   * `offsets` where each ready record starts, for the records that lie one
   * after the other (up to the head or the end of the ring), at most `max` of
   * them and within `budget` bytes (on the 8-byte grid, or `Infinity`; the
   * first always counts), and the end of the last after them. Returns the
   * count; the tail they lead to is `#runEnd`, taken by the caller as it
   * consumes them.
   *
   * @throws {CorruptRingError} when the first record is one the layout rules
   * out; a bad record after good ones ends the run instead (the next walk throws)
   */
  #run(offsets: Int32Array, max: number, budget: number): number {
    const head = this.#first();
    const tail = this.#tail;
    const start = tail & this.#mask;
    let count = 0;
    let end = start;
    if (this.#firstSpan > 0 && max > 0) {
      offsets[0] = start;
      const stretch = start + Math.min((head - tail) >>> 0, this.#mask + 1 - start);
      count = this.#walk(
        this.#signedWords,
        0,
        start + this.#firstSpan,
        Math.min(stretch, start + budget),
        offsets,
        1,
        max,
      );
      end = this.#walkEnd;
    }
    offsets[count] = end;
    this.#runEnd = (tail + end - start) | 0;
    return count;
  }

  /**
   * Calls `callback` for up to `max` ready messages and releases their space
   * to the producer afterwards. Returns how many were read (0 when empty); a
   * callback that closes the memory ends the drain after it.
   *
   * @throws {CorruptRingError} at the first value the layout rules out
   * (the messages before it were delivered and released)
   */
  drain(callback: MessageCallback, max: number = Infinity): number {
    const offsets = this.#offsets;
    const words = this.#words;
    let count = 0;
    try {
      while (count < max) {
        const found = this.#run(offsets, Math.min(max - count, RUN_RECORDS), Infinity);
        if (found === 0) break;
        // The records are contiguous: each one's end, from the run's start, is its tail.
        const base = this.#tail - offsets[0];
        for (let i = 0; i < found; i++) {
          const word = offsets[i] >> 2;
          const start = offsets[i] + RECORD;
          this.#tail = (base + offsets[i + 1]) | 0;
          count++;
          callback(
            new Uint8Array(this.#memory, Ring.HEADER_SIZE + start, words[word + LENGTH_WORD]),
            words[word + SEQUENCE_WORD] + words[word + SEQUENCE_WORD + 1] * 0x1_0000_0000,
            words[word + TIMESTAMP_WORD] + words[word + TIMESTAMP_WORD + 1] * 0x1_0000_0000,
          );
          // The callback closed the memory: nothing reads (or gives back) the ring any more.
          if (this.#unmapped) return count;
        }
      }
    } finally {
      this.#storeTail();
    }
    return count;
  }

  /** Whether the memory is gone (closed): a detached view has length 0. */
  get #unmapped(): boolean {
    return this.#indices.length === 0;
  }

  /** Gives the space before `#tail` back to the producer, while the memory is there. */
  #storeTail(): void {
    if (!this.#unmapped) Atomics.store(this.#indices, TAIL, this.#tail);
  }

  /**
   * Copies whole ready records (each a `KBRIDGE_RECORD_HEADER`, the payload,
   * padding to 8 bytes; pad records left out) into `target`, as many as fit,
   * and releases their space to the producer. Returns the bytes copied (0 when
   * empty, or when the next record is larger than `target`); the bytes of
   * `target` after them are unspecified. One copy (`copyBytes`) per stretch of the ring
   * moves the bytes, then the records are checked in `target`: what it holds
   * is what was checked, whatever the producer writes meanwhile.
   *
   * @throws {RangeError} when `target` does not start on an 8-byte boundary
   * @throws {CorruptRingError} at the first value the layout rules out, when
   * no record comes before it (the records before it are returned, and the
   * next call throws)
   */
  copyRecords(target: Uint8Array): number {
    if ((target.byteOffset & ALIGN_MASK) !== 0) {
      throw new RangeError(
        `the target starts at byte ${target.byteOffset}, not on the 8-byte grid`,
      );
    }
    const words = new Int32Array(target.buffer, target.byteOffset, target.length >> 2);
    let copied = 0;
    try {
      for (;;) {
        const head = this.#first();
        const tail = this.#tail;
        const start = tail & this.#mask;
        const published = (head - tail) >>> 0;
        const bytes = Math.min(published, this.#mask + 1 - start, target.length - copied) &
          ~ALIGN_MASK;
        if (bytes > 0) {
          copyBytes(target, copied, new Uint8Array(this.#memory, Ring.HEADER_SIZE + start, bytes));
        }
        // Checked again in the copy: the producer may have rewritten the ring meanwhile.
        const shift = copied - start;
        if (this.#walk(words, shift, start, start + bytes, undefined, 0, MAX_RECORDS) === 0) {
          // Corrupt now (it throws), or larger than the room left.
          if (bytes >= RECORD) this.#span(start, published, words, shift);
          break;
        }
        const taken = this.#walkEnd - start;
        copied += taken;
        this.#tail = (tail + taken) | 0;
      }
    } catch (error) {
      if (copied === 0 || !(error instanceof CorruptRingError)) throw error;
    } finally {
      this.#storeTail();
    }
    return copied;
  }

  /**
   * Points `batch` at the ready records that lie one after the other from the
   * tail (up to the head, the end of the ring, or the batch's capacity),
   * without copying, and returns how many. They stay the consumer's until
   * {@linkcode RingReader.release}, which gives their space to the producer.
   *
   * @throws {CorruptRingError} at the first value the layout rules out (when
   * records come before it, they make the batch and the next scan throws)
   */
  scan(batch: MessageBatch): number {
    batch.release(); // the records it held (if any) go back; it reads as empty until filled
    this.release();
    const offsets = batch.offsets;
    const count = this.#run(offsets, offsets.length - 1, batch.maxBytes);
    this.#scanned = this.#runEnd;
    this.#holding = count > 0;
    batch.fill(this.#data, this.#words, count, this.#releaseScanned);
    return count;
  }

  readonly #releaseScanned = () => this.release();

  /** Gives the records of the last {@linkcode RingReader.scan} back to the producer. */
  release(): void {
    if (!this.#holding || this.#unmapped) return;
    this.#holding = false;
    this.#tail = this.#scanned;
    this.#storeTail();
  }

  /**
   * Announces that the consumer is about to sleep, then tells whether it may:
   * `false` when a record arrived meanwhile. Call {@linkcode RingReader.awake} after the sleep.
   */
  prepareToSleep(): boolean {
    Atomics.store(this.#indices, CONSUMER_WAITING, 1);
    return !this.hasData && !this.producerClosed;
  }

  /** Clears the flag set by {@linkcode RingReader.prepareToSleep}. */
  awake(): void {
    Atomics.store(this.#indices, CONSUMER_WAITING, 0);
  }
}
