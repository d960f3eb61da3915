/**
 * A batch of ring records read in place: what
 * {@linkcode Subscription.batches} yields, and what its message iterator
 * copies from.
 *
 * @module
 */
import { ArgumentError } from "../core/errors.ts";
import { RecordHeader } from "./ring_layout.ts";

const RECORD = RecordHeader.size;
/** 32-bit word offsets of the record header's fields. */
const LENGTH_WORD = RecordHeader.offsets.length / 4;
const SEQUENCE_WORD = RecordHeader.offsets.sequence / 4;
const TIMESTAMP_WORD = RecordHeader.offsets.timestamp / 4;

/**
 * One message from the driver.
 *
 * @example
 * ```ts ignore
 * for await (const message of subscription) {
 *   const { sequence, data }: Message = message;
 *   console.log(sequence, data.length);
 * }
 * ```
 */
export interface Message {
  /** Per-channel sequence number from 0; a gap means messages were dropped. */
  sequence: number;
  /** The driver's `KeQueryPerformanceCounter` when it wrote the message. */
  timestamp: number;
  /** The payload. */
  data: Uint8Array;
}

/**
 * Records laid out as in the ring (`KBRIDGE_RECORD_HEADER`, payload, padding
 * to 8 bytes each), read where they lie. Valid until the next step of the
 * iteration that produced it: then the space goes back to the producer and
 * the batch reads as empty (`count` 0).
 *
 * @example
 * ```ts ignore
 * for await (const batch of subscription.batches()) {
 *   for (let i = 0; i < batch.count; i++) console.log(batch.sequence(i), batch.data(i).length);
 * }
 * ```
 */
export class MessageBatch implements Iterable<Message> {
  #bytes: Uint8Array = new Uint8Array(0);
  /** `#bytes`'s buffer and where `#bytes` starts in it: payload views are made from them. */
  #buffer: ArrayBufferLike = this.#bytes.buffer;
  #base = 0;
  #words: Uint32Array = new Uint32Array(0);
  /** Record header offsets in `#bytes`, then the end of the last record. */
  readonly #offsets: Int32Array<ArrayBuffer>;
  #count = 0;
  #release: (() => void) | undefined;

  /** Most bytes of records a batch takes (always one record at least). @internal */
  readonly maxBytes: number;

  /** A batch of at most `capacity` records and `maxBytes` bytes. @internal */
  constructor(capacity: number, maxBytes: number = Infinity) {
    this.#offsets = new Int32Array(capacity + 1);
    this.maxBytes = maxBytes;
  }

  /** Where the reader writes record offsets (`capacity` + 1 entries). @internal */
  get offsets(): Int32Array<ArrayBuffer> {
    return this.#offsets;
  }

  /**
   * Points the batch at `count` records of `bytes` found at
   * {@linkcode MessageBatch.offsets}; `release` gives them back. @internal
   */
  fill(bytes: Uint8Array, words: Uint32Array, count: number, release?: () => void): void {
    this.#bytes = bytes;
    this.#buffer = bytes.buffer;
    this.#base = bytes.byteOffset;
    this.#words = words;
    this.#count = count;
    this.#release = release;
  }

  /**
   * Gives the records back to the driver now (the next step of the iteration
   * does it otherwise); the batch reads as empty from then on.
   */
  release(): void {
    const release = this.#release;
    this.#count = 0;
    this.#release = undefined;
    release?.();
  }

  /** The number of messages. */
  get count(): number {
    return this.#count;
  }

  /** Every record of the batch, contiguous, headers and padding included (no copy). */
  get bytes(): Uint8Array {
    return this.#count === 0
      ? new Uint8Array(0)
      : this.#bytes.subarray(this.#offsets[0], this.#offsets[this.#count]);
  }

  #check(index: number): number {
    if (!(index >= 0 && index < this.#count && Number.isInteger(index))) {
      throw new ArgumentError(
        "MessageBatch",
        "index",
        `an integer in 0..${this.#count - 1}`,
        index,
      );
    }
    return this.#offsets[index] >> 2;
  }

  /** The sequence number of message `index`. */
  sequence(index: number): number {
    const word = this.#check(index) + SEQUENCE_WORD;
    return this.#words[word] + this.#words[word + 1] * 0x1_0000_0000;
  }

  /** The timestamp of message `index`. */
  timestamp(index: number): number {
    const word = this.#check(index) + TIMESTAMP_WORD;
    return this.#words[word] + this.#words[word + 1] * 0x1_0000_0000;
  }

  /** The payload of message `index`: a view, valid as long as the batch. */
  data(index: number): Uint8Array {
    const word = this.#check(index);
    return new Uint8Array(
      this.#buffer,
      this.#base + word * 4 + RECORD,
      this.#words[word + LENGTH_WORD],
    );
  }

  /** The messages, with views as `data`. */
  *[Symbol.iterator](): Iterator<Message> {
    for (let i = 0; i < this.#count; i++) {
      yield { sequence: this.sequence(i), timestamp: this.timestamp(i), data: this.data(i) };
    }
  }
}
