/**
 * The errors kbridge throws. Every one extends {@link KbridgeError}, so
 * `err instanceof KbridgeError` tells kbridge's errors from others.
 *
 * - {@link Win32Error}: a Windows call failed (`GetLastError` code, the call,
 *   the decoded control code); {@link AbortError} and {@link TimeoutError} are
 *   the cancelled operations among them.
 * - {@link ArgumentError}: a bad argument, named in the message.
 * - {@link ClosedError}, {@link ChannelUnavailableError},
 *   {@link UnsupportedPlatformError}: the state or platform does not allow the call.
 *
 * @example
 * ```ts
 * import { Win32Error } from "./errors.ts";
 *
 * const error = new Win32Error({ code: 2, call: "CreateFileW", detail: "\\\\.\\Nope" });
 * error.message; // 'CreateFileW("\\.\Nope") failed: ERROR_FILE_NOT_FOUND (2)'
 * ```
 *
 * @module
 */
import { type CtlCodeInfo, decodeCtlCode, formatCtlCode } from "./ctl_code.ts";
import {
  formatNtStatus,
  NTSTATUS_NAMES,
  WIN32_ERROR_NAMES,
  win32ErrorName,
} from "./win32_errors.ts";

/** `ERROR_OPERATION_ABORTED`: the code of an I/O operation cancelled by `CancelIoEx`. */
const ERROR_OPERATION_ABORTED = 995;

/**
 * The base class of every error kbridge throws.
 *
 * @example
 * ```ts
 * import { KbridgeError } from "./errors.ts";
 *
 * try {
 *   throw new KbridgeError("kbridge: something went wrong");
 * } catch (error) {
 *   if (error instanceof KbridgeError) console.error(error.message);
 * }
 * ```
 */
export class KbridgeError extends Error {
  /** `"KbridgeError"`. */
  override name: string = "KbridgeError";

  /** Creates an error with the given message and, optionally, its `cause`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * What {@link Win32Error} needs to describe a failed Windows call.
 *
 * @example
 * ```ts
 * import type { Win32ErrorOptions } from "./errors.ts";
 *
 * const options: Win32ErrorOptions = { code: 122, call: "DeviceIoControl", controlCode: 0x222003 };
 * ```
 */
export interface Win32ErrorOptions {
  /** The Win32 error code (`GetLastError`). */
  code: number;
  /** The Windows function that failed, e.g. `DeviceIoControl`. */
  call: string;
  /** The I/O control code of a `DeviceIoControl` call; decoded into the message. */
  controlCode?: number;
  /** The NTSTATUS the driver completed the request with, when known (overlapped I/O). */
  ntStatus?: number;
  /** What the call acted on, e.g. the path of `CreateFileW`; quoted in the message. */
  detail?: string;
  /** The error that led to this one. */
  cause?: unknown;
}

/**
 * A Windows call failed. The message names the call, its control code and the
 * error, e.g.
 * `DeviceIoControl(0x222003 FILE_DEVICE_UNKNOWN fn 0x800 NEITHER ANY) failed: ERROR_INSUFFICIENT_BUFFER (122)`.
 *
 * @example
 * ```ts
 * import { Win32Error } from "./errors.ts";
 *
 * const error = new Win32Error({
 *   code: 122,
 *   call: "DeviceIoControl",
 *   controlCode: 0x222003,
 *   ntStatus: 0xC0000023,
 * });
 * error.errorName; // "ERROR_INSUFFICIENT_BUFFER"
 * error.controlCode?.function; // 0x800
 * error.message;
 * // "DeviceIoControl(0x222003 FILE_DEVICE_UNKNOWN fn 0x800 NEITHER ANY) failed:
 * //  ERROR_INSUFFICIENT_BUFFER (122), NTSTATUS STATUS_BUFFER_TOO_SMALL (0xC0000023)"
 * ```
 */
export class Win32Error extends KbridgeError {
  /** `"Win32Error"`. */
  override name: string = "Win32Error";
  /** The Win32 error code. */
  readonly code: number;
  /** The `winerror.h` name of {@link Win32Error.code}, or `Win32 error <code>` when unknown. */
  readonly errorName: string;
  /** The Windows function that failed. */
  readonly call: string;
  // `declare`: no own property when absent, so printed errors show only what is known.
  /** The decoded control code of a failed `DeviceIoControl`. */
  declare readonly controlCode?: CtlCodeInfo;
  /** The NTSTATUS the request completed with, when known. */
  declare readonly ntStatus?: number;
  /** What the call acted on, e.g. a path. */
  declare readonly detail?: string;

  /** Creates the error; see {@link Win32ErrorOptions}. */
  constructor(options: Win32ErrorOptions) {
    const controlCode = options.controlCode === undefined
      ? undefined
      : decodeCtlCode(options.controlCode);
    let message = `${describeCall(options.call, controlCode, options.detail)} failed: ${
      describeWin32Error(options.code)
    }`;
    if (options.ntStatus !== undefined) message += `, ${describeNtStatus(options.ntStatus)}`;
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
    this.errorName = win32ErrorName(options.code);
    this.call = options.call;
    if (controlCode !== undefined) this.controlCode = controlCode;
    if (options.ntStatus !== undefined) this.ntStatus = options.ntStatus;
    if (options.detail !== undefined) this.detail = options.detail;
  }
}

/**
 * What {@link AbortError} needs: the call and its control code, and the
 * `AbortSignal.reason`.
 *
 * @example
 * ```ts
 * import type { AbortErrorOptions } from "./errors.ts";
 *
 * const options: AbortErrorOptions = { call: "DeviceIoControl", reason: "user pressed ^C" };
 * ```
 */
export interface AbortErrorOptions extends Omit<Win32ErrorOptions, "code" | "cause"> {
  /** The `reason` of the signal that aborted the call; becomes the error's `cause`. */
  reason?: unknown;
}

/**
 * A call was cancelled through its `AbortSignal`. The operation was cancelled
 * with `CancelIoEx`, hence code 995 (`ERROR_OPERATION_ABORTED`); the signal's
 * reason is the `cause`. Its `name` is `"AbortError"`, as for `fetch`.
 *
 * @example
 * ```ts
 * import { AbortError } from "./errors.ts";
 *
 * const controller = new AbortController();
 * controller.abort(new Error("shutting down"));
 * const error = new AbortError({ call: "DeviceIoControl", reason: controller.signal.reason });
 * error.message; // "DeviceIoControl aborted: shutting down"
 * error.code; // 995
 * ```
 */
export class AbortError extends Win32Error {
  /** `"AbortError"`. */
  override name: string = "AbortError";

  /** Creates the error; see {@link AbortErrorOptions}. */
  constructor(options: AbortErrorOptions) {
    super({ ...options, code: ERROR_OPERATION_ABORTED, cause: options.reason });
    this.message = `${describeCall(options.call, this.controlCode, options.detail)} aborted: ${
      describeReason(options.reason)
    }`;
  }
}

/**
 * What {@link TimeoutError} needs: the call and its control code, and the
 * timeout that passed.
 *
 * @example
 * ```ts
 * import type { TimeoutErrorOptions } from "./errors.ts";
 *
 * const options: TimeoutErrorOptions = { call: "DeviceIoControl", timeoutMs: 500 };
 * ```
 */
export interface TimeoutErrorOptions extends Omit<Win32ErrorOptions, "code"> {
  /** The timeout that passed, in milliseconds. */
  timeoutMs: number;
}

/**
 * A call did not complete within its timeout. kbridge then cancels the
 * operation with `CancelIoEx`, so the code is the cancelled operation's 995
 * (`ERROR_OPERATION_ABORTED`); the name is `"TimeoutError"` and the message
 * gives the timeout.
 *
 * @example
 * ```ts
 * import { TimeoutError } from "./errors.ts";
 *
 * const error = new TimeoutError({ call: "DeviceIoControl", timeoutMs: 500 });
 * error.message; // "DeviceIoControl timed out after 500 ms"
 * ```
 */
export class TimeoutError extends Win32Error {
  /** `"TimeoutError"`. */
  override name: string = "TimeoutError";
  /** The timeout that passed, in milliseconds. */
  readonly timeoutMs: number;

  /** Creates the error; see {@link TimeoutErrorOptions}. */
  constructor(options: TimeoutErrorOptions) {
    super({ ...options, code: ERROR_OPERATION_ABORTED });
    this.timeoutMs = options.timeoutMs;
    this.message = `${
      describeCall(options.call, this.controlCode, options.detail)
    } timed out after ${options.timeoutMs} ms`;
  }
}

/**
 * An object was used after it was closed, e.g. a device after `close()`.
 *
 * @example
 * ```ts
 * import { ClosedError } from "./errors.ts";
 *
 * new ClosedError("device \\\\.\\Kbridge").message; // "kbridge: device \\.\Kbridge is closed"
 * ```
 */
export class ClosedError extends KbridgeError {
  /** `"ClosedError"`. */
  override name: string = "ClosedError";
  /** What is closed. */
  readonly resource: string;

  /** Creates the error; `resource` says what is closed, e.g. `device \\.\Kbridge`. */
  constructor(resource: string) {
    super(`kbridge: ${resource} is closed`);
    this.resource = resource;
  }
}

/**
 * An argument has the wrong type or is out of range. The message names the
 * function and the argument (or struct field path):
 * `ctlCode: function must be an integer in 0..0xFFF, got 4096`.
 *
 * @example
 * ```ts
 * import { ArgumentError } from "./errors.ts";
 *
 * const error = new ArgumentError("open", "path", "a non-empty string", "");
 * error.message; // 'open: path must be a non-empty string, got ""'
 * error.argument; // "path"
 * ```
 */
export class ArgumentError extends KbridgeError {
  /** `"ArgumentError"`. */
  override name: string = "ArgumentError";
  /** The function that was called. */
  readonly functionName: string;
  /** The argument, or the path of a field in it (e.g. `header.flags`). */
  readonly argument: string;

  /**
   * Creates the error; the message reads
   * `<functionName>: <argument> must be <expected>, got <value>`.
   */
  constructor(functionName: string, argument: string, expected: string, value: unknown) {
    super(`${functionName}: ${argument} must be ${expected}, got ${describeValue(value)}`);
    this.functionName = functionName;
    this.argument = argument;
  }
}

/**
 * A message channel cannot be used, e.g. the driver does not support it or
 * another subscriber holds it.
 *
 * @example
 * ```ts
 * import { ChannelUnavailableError } from "./errors.ts";
 *
 * const error = new ChannelUnavailableError("section", "the driver lacks KBRIDGE_CAP_SECTION");
 * error.message; // "kbridge: the section channel is unavailable: the driver lacks KBRIDGE_CAP_SECTION"
 * ```
 */
export class ChannelUnavailableError extends KbridgeError {
  /** `"ChannelUnavailableError"`. */
  override name: string = "ChannelUnavailableError";
  /** The channel, e.g. `section`, `inverted` or `classic`. */
  readonly channel: string;
  /** Why the channel cannot be used. */
  readonly reason: string;

  /** Creates the error; pass the underlying error as `cause` when there is one. */
  constructor(channel: string, reason: string, options?: ErrorOptions) {
    super(`kbridge: the ${channel} channel is unavailable: ${reason}`, options);
    this.channel = channel;
    this.reason = reason;
  }
}

/**
 * A Windows call was attempted on another operating system. Importing kbridge
 * works everywhere; only the calls need Windows.
 *
 * @example
 * ```ts
 * import { UnsupportedPlatformError } from "./errors.ts";
 *
 * new UnsupportedPlatformError("DeviceIoControl", "linux").message;
 * // "kbridge: DeviceIoControl needs Windows (Deno.build.os is linux)"
 * ```
 */
export class UnsupportedPlatformError extends KbridgeError {
  /** `"UnsupportedPlatformError"`. */
  override name: string = "UnsupportedPlatformError";
  /** The call that needs Windows. */
  readonly call: string;
  /** The operating system kbridge runs on (`Deno.build.os`). */
  readonly os: string;

  /** Creates the error for `call`; `os` defaults to `Deno.build.os`. */
  constructor(call: string, os: string = Deno.build.os) {
    super(`kbridge: ${call} needs Windows (Deno.build.os is ${os})`);
    this.call = call;
    this.os = os;
  }
}

/**
 * Checks that `value` is an integer in `min..max` and returns it; otherwise
 * throws an {@link ArgumentError} naming `functionName` and `argument`.
 *
 * @example
 * ```ts
 * import { checkInteger } from "./errors.ts";
 *
 * checkInteger("ctlCode", "function", 0x800, 0, 0xFFF); // 0x800
 * // checkInteger("ctlCode", "function", 4096, 0, 0xFFF) throws ArgumentError:
 * // ctlCode: function must be an integer in 0..0xFFF, got 4096
 * ```
 */
export function checkInteger(
  functionName: string,
  argument: string,
  value: unknown,
  min: number,
  max: number,
): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new ArgumentError(
      functionName,
      argument,
      min >= 0 && isBitMask(max)
        ? `an integer in ${hex(min)}..${hex(max)}`
        : `an integer in ${min}..${max}`,
      value,
    );
  }
  return value === 0 ? 0 : value; // -0 is not a valid FFI integer
}

/**
 * Checks that `value` is an `ArrayBuffer`, `SharedArrayBuffer` or
 * `ArrayBufferView` (typed array, `DataView`) whose memory is not detached,
 * and returns a `Uint8Array` over the same bytes (no copy). Otherwise throws
 * an {@link ArgumentError} naming `functionName` and `argument`.
 *
 * @example
 * ```ts
 * import { checkBufferSource } from "./errors.ts";
 *
 * const bytes = checkBufferSource("ioctl", "input", new Uint32Array([1, 2]));
 * bytes.length; // 8
 * ```
 */
export function checkBufferSource(
  functionName: string,
  argument: string,
  value: unknown,
): Uint8Array {
  const expected = "an ArrayBuffer or ArrayBufferView whose memory is not detached";
  if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) {
    if (isDetached(value)) throw new ArgumentError(functionName, argument, expected, value);
    return new Uint8Array(value);
  }
  if (ArrayBuffer.isView(value)) {
    if (isDetached(value.buffer)) throw new ArgumentError(functionName, argument, expected, value);
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  throw new ArgumentError(functionName, argument, expected, value);
}

function isDetached(buffer: ArrayBufferLike): boolean {
  return buffer instanceof ArrayBuffer && buffer.detached;
}

/** `call`, with its control code and detail in parentheses when there are any. */
function describeCall(call: string, controlCode?: CtlCodeInfo, detail?: string): string {
  const parts: string[] = [];
  if (controlCode !== undefined) parts.push(formatCtlCode(controlCode.code));
  if (detail !== undefined) parts.push(`"${detail}"`);
  return parts.length === 0 ? call : `${call}(${parts.join(", ")})`;
}

/** `ERROR_X (code)`, or `Win32 error <code>` for an unknown code. */
function describeWin32Error(code: number): string {
  const name = WIN32_ERROR_NAMES.get(code);
  return name === undefined ? win32ErrorName(code) : `${name} (${code})`;
}

/** `NTSTATUS STATUS_X (0x...)`, or `NTSTATUS 0x...` for an unknown status. */
/** What a status means beyond its name, where it is easy to misread. */
const NTSTATUS_HINTS: ReadonlyMap<number, string> = new Map([
  // Wine completes the request that was in the driver when its host died with this status.
  [0xC000_0123, "under Wine: the driver's host process died"],
]);

function describeNtStatus(status: number): string {
  const name = NTSTATUS_NAMES.get(status >>> 0);
  const hex = formatNtStatus(status);
  const hint = NTSTATUS_HINTS.get(status >>> 0);
  return (name === undefined ? `NTSTATUS ${hex}` : `NTSTATUS ${name} (${hex})`) +
    (hint === undefined ? "" : ` - ${hint}`);
}

function describeReason(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  return reason === undefined ? "no reason given" : String(reason);
}

/** Bounds such as 0xFFF or 0xFFFFFFFF read better in hex. */
function isBitMask(bound: number): boolean {
  return bound >= 0xFF && Number.isInteger(Math.log2(bound + 1));
}

/** Upper-case hex, but small numbers as they are: `0`, `0xFFF`. */
function hex(value: number): string {
  return value < 10 ? String(value) : `0x${value.toString(16).toUpperCase()}`;
}

const SHORT_STRING = 40;

/** A short description of a (wrong) value for an error message. */
function describeValue(value: unknown): string {
  switch (typeof value) {
    case "string":
      return value.length <= SHORT_STRING
        ? JSON.stringify(value)
        : `a string of length ${value.length}`;
    case "bigint":
      return `${value}n`;
    case "symbol":
      return value.toString();
    case "function":
      return "a function";
    case "object":
      return value === null ? "null" : describeObject(value);
    default:
      return String(value);
  }
}

function describeObject(value: object): string {
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) {
    const kind = value.constructor.name;
    return isDetached(value)
      ? `a detached ${kind}`
      : `${article(kind)} of ${value.byteLength} bytes`;
  }
  if (ArrayBuffer.isView(value)) {
    const kind = value.constructor.name;
    return isDetached(value.buffer)
      ? `${article(kind)} over a detached ArrayBuffer`
      : `${article(kind)} of ${value.byteLength} bytes`;
  }
  const kind = Object.getPrototypeOf(value)?.constructor?.name;
  if (typeof kind !== "string" || kind === "Object" || kind === "") return "an object";
  return article(kind);
}

function article(noun: string): string {
  return /^[AEIO]/i.test(noun) ? `an ${noun}` : `a ${noun}`;
}
