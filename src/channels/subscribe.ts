/**
 * Kernel → application messages: one {@linkcode Subscription} API over any
 * driver's channels, described by a {@linkcode ChannelProtocol} value.
 *
 * - `classic`: the app's event handle and a ring the driver maps into the app (MDL);
 * - `section`: a driver-created named section (the ring) and named event;
 * - `inverted`: overlapped IOCTLs kept pending, completed one per message.
 *
 * @module
 */
import type { Device } from "../io/device.ts";
import {
  ArgumentError,
  ChannelUnavailableError,
  checkInteger,
  ClosedError,
  KbridgeError,
} from "../core/errors.ts";
import { Win32Error } from "../core/win32_error.ts";
import { AdaptiveSpin, DEFAULT_POLL_MS } from "../io/adaptive_spin.ts";
import { createEvent, type KernelEvent, openEvent } from "../io/kernel_event.ts";
import { mapUserAddress, openSharedMemory, type SharedMemory } from "../io/shared_memory.ts";
import { MAX_PENDING, PendedRequests } from "../io/stream.ts";
import { type Message, MessageBatch } from "./batch.ts";
import type {
  ChannelName,
  ChannelProtocol,
  ClassicChannelSpec,
  InvertedChannelSpec,
  SectionChannelSpec,
} from "./protocol_spec.ts";
import { type MessageCallback, RingReader } from "./ring.ts";
import { RecordHeader, Ring } from "./ring_layout.ts";

const ERROR_INVALID_FUNCTION = 1;
const ERROR_NOT_SUPPORTED = 50;
const ERROR_BUSY = 170;
const ERROR_ALREADY_EXISTS = 183;
const STATUS_INVALID_DEVICE_REQUEST = 0xc000_0010;
/** Longest single wait; bounds how stale `dropped` and close can be. */
const WAIT_SLICE_MS = 1000;
/** Records per batch of the message iterator, and the default of `batches()`. */
const BATCH_MESSAGES = 1024;
/**
 * Most bytes the message iterator copies at once: small enough for the
 * allocator to reuse freed blocks instead of mapping fresh pages each time.
 */
const ITERATOR_COPY_BYTES = 1 << 18;
/** Bytes a batch of the inverted channel gathers its records into. */
const INVERTED_BATCH_BYTES = 1 << 18;
const CHANNELS: readonly ChannelName[] = ["classic", "section", "inverted"];
/** Longest poll window `pollMs` may ask for: a poll is meant to bridge short gaps only. */
const MAX_POLL_MS = 1000;

/**
 * Options of {@linkcode subscribe}.
 *
 * @example
 * ```ts ignore
 * const options: SubscribeOptions = { protocol, channel: "inverted", pending: 16 };
 * await using messages = subscribe(device, options);
 * ```
 */
export interface SubscribeOptions {
  /** How the driver offers its channels: its codes, layouts and names. */
  protocol: ChannelProtocol;
  /** The channel; "auto" (default) tries classic, then section, then inverted. */
  channel?: ChannelName | "auto";
  /** Ring data bytes for classic and section (power of two, default 1 MiB). */
  ringBytes?: number;
  /** Inverted channel: IOCTLs kept pending (default 8, 1..256). */
  pending?: number;
  /**
   * Ring channels (section, classic): how long (ms, default 4) the event loop
   * keeps polling the ring after messages came close together, before it
   * sleeps on the event. Polling catches the next message without the cost of
   * a wake-up from another thread; it adapts to the gap between messages (four
   * times the smoothed gap, none once it exceeds this) and yields to other
   * work every 0.5 ms. 0 turns it off: the lowest CPU use, the slowest wake-ups.
   */
  pollMs?: number;
}

/** A channel's reading side. */
interface Source {
  readonly channel: ChannelName;
  /** The largest record (header, payload, padding) the channel can hold. */
  readonly maxRecord: number;
  /** Calls back for ready messages (views valid during the callback); returns the count. */
  drainReady(callback: MessageCallback, max: number): number;
  /** Copies ready records (header, payload, padding to 8) into `target`; returns the bytes. */
  copyReady(target: Uint8Array): number;
  /** Points `batch` at ready records, kept until `batch.release()`; returns the count. */
  fillBatch(batch: MessageBatch): number;
  /** Resolves when messages may be ready (true), or on timeout/close/end (false). */
  waitForData(timeoutMs: number): Promise<boolean>;
  /** Blocks until messages may be ready (ring channels only: undefined otherwise). */
  waitForDataSync?(timeoutMs: number): boolean;
  /** True once no more messages can come. */
  readonly ended: boolean;
  /** Messages the driver dropped for this channel. */
  dropped(): number;
  /** Stops reading at once (nothing reads the memory after it returns); the Promise ends the rest. */
  close(): Promise<void>;
}

/** A ring channel: a ring in shared memory and an event to sleep on. */
class RingSource implements Source {
  readonly channel: ChannelName;
  readonly maxRecord: number;
  readonly #reader: RingReader;
  readonly #memory: SharedMemory;
  readonly #event: KernelEvent;
  readonly #release: () => void;
  readonly #spin: AdaptiveSpin;
  #closed = false;

  /**
   * Owns `memory` and `event`; `release` asks the driver to let go of the
   * channel; `maxMessage` is the largest payload (default: what the ring holds);
   * `pollMs` caps the poll before a sleep (see {@linkcode SubscribeOptions.pollMs}).
   */
  constructor(
    channel: ChannelName,
    memory: SharedMemory,
    event: KernelEvent,
    release: () => void,
    maxMessage: number = Infinity,
    pollMs: number = DEFAULT_POLL_MS,
  ) {
    this.#reader = new RingReader(memory.buffer);
    this.channel = channel;
    this.maxRecord = alignRecord(
      RecordHeader.size + Math.min(maxMessage, this.#reader.capacity - RecordHeader.size),
    );
    this.#memory = memory;
    this.#event = event;
    this.#release = release;
    this.#spin = new AdaptiveSpin(pollMs);
  }

  get ended(): boolean {
    return this.#closed || (this.#reader.producerClosed && !this.#reader.hasData);
  }

  drainReady(callback: MessageCallback, max: number): number {
    if (this.#closed) return 0;
    this.#reader.release();
    return this.#reader.drain(callback, max);
  }

  copyReady(target: Uint8Array): number {
    if (this.#closed) return 0;
    this.#reader.release();
    return this.#reader.copyRecords(target);
  }

  fillBatch(batch: MessageBatch): number {
    return this.#closed ? 0 : this.#reader.scan(batch);
  }

  /**
   * The handshake of the ring comment in kbridge_ring.h: announce the sleep
   * and re-check. True when the caller must sleep (and call `awake()` after).
   * The event is auto-reset, so a stale signal costs one empty wake-up at most.
   */
  #mustSleep(): boolean {
    const reader = this.#reader;
    reader.release();
    if (reader.hasData) return false;
    if (reader.prepareToSleep()) return true;
    reader.awake();
    return false;
  }

  /**
   * Polls the ring while messages come close together (nothing is armed
   * meanwhile: the producer signals only a consumer that announced its sleep),
   * then sleeps on the event with the handshake of {@linkcode RingSource.#mustSleep}.
   */
  async waitForData(timeoutMs: number): Promise<boolean> {
    if (this.#closed) return false;
    const reader = this.#reader;
    reader.release(); // a lossless producer may be waiting for that space
    const start = performance.now();
    if (
      await this.#spin.poll(
        () => this.#closed || reader.hasData || reader.producerClosed,
        timeoutMs,
      )
    ) {
      if (this.#closed) return false;
      this.#spin.arrived();
      return reader.hasData;
    }
    if (this.#closed) return false;
    if (!this.#mustSleep()) {
      this.#spin.arrived();
      return reader.hasData;
    }
    const left = Math.max(0, Math.ceil(timeoutMs - (performance.now() - start)));
    try {
      const woken = await this.#event.wait({ timeoutMs: left }) || reader.hasData;
      if (woken && !this.#closed) this.#spin.arrived();
      return woken;
    } catch (error) {
      if (error instanceof ClosedError && this.#closed) return false;
      throw error;
    } finally {
      if (!this.#closed) reader.awake();
    }
  }

  waitForDataSync(timeoutMs: number): boolean {
    if (this.#closed) return false;
    if (!this.#mustSleep()) return this.#reader.hasData;
    try {
      return this.#event.waitSync(timeoutMs) || this.#reader.hasData;
    } finally {
      this.#reader.awake();
    }
  }

  dropped(): number {
    return this.#closed ? 0 : this.#reader.dropped;
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    // Detach (and unmap) first: from here on nothing reads the ring, whatever the driver does next.
    this.#memory.close();
    this.#event.close();
    this.#release();
    return Promise.resolve();
  }
}

/** The span of a record of `bytes` (header and payload): padded to the ring's alignment. */
function alignRecord(bytes: number): number {
  return (bytes + Ring.ALIGN - 1) & ~(Ring.ALIGN - 1);
}

/**
 * Asks the driver to release a channel. The driver also releases it when the
 * handle closes, so a closed device or a driver that is gone is not an error here.
 */
function releaseOnDriver(device: Device, code: number): void {
  if (device.closed) return;
  try {
    device.ioctl(code);
  } catch (error) {
    if (!(error instanceof Win32Error)) throw error;
  }
}

/** Why a Win32 error makes a channel unavailable (so "auto" tries the next), or undefined. */
function unavailableReason(error: unknown): string | undefined {
  if (!(error instanceof Win32Error)) return undefined;
  if (error.code === ERROR_INVALID_FUNCTION || error.ntStatus === STATUS_INVALID_DEVICE_REQUEST) {
    return "the driver does not know the control code";
  }
  switch (error.code) {
    case ERROR_NOT_SUPPORTED:
      return "the driver cannot offer it on this host";
    case ERROR_BUSY:
      return "another subscriber holds it";
    case ERROR_ALREADY_EXISTS:
      return "its object names are taken (by another driver or another program)";
  }
  return undefined;
}

/** Sends a channel's open request; the errors that mean "not here" become ChannelUnavailableError. */
function openRequest(
  device: Device,
  channel: ChannelName,
  protocol: ChannelProtocol,
  code: number,
  input: Uint8Array,
  replySize: number,
): Uint8Array {
  try {
    return device.ioctl(code, input, replySize);
  } catch (error) {
    const reason = unavailableReason(error);
    if (reason === undefined) throw error;
    throw new ChannelUnavailableError(
      channel,
      `${protocol.name}: ${reason} (${(error as Error).message})`,
      { cause: error },
    );
  }
}

/** The section channel: the driver's named section and event, opened by the names of its reply. */
function openSection(
  device: Device,
  protocol: ChannelProtocol,
  spec: SectionChannelSpec,
  ringBytes: number,
  pollMs: number,
): RingSource {
  const reply = spec.reply(
    openRequest(device, "section", protocol, spec.open, spec.request(ringBytes), spec.replySize),
  );
  const opened: { close(): void }[] = [];
  try {
    const memory = openSharedMemory(reply.section, { size: reply.viewBytes });
    opened.push(memory);
    const event = openEvent(reply.event);
    opened.push(event);
    return new RingSource(
      "section",
      memory,
      event,
      () => releaseOnDriver(device, spec.close),
      protocol.maxMessage,
      pollMs,
    );
  } catch (error) {
    for (const object of opened) object.close();
    releaseOnDriver(device, spec.close);
    throw error;
  }
}

/** The classic channel: our event handle in, the driver's ring mapped into this process out. */
function openClassic(
  device: Device,
  protocol: ChannelProtocol,
  spec: ClassicChannelSpec,
  ringBytes: number,
  pollMs: number,
): RingSource {
  const event = createEvent();
  let memory: SharedMemory | undefined;
  try {
    const reply = spec.reply(
      openRequest(
        device,
        "classic",
        protocol,
        spec.open,
        spec.request(event, ringBytes),
        spec.replySize,
      ),
    );
    if (reply.userAddress === 0n) {
      releaseOnDriver(device, spec.close);
      throw new KbridgeError(`kbridge: ${protocol.name} returned a null classic mapping`);
    }
    // The driver owns the mapping and unmaps it at its close code (the source detaches it first).
    memory = mapUserAddress(reply.userAddress, reply.viewBytes);
    return new RingSource(
      "classic",
      memory,
      event,
      () => releaseOnDriver(device, spec.close),
      protocol.maxMessage,
      pollMs,
    );
  } catch (error) {
    memory?.close();
    event.close();
    throw error;
  }
}

/** Reads a record's header field pair (low, high words) as a number. */
function wordPair(view: DataView, offset: number): number {
  return view.getUint32(offset, true) + view.getUint32(offset + 4, true) * 0x1_0000_0000;
}

/** The inverted call: N overlapped requests of the wait code kept pending. */
class InvertedSource implements Source {
  readonly channel = "inverted" as const;
  readonly maxRecord: number;
  readonly #device: Device;
  readonly #spec: InvertedChannelSpec;
  readonly #requests: PendedRequests;
  readonly #droppedAtStart: number;
  #batchBytes: Uint8Array<ArrayBuffer> | undefined;
  #batchWords: Uint32Array<ArrayBuffer> | undefined;

  constructor(device: Device, spec: InvertedChannelSpec, maxMessage: number, pending: number) {
    if (!device.overlapped) {
      throw new ArgumentError(
        "subscribe",
        "device",
        "opened with { overlapped: true } for the inverted channel",
        device.path,
      );
    }
    this.#device = device;
    this.#spec = spec;
    this.maxRecord = alignRecord(RecordHeader.size + maxMessage);
    this.#droppedAtStart = spec.dropped?.(device) ?? 0;
    this.#requests = new PendedRequests(
      device,
      spec.wait,
      null,
      RecordHeader.size + maxMessage,
      pending,
    );
  }

  get ended(): boolean {
    return this.#requests.ended;
  }

  drainReady(callback: MessageCallback, max: number): number {
    const requests = this.#requests;
    let count = 0;
    while (count < max) {
      const record = requests.take();
      if (record === undefined) break;
      const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
      const length = Math.min(view.getUint32(0, true), record.length - RecordHeader.size);
      count++;
      try {
        callback(
          record.subarray(RecordHeader.size, RecordHeader.size + length),
          wordPair(view, RecordHeader.offsets.sequence),
          wordPair(view, RecordHeader.offsets.timestamp),
        );
      } finally {
        // Issued again once its message is consumed, with the same buffer: a slow
        // consumer holds fewer requests, and the driver queues (up to its limit).
        requests.post(new Uint8Array(record.buffer));
      }
    }
    return count;
  }

  copyReady(target: Uint8Array): number {
    return this.#gather(target, target.length, undefined).bytes;
  }

  /**
   * Copies ready records into `target` (within `budget` bytes, and at most
   * `offsets.length - 1` records when `offsets` records where each starts),
   * re-issuing their requests; returns the bytes and records copied.
   */
  #gather(
    target: Uint8Array,
    budget: number,
    offsets: Int32Array | undefined,
  ): { bytes: number; count: number } {
    const requests = this.#requests;
    const max = offsets === undefined ? Infinity : offsets.length - 1;
    let copied = 0;
    let count = 0;
    for (let record = requests.peek(); record !== undefined; record = requests.peek()) {
      const span = alignRecord(record.length);
      if (count === max || copied + span > target.length || (count > 0 && copied + span > budget)) {
        break;
      }
      requests.take();
      target.set(record, copied);
      target.fill(0, copied + record.length, copied + span);
      if (offsets !== undefined) offsets[count] = copied;
      count++;
      copied += span;
      requests.post(new Uint8Array(record.buffer));
    }
    if (offsets !== undefined) offsets[count] = copied;
    if (copied === 0) requests.take(); // throws the error that ended the stream, if any
    return { bytes: copied, count };
  }

  fillBatch(batch: MessageBatch): number {
    this.#batchBytes ??= new Uint8Array(Math.max(INVERTED_BATCH_BYTES, this.maxRecord));
    this.#batchWords ??= new Uint32Array(this.#batchBytes.buffer);
    const { count } = this.#gather(this.#batchBytes, batch.maxBytes, batch.offsets);
    batch.fill(this.#batchBytes, this.#batchWords, count);
    return count;
  }

  waitForData(timeoutMs: number): Promise<boolean> {
    return this.#requests.whenReady(timeoutMs);
  }

  dropped(): number {
    return this.#requests.ended || this.#device.closed || this.#spec.dropped === undefined
      ? 0
      : this.#spec.dropped(this.#device) - this.#droppedAtStart;
  }

  close(): Promise<void> {
    return this.#requests.close();
  }
}

/**
 * A stream of messages from a driver. Iterate it with `for await` (messages
 * own their data), take zero-copy batches with {@linkcode Subscription.batches},
 * or use {@linkcode Subscription.drain} (views, valid inside the callback) and
 * {@linkcode Subscription.readInto} (copies of whole records).
 *
 * @example
 * ```ts ignore
 * await using device = openDevice("\\\\.\\KbSample");
 * await using messages = subscribe(device, { protocol, channel: "auto" });
 * for await (const message of messages) console.log(message.sequence, message.data.length);
 * ```
 */
export class Subscription implements AsyncIterable<Message>, AsyncDisposable {
  readonly #source: Source;
  readonly #device: Device | undefined;
  #closing: Promise<void> | undefined;

  /**
   * Use {@linkcode subscribe} or {@linkcode ringSubscription}. Registers with
   * `device`, which closes it before its handle. @internal
   */
  constructor(source: Source, device?: Device) {
    this.#source = source;
    this.#device = device;
    device?.addDependent(this);
  }

  /** The channel in use (what "auto" chose). */
  get channel(): ChannelName {
    return this.#source.channel;
  }

  /** Whether the subscription is closed (by `close()`, its device, or the end of an iteration). */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Messages the driver dropped on this channel since the subscription began. */
  get dropped(): number {
    return this.#source.dropped();
  }

  /**
   * Waits until at least one message is ready (or `timeoutMs` passes, or the
   * stream ends), then calls `callback` for up to `max` ready messages.
   * `data` is a view of shared memory, valid only during the callback.
   * Resolves with the number of messages (0 on timeout or end).
   */
  async drain(
    callback: MessageCallback,
    options: { max?: number; timeoutMs?: number } = {},
  ): Promise<number> {
    const max = options.max ?? Infinity;
    const deadline = this.#deadline("Subscription.drain", options.timeoutMs);
    for (;;) {
      const count = this.#source.drainReady(callback, max);
      if (count > 0 || this.#source.ended) return count;
      if (!(await this.#waitUntil(deadline))) return 0;
    }
  }

  /** When a wait of `timeoutMs` (checked; none: forever) ends. */
  #deadline(fn: string, timeoutMs: number | undefined): number {
    if (timeoutMs === undefined) return Infinity;
    return Date.now() + checkInteger(fn, "options.timeoutMs", timeoutMs, 0, 0x7fff_ffff);
  }

  /** Waits for data up to `deadline`, in slices; false once the deadline has passed. */
  async #waitUntil(deadline: number): Promise<boolean> {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await this.#source.waitForData(Math.min(left, WAIT_SLICE_MS));
    return true;
  }

  /**
   * {@linkcode Subscription.drain} that blocks the calling thread while it
   * waits, for the lowest wake-up latency: call it in a Worker, never on a
   * thread whose event loop must keep running. Ring channels (section,
   * classic) only.
   *
   * @throws {ChannelUnavailableError} on the inverted channel, whose completions need the event loop
   *
   * @example
   * ```ts ignore
   * // worker.ts
   * await using device = openDevice("\\\\.\\Kbridge");
   * await using messages = subscribe(device, { protocol: referenceProtocol, channel: "section" });
   * for (;;) messages.drainSync((data, sequence) => self.postMessage({ sequence, size: data.length }));
   * ```
   */
  drainSync(callback: MessageCallback, options: { max?: number; timeoutMs?: number } = {}): number {
    const source = this.#source;
    if (source.waitForDataSync === undefined) {
      throw new ChannelUnavailableError(
        source.channel,
        "drainSync needs a ring channel (section or classic): the inverted call completes through the event loop",
      );
    }
    const max = options.max ?? Infinity;
    const deadline = this.#deadline("Subscription.drainSync", options.timeoutMs);
    for (;;) {
      const count = source.drainReady(callback, max);
      if (count > 0 || source.ended) return count;
      const left = deadline - Date.now();
      if (left <= 0) return 0;
      source.waitForDataSync(Math.min(left, WAIT_SLICE_MS));
    }
  }

  /** Waits for messages like {@linkcode Subscription.drain} and returns copies of up to `max`. */
  async readMany(max: number = 1024, options: { timeoutMs?: number } = {}): Promise<Message[]> {
    checkInteger("Subscription.readMany", "max", max, 1, 0x7fff_ffff);
    const messages: Message[] = [];
    await this.drain(
      (data, sequence, timestamp) => messages.push({ sequence, timestamp, data: data.slice() }),
      { max, timeoutMs: options.timeoutMs },
    );
    return messages;
  }

  /**
   * Waits like {@linkcode Subscription.drain}, then copies whole records into
   * `target` — each a `KBRIDGE_RECORD_HEADER` ({@linkcode RecordHeader}:
   * length, flags, sequence, timestamp), the payload, and padding to 8 bytes —
   * as many as fit. Resolves with the bytes written (0 on timeout or end).
   * `target` must hold the channel's largest record: `RecordHeader.size` +
   * the protocol's `maxMessage`, rounded up to 8; it starts on an 8-byte
   * boundary, so each header and payload keeps the ring's alignment. The
   * records are checked after the copy: what `target` holds is what was checked.
   *
   * @example
   * ```ts ignore
   * const batch = new Uint8Array(1 << 20);
   * const bytes = await messages.readInto(batch, { timeoutMs: 1000 });
   * const words = new Int32Array(batch.buffer); // records start on the 8-byte grid
   * // Stepping a word index runs faster than a byte offset; a span is a whole number of 8 bytes.
   * for (let word = 0; word < bytes >> 2;) {
   *   const length = words[word];
   *   const start = word * 4 + RecordHeader.size;
   *   const payload = batch.subarray(start, start + length);
   *   word += ((RecordHeader.size + length + 7) >> 3) << 1;
   * }
   * ```
   */
  async readInto(target: Uint8Array, options: { timeoutMs?: number } = {}): Promise<number> {
    const least = this.#source.maxRecord;
    if (
      !(target instanceof Uint8Array) || target.length < least ||
      target.byteOffset % Ring.ALIGN !== 0
    ) {
      throw new ArgumentError(
        "Subscription.readInto",
        "target",
        `a Uint8Array of at least ${least} bytes starting on an 8-byte boundary`,
        target,
      );
    }
    const deadline = this.#deadline("Subscription.readInto", options.timeoutMs);
    for (;;) {
      const copied = this.#source.copyReady(target);
      if (copied > 0 || this.#source.ended) return copied;
      if (!(await this.#waitUntil(deadline))) return 0;
    }
  }

  /**
   * Batches of ready messages, read in place (no copy): each
   * {@linkcode MessageBatch} is valid until the next step of the loop, which
   * gives its space back to the driver. The fastest way to read. Leaving the
   * loop closes the subscription, as for the message iterator.
   *
   * @example
   * ```ts ignore
   * for await (const batch of messages.batches()) {
   *   for (let i = 0; i < batch.count; i++) total += batch.data(i).length;
   * }
   * ```
   */
  batches(options: { maxMessages?: number } = {}): AsyncIterableIterator<MessageBatch> {
    const max = checkInteger(
      "Subscription.batches",
      "options.maxMessages",
      options.maxMessages ?? BATCH_MESSAGES,
      1,
      1 << 20,
    );
    return new BatchIterator(this, this.#source, new MessageBatch(max));
  }

  /** Waits for data as `drain` does (forever, in slices); false once the source ended. @internal */
  async waitForBatch(): Promise<void> {
    await this.#waitUntil(Infinity);
  }

  /**
   * Yields messages until the driver ends the stream or the subscription is
   * closed. Each message's `data` is a view of a copy of its batch, owned by
   * the caller (it keeps that batch's copy alive; `slice()` it to keep one
   * message alone). Leaving the loop (`break`, `return`, a throw) closes the
   * subscription, as it cancels a stream.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<Message> {
    return new MessageIterator(
      this,
      this.#source,
      new MessageBatch(BATCH_MESSAGES, ITERATOR_COPY_BYTES),
    );
  }

  /** Stops the stream and releases everything it holds (driver side too). Idempotent. */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#device?.removeDependent(this);
      this.#closing = this.#source.close();
    }
    return this.#closing;
  }

  /** Same as {@linkcode Subscription.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/** The batch iterator: one {@linkcode MessageBatch} refilled at each step. */
class BatchIterator implements AsyncIterableIterator<MessageBatch> {
  readonly #subscription: Subscription;
  readonly #source: Source;
  readonly #batch: MessageBatch;

  constructor(subscription: Subscription, source: Source, batch: MessageBatch) {
    this.#subscription = subscription;
    this.#source = source;
    this.#batch = batch;
  }

  next(): Promise<IteratorResult<MessageBatch>> {
    const source = this.#source;
    const batch = this.#batch;
    batch.release();
    try {
      if (!this.#subscription.closed && source.fillBatch(batch) > 0) {
        return Promise.resolve({ done: false, value: batch });
      }
    } catch (error) {
      return this.#fail(error);
    }
    return this.#wait();
  }

  async #wait(): Promise<IteratorResult<MessageBatch>> {
    const source = this.#source;
    const batch = this.#batch;
    for (;;) {
      if (this.#subscription.closed || source.ended) return this.return();
      await this.#subscription.waitForBatch();
      try {
        if (!this.#subscription.closed && source.fillBatch(batch) > 0) {
          return { done: false, value: batch };
        }
      } catch (error) {
        return this.#fail(error);
      }
    }
  }

  async #fail(error: unknown): Promise<never> {
    await this.#subscription.close();
    throw error;
  }

  async return(): Promise<IteratorResult<MessageBatch>> {
    this.#batch.release();
    await this.#subscription.close();
    return DONE;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<MessageBatch> {
    return this;
  }
}

/**
 * The message iterator: copies a batch at a time (one `slice()` per batch),
 * gives the batch back to the driver at once, then hands out messages whose
 * `data` are views of that copy — no Promise is made per message beyond the
 * resolved one `next()` returns.
 */
class MessageIterator implements AsyncIterableIterator<Message> {
  readonly #batches: BatchIterator;
  readonly #offsets: Int32Array;
  /** The buffer of the current batch's copy (it starts at its byte 0). */
  #copy: ArrayBuffer = new ArrayBuffer(0);
  #words: Uint32Array<ArrayBuffer> = new Uint32Array(0);
  #base = 0;
  #index = 0;
  #count = 0;

  constructor(subscription: Subscription, source: Source, batch: MessageBatch) {
    this.#batches = new BatchIterator(subscription, source, batch);
    this.#offsets = batch.offsets;
  }

  next(): Promise<IteratorResult<Message>> {
    if (this.#index < this.#count) return Promise.resolve({ done: false, value: this.#message() });
    return this.#batches.next().then((step) => {
      if (step.done) return DONE;
      this.#take(step.value);
      return { done: false, value: this.#message() };
    });
  }

  #take(batch: MessageBatch): void {
    const bytes = batch.bytes;
    // A copy whose start keeps the 8-byte alignment the records have in the ring.
    const copy = bytes.slice();
    this.#copy = copy.buffer;
    this.#words = new Uint32Array(this.#copy, 0, copy.length >> 2);
    this.#base = this.#offsets[0];
    this.#index = 0;
    this.#count = batch.count;
    batch.release(); // copied: the driver may reuse the space now
  }

  #message(): Message {
    const at = this.#offsets[this.#index++] - this.#base;
    const words = this.#words;
    const word = at >> 2;
    const start = at + RecordHeader.size;
    return {
      sequence: words[word + 2] + words[word + 3] * 0x1_0000_0000,
      timestamp: words[word + 4] + words[word + 5] * 0x1_0000_0000,
      data: new Uint8Array(this.#copy, start, words[word]),
    };
  }

  async return(): Promise<IteratorResult<Message>> {
    this.#count = 0;
    await this.#batches.return();
    return DONE;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Message> {
    return this;
  }
}

function openSource(
  device: Device,
  protocol: ChannelProtocol,
  channel: ChannelName,
  options: SubscribeOptions,
): Source {
  const ringBytes = options.ringBytes ?? 1 << 20;
  const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  switch (channel) {
    case "classic":
      return openClassic(device, protocol, protocol.classic!, ringBytes, pollMs);
    case "section":
      return openSection(device, protocol, protocol.section!, ringBytes, pollMs);
    case "inverted":
      return new InvertedSource(
        device,
        protocol.inverted!,
        protocol.maxMessage,
        options.pending ?? 8,
      );
  }
}

/** The channels the driver says it offers (all the protocol has, without a probe). */
function offeredChannels(device: Device, protocol: ChannelProtocol): readonly ChannelName[] {
  const probe = protocol.probe;
  if (probe === undefined) return CHANNELS;
  let reply;
  try {
    reply = device.ioctl(probe.code, null, probe.replySize);
  } catch (error) {
    const reason = unavailableReason(error);
    if (reason === undefined) throw error;
    throw new ChannelUnavailableError(
      "auto",
      `${protocol.name}: the probe failed, ${reason} (${(error as Error).message}); ` +
        "is this the driver the protocol describes?",
      { cause: error },
    );
  }
  return probe.channels(reply);
}

function checkProtocol(protocol: unknown): ChannelProtocol {
  if (
    typeof protocol !== "object" || protocol === null ||
    typeof (protocol as ChannelProtocol).name !== "string" ||
    !Number.isInteger((protocol as ChannelProtocol).maxMessage)
  ) {
    throw new ArgumentError(
      "subscribe",
      "options.protocol",
      "a ChannelProtocol (e.g. kitProtocol(...) or referenceProtocol)",
      protocol,
    );
  }
  return protocol as ChannelProtocol;
}

/**
 * Subscribes to a driver's messages on a channel its `protocol` describes.
 * With `channel: "auto"` it takes the first that works of classic, section
 * and inverted: a channel the driver does not know (an unknown control code),
 * cannot offer on this host, or whose names are taken is skipped, and the
 * reasons are in the error when none works.
 *
 * @throws {ChannelUnavailableError} when the channel (or, for "auto", every channel) cannot be used;
 *   its `cause` is the driver's error
 *
 * @example
 * ```ts ignore
 * await using device = openDevice("\\\\.\\KbSample");
 * await using messages = subscribe(device, { protocol, channel: "section", ringBytes: 1 << 16 });
 * const batch = await messages.readMany(100, { timeoutMs: 1000 });
 * ```
 */
export function subscribe(device: Device, options: SubscribeOptions): Subscription {
  if (typeof options !== "object" || options === null) {
    throw new ArgumentError("subscribe", "options", "an object with a protocol", options);
  }
  const protocol = checkProtocol(options.protocol);
  const channel = options.channel ?? "auto";
  if (channel !== "auto" && !CHANNELS.includes(channel)) {
    throw new ArgumentError(
      "subscribe",
      "options.channel",
      '"auto", "section", "inverted" or "classic"',
      channel,
    );
  }
  if (options.ringBytes !== undefined) {
    const bytes = checkInteger(
      "subscribe",
      "options.ringBytes",
      options.ringBytes,
      Ring.MIN_BYTES,
      Ring.MAX_BYTES,
    );
    if ((bytes & (bytes - 1)) !== 0) {
      throw new ArgumentError("subscribe", "options.ringBytes", "a power of two", bytes);
    }
  }
  checkInteger("subscribe", "options.pending", options.pending ?? 8, 1, MAX_PENDING);
  checkInteger("subscribe", "options.pollMs", options.pollMs ?? DEFAULT_POLL_MS, 0, MAX_POLL_MS);
  if (device.closed) throw new ClosedError(`device ${device.path}`);
  const candidates = channel === "auto" ? CHANNELS : [channel];
  const missing = candidates.filter((candidate) => protocol[candidate] === undefined);
  if (channel !== "auto" && missing.length > 0) {
    throw new ChannelUnavailableError(channel, `${protocol.name} has no ${channel} channel`);
  }
  const offered = offeredChannels(device, protocol);
  const reasons: string[] = [];
  for (const candidate of candidates) {
    if (protocol[candidate] === undefined) continue;
    if (!offered.includes(candidate)) {
      reasons.push(`${candidate}: the driver does not offer it`);
      continue;
    }
    try {
      return new Subscription(openSource(device, protocol, candidate, options), device);
    } catch (error) {
      if (!(error instanceof ChannelUnavailableError) || channel !== "auto") throw error;
      reasons.push(`${candidate}: ${error.reason}`);
    }
  }
  throw new ChannelUnavailableError(
    channel,
    reasons.length === 0 ? `${protocol.name} describes no channel` : reasons.join("; "),
  );
}

/**
 * A subscription over any shared memory laid out as the kbridge ring
 * (`KBRIDGE_RING_HEADER` + data, see {@linkcode RingHeader}), woken by
 * `event`: the building block under the section and classic channels, for a
 * driver whose ring is set up some other way. The subscription owns both and
 * closes them when it closes.
 *
 * @throws {KbridgeError} when the memory does not hold a kbridge ring header
 *
 * @example
 * ```ts ignore
 * device.ioctl(MY_RING_OPEN);
 * await using messages = ringSubscription(
 *   openSharedMemory("Global\\MyRing"),
 *   openEvent("Global\\MyRingEvent"),
 * );
 * for await (const message of messages) console.log(message.data.length);
 * ```
 */
export function ringSubscription(memory: SharedMemory, event: KernelEvent): Subscription {
  if (memory.closed) throw new ClosedError(`shared memory ${memory.name}`);
  if (event.closed) throw new ClosedError(`event ${event.name ?? ""}`.trim());
  return new Subscription(new RingSource("section", memory, event, () => {}));
}
