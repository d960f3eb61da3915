/**
 * The errors kbridge throws. Every one extends {@link KbridgeError}, so
 * `err instanceof KbridgeError` tells kbridge's errors from others.
 *
 * - {@link ArgumentError}: a bad argument, named in the message; with the
 *   argument checks every module uses ({@link checkInteger}, {@link checkBufferSource}).
 * - {@link ClosedError}, {@link ChannelUnavailableError},
 *   {@link UnsupportedPlatformError}: the state or platform does not allow the call.
 * - {@link CorruptRingError}: shared memory breaks the ring's layout rules.
 * - {@link NonblockingCallError}: a call on a worker thread failed (no code).
 * - A failed Windows call is a `Win32Error` (`win32_error.ts`, which decodes
 *   control codes and so depends on `ctl_code.ts`, itself a user of this module).
 *
 * @example
 * ```ts
 * import { ArgumentError, KbridgeError } from "./errors.ts";
 *
 * const error = new ArgumentError("open", "path", "a non-empty string", "");
 * error instanceof KbridgeError; // true
 * ```
 *
 * @module
 */

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
 * Shared memory laid out as a kbridge ring holds a value its layout rules
 * out: a wrong header (magic, version, sizes), an index off the 8-byte grid
 * or further than the capacity from the other, a record longer than the
 * space it may use, or a pad record where none can be. The reader stops at
 * the first such value instead of reading out of bounds or looping; the
 * records before it were delivered.
 *
 * @example
 * ```ts
 * import { CorruptRingError } from "./errors.ts";
 *
 * const error = new CorruptRingError("head 0x4 is not a multiple of 8");
 * error.message; // "kbridge: corrupt ring: head 0x4 is not a multiple of 8"
 * ```
 */
export class CorruptRingError extends KbridgeError {
  /** `"CorruptRingError"`. */
  override name: string = "CorruptRingError";
  /** Which value is wrong, and why. */
  readonly reason: string;

  /** Creates the error; `reason` names the value and the rule it breaks. */
  constructor(reason: string) {
    super(`kbridge: corrupt ring: ${reason}`);
    this.reason = reason;
  }
}

/**
 * A Windows call made on a worker thread (a `nonblocking` FFI call, e.g. the
 * wait that does not block the event loop) reported failure. Its error code
 * stays in that thread's `GetLastError`, which JavaScript cannot read (a
 * read on the main thread returns another call's code), so the error has
 * none: it names the call and what it returned.
 *
 * @example
 * ```ts
 * import { NonblockingCallError } from "./errors.ts";
 *
 * const error = new NonblockingCallError("WaitForMultipleObjects", "WAIT_FAILED");
 * error.message;
 * // "kbridge: WaitForMultipleObjects returned WAIT_FAILED on a worker thread
 * //  (its error code stays on that thread)"
 * ```
 */
export class NonblockingCallError extends KbridgeError {
  /** `"NonblockingCallError"`. */
  override name: string = "NonblockingCallError";
  /** The Windows function that failed. */
  readonly call: string;
  /** What it returned, e.g. `WAIT_FAILED`. */
  readonly result: string;

  /** Creates the error for `call`, which returned `result`. */
  constructor(call: string, result: string) {
    super(
      `kbridge: ${call} returned ${result} on a worker thread (its error code stays on that thread)`,
    );
    this.call = call;
    this.result = result;
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
