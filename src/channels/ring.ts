/**
 * The consumer side of the shared single-producer/single-consumer ring whose
 * layout `driver/kbridge.h` defines (`KBRIDGE_RING_HEADER`, `KBRIDGE_RECORD_HEADER`).
 * It reads the memory in place through an `ArrayBuffer` over the mapping
 * (`Deno.UnsafePointerView.getArrayBuffer`); index loads and stores use
 * `Atomics` for ordering.
 *
 * @module
 */
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
const SEQUENCE = RecordHeader.offsets.sequence;
const TIMESTAMP = RecordHeader.offsets.timestamp;
const ALIGN_MASK = Ring.ALIGN - 1;

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
  readonly #view: DataView;
  readonly #words: Uint32Array<ArrayBuffer>;
  readonly #mask: number;
  #tail: number;
  /** Whether the consumer holds the records of a `scan`, and where the tail goes once released. */
  #holding = false;
  #scanned = 0;

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
    this.#view = new DataView(memory, Ring.HEADER_SIZE, capacity);
    this.#words = new Uint32Array(memory, Ring.HEADER_SIZE, capacity / 4);
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
   * advances towards it and ends on it.
   */
  #head(): number {
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
   * for a pad record, which covers the rest of the ring.
   */
  #span(offset: number, published: number): number {
    const view = this.#view;
    const toEnd = this.#mask + 1 - offset;
    const length = view.getUint32(offset, true);
    if ((view.getUint32(offset + 4, true) & Ring.RECORD_PAD) !== 0) {
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
   * Calls `callback` for up to `max` ready messages and releases their space
   * to the producer afterwards. Returns how many were read (0 when empty).
   *
   * @throws {CorruptRingError} at the first value the layout rules out
   * (the messages before it were delivered and released)
   */
  drain(callback: MessageCallback, max: number = Infinity): number {
    const head = this.#head();
    const view = this.#view;
    const mask = this.#mask;
    let tail = this.#tail;
    let count = 0;
    try {
      while (tail !== head && count < max) {
        const offset = tail & mask;
        const span = this.#span(offset, (head - tail) >>> 0);
        if (span < 0) {
          tail = (tail - span) | 0;
          continue;
        }
        const length = view.getUint32(offset, true);
        const sequence = view.getUint32(offset + SEQUENCE, true) +
          view.getUint32(offset + SEQUENCE + 4, true) * 0x1_0000_0000;
        const timestamp = view.getUint32(offset + TIMESTAMP, true) +
          view.getUint32(offset + TIMESTAMP + 4, true) * 0x1_0000_0000;
        const start = offset + RECORD;
        tail = (tail + span) | 0;
        count++;
        callback(this.#data.subarray(start, start + length), sequence, timestamp);
      }
    } finally {
      this.#tail = tail;
      Atomics.store(this.#indices, TAIL, tail);
    }
    return count;
  }

  /**
   * Copies whole ready records (each a `KBRIDGE_RECORD_HEADER`, the payload,
   * padding to 8 bytes; pad records left out) into `target`, as many as fit,
   * and releases their space to the producer. Returns the bytes copied (0 when
   * empty, or when the next record is larger than `target`). One or two
   * `set()` calls move the bytes, so no object is made per message.
   *
   * @throws {CorruptRingError} at the first value the layout rules out
   * (the records before it were copied and released)
   */
  copyRecords(target: Uint8Array): number {
    const head = this.#head();
    const capacity = this.#mask + 1;
    let tail = this.#tail;
    let copied = 0;
    try {
      while (tail !== head) {
        const offset = tail & this.#mask;
        const first = this.#span(offset, (head - tail) >>> 0);
        if (first < 0) {
          tail = (tail - first) | 0;
          continue;
        }
        // The run of records from `offset` up to the head, a pad record, or what fits.
        let end = offset;
        let next = tail;
        while (next !== head && end < capacity) {
          const span = this.#span(end, (head - next) >>> 0);
          if (span < 0 || copied + (end - offset) + span > target.length) break;
          end += span;
          next = (next + span) | 0;
        }
        if (end === offset) break;
        target.set(this.#data.subarray(offset, end), copied);
        copied += end - offset;
        tail = next;
      }
    } finally {
      this.#tail = tail;
      Atomics.store(this.#indices, TAIL, tail);
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
    const head = this.#head();
    const capacity = this.#mask + 1;
    const offsets = batch.offsets;
    const max = offsets.length - 1;
    let tail = this.#tail;
    let at = tail & this.#mask;
    if (tail !== head) {
      const first = this.#span(at, (head - tail) >>> 0);
      if (first < 0) {
        // A pad record fills the end of the ring: give it back, the next record is at offset 0.
        tail = (tail - first) | 0;
        this.#tail = tail;
        Atomics.store(this.#indices, TAIL, tail);
        at = 0;
      }
    }
    const budget = at + batch.maxBytes; // the first record always fits
    let next = tail;
    let count = 0;
    while (next !== head && count < max && at < capacity) {
      let span;
      try {
        span = this.#span(at, (head - next) >>> 0);
      } catch (error) {
        if (count === 0) throw error;
        break; // deliver the records before it; the next scan throws
      }
      if (span < 0 || (count > 0 && at + span > budget)) break;
      offsets[count++] = at;
      at += span;
      next = (next + span) | 0;
    }
    offsets[count] = at;
    this.#scanned = next;
    this.#holding = count > 0;
    batch.fill(this.#data, this.#words, count, this.#releaseScanned);
    return count;
  }

  readonly #releaseScanned = () => this.release();

  /** Gives the records of the last {@linkcode RingReader.scan} back to the producer. */
  release(): void {
    // A detached view (the memory was closed) has length 0: nothing to give back.
    if (!this.#holding || this.#indices.length === 0) return;
    this.#holding = false;
    this.#tail = this.#scanned;
    Atomics.store(this.#indices, TAIL, this.#tail);
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
