/**
 * The inverted call for any driver: overlapped IOCTLs of one control code
 * kept pending, which the driver completes one per message. Each completed
 * request is handed out once and then issued again, so the driver always
 * holds `pending` requests while the consumer keeps up.
 *
 * @module
 */
import { ArgumentError, checkInteger } from "../core/errors.ts";
import type { IoctlAsyncOptions } from "./overlapped.ts";

/** Most requests kept pending by one stream. */
export const MAX_PENDING = 256;

/**
 * Options of `Device.stream`.
 *
 * @example
 * ```ts ignore
 * const options: StreamOptions = { outputSize: 64, pending: 4, signal: AbortSignal.timeout(10_000) };
 * for await (const tick of device.stream(WAIT_NEXT, options)) console.log(tick.length);
 * ```
 */
export interface StreamOptions {
  /** Input of every request (the same bytes each time); default none. */
  input?: ArrayBufferLike | ArrayBufferView | null;
  /** Output bytes of every request: the largest message the driver completes a request with. */
  outputSize: number;
  /** Requests kept pending (1..256, default 2). */
  pending?: number;
  /** Aborting it cancels every request; the iteration then throws an `AbortError`. */
  signal?: AbortSignal;
}

/**
 * What pended requests need of a device: overlapped IOCTLs (a `Device` is one).
 *
 * @example
 * ```ts ignore
 * const target: OverlappedTarget = openDevice("\\\\.\\KbSample");
 * ```
 */
export interface OverlappedTarget {
  /** The device's path, for error messages. */
  readonly path: string;
  /** Whether the handle was opened with `FILE_FLAG_OVERLAPPED`. */
  readonly overlapped: boolean;
  /** Starts one overlapped IOCTL; see `Device.ioctlAsync`. */
  ioctlAsync(
    code: number,
    input: Uint8Array | null,
    output: Uint8Array,
    options: IoctlAsyncOptions,
  ): Promise<Uint8Array>;
}

/**
 * N overlapped requests of one code kept pending; the engine of
 * {@linkcode DeviceStream} and of the subscriptions' inverted channel.
 * Completed outputs wait in completion order until {@linkcode PendedRequests.take}.
 */
export class PendedRequests {
  readonly #device: OverlappedTarget;
  readonly #code: number;
  readonly #input: Uint8Array | null;
  readonly #outputSize: number;
  readonly #close = new AbortController();
  readonly #signal: AbortSignal;
  readonly #ready: Uint8Array[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  #wake: (() => void) | undefined;
  #error: unknown;
  #closed = false;

  /** Issues `pending` requests at once. */
  constructor(
    device: OverlappedTarget,
    code: number,
    input: Uint8Array | null,
    outputSize: number,
    pending: number,
    signal?: AbortSignal,
  ) {
    this.#device = device;
    this.#code = code;
    this.#input = input;
    this.#outputSize = outputSize;
    this.#signal = signal === undefined
      ? this.#close.signal
      : AbortSignal.any([this.#close.signal, signal]);
    for (let i = 0; i < pending; i++) this.post();
  }

  /** Completed outputs not taken yet. */
  get readyCount(): number {
    return this.#ready.length;
  }

  /** True once nothing more can come: closed, or failed with every output taken. */
  get ended(): boolean {
    return this.#closed || (this.#error !== undefined && this.#ready.length === 0);
  }

  /** The oldest completed output, left in place; `undefined` when none is ready. */
  peek(): Uint8Array | undefined {
    return this.#ready[0];
  }

  /**
   * The oldest completed output, or `undefined` when none is ready. Once
   * every output is taken, throws what a request failed with (once), and the
   * stream is over.
   */
  take(): Uint8Array | undefined {
    const output = this.#ready.shift();
    if (output !== undefined) return output;
    if (this.#error !== undefined && !this.#closed) {
      const error = this.#error;
      this.#closed = true;
      this.#close.abort("the stream failed");
      throw error;
    }
    return undefined;
  }

  /** Issues one request; `output` reuses a taken output's buffer (default: a new one). */
  post(output: Uint8Array = new Uint8Array(this.#outputSize)): void {
    if (this.#closed || this.#error !== undefined) return;
    const request = this.#device.ioctlAsync(this.#code, this.#input, output, {
      signal: this.#signal,
    })
      .then(
        (result) => {
          this.#ready.push(result);
        },
        (error) => {
          if (!this.#close.signal.aborted) this.#error ??= error;
        },
      )
      .finally(() => {
        this.#inFlight.delete(request);
        this.#wake?.();
      });
    this.#inFlight.add(request);
  }

  /** Resolves when an output is ready or the stream ended (true), or after `timeoutMs` (false). */
  whenReady(timeoutMs: number = Infinity): Promise<boolean> {
    if (this.#ready.length > 0 || this.ended || this.#error !== undefined) {
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const timer = timeoutMs === Infinity ? undefined : setTimeout(() => finish(false), timeoutMs);
      const finish = (value: boolean) => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve(value);
      };
      this.#wake = () => finish(true);
    });
  }

  /** Cancels every pending request and waits until they have settled. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#close.abort("closed");
    this.#wake?.();
    await Promise.allSettled([...this.#inFlight]);
    this.#ready.length = 0;
  }
}

/**
 * The outputs of a pended control code, as an async iterable: made by
 * `Device.stream`. Each output belongs to the caller (a new buffer
 * per message). Leaving a `for await` loop (`break`, `return`, a throw)
 * closes the stream and cancels its requests, and so does
 * {@linkcode DeviceStream.close} or closing the device.
 *
 * @example
 * ```ts ignore
 * await using ticks = device.stream(WAIT_NEXT, { outputSize: Tick.size, pending: 2 });
 * for await (const output of ticks) console.log(Tick.decode(output).counter);
 * ```
 */
export class DeviceStream implements AsyncIterable<Uint8Array>, AsyncDisposable {
  readonly #requests: PendedRequests;
  readonly #onClose: () => void;
  #closing: Promise<void> | undefined;

  /** Use `Device.stream`; `onClose` runs once, when the stream closes. @internal */
  constructor(requests: PendedRequests, onClose: () => void) {
    this.#requests = requests;
    this.#onClose = onClose;
  }

  /** Whether the stream is closed (by `close()`, its device, or the end of an iteration). */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * The next output, or `undefined` once the stream is closed.
   *
   * @throws {AbortError} when the stream's `signal` aborted
   * @throws {Win32Error} when the driver failed a request (with its NTSTATUS); the stream is over
   */
  async next(): Promise<Uint8Array | undefined> {
    const requests = this.#requests;
    for (;;) {
      if (this.#closing !== undefined) return undefined;
      let output;
      try {
        output = requests.take();
      } catch (error) {
        await this.close();
        throw error;
      }
      if (output !== undefined) {
        requests.post();
        return output;
      }
      if (requests.ended) return undefined;
      await requests.whenReady();
    }
  }

  /** Yields each output until the stream is closed; see {@linkcode DeviceStream.next}. */
  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    try {
      for (;;) {
        const output = await this.next();
        if (output === undefined) return;
        yield output;
      }
    } finally {
      await this.close();
    }
  }

  /** Cancels the pending requests and waits until they have settled. Idempotent. */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closing = this.#requests.close();
      this.#onClose();
    }
    return this.#closing;
  }

  /** Same as {@linkcode DeviceStream.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Checks {@linkcode StreamOptions} and starts the stream's requests;
 * `onClose` runs when the stream closes.
 */
export function openStream(
  device: OverlappedTarget,
  code: number,
  options: StreamOptions,
  checkedInput: Uint8Array | null,
  onClose: () => void,
): DeviceStream {
  const fn = "Device.stream";
  if (typeof options !== "object" || options === null) {
    throw new ArgumentError(fn, "options", "an object with outputSize", options);
  }
  const outputSize = checkInteger(fn, "options.outputSize", options.outputSize, 1, 0x7fff_ffff);
  const pending = checkInteger(fn, "options.pending", options.pending ?? 2, 1, MAX_PENDING);
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new ArgumentError(fn, "options.signal", "an AbortSignal", options.signal);
  }
  if (!device.overlapped) {
    throw new ArgumentError(fn, "device", "opened with { overlapped: true }", device.path);
  }
  return new DeviceStream(
    new PendedRequests(device, code, checkedInput, outputSize, pending, options.signal),
    onClose,
  );
}
