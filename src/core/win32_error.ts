/**
 * {@link Win32Error}: a Windows call failed (`GetLastError` code, the call,
 * the decoded control code, the NTSTATUS when known); {@link AbortError} and
 * {@link TimeoutError} are the cancelled operations among them; {@link WarningStatusError} a
 * request completed with a warning NTSTATUS, whose bytes it carries.
 *
 * @example
 * ```ts
 * import { Win32Error } from "./win32_error.ts";
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
} from "./error_names.ts";
import { KbridgeError } from "./errors.ts";

/** `ERROR_OPERATION_ABORTED`: the code of an I/O operation cancelled by `CancelIoEx`. */
const ERROR_OPERATION_ABORTED = 995;

/**
 * What {@link Win32Error} needs to describe a failed Windows call.
 *
 * @example
 * ```ts
 * import type { Win32ErrorOptions } from "./win32_error.ts";
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
 * import { Win32Error } from "./win32_error.ts";
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
 * What {@link WarningStatusError} needs: the completed call, its warning
 * NTSTATUS and the bytes it returned.
 *
 * @example
 * ```ts
 * import type { WarningStatusErrorOptions } from "./win32_error.ts";
 *
 * const options: WarningStatusErrorOptions = {
 *   code: 234,
 *   call: "DeviceIoControl",
 *   ntStatus: 0x80000005,
 *   data: new Uint8Array(16),
 * };
 * ```
 */
export interface WarningStatusErrorOptions extends Omit<Win32ErrorOptions, "ntStatus" | "cause"> {
  /** The warning NTSTATUS (0x80000000..0xBFFFFFFF), e.g. `STATUS_BUFFER_OVERFLOW`. */
  ntStatus: number;
  /** What the driver wrote: a view of the output buffer, as long as the bytes returned. */
  data: Uint8Array;
}

/**
 * A request completed with a *warning* NTSTATUS, e.g. `STATUS_BUFFER_OVERFLOW`
 * (`ERROR_MORE_DATA (234)`): Windows reports it as a failure of
 * `DeviceIoControl`, yet the request ran to its end and the driver's bytes
 * and byte count are valid. They are here, in {@link WarningStatusError.data}.
 * A query whose answer did not fit (a partial answer, often with the size
 * needed) is the usual case. It is a {@link Win32Error}, so code that handles
 * error 234 keeps working.
 *
 * @example
 * ```ts
 * import { WarningStatusError } from "./win32_error.ts";
 *
 * const error = new WarningStatusError({
 *   code: 234,
 *   call: "DeviceIoControl",
 *   ntStatus: 0x80000005,
 *   data: new Uint8Array([1, 2, 3, 4]),
 * });
 * error.bytesReturned; // 4
 * error.message;
 * // "DeviceIoControl completed with a warning: ERROR_MORE_DATA (234),
 * //  NTSTATUS STATUS_BUFFER_OVERFLOW (0x80000005), 4 bytes returned"
 * ```
 */
export class WarningStatusError extends Win32Error {
  /** `"WarningStatusError"`. */
  override name: string = "WarningStatusError";
  /** The warning NTSTATUS the request completed with. */
  declare readonly ntStatus: number;
  /** The bytes the driver returned (a view of the output buffer). */
  readonly data: Uint8Array;
  /** How many bytes the driver returned: `data.length`. */
  readonly bytesReturned: number;

  /** Creates the error; see {@link WarningStatusErrorOptions}. */
  constructor(options: WarningStatusErrorOptions) {
    super(options);
    this.data = options.data;
    this.bytesReturned = options.data.length;
    this.message = `${
      describeCall(options.call, this.controlCode, options.detail)
    } completed with a warning: ${describeWin32Error(options.code)}, ${
      describeNtStatus(options.ntStatus)
    }, ${options.data.length} bytes returned`;
  }
}

/**
 * What {@link AbortError} needs: the call and its control code, and the
 * `AbortSignal.reason`.
 *
 * @example
 * ```ts
 * import type { AbortErrorOptions } from "./win32_error.ts";
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
 * import { AbortError } from "./win32_error.ts";
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
 * import type { TimeoutErrorOptions } from "./win32_error.ts";
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
 * import { TimeoutError } from "./win32_error.ts";
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
