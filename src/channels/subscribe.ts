/**
 * Kernel → application messages: one {@linkcode Subscription} API over the
 * reference protocol's three channels.
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
  KbridgeError,
} from "../core/errors.ts";
import { Win32Error } from "../core/win32_error.ts";
import { createEvent, EventWaiter, openNamedEvent } from "../io/event.ts";
import { kernel32, pointerValue, wideString } from "../core/native.ts";
import {
  Capability,
  ClassicInfo,
  ClassicRequest,
  IOCTL,
  Names,
  Protocol,
  SectionInfo,
  SectionRequest,
  Stats,
  VersionInfo,
} from "../reference/protocol.ts";
import { type MessageCallback, RingReader } from "./ring.ts";
import { RecordHeader, Ring } from "./ring_layout.ts";

const FILE_MAP_READ_WRITE = 0x6;
const ERROR_NOT_SUPPORTED = 50;
const ERROR_BUSY = 170;
/** Longest single wait; bounds how stale `dropped` and close can be. */
const WAIT_SLICE_MS = 1000;

/**
 * A channel of the reference protocol.
 *
 * @example
 * ```ts ignore
 * const channel: ChannelName = subscription.channel; // what "auto" chose
 * ```
 */
export type ChannelName = "section" | "inverted" | "classic";

/**
 * Options of {@linkcode subscribe}.
 *
 * @example
 * ```ts ignore
 * const options: SubscribeOptions = { channel: "inverted", pending: 16 };
 * await using messages = subscribe(device, options);
 * ```
 */
export interface SubscribeOptions {
  /** The channel; "auto" (default) tries classic, then section, then inverted. */
  channel?: ChannelName | "auto";
  /** Ring data bytes for classic and section (power of two, default 1 MiB). */
  ringBytes?: number;
  /** Inverted channel: IOCTLs kept pending (default 8, 1..256). */
  pending?: number;
}

/**
 * One message from the driver.
 *
 * @example
 * ```ts ignore
 * for await (const message of subscribe(device)) {
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
  /** The payload: a copy, owned by the caller. */
  data: Uint8Array;
}

/** A channel's reading side. */
interface Source {
  readonly channel: ChannelName;
  /** Calls back for ready messages (views valid during the callback); returns the count. */
  drainReady(callback: MessageCallback, max: number): number;
  /** Copies ready records (header, payload, padding to 8) into `target`; returns the bytes. */
  copyReady(target: Uint8Array): number;
  /** Resolves when messages may be ready (true), or on timeout/close/end (false). */
  waitForData(timeoutMs: number): Promise<boolean>;
  /** Blocks until messages may be ready (ring channels only: undefined otherwise). */
  waitForDataSync?(timeoutMs: number): boolean;
  /** True once no more messages can come. */
  readonly ended: boolean;
  /** Messages the driver dropped for this channel. */
  dropped(): number;
  close(): Promise<void>;
}

/** A ring channel (section or classic): a ring in shared memory and an event to sleep on. */
class RingSource implements Source {
  readonly channel: "section" | "classic";
  readonly #device: Device;
  readonly #reader: RingReader;
  readonly #waiter: EventWaiter;
  readonly #closeCode: number;
  readonly #unmap: () => void;
  #closed = false;

  /** `unmap` releases the process's view of the ring; `closeCode` asks the driver to let go. */
  constructor(
    channel: "section" | "classic",
    device: Device,
    reader: RingReader,
    waiter: EventWaiter,
    closeCode: number,
    unmap: () => void,
  ) {
    this.channel = channel;
    this.#device = device;
    this.#reader = reader;
    this.#waiter = waiter;
    this.#closeCode = closeCode;
    this.#unmap = unmap;
  }

  get ended(): boolean {
    return this.#closed || (this.#reader.producerClosed && !this.#reader.hasData);
  }

  drainReady(callback: MessageCallback, max: number): number {
    return this.#closed ? 0 : this.#reader.drain(callback, max);
  }

  copyReady(target: Uint8Array): number {
    return this.#closed ? 0 : this.#reader.copyRecords(target);
  }

  /**
   * The handshake of the ring comment in kbridge.h: announce the sleep and
   * re-check. True when the caller must sleep (and call `awake()` after).
   * Both events are auto-reset, so a stale signal costs one empty wake-up at most.
   */
  #mustSleep(): boolean {
    const reader = this.#reader;
    if (reader.hasData) return false;
    if (reader.prepareToSleep()) return true;
    reader.awake();
    return false;
  }

  async waitForData(timeoutMs: number): Promise<boolean> {
    if (!this.#mustSleep()) return this.#reader.hasData;
    try {
      return await this.#waiter.wait(timeoutMs) || this.#reader.hasData;
    } finally {
      this.#reader.awake();
    }
  }

  waitForDataSync(timeoutMs: number): boolean {
    if (!this.#mustSleep()) return this.#reader.hasData;
    try {
      return this.#waiter.waitSync(timeoutMs) || this.#reader.hasData;
    } finally {
      this.#reader.awake();
    }
  }

  dropped(): number {
    return this.#closed ? 0 : this.#reader.dropped;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#waiter.close();
    this.#unmap();
    releaseOnDriver(this.#device, this.#closeCode);
  }
}

/**
 * Asks the driver to release a channel. The driver also releases it when the
 * handle closes, so a driver that is gone (unloaded, crashed) is not an error here.
 */
function releaseOnDriver(device: Device, code: number): void {
  if (device.closed) return;
  try {
    device.ioctl(code);
  } catch (error) {
    if (!(error instanceof Win32Error)) throw error;
  }
}

/** The section channel: the driver's named section and event, opened by name. */
function openSection(device: Device, ringBytes: number): RingSource {
  let info;
  try {
    info = SectionInfo.decode(
      device.ioctl(
        IOCTL.SECTION_OPEN,
        SectionRequest.encode({ ringBytes, reserved: 0 }),
        SectionInfo.size,
      ),
    );
  } catch (error) {
    if (error instanceof Win32Error && error.code === ERROR_BUSY) {
      throw new ChannelUnavailableError("section", "another subscriber holds the section", {
        cause: error,
      });
    }
    throw error;
  }
  const k32 = kernel32("OpenFileMappingW");
  let mapping: Deno.PointerObject | null = null;
  let view: Deno.PointerObject | null = null;
  const unmap = () => {
    if (view !== null) k32.UnmapViewOfFile(view);
    if (mapping !== null) k32.CloseHandle(mapping);
  };
  try {
    mapping = k32.OpenFileMappingW(FILE_MAP_READ_WRITE, 0, wideString(Names.SECTION));
    if (mapping === null) {
      throw new Win32Error({
        code: k32.GetLastError(),
        call: "OpenFileMappingW",
        detail: Names.SECTION,
      });
    }
    view = k32.MapViewOfFile(mapping, FILE_MAP_READ_WRITE, 0, 0, BigInt(info.viewBytes));
    if (view === null) {
      throw new Win32Error({
        code: k32.GetLastError(),
        call: "MapViewOfFile",
        detail: Names.SECTION,
      });
    }
    const reader = new RingReader(Deno.UnsafePointerView.getArrayBuffer(view, info.viewBytes));
    const waiter = new EventWaiter(openNamedEvent(Names.EVENT));
    return new RingSource("section", device, reader, waiter, IOCTL.SECTION_CLOSE, unmap);
  } catch (error) {
    unmap();
    releaseOnDriver(device, IOCTL.SECTION_CLOSE);
    throw error;
  }
}

/** The classic channel: our event handle, the driver's ring mapped into this process. */
function openClassic(device: Device, ringBytes: number): RingSource {
  const event = createEvent(false);
  let info;
  try {
    const request = ClassicRequest.encode({
      eventHandle: pointerValue(event),
      ringBytes,
      reserved: 0,
    });
    info = ClassicInfo.decode(device.ioctl(IOCTL.CLASSIC_OPEN, request, ClassicInfo.size));
  } catch (error) {
    kernel32("CloseHandle").CloseHandle(event);
    if (error instanceof Win32Error && error.code === ERROR_NOT_SUPPORTED) {
      throw new ChannelUnavailableError(
        "classic",
        "the driver cannot reference this process's event or map memory into it on this host " +
          "(under Wine the driver runs in another process)",
        { cause: error },
      );
    }
    throw error;
  }
  const base = Deno.UnsafePointer.create(info.userAddress);
  if (base === null) {
    kernel32("CloseHandle").CloseHandle(event);
    releaseOnDriver(device, IOCTL.CLASSIC_CLOSE);
    throw new KbridgeError("kbridge: the driver returned a null classic mapping");
  }
  const reader = new RingReader(Deno.UnsafePointerView.getArrayBuffer(base, info.viewBytes));
  // The driver owns the mapping and unmaps it at CLASSIC_CLOSE.
  return new RingSource(
    "classic",
    device,
    reader,
    new EventWaiter(event),
    IOCTL.CLASSIC_CLOSE,
    () => {},
  );
}

/** The inverted call: N overlapped INVERTED_WAIT requests kept pending. */
class InvertedSource implements Source {
  readonly channel = "inverted" as const;
  readonly #device: Device;
  readonly #abort = new AbortController();
  readonly #ready: Uint8Array[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  #wake: (() => void) | undefined;
  #error: unknown;
  #closed = false;
  readonly #droppedAtStart: bigint;

  constructor(device: Device, pending: number) {
    if (!device.overlapped) {
      throw new ArgumentError(
        "subscribe",
        "device",
        "opened with { overlapped: true } for the inverted channel",
        device.path,
      );
    }
    this.#device = device;
    this.#droppedAtStart = this.#overflow();
    for (let i = 0; i < pending; i++) this.#post();
  }

  #overflow(): bigint {
    return Stats.decode(this.#device.ioctl(IOCTL.GET_STATS, null, Stats.size)).invertedOverflow;
  }

  /** Issues one INVERTED_WAIT; `output` is a recycled buffer or a new one. */
  #post(output: Uint8Array = new Uint8Array(RecordHeader.size + Protocol.MAX_MESSAGE)): void {
    const request = this.#device.ioctlAsync(IOCTL.INVERTED_WAIT, null, output, {
      signal: this.#abort.signal,
    })
      .then(
        (record) => {
          this.#ready.push(record);
        },
        (error) => {
          if (!this.#closed) this.#error ??= error;
        },
      )
      .finally(() => {
        this.#inFlight.delete(request);
        this.#wake?.();
      });
    this.#inFlight.add(request);
  }

  get ended(): boolean {
    return this.#closed || (this.#error !== undefined && this.#ready.length === 0);
  }

  drainReady(callback: MessageCallback, max: number): number {
    let count = 0;
    while (count < max && this.#ready.length > 0) {
      const record = this.#ready.shift()!;
      const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
      const length = view.getUint32(RecordHeader.offsets.length, true);
      const sequence = view.getUint32(RecordHeader.offsets.sequence, true) +
        view.getUint32(RecordHeader.offsets.sequence + 4, true) * 0x1_0000_0000;
      const timestamp = view.getUint32(RecordHeader.offsets.timestamp, true) +
        view.getUint32(RecordHeader.offsets.timestamp + 4, true) * 0x1_0000_0000;
      count++;
      try {
        callback(
          record.subarray(RecordHeader.size, RecordHeader.size + length),
          sequence,
          timestamp,
        );
      } finally {
        // The request is re-issued once its message is consumed, with the same buffer:
        // a slow consumer holds fewer requests, and the driver queues (up to its limit).
        if (!this.#closed) this.#post(new Uint8Array(record.buffer));
      }
    }
    if (count === 0) this.#throwPendingError();
    return count;
  }

  copyReady(target: Uint8Array): number {
    let copied = 0;
    while (this.#ready.length > 0) {
      const record = this.#ready[0];
      const span = (record.length + Ring.ALIGN - 1) & ~(Ring.ALIGN - 1);
      if (copied + span > target.length) break;
      this.#ready.shift();
      target.set(record, copied);
      target.fill(0, copied + record.length, copied + span);
      copied += span;
      if (!this.#closed) this.#post(new Uint8Array(record.buffer));
    }
    if (copied === 0) this.#throwPendingError();
    return copied;
  }

  /** Ends the stream with the error a request failed with, once every message is consumed. */
  #throwPendingError(): void {
    if (this.#ready.length === 0 && this.#error !== undefined) {
      const error = this.#error;
      this.#error = undefined;
      this.#closed = true;
      throw error;
    }
  }

  waitForData(timeoutMs: number): Promise<boolean> {
    if (this.#ready.length > 0 || this.ended || this.#error !== undefined) {
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(false), timeoutMs);
      const finish = (value: boolean) => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve(value);
      };
      this.#wake = () => finish(true);
    });
  }

  dropped(): number {
    return this.#closed || this.#device.closed
      ? 0
      : Number(this.#overflow() - this.#droppedAtStart);
  }

  async close(): Promise<void> {
    if (this.#closed && this.#inFlight.size === 0) return;
    this.#closed = true;
    this.#abort.abort("subscription closed");
    await Promise.allSettled([...this.#inFlight]);
    this.#ready.length = 0;
  }
}

/**
 * A stream of messages from the driver. Iterate it with `for await` (each
 * message's `data` is a copy), or take batches with {@linkcode Subscription.drain}
 * (views, valid inside the callback only) for throughput.
 *
 * @example
 * ```ts ignore
 * await using device = openDevice(Names.DEVICE_PATH);
 * await using messages = subscribe(device, { channel: "auto" });
 * for await (const message of messages) console.log(message.sequence, message.data.length);
 * ```
 */
export class Subscription implements AsyncIterable<Message>, AsyncDisposable {
  readonly #source: Source;
  readonly #device: Device;
  #closing: Promise<void> | undefined;

  /** Use {@linkcode subscribe}. Registers with `device`, which closes it before its handle. @internal */
  constructor(source: Source, device: Device) {
    this.#source = source;
    this.#device = device;
    device.addDependent(this);
  }

  /** The channel in use (what "auto" chose). */
  get channel(): ChannelName {
    return this.#source.channel;
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
   * await using device = openDevice(Names.DEVICE_PATH);
   * await using messages = subscribe(device, { channel: "section" });
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
      {
        max,
        timeoutMs: options.timeoutMs,
      },
    );
    return messages;
  }

  /**
   * The fastest batch form: waits like {@linkcode Subscription.drain}, then
   * copies whole records into `target` — each a `KBRIDGE_RECORD_HEADER`
   * ({@linkcode RecordHeader}: length, flags, sequence, timestamp), the
   * payload, and padding to 8 bytes — as many as fit. Resolves with the bytes
   * written (0 on timeout or end). `target` must hold the largest record:
   * `RecordHeader.size + Protocol.MAX_MESSAGE` bytes at least.
   *
   * @example
   * ```ts ignore
   * const batch = new Uint8Array(1 << 20);
   * const bytes = await messages.readInto(batch, { timeoutMs: 1000 });
   * const view = new DataView(batch.buffer);
   * for (let at = 0; at < bytes;) {
   *   const length = view.getUint32(at, true);
   *   const payload = batch.subarray(at + RecordHeader.size, at + RecordHeader.size + length);
   *   at += (RecordHeader.size + length + 7) & ~7;
   * }
   * ```
   */
  async readInto(target: Uint8Array, options: { timeoutMs?: number } = {}): Promise<number> {
    if (
      !(target instanceof Uint8Array) || target.length < RecordHeader.size + Protocol.MAX_MESSAGE
    ) {
      throw new ArgumentError(
        "Subscription.readInto",
        "target",
        `a Uint8Array of at least ${RecordHeader.size + Protocol.MAX_MESSAGE} bytes`,
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
   * Yields messages (copies) until the driver ends the stream or the
   * subscription is closed. Leaving the loop (`break`, `return`, a throw)
   * closes the subscription, as it cancels a stream.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<Message> {
    try {
      while (!this.#source.ended) {
        for (const message of await this.readMany(256)) yield message;
      }
    } finally {
      await this.close();
    }
  }

  /** Stops the stream and releases everything it holds (driver side too). Idempotent. */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#device.removeDependent(this);
      this.#closing = this.#source.close();
    }
    return this.#closing;
  }

  /** Same as {@linkcode Subscription.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function openSource(device: Device, channel: ChannelName, options: SubscribeOptions): Source {
  const ringBytes = options.ringBytes ?? 1 << 20;
  switch (channel) {
    case "classic":
      return openClassic(device, ringBytes);
    case "section":
      return openSection(device, ringBytes);
    case "inverted":
      return new InvertedSource(device, options.pending ?? 8);
  }
}

const CAPABILITY: Record<ChannelName, number> = {
  classic: Capability.CLASSIC,
  section: Capability.SECTION,
  inverted: Capability.INVERTED,
};

/**
 * Subscribes to the driver's messages on a channel of the reference protocol.
 * With `channel: "auto"` it takes the first that works of classic, section
 * and inverted (under Wine: section, since classic is unavailable there).
 *
 * @throws {ChannelUnavailableError} when the channel (or, for "auto", every channel) cannot be used
 *
 * @example
 * ```ts ignore
 * await using device = openDevice(Names.DEVICE_PATH);
 * await using messages = subscribe(device, { channel: "section", ringBytes: 1 << 16 });
 * const batch = await messages.readMany(100, { timeoutMs: 1000 });
 * ```
 */
export function subscribe(device: Device, options: SubscribeOptions = {}): Subscription {
  const channel = options.channel ?? "auto";
  if (!["auto", "section", "inverted", "classic"].includes(channel)) {
    throw new ArgumentError(
      "subscribe",
      "options.channel",
      '"auto", "section", "inverted" or "classic"',
      channel,
    );
  }
  if (options.ringBytes !== undefined) {
    const bytes = checkInteger("subscribe", "options.ringBytes", options.ringBytes, 4096, 64 << 20);
    if ((bytes & (bytes - 1)) !== 0) {
      throw new ArgumentError("subscribe", "options.ringBytes", "a power of two", bytes);
    }
  }
  checkInteger("subscribe", "options.pending", options.pending ?? 8, 1, 256);
  const capabilities =
    VersionInfo.decode(device.ioctl(IOCTL.GET_VERSION, null, VersionInfo.size)).capabilities;
  const candidates: ChannelName[] = channel === "auto"
    ? ["classic", "section", "inverted"]
    : [channel];
  const reasons: string[] = [];
  for (const candidate of candidates) {
    if ((capabilities & CAPABILITY[candidate]) === 0) {
      reasons.push(`${candidate}: the driver lacks the capability`);
      continue;
    }
    try {
      return new Subscription(openSource(device, candidate, options), device);
    } catch (error) {
      if (!(error instanceof ChannelUnavailableError) || channel !== "auto") throw error;
      reasons.push(`${candidate}: ${error.reason}`);
    }
  }
  throw new ChannelUnavailableError(channel, reasons.join("; "));
}
