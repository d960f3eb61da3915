/**
 * Opening a device and sending it I/O control requests.
 *
 * @module
 */
import { ArgumentError, checkBufferSource, checkInteger, ClosedError } from "../core/errors.ts";
import { Win32Error } from "../core/win32_error.ts";
import {
  INVALID_HANDLE_VALUE,
  kernel32,
  lastError,
  pointerValue,
  wideString,
} from "../core/native.ts";
import {
  completionPort,
  type IoctlAsyncOptions,
  type IoRequest,
  isEndOfFile,
  isWarningStatus,
  requestContext,
  startRequest,
  warningError,
} from "./overlapped.ts";
import { type DeviceStream, openStream, type StreamOptions } from "./stream.ts";

const GENERIC_READ = 0x8000_0000;
const GENERIC_WRITE = 0x4000_0000;
const FILE_SHARE_READ_WRITE = 0x3;
const OPEN_EXISTING = 3;
const FILE_FLAG_OVERLAPPED = 0x4000_0000;
/** The DWORD a synchronous DeviceIoControl writes its byte count to, reused by every call. */
const bytesReturned = new Uint32Array(1);
/** Largest buffer one DeviceIoControl call accepts (a DWORD length). */
const MAX_BUFFER = 0xffff_ffff;

/**
 * How {@linkcode openDevice} opens a device.
 *
 * @example
 * ```ts ignore
 * const options: OpenDeviceOptions = { access: "read", overlapped: false };
 * using device = openDevice("\\\\.\\Kbridge", options);
 * ```
 */
export interface OpenDeviceOptions {
  /** Desired access: "read", "write", "readwrite" (default) or a raw access mask. */
  access?: "read" | "write" | "readwrite" | number;
  /**
   * Open with `FILE_FLAG_OVERLAPPED` (default `true`), which {@linkcode Device.ioctlAsync}
   * needs. Synchronous calls work on either kind of handle.
   */
  overlapped?: boolean;
}

/**
 * What an IOCTL's output argument may be: a size to allocate, or a buffer to fill.
 *
 * @example
 * ```ts ignore
 * device.ioctl(IOCTL.ECHO, input, 64); // a new 64-byte buffer
 * device.ioctl(IOCTL.ECHO, input, reusable); // fills `reusable`, returns a view of it
 * ```
 */
export type OutputArgument = number | Uint8Array;

function accessMask(access: OpenDeviceOptions["access"]): number {
  switch (access ?? "readwrite") {
    case "read":
      return GENERIC_READ;
    case "write":
      return GENERIC_WRITE;
    case "readwrite":
      return (GENERIC_READ | GENERIC_WRITE) >>> 0;
    default:
      return checkInteger("openDevice", "options.access", access, 0, 0xffff_ffff);
  }
}

function checkBufferLength(fn: string, argument: string, buffer: Uint8Array): Uint8Array {
  if (buffer.byteLength > MAX_BUFFER) {
    throw new ArgumentError(fn, argument, "at most 0xFFFFFFFF bytes long", buffer);
  }
  return buffer;
}

/**
 * Options of {@linkcode Device.read}, {@linkcode Device.write} and their
 * async forms: the file position (devices that have none ignore it), and the
 * cancellation of {@linkcode IoctlAsyncOptions} (`signal` for the async forms only).
 *
 * @example
 * ```ts ignore
 * const options: ReadWriteOptions = { offset: 4096n, timeoutMs: 1000 };
 * const bytes = await device.readAsync(512, options);
 * ```
 */
export interface ReadWriteOptions extends IoctlAsyncOptions {
  /** The byte offset, `OVERLAPPED.Offset`/`OffsetHigh` (0 to 2^63 - 1). */
  offset?: number | bigint;
}

const MAX_OFFSET = (1n << 63n) - 1n;

function checkOffset(fn: string, offset: unknown): bigint | undefined {
  if (offset === undefined) return undefined;
  if (typeof offset === "bigint" && offset >= 0n && offset <= MAX_OFFSET) return offset;
  if (typeof offset === "number" && Number.isSafeInteger(offset) && offset >= 0) {
    return BigInt(offset);
  }
  throw new ArgumentError(fn, "options.offset", "an integer in 0..2^63-1", offset);
}

/** A read or write request, checked before any FFI call. */
function checkTransfer(
  fn: string,
  call: "ReadFile" | "WriteFile",
  buffer: unknown,
  options: ReadWriteOptions,
): IoRequest {
  const offset = checkOffset(fn, options?.offset);
  if (call === "WriteFile") {
    const input = checkBufferLength(fn, "data", checkBufferSource(fn, "data", buffer));
    return { call, input, output: new Uint8Array(0), offset };
  }
  const output = typeof buffer === "number"
    ? new Uint8Array(checkInteger(fn, "outputSize", buffer, 0, MAX_BUFFER))
    : checkBufferLength(fn, "output", checkBufferSource(fn, "output", buffer));
  return { call, input: null, output, offset };
}

/** A request's `timeoutMs` option, checked (undefined when absent). */
function checkTimeout(fn: string, timeoutMs: unknown): number | undefined {
  return timeoutMs === undefined
    ? undefined
    : checkInteger(fn, "options.timeoutMs", timeoutMs, 0, 0x7fff_ffff);
}

/** The bytes a request returned: a view of its output buffer. */
const outputView = (request: IoRequest, bytes: number) => request.output.subarray(0, bytes);

/** Checks an IOCTL's arguments before any FFI call; shared by the sync and async forms. */
export function checkIoctlArguments(
  fn: string,
  code: unknown,
  input: unknown,
  output: unknown,
): IoRequest & { code: number } {
  const checkedCode = checkInteger(fn, "code", code, 0, 0xffff_ffff);
  const checkedInput = input === undefined || input === null
    ? null
    : checkBufferLength(fn, "input", checkBufferSource(fn, "input", input));
  let checkedOutput: Uint8Array;
  if (output === undefined || typeof output === "number") {
    checkedOutput = new Uint8Array(checkInteger(fn, "outputSize", output ?? 0, 0, MAX_BUFFER));
  } else {
    checkedOutput = checkBufferLength(fn, "output", checkBufferSource(fn, "output", output));
  }
  return { call: "DeviceIoControl", code: checkedCode, input: checkedInput, output: checkedOutput };
}

/**
 * Something a {@linkcode Device} closes before its handle; see {@linkcode Device.addDependent}.
 * `close()` may return a Promise, which the device's `Symbol.asyncDispose` awaits.
 *
 * @example
 * ```ts ignore
 * const dependent: DeviceDependent = subscribe(device, { channel: "section" });
 * ```
 */
export interface DeviceDependent {
  /** Releases what the dependent holds; called once by the device, before its handle closes. */
  close(): unknown;
}

/** Closes the handle of a device that was garbage-collected without `close()`. */
const forgottenDevices = new FinalizationRegistry<Deno.PointerValue>((handle) => {
  kernel32("CloseHandle").CloseHandle(handle);
});

/**
 * An open device handle. Create one with {@linkcode openDevice}; close it with
 * {@linkcode Device.close} or a `using` / `await using` declaration.
 *
 * @example
 * ```ts ignore
 * using device = openDevice("\\\\.\\Kbridge");
 * const out = device.ioctl(0x80222004, new TextEncoder().encode("hi"), 2);
 * ```
 */
export class Device implements Disposable, AsyncDisposable {
  #handle: Deno.PointerValue;
  #closed = false;
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #dependents = new Set<DeviceDependent>();
  /** What the dependents' `close()` returned, for `Symbol.asyncDispose` to await. */
  readonly #dependentsClosing: Promise<unknown>[] = [];
  /** The path the device was opened with. */
  readonly path: string;
  /** Whether the handle was opened with `FILE_FLAG_OVERLAPPED`. */
  readonly overlapped: boolean;

  /** Use {@linkcode openDevice}. @internal */
  constructor(handle: Deno.PointerValue, path: string, overlapped: boolean) {
    this.#handle = handle;
    this.path = path;
    this.overlapped = overlapped;
    if (overlapped) completionPort().associate(handle, path);
    forgottenDevices.register(this, handle, this);
  }

  /** Whether {@linkcode Device.close} has run. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The raw Win32 `HANDLE`, for calls kbridge does not wrap. Throws once closed. */
  get unsafeHandle(): Deno.PointerValue {
    this.#ensureOpen();
    return this.#handle;
  }

  /** IOCTLs started with {@linkcode Device.ioctlAsync} and not yet settled. */
  get pendingCount(): number {
    return this.#inFlight.size;
  }

  #ensureOpen(): void {
    if (this.#closed) throw new ClosedError(`device ${this.path}`);
  }

  /**
   * Sends `code` with `input` and returns the bytes the driver wrote (a view of
   * the output buffer, as long as the bytes returned). Blocks until the driver
   * completes the request; use {@linkcode Device.ioctlAsync} for requests that may pend.
   *
   * @param code the control code, e.g. from `ctlCode()`
   * @param input bytes sent to the driver (none when omitted)
   * @param output an output size in bytes (default 0), or a buffer to fill
   * @param options `timeoutMs` cancels the request when it takes longer (overlapped handles only)
   * @throws {WarningStatusError} when the driver completes it with a warning NTSTATUS
   * (e.g. `STATUS_BUFFER_OVERFLOW`): the bytes it returned are the error's `data`
   * @throws {Win32Error} when the driver fails the request
   * @throws {TimeoutError} when `timeoutMs` passes first
   *
   * @example
   * ```ts ignore
   * using device = openDevice("\\\\.\\Kbridge");
   * const echoed = device.ioctl(IOCTL.ECHO, new Uint8Array([1, 2, 3]), 3);
   * ```
   */
  ioctl(
    code: number,
    input?: ArrayBufferLike | ArrayBufferView | null,
    output?: OutputArgument,
    options: { timeoutMs?: number } = {},
  ): Uint8Array {
    const args = checkIoctlArguments("Device.ioctl", code, input, output);
    return args.output.subarray(0, this.#transferSync("Device.ioctl", args, options));
  }

  /**
   * Sends `code` as an overlapped request and resolves with the bytes the
   * driver wrote. The event loop keeps running while the request is pending;
   * `signal` and `timeoutMs` cancel it with `CancelIoEx`. The input and output
   * buffers are kept alive until the request completes.
   *
   * @throws {AbortError} when `signal` aborts the request
   * @throws {TimeoutError} when `timeoutMs` passes first
   * @throws {WarningStatusError} when the driver completes it with a warning NTSTATUS
   * (e.g. `STATUS_BUFFER_OVERFLOW`): the bytes it returned are the error's `data`
   * @throws {Win32Error} when the driver fails the request (with its NTSTATUS)
   *
   * @example
   * ```ts ignore
   * await using device = openDevice("\\\\.\\Kbridge");
   * const out = await device.ioctlAsync(IOCTL.PEND, pendRequest, 8, { timeoutMs: 1000 });
   * ```
   */
  ioctlAsync(
    code: number,
    input?: ArrayBufferLike | ArrayBufferView | null,
    output?: OutputArgument,
    options: IoctlAsyncOptions = {},
  ): Promise<Uint8Array> {
    return this.#startAsync(
      "Device.ioctlAsync",
      () => checkIoctlArguments("Device.ioctlAsync", code, input, output),
      options,
      outputView,
    );
  }

  /** Checks and starts an overlapped request; its Promise is tracked until it settles. */
  #startAsync<T>(
    fn: string,
    check: () => IoRequest,
    options: IoctlAsyncOptions,
    done: (request: IoRequest, bytes: number) => T,
  ): Promise<T> {
    let request: IoRequest;
    try {
      request = check();
      this.#checkAsync(fn, options);
    } catch (error) {
      return Promise.reject(error);
    }
    const promise = completionPort().start(
      this.#handle,
      this.path,
      request,
      options,
      (bytes) => done(request, bytes),
    );
    this.#inFlight.add(promise);
    const forget = () => this.#inFlight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  /**
   * Reads from the device (`ReadFile`) and returns the bytes the driver
   * returned (a view of the output buffer); no bytes at the end of a file.
   * Blocks until the driver completes the request; on a device opened without
   * overlapped I/O `timeoutMs` is refused, as for {@linkcode Device.ioctl}.
   *
   * @param output a size in bytes to allocate, or a buffer to fill
   * @throws {WarningStatusError} when the driver completes it with a warning NTSTATUS
   * @throws {Win32Error} when the driver fails the request (e.g. `ERROR_INVALID_FUNCTION (1)`
   * when it has no IRP_MJ_READ routine)
   * @throws {TimeoutError} when `timeoutMs` passes first
   *
   * @example
   * ```ts ignore
   * using device = openDevice("\\.\MyDriver");
   * const bytes = device.read(512);
   * ```
   */
  read(output: OutputArgument, options: ReadWriteOptions = {}): Uint8Array {
    const request = checkTransfer("Device.read", "ReadFile", output, options);
    return request.output.subarray(0, this.#transferSync("Device.read", request, options));
  }

  /**
   * Writes `data` to the device (`WriteFile`) and returns how many bytes the
   * driver took. Blocks as {@linkcode Device.read} does.
   *
   * @throws {WarningStatusError} when the driver completes it with a warning NTSTATUS
   * @throws {Win32Error} when the driver fails the request
   * @throws {TimeoutError} when `timeoutMs` passes first
   *
   * @example
   * ```ts ignore
   * using device = openDevice("\\.\MyDriver");
   * const written = device.write(new TextEncoder().encode("hello"));
   * ```
   */
  write(data: ArrayBufferLike | ArrayBufferView, options: ReadWriteOptions = {}): number {
    return this.#transferSync(
      "Device.write",
      checkTransfer("Device.write", "WriteFile", data, options),
      options,
    );
  }

  /**
   * Reads as an overlapped request, like {@linkcode Device.ioctlAsync}: the
   * event loop runs while it pends, `signal` and `timeoutMs` cancel it, and
   * the buffer is kept alive until it completes. Resolves with the bytes read.
   *
   * @throws {AbortError} when `signal` aborts the request
   * @throws {TimeoutError} when `timeoutMs` passes first
   * @throws {Win32Error} when the driver fails the request
   *
   * @example
   * ```ts ignore
   * await using device = openDevice("\\.\MyDriver");
   * const bytes = await device.readAsync(512, { signal: AbortSignal.timeout(1000) });
   * ```
   */
  readAsync(output: OutputArgument, options: ReadWriteOptions = {}): Promise<Uint8Array> {
    return this.#startAsync(
      "Device.readAsync",
      () => checkTransfer("Device.readAsync", "ReadFile", output, options),
      options,
      outputView,
    );
  }

  /**
   * Writes as an overlapped request, like {@linkcode Device.readAsync};
   * resolves with the bytes the driver took.
   *
   * @throws {AbortError} when `signal` aborts the request
   * @throws {TimeoutError} when `timeoutMs` passes first
   * @throws {Win32Error} when the driver fails the request
   *
   * @example
   * ```ts ignore
   * await using device = openDevice("\\.\MyDriver");
   * const written = await device.writeAsync(new Uint8Array([1, 2, 3]));
   * ```
   */
  writeAsync(
    data: ArrayBufferLike | ArrayBufferView,
    options: ReadWriteOptions = {},
  ): Promise<number> {
    return this.#startAsync(
      "Device.writeAsync",
      () => checkTransfer("Device.writeAsync", "WriteFile", data, options),
      options,
      (_, bytes) => bytes,
    );
  }

  /** The checks of an async form before its request starts. */
  #checkAsync(fn: string, options: IoctlAsyncOptions): void {
    checkTimeout(fn, options.timeoutMs);
    this.#ensureOpen();
    if (!this.overlapped) {
      throw new ArgumentError(fn, "device", "opened with { overlapped: true }", this.path);
    }
  }

  /** A request that blocks the calling thread; returns the bytes transferred. */
  #transferSync(fn: string, request: IoRequest, options: ReadWriteOptions): number {
    const timeoutMs = checkTimeout(fn, options.timeoutMs);
    if (options.signal !== undefined) {
      throw new ArgumentError(fn, "options.signal", "used with the async form", "an AbortSignal");
    }
    this.#ensureOpen();
    if (this.overlapped) {
      return completionPort().startBlocking(this.#handle, this.path, request, timeoutMs);
    }
    if (timeoutMs !== undefined) {
      throw new ArgumentError(fn, "options.timeoutMs", "used with an overlapped device", timeoutMs);
    }
    const k32 = kernel32(request.call);
    const returned = bytesReturned;
    returned[0] = 0;
    // A file offset travels in an OVERLAPPED even on a handle without overlapped I/O.
    const overlapped = request.offset === undefined ? null : new Uint8Array(32);
    if (!startRequest(k32, this.#handle, request, overlapped, returned)) {
      const error = lastError(k32);
      // A warning still completed the request: Windows wrote its byte count.
      if (error.ntStatus !== undefined && isWarningStatus(error.ntStatus)) {
        throw warningError(request, this.path, error.ntStatus, returned[0]);
      }
      if (isEndOfFile(request, error.code)) return 0;
      throw new Win32Error({ ...error, ...requestContext(request, this.path) });
    }
    return returned[0];
  }

  /**
   * The inverted call for a pended control code: keeps `pending` overlapped
   * requests of `code` (each with `input`, room for `outputSize` bytes) at the
   * driver, and yields each output as the driver completes them; each is
   * issued again once its output is taken. Closing the stream (`close()`,
   * leaving a `for await` loop, `signal`, or closing the device) cancels them.
   *
   * @throws {ArgumentError} for a bad code, input or option, or a device opened without overlapped I/O
   * @throws {ClosedError} once the device is closed
   *
   * @example
   * ```ts ignore
   * await using device = openDevice("\\\\.\\KbSample");
   * for await (const output of device.stream(WAIT_NEXT, { outputSize: Tick.size })) {
   *   console.log(Tick.decode(output).counter);
   * }
   * ```
   */
  stream(
    code: number,
    options: StreamOptions,
  ): DeviceStream {
    const { input } = checkIoctlArguments("Device.stream", code, options?.input, 0);
    this.#ensureOpen();
    const stream: DeviceStream = openStream(
      this,
      code,
      options,
      input,
      () => this.removeDependent(stream),
    );
    this.addDependent(stream);
    return stream;
  }

  /**
   * Registers `dependent` to be closed by {@linkcode Device.close}, before the
   * handle: something built on this device that must never outlive its handle
   * (e.g. a subscription reading memory the driver unmaps when the handle
   * closes). The dependent calls {@linkcode Device.removeDependent} when it
   * closes first.
   *
   * @throws {ClosedError} once the device is closed
   *
   * @example
   * ```ts ignore
   * using device = openDevice("\\\\.\\MyDriver");
   * const view = { close: () => console.log("closed before the handle") };
   * device.addDependent(view);
   * ```
   */
  addDependent(dependent: DeviceDependent): void {
    this.#ensureOpen();
    this.#dependents.add(dependent);
  }

  /**
   * Forgets a dependent registered with {@linkcode Device.addDependent}
   * (it closed on its own). Unknown dependents are ignored.
   *
   * @example
   * ```ts ignore
   * device.addDependent(view);
   * device.removeDependent(view); // the device no longer closes it
   * ```
   */
  removeDependent(dependent: DeviceDependent): void {
    this.#dependents.delete(dependent);
  }

  /**
   * Closes the device's dependents (see {@linkcode Device.addDependent}), then
   * cancels every pending request of this device and closes its handle. Their
   * Promises reject with an `AbortError`. Calling it again does nothing. The
   * handle is closed even when a dependent's `close()` throws; the first such
   * error is rethrown afterwards.
   *
   * @example
   * ```ts ignore
   * const device = openDevice("\\\\.\\Kbridge");
   * device.close();
   * device.close(); // no-op
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Dependents first: they may use the handle (or memory tied to it) until they are closed.
    let failure: { error: unknown } | undefined;
    for (const dependent of this.#dependents) {
      try {
        const closing = dependent.close();
        if (closing instanceof Promise) this.#dependentsClosing.push(closing);
      } catch (error) {
        failure ??= { error };
      }
    }
    this.#dependents.clear();
    const k32 = kernel32("CloseHandle");
    if (this.overlapped) completionPort().cancelAll(this.#handle);
    k32.CloseHandle(this.#handle);
    forgottenDevices.unregister(this);
    this.#handle = null;
    if (failure !== undefined) throw failure.error;
  }

  /** Same as {@linkcode Device.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Closes the device and waits until its dependents are closed and every pending request has settled. */
  async [Symbol.asyncDispose](): Promise<void> {
    const pending = [...this.#inFlight];
    this.close();
    await Promise.allSettled([...pending, ...this.#dependentsClosing]);
  }
}

/**
 * Opens a device (e.g. `\\.\Kbridge`) with `CreateFileW`.
 *
 * @throws {Win32Error} naming the path, e.g. `ERROR_FILE_NOT_FOUND (2)` when no such device exists
 *
 * @example
 * ```ts ignore
 * using device = openDevice("\\\\.\\Kbridge", { overlapped: true });
 * ```
 */
export function openDevice(path: string, options: OpenDeviceOptions = {}): Device {
  if (typeof path !== "string" || path.length === 0 || path.includes("\0")) {
    throw new ArgumentError("openDevice", "path", "a non-empty string without NUL", path);
  }
  const access = accessMask(options.access);
  const overlapped = options.overlapped ?? true;
  const k32 = kernel32("CreateFileW");
  const handle = k32.CreateFileW(
    wideString(path),
    access,
    FILE_SHARE_READ_WRITE,
    null,
    OPEN_EXISTING,
    overlapped ? FILE_FLAG_OVERLAPPED : 0,
    null,
  );
  if (handle === null || pointerValue(handle) === INVALID_HANDLE_VALUE) {
    throw new Win32Error({ code: k32.GetLastError(), call: "CreateFileW", detail: path });
  }
  return new Device(handle, path, overlapped);
}
