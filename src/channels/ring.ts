/**
 * The consumer side of the shared single-producer/single-consumer ring whose
 * layout `driver/kbridge.h` defines (`KBRIDGE_RING_HEADER`, `KBRIDGE_RECORD_HEADER`).
 * It reads the memory in place through an `ArrayBuffer` over the mapping
 * (`Deno.UnsafePointerView.getArrayBuffer`); index loads and stores use
 * `Atomics` for ordering.
 *
 * @module
 */
import { KbridgeError } from "../core/errors.ts";
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
 * it alive for the reader's lifetime.
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

  /** Checks the header (magic, version, sizes) of the ring in `memory`. */
  constructor(memory: ArrayBuffer) {
    if (memory.byteLength < Ring.HEADER_SIZE) {
      throw new KbridgeError(
        `kbridge: ring view of ${memory.byteLength} bytes is smaller than its header`,
      );
    }
    const header = RingHeader.decode(new Uint8Array(memory, 0, Ring.HEADER_SIZE));
    const capacity = header.capacity;
    if (
      header.magic !== Ring.MAGIC || header.version !== Ring.VERSION ||
      header.headerSize !== Ring.HEADER_SIZE ||
      capacity < Ring.MIN_BYTES || capacity > Ring.MAX_BYTES || (capacity & (capacity - 1)) !== 0 ||
      Ring.HEADER_SIZE + capacity > memory.byteLength
    ) {
      throw new KbridgeError(
        `kbridge: not a kbridge ring (magic 0x${
          header.magic.toString(16)
        }, version ${header.version}, ` +
          `capacity ${capacity}, view ${memory.byteLength} bytes)`,
      );
    }
    this.#indices = new Int32Array(memory, 0, Ring.HEADER_SIZE / 4);
    this.#data = new Uint8Array(memory, Ring.HEADER_SIZE, capacity);
    this.#view = new DataView(memory, Ring.HEADER_SIZE, capacity);
    this.#words = new Uint32Array(memory, Ring.HEADER_SIZE, capacity / 4);
    this.#mask = capacity - 1;
    this.#tail = Atomics.load(this.#indices, TAIL);
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
   * Calls `callback` for up to `max` ready messages and releases their space
   * to the producer afterwards. Returns how many were read (0 when empty).
   */
  drain(callback: MessageCallback, max: number = Infinity): number {
    const head = Atomics.load(this.#indices, HEAD) | 0;
    const view = this.#view;
    const mask = this.#mask;
    let tail = this.#tail;
    let count = 0;
    try {
      while (tail !== head && count < max) {
        const offset = tail & mask;
        const length = view.getUint32(offset, true);
        if ((view.getUint32(offset + 4, true) & Ring.RECORD_PAD) !== 0) {
          tail = (tail + (mask + 1 - offset)) | 0;
          continue;
        }
        if (length > mask + 1 - offset - RECORD) {
          throw new KbridgeError(
            `kbridge: corrupt ring record of ${length} bytes at offset ${offset}`,
          );
        }
        const sequence = view.getUint32(offset + SEQUENCE, true) +
          view.getUint32(offset + SEQUENCE + 4, true) * 0x1_0000_0000;
        const timestamp = view.getUint32(offset + TIMESTAMP, true) +
          view.getUint32(offset + TIMESTAMP + 4, true) * 0x1_0000_0000;
        const start = offset + RECORD;
        tail = (tail + ((RECORD + length + ALIGN_MASK) & ~ALIGN_MASK)) | 0;
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
   */
  copyRecords(target: Uint8Array): number {
    const head = Atomics.load(this.#indices, HEAD) | 0;
    const view = this.#view;
    const capacity = this.#mask + 1;
    let tail = this.#tail;
    let copied = 0;
    while (tail !== head) {
      const offset = tail & this.#mask;
      if ((view.getUint32(offset + 4, true) & Ring.RECORD_PAD) !== 0) {
        tail = (tail + (capacity - offset)) | 0;
        continue;
      }
      // The run of records from `offset` up to the head, the end of the ring, or what fits.
      let end = offset;
      let next = tail;
      while (next !== head && end < capacity) {
        if ((view.getUint32(end + 4, true) & Ring.RECORD_PAD) !== 0) break;
        const span = (RECORD + view.getUint32(end, true) + ALIGN_MASK) & ~ALIGN_MASK;
        if (end + span > capacity) {
          throw new KbridgeError(`kbridge: corrupt ring record of ${span} bytes at offset ${end}`);
        }
        if (copied + (end - offset) + span > target.length) break;
        end += span;
        next = (next + span) | 0;
      }
      if (end === offset) break;
      target.set(this.#data.subarray(offset, end), copied);
      copied += end - offset;
      tail = next;
    }
    this.#tail = tail;
    Atomics.store(this.#indices, TAIL, tail);
    return copied;
  }

  /**
   * Points `batch` at the ready records that lie one after the other from the
   * tail (up to the head, the end of the ring, or the batch's capacity),
   * without copying, and returns how many. They stay the consumer's until
   * {@linkcode RingReader.release}, which gives their space to the producer.
   */
  scan(batch: MessageBatch): number {
    this.release();
    const head = Atomics.load(this.#indices, HEAD) | 0;
    const words = this.#words;
    const capacity = this.#mask + 1;
    const offsets = batch.offsets;
    const max = offsets.length - 1;
    if (((head - this.#tail) >>> 0) > capacity) {
      throw new KbridgeError(
        `kbridge: corrupt ring: head ${head >>> 0} is more than the capacity past tail ${
          this.#tail >>> 0
        }`,
      );
    }
    let tail = this.#tail;
    let at = tail & this.#mask;
    if (tail !== head && (words[(at >> 2) + 1] & Ring.RECORD_PAD) !== 0) {
      // A pad record fills the end of the ring: skip it, the next record is at offset 0.
      tail = (tail + (capacity - at)) | 0;
      this.#tail = tail;
      Atomics.store(this.#indices, TAIL, tail);
      at = 0;
    }
    let next = tail;
    let count = 0;
    const end = at + batch.maxBytes; // a byte budget; the first record always fits
    while (next !== head && count < max && at < capacity) {
      const word = at >> 2;
      if ((words[word + 1] & Ring.RECORD_PAD) !== 0) break;
      const length = words[word];
      if (length > capacity - at - RECORD) {
        throw new KbridgeError(`kbridge: corrupt ring record of ${length} bytes at offset ${at}`);
      }
      const span = (RECORD + length + ALIGN_MASK) & ~ALIGN_MASK;
      if (count > 0 && at + span > end) break;
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
