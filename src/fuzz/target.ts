/**
 * What the fuzzer sends its requests to: the {@linkcode FuzzTarget} interface
 * (a device that can be called with a deadline, checked for life and
 * restarted) and {@linkcode DeviceTarget}, the real one: an overlapped handle
 * of a device, and the driver's service through the service control manager.
 *
 * A request that does not complete before its deadline is cancelled
 * (`CancelIoEx`); one that then completes as cancelled merely pended. One that
 * does not complete even `hangMs` after the cancel is a hang: the fuzzer can
 * never be blocked by the driver. A driver whose host died (under Wine: the
 * failing call returns `ERROR_ACCESS_DENIED` after about a second, later calls
 * fail, the device can no longer be opened) is told apart from a driver that
 * merely answered `STATUS_ACCESS_DENIED` by opening the device again.
 *
 * @module
 */
import { openDevice } from "../io/device.ts";
import type { Device } from "../io/device.ts";
import { KbridgeError } from "../core/errors.ts";
import { AbortError, Win32Error } from "../core/win32_error.ts";
import { startDriver, stopDriver } from "../io/service.ts";
import { ntStatusName } from "../core/error_names.ts";
import { dosLinkOf, removeDosDeviceLink } from "../io/dos_link.ts";
import { underWine } from "../core/native.ts";

/** What StartServiceW answers under Wine while a dead host's link is still there. */
const ERROR_INVALID_HANDLE = 6;

/**
 * How one request ended.
 *
 * - `ok`: completed successfully, `bytesReturned` bytes of the output written;
 * - `error`: failed with a status (`status` is its name, e.g. `STATUS_INVALID_PARAMETER`);
 * - `pended`: still pending at the deadline, then cancelled cleanly;
 * - `hang`: not completed even after the cancel.
 *
 * @example
 * ```ts
 * import type { CallOutcome } from "./target.ts";
 * const outcome: CallOutcome = { kind: "error", status: "STATUS_INVALID_PARAMETER", win32: 87 };
 * ```
 */
export type CallOutcome =
  | { readonly kind: "ok"; readonly bytesReturned: number }
  | {
    readonly kind: "error";
    readonly status: string;
    readonly win32: number;
    readonly ntStatus?: number;
  }
  | { readonly kind: "pended" }
  | { readonly kind: "hang" };

/**
 * A device the fuzzer can send requests to, check and restart.
 *
 * @example
 * ```ts ignore
 * const target: FuzzTarget = new DeviceTarget("\\\\.\\KbCrashy", { service: "kbcrashy" });
 * const outcome = await target.call(0x80232000, new Uint8Array(), new Uint8Array(32), 25, 5000);
 * ```
 */
export interface FuzzTarget {
  /** The device path. */
  readonly path: string;
  /** Whether {@linkcode FuzzTarget.restart} can bring a dead driver back. */
  readonly restartable: boolean;
  /**
   * Sends one request; `output` is the buffer the driver writes into. Cancels
   * it after `timeoutMs`; reports a hang when it has not completed `hangMs` later.
   */
  call(
    code: number,
    input: Uint8Array,
    output: Uint8Array,
    timeoutMs: number,
    hangMs: number,
  ): Promise<CallOutcome>;
  /**
   * How long requests that hung have stayed in the driver since (ms, summed
   * over them, the ones still held counted up to now), when the target
   * knows. Such a request still costs the run: the driver holds it and its
   * buffers, and whatever it blocks in the driver waits too.
   */
  readonly lingeringMs?: number;
  /** Whether the driver still answers (opens the device again when it can). */
  alive(): Promise<boolean>;
  /** Restarts the driver and reopens the device; throws when that fails. */
  restart(): Promise<void>;
  /** Closes the device. */
  close(): Promise<void>;
}

/** Win32 errors with which calls fail once the driver (or its host) is gone. */
const DEATH_ERRORS: ReadonlySet<number> = new Set([
  2, // ERROR_FILE_NOT_FOUND
  3, // ERROR_PATH_NOT_FOUND
  5, // ERROR_ACCESS_DENIED: what the failing call gets under Wine when the host dies
  6, // ERROR_INVALID_HANDLE
  21, // ERROR_NOT_READY
  55, // ERROR_DEV_NOT_EXIST
  109, // ERROR_BROKEN_PIPE
  232, // ERROR_NO_DATA
  233, // ERROR_PIPE_NOT_CONNECTED
  1167, // ERROR_DEVICE_NOT_CONNECTED
]);

/** NTSTATUS values with which calls fail once the driver (or its host) is gone. */
const DEATH_STATUSES: ReadonlySet<number> = new Set([
  0xc000_0008, // STATUS_INVALID_HANDLE
  0xc000_000e, // STATUS_NO_SUCH_DEVICE
  0xc000_0022, // STATUS_ACCESS_DENIED
  0xc000_0034, // STATUS_OBJECT_NAME_NOT_FOUND
  0xc000_003a, // STATUS_OBJECT_PATH_NOT_FOUND
  0xc000_009d, // STATUS_DEVICE_NOT_CONNECTED
  0xc000_00c0, // STATUS_DEVICE_DOES_NOT_EXIST
  0xc000_0123, // STATUS_FILE_DELETED: seen under Wine when the host has just died
  0xc000_014b, // STATUS_PIPE_BROKEN
]);

/**
 * Whether `outcome` is how a call fails when the driver is gone, so that the
 * fuzzer must check whether it died (see {@linkcode FuzzTarget.alive}).
 *
 * @example
 * ```ts
 * import { looksDead } from "./target.ts";
 * looksDead({ kind: "error", status: "STATUS_ACCESS_DENIED", win32: 5 }); // true
 * looksDead({ kind: "ok", bytesReturned: 0 }); // false
 * ```
 */
export function looksDead(outcome: CallOutcome): boolean {
  return outcome.kind === "error" &&
    (DEATH_ERRORS.has(outcome.win32) ||
      (outcome.ntStatus !== undefined && DEATH_STATUSES.has(outcome.ntStatus)));
}

/**
 * The name of a failure: the NTSTATUS's name when the completion carried one,
 * else the Win32 error's.
 *
 * @example
 * ```ts
 * import { Win32Error } from "../core/win32_error.ts";
 * import { errorOutcome } from "./target.ts";
 *
 * errorOutcome(new Win32Error({ code: 87, call: "DeviceIoControl", ntStatus: 0xC000000D })).status;
 * // "STATUS_INVALID_PARAMETER"
 * ```
 */
export function errorOutcome(error: Win32Error): Extract<CallOutcome, { kind: "error" }> {
  const status = error.ntStatus !== undefined ? ntStatusName(error.ntStatus) : error.errorName;
  return error.ntStatus !== undefined
    ? { kind: "error", status, win32: error.code, ntStatus: error.ntStatus >>> 0 }
    : { kind: "error", status, win32: error.code };
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Options of {@linkcode DeviceTarget}.
 *
 * @example
 * ```ts
 * import type { DeviceTargetOptions } from "./target.ts";
 * const options: DeviceTargetOptions = { service: "kbcrashy", probeMs: 1000 };
 * ```
 */
export interface DeviceTargetOptions {
  /** The driver's service, for restarts (none: a dead driver ends the run). */
  service?: string;
  /** How long a liveness probe may take, in milliseconds (default 2000). */
  probeMs?: number;
}

/**
 * A real device: an overlapped handle (reopened as needed) and, with
 * `service`, the driver's service for restarts (`stopDriver` — which fails
 * when the host is already dead — then `startDriver`; under Wine, a stale
 * `\DosDevices` link that blocks the start is removed first).
 *
 * @example
 * ```ts ignore
 * const target = new DeviceTarget("\\\\.\\KbCrashy", { service: "kbcrashy" });
 * const out = new Uint8Array(32);
 * const outcome = await target.call(0x80232000, new Uint8Array(), out, 25, 5000);
 * await target.close();
 * ```
 */
export class DeviceTarget implements FuzzTarget {
  readonly path: string;
  readonly #service?: string;
  readonly #probeMs: number;
  #device: Device | undefined;
  /** Requests that hung: never awaited again, closed with the device. */
  #abandoned = 0;
  /** Each request that hung and is still held, with when it was abandoned (performance.now()). */
  readonly #held = new Map<Promise<CallOutcome>, number>();
  /** The time requests that hung stayed held before they completed (ms). */
  #heldMs = 0;

  /** Opens `path` (throws a `Win32Error` naming it when it cannot). */
  constructor(path: string, options: DeviceTargetOptions = {}) {
    this.path = path;
    this.#service = options.service;
    this.#probeMs = options.probeMs ?? 2000;
    this.#device = openDevice(path);
  }

  get restartable(): boolean {
    return this.#service !== undefined;
  }

  /** Requests abandoned because they hung. */
  get abandoned(): number {
    return this.#abandoned;
  }

  get lingeringMs(): number {
    const now = performance.now();
    let total = this.#heldMs;
    for (const since of this.#held.values()) total += now - since;
    return total;
  }

  #open(): Device {
    this.#device ??= openDevice(this.path);
    return this.#device;
  }

  #drop(): void {
    this.#device?.close();
    this.#device = undefined;
  }

  async call(
    code: number,
    input: Uint8Array,
    output: Uint8Array,
    timeoutMs: number,
    hangMs: number,
  ): Promise<CallOutcome> {
    let device: Device;
    try {
      device = this.#open();
    } catch (error) {
      if (error instanceof Win32Error) return errorOutcome(error);
      throw error;
    }
    // Most requests complete at once and settle from the call itself (no packet on the
    // port): those are answered without any timer. The others get one timer: the cancel at
    // `timeoutMs`, then the hang limit.
    const cancel = new AbortController();
    let settled: CallOutcome | undefined;
    const request = device.ioctlAsync(code, input, output, { signal: cancel.signal }).then(
      (bytes): CallOutcome => settled = { kind: "ok", bytesReturned: bytes.length },
      (error): CallOutcome => {
        if (error instanceof AbortError) return settled = { kind: "pended" };
        if (error instanceof Win32Error) return settled = errorOutcome(error);
        throw error;
      },
    );
    await null; // the handlers of a request already completed run first
    if (settled !== undefined) return settled;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const hang = new Promise<CallOutcome>((resolve) => {
      timer = setTimeout(() => {
        cancel.abort();
        timer = setTimeout(() => resolve({ kind: "hang" }), hangMs);
      }, timeoutMs);
    });
    try {
      const outcome = await Promise.race([request, hang]);
      if (outcome.kind === "hang") {
        // The request still references its buffers: leave it to the closing handle.
        this.#abandoned++;
        const since = performance.now();
        this.#held.set(request, since);
        const released = () => {
          this.#held.delete(request);
          this.#heldMs += performance.now() - since;
        };
        request.then(released, released);
        this.#drop();
      }
      return outcome;
    } finally {
      clearTimeout(timer);
    }
  }

  async alive(): Promise<boolean> {
    // Close first: an exclusive device cannot be opened twice.
    this.#drop();
    try {
      this.#device = openDevice(this.path);
    } catch (error) {
      if (error instanceof Win32Error) return false;
      throw error;
    }
    // The device opens: make sure the driver answers a harmless request on the new handle.
    const outcome = await this.call(
      0,
      new Uint8Array(),
      new Uint8Array(),
      this.#probeMs,
      this.#probeMs,
    );
    return outcome.kind !== "hang" && !looksDead(outcome);
  }

  async restart(): Promise<void> {
    const service = this.#service;
    if (service === undefined) {
      throw new KbridgeError(`kbridge: ${this.path} stopped answering and no service was given`);
    }
    this.#drop();
    let last = "";
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        // A dead host cannot be asked to stop (ERROR_NO_DATA ...): that is expected.
        await stopDriver(service, { timeoutMs: 5000 });
      } catch (error) {
        if (!(error instanceof KbridgeError)) throw error;
      }
      try {
        this.#start(service);
      } catch (error) {
        if (!(error instanceof KbridgeError)) throw error;
        last = error.message;
      }
      if (await this.alive()) return;
      await delay(250 * attempt);
    }
    throw new KbridgeError(
      `kbridge: could not restart the driver service "${service}"${last ? `: ${last}` : ""}`,
    );
  }

  /**
   * Starts the service. Under Wine a dead host's `\DosDevices` link outlives
   * it, and a driver that does not replace a stale link fails to start
   * (`ERROR_INVALID_HANDLE`): then the link is removed and the start retried.
   */
  #start(service: string): void {
    try {
      startDriver(service);
    } catch (error) {
      if (!(error instanceof Win32Error) || error.code !== ERROR_INVALID_HANDLE) throw error;
      if (dosLinkOf(this.path) === undefined || !underWine() || !removeDosDeviceLink(this.path)) {
        throw error;
      }
      startDriver(service);
    }
  }

  close(): Promise<void> {
    this.#drop();
    return Promise.resolve();
  }
}
