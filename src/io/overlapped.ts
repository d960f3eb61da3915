/**
 * Overlapped I/O through one I/O completion port per process.
 *
 * Every overlapped device handle is associated with the port, in the mode
 * that queues no packet for a request completed at once
 * (`FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`): such a request settles from the
 * call's own result, without a look at the port (under Wine ~40 µs less per
 * request, a sync handle's cost). While requests
 * are in flight, the port is looked at without waiting once the issuing code
 * has run; while completions come close together it is polled for a short
 * adaptive window (src/io/adaptive_spin.ts; each check waits up to 2 ms on
 * the port under Wine, none on Windows);
 * otherwise one `nonblocking` `GetQueuedCompletionStatusEx` call waits on it
 * (one worker thread for any number of requests). Each look dispatches up to
 * {@linkcode BATCH} completions. When nothing is in flight no call is pending,
 * so an idle process can exit. An OVERLAPPED serves a later request once the
 * kernel is done with it (its completion taken, or it ended at once).
 *
 * @module
 */
import { NonblockingCallError } from "../core/errors.ts";
import { AbortError, TimeoutError, WarningStatusError, Win32Error } from "../core/win32_error.ts";
import { AdaptiveSpin, DEFAULT_POLL_MS, nextMacrotask } from "./adaptive_spin.ts";
import { createEvent, type KernelEvent } from "./kernel_event.ts";
import {
  type Kernel32,
  kernel32,
  lastError,
  pointerValue,
  underWine,
  win32ErrorOf,
} from "../core/native.ts";

const ERROR_IO_PENDING = 997;
const ERROR_OPERATION_ABORTED = 995;
const ERROR_HANDLE_EOF = 38;
const STATUS_CANCELLED = 0xc000_0120;
const STATUS_PENDING = 0x103;
const WAIT_TIMEOUT = 0x102;
const INFINITE = 0xffff_ffff;
/** Completions taken from the port per wake-up. */
const BATCH = 64;
/** sizeof(OVERLAPPED) on x64: Internal, InternalHigh, Offset/OffsetHigh, hEvent. */
const OVERLAPPED_SIZE = 32;
/** sizeof(OVERLAPPED_ENTRY) on x64: key, lpOverlapped, Internal, bytes (+4 padding). */
const ENTRY_SIZE = 32;
/**
 * Most OVERLAPPEDs kept for reuse. A request's OVERLAPPED is reused only once
 * its completion was taken (or it completed at once): the kernel no longer
 * writes it then. Under Wine a fresh one per request cost ~10 µs more per
 * PEND than a reused one (issue phase of a burst of 64, raw FFI, same process).
 */
const SPARE_OVERLAPPEDS = 256;
/** SetFileCompletionNotificationModes: no packet, and no file event, for a request completed at once. */
const FILE_SKIP_COMPLETION_PORT_ON_SUCCESS = 0x1;
const FILE_SKIP_SET_EVENT_ON_HANDLE = 0x2;

/**
 * Options of an overlapped IOCTL.
 *
 * @example
 * ```ts ignore
 * const options: IoctlAsyncOptions = { signal: AbortSignal.timeout(5000), timeoutMs: 1000 };
 * await device.ioctlAsync(IOCTL.PEND, request, PendResult.size, options);
 * ```
 */
export interface IoctlAsyncOptions {
  /** Cancels the request (`CancelIoEx`); the Promise rejects with an `AbortError`. */
  signal?: AbortSignal;
  /** Cancels the request after this many milliseconds; the Promise rejects with a `TimeoutError`. */
  timeoutMs?: number;
}

/**
 * A checked request: an IOCTL (`code`), or a read into `output` or a write of
 * `input` at the file position `offset` (0 when omitted, which devices
 * usually ignore).
 */
export interface IoRequest {
  call: "DeviceIoControl" | "ReadFile" | "WriteFile";
  /** The control code of a DeviceIoControl. */
  code?: number;
  input: Uint8Array | null;
  output: Uint8Array;
  offset?: bigint;
}

/** Why a request was cancelled, decided by whoever cancelled it first. */
type CancelReason =
  | { kind: "signal"; reason: unknown }
  | { kind: "timeout"; ms: number }
  | { kind: "closed" };

/** An OVERLAPPED and its address: the port's key for the request that uses it. */
interface OverlappedSlot {
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly key: bigint;
}

/**
 * A request in flight: everything the kernel may still touch is referenced
 * here, so the OVERLAPPED's address (the request's key on the port) belongs
 * to no other request until the request's completion packet is taken.
 */
interface Operation {
  handle: Deno.PointerValue;
  path: string;
  request: IoRequest;
  slot: OverlappedSlot;
  cancelled?: CancelReason;
  /** Settles the request from its completion packet. */
  settle(status: number, bytes: number): void;
  /** Rejects the request when no completion can be taken any more. */
  abandon(error: Error): void;
}

/**
 * Issues `request` with `overlapped` (an overlapped handle, or a sync handle
 * with a file offset) or none; true when it completed at once.
 */
export function startRequest(
  k32: Kernel32,
  handle: Deno.PointerValue,
  request: IoRequest,
  overlapped: Uint8Array | null,
  returned: Uint32Array | null,
): boolean {
  const { input, output } = request;
  if (overlapped !== null && request.offset !== undefined) {
    new DataView(overlapped.buffer, overlapped.byteOffset).setBigUint64(16, request.offset, true);
  }
  switch (request.call) {
    case "DeviceIoControl":
      return k32.DeviceIoControl(
        handle,
        request.code!,
        input,
        input?.byteLength ?? 0,
        output,
        output.byteLength,
        returned,
        overlapped,
      ) !== 0;
    case "ReadFile":
      return k32.ReadFile(handle, output, output.byteLength, returned, overlapped) !== 0;
    case "WriteFile":
      return k32.WriteFile(handle, input, input?.byteLength ?? 0, returned, overlapped) !== 0;
  }
}

/**
 * Whether a failure is a read at the end of the file: `ReadFile` then
 * returns no bytes, as it does on a handle without overlapped I/O.
 */
export function isEndOfFile(request: IoRequest, code: number): boolean {
  return request.call === "ReadFile" && code === ERROR_HANDLE_EOF;
}

/** The NTSTATUS an OVERLAPPED holds, unless it is still the initial STATUS_PENDING or 0. */
function knownStatus(status: number): number | undefined {
  return status === STATUS_PENDING || status === 0 ? undefined : status;
}

/**
 * Whether `status` is an NTSTATUS warning (severity 2, 0x8000_0000..0xBFFF_FFFF):
 * the request completed, its data and byte count are valid, and (unlike an error)
 * its completion is reported as for a success: a packet on the port, the OVERLAPPED written.
 */
export function isWarningStatus(status: number): boolean {
  return status >>> 30 === 2;
}

/** What the errors of `request` on the device at `path` name: the call, its control code, the path. */
export function requestContext(
  request: IoRequest,
  path: string,
): { call: IoRequest["call"]; controlCode?: number; detail: string } {
  return { call: request.call, controlCode: request.code, detail: path };
}

/** The typed error of a request that completed with the warning `ntStatus` and `bytes` of output. */
export function warningError(
  request: IoRequest,
  path: string,
  ntStatus: number,
  bytes: number,
): WarningStatusError {
  return new WarningStatusError({
    ...requestContext(request, path),
    code: win32ErrorOf(ntStatus),
    ntStatus: ntStatus >>> 0,
    data: request.output.subarray(0, bytes),
  });
}

/** The process-wide completion port and its in-flight requests. */
export class CompletionPort {
  #port: Deno.PointerValue = null;
  readonly #operations = new Map<bigint, Operation>();
  /** Handles (by value) whose requests completed at once bring no packet. */
  readonly #skipping = new Set<bigint>();
  /**
   * Requests that completed at once while others were in flight, settled
   * only after a look at the port that began after them found it drained:
   * packets queued before such a request completed settle first, so one
   * code's completions keep their order (an inverted call's re-issued
   * request, completed at once with the driver's next message, must not
   * overtake the completions still in the port).
   */
  readonly #completedAtOnce: { look: number; settle: () => void }[] = [];
  /** Looks at the port taken on this thread, and the last one that drained it. */
  #looks = 0;
  #drainedLook = 0;
  /** Whether a nonblocking wait on the port is outstanding, and whether a wake-up was posted to it. */
  #sleeping = false;
  #wakePosted = false;
  /** Requests the kernel may still complete after the port failed: kept alive for good. */
  readonly #abandoned: Operation[] = [];
  /** OVERLAPPEDs the kernel is done with, zeroed when taken again. */
  readonly #spare: OverlappedSlot[] = [];
  readonly #entries = new Uint8Array(ENTRY_SIZE * BATCH);
  readonly #removed = new Uint32Array(1);
  #polling = false;
  #blockingEvent: KernelEvent | undefined;
  readonly #blockingOverlapped = new Uint8Array(OVERLAPPED_SIZE);
  readonly #returned = new Uint32Array(1);
  readonly #spin = new AdaptiveSpin(DEFAULT_POLL_MS);
  /**
   * How long each check of the poll waits on the port: under Wine 2 ms, on
   * Windows none. Under Wine a pended request's output is copied into this
   * process by an APC to the thread that issued it, the event-loop thread:
   * waiting on the port, it takes the APC at once; running (polling without
   * a wait) it takes it late. Inverted latency p50, Deno / C: 3.0 polling,
   * 1.32 waiting 2 ms. Waits of 1 ms ended just before the next message of a
   * 1 kHz stream (p50 205-237 µs against 143-171 µs with 2 ms; C 148 µs).
   * A check then holds the event loop for up to 2 ms. On Windows a wait that
   * short would last a clock tick (~15.6 ms), and its completions do not
   * wait for the thread.
   */
  readonly #pollWaitMs = underWine() ? 2 : 0;

  /** Requests in flight on all devices. */
  get inFlight(): number {
    return this.#operations.size;
  }

  /** OVERLAPPEDs kept for reuse. */
  get spareCount(): number {
    return this.#spare.length;
  }

  #ensurePort(): Deno.PointerValue {
    if (this.#port !== null) return this.#port;
    const k32 = kernel32("CreateIoCompletionPort");
    const invalid = Deno.UnsafePointer.create(0xffff_ffff_ffff_ffffn);
    const port = k32.CreateIoCompletionPort(invalid, null, 0n, 1);
    if (port === null) {
      throw new Win32Error({ code: k32.GetLastError(), call: "CreateIoCompletionPort" });
    }
    this.#port = port;
    return port;
  }

  /** Routes the completions of an overlapped handle to the port. */
  associate(handle: Deno.PointerValue, path: string): void {
    const port = this.#ensurePort();
    const k32 = kernel32("CreateIoCompletionPort");
    if (k32.CreateIoCompletionPort(handle, port, 0n, 0) === null) {
      const code = k32.GetLastError();
      k32.CloseHandle(handle);
      throw new Win32Error({ code, call: "CreateIoCompletionPort", detail: path });
    }
    // A handle value is reused after a close: the set follows its latest handle.
    const modes = FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE;
    if (
      kernel32("SetFileCompletionNotificationModes").SetFileCompletionNotificationModes(
        handle,
        modes,
      )
    ) {
      this.#skipping.add(pointerValue(handle));
    } else {
      this.#skipping.delete(pointerValue(handle));
    }
  }

  /**
   * Starts an overlapped request; resolves with `done(bytes)`, the bytes
   * transferred (0 for a read at the end of the file); rejects with a
   * {@linkcode WarningStatusError} carrying the output for a warning status.
   */
  start<T>(
    handle: Deno.PointerValue,
    path: string,
    request: IoRequest,
    options: { signal?: AbortSignal; timeoutMs?: number },
    done: (bytes: number) => T,
  ): Promise<T> {
    const { signal, timeoutMs } = options;
    if (signal?.aborted) {
      return Promise.reject(
        new AbortError({ ...requestContext(request, path), reason: signal.reason }),
      );
    }
    const k32 = kernel32(request.call);
    const slot = this.#takeSlot();
    const { bytes: overlapped, key } = slot;
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => this.#cancel(key, { kind: "signal", reason: signal?.reason });
    const finish = () => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const operation: Operation = {
      handle,
      path,
      request,
      slot,
      settle: (status, bytes) => {
        finish();
        if (status === 0) resolve(done(bytes));
        else if (isWarningStatus(status)) reject(warningError(request, path, status, bytes));
        else if (isEndOfFile(request, win32ErrorOf(status))) resolve(done(0));
        else reject(this.#failure(operation, status));
      },
      abandon: (error) => {
        finish();
        reject(error);
      },
    };
    const ok = startRequest(k32, handle, request, overlapped, null);
    const error = ok ? undefined : lastError(k32);
    if (error?.code !== ERROR_IO_PENDING) {
      // Completed at once. A success or a warning brings a packet unless the handle skips
      // it (the rule is "pending, or no error": Wine's server/async.c has it too); an error
      // never does.
      const status = error?.ntStatus;
      const warning = status !== undefined && isWarningStatus(status);
      if (error !== undefined && !warning) {
        this.#recycle(slot); // nothing was started
        if (isEndOfFile(request, error.code)) return Promise.resolve(done(0));
        return Promise.reject(new Win32Error({ ...error, ...requestContext(request, path) }));
      }
      if (this.#skipping.has(pointerValue(handle))) {
        // InternalHigh holds the byte count (lpBytesReturned is not passed with an OVERLAPPED).
        const bytes = Number(new DataView(overlapped.buffer).getBigUint64(8, true));
        this.#recycle(slot); // completed: no packet will name it
        const settle = () => operation.settle(warning ? status : 0, bytes);
        if (this.#operations.size === 0) {
          settle();
        } else {
          this.#completedAtOnce.push({ look: this.#looks, settle });
          this.#schedulePoll();
          this.#wake();
        }
        return promise;
      }
    }
    this.#operations.set(key, operation);
    signal?.addEventListener("abort", onAbort, { once: true });
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => this.#cancel(key, { kind: "timeout", ms: timeoutMs }), timeoutMs);
    }
    this.#schedulePoll();
    return promise;
  }

  /** A zeroed OVERLAPPED: a spare one, else a new one. */
  #takeSlot(): OverlappedSlot {
    const spare = this.#spare.pop();
    if (spare !== undefined) {
      spare.bytes.fill(0);
      return spare;
    }
    const bytes = new Uint8Array(OVERLAPPED_SIZE);
    return { bytes, key: pointerValue(Deno.UnsafePointer.of(bytes)) };
  }

  /** Keeps `slot` for a later request; only for one the kernel no longer writes. */
  #recycle(slot: OverlappedSlot): void {
    if (this.#spare.length < SPARE_OVERLAPPEDS) this.#spare.push(slot);
  }

  /**
   * Ends an outstanding nonblocking wait with a packet of no request, queued
   * after every packet before it, so that a request held in
   * {@linkcode CompletionPort.#completedAtOnce} does not wait for the next
   * real completion.
   */
  #wake(): void {
    if (!this.#sleeping || this.#wakePosted) return;
    this.#wakePosted = true;
    kernel32("PostQueuedCompletionStatus").PostQueuedCompletionStatus(this.#port, 0, 0n, null);
  }

  /**
   * A request on an overlapped handle that waits for its completion in the
   * calling thread: an event whose low bit is set keeps the completion out of
   * the port. After `timeoutMs` the request is cancelled (`TimeoutError`).
   * Returns the bytes transferred (0 for a read at the end of the file); a
   * warning status throws a {@linkcode WarningStatusError} with the output bytes.
   */
  startBlocking(
    handle: Deno.PointerValue,
    path: string,
    request: IoRequest,
    timeoutMs?: number,
  ): number {
    const k32 = kernel32(request.call);
    // One event serves every blocking call (they never overlap: JavaScript waits for each);
    // the I/O manager resets it when a request starts.
    this.#blockingEvent ??= createEvent({ manualReset: true });
    const event = this.#blockingEvent;
    const overlapped = this.#blockingOverlapped.fill(0);
    new DataView(overlapped.buffer).setBigUint64(24, event.handleValue | 1n, true);
    const returned = this.#returned;
    const ok = startRequest(k32, handle, request, overlapped, null);
    const started = ok ? undefined : lastError(k32);
    if (started?.ntStatus !== undefined && isWarningStatus(started.ntStatus)) {
      // Completed at once: the byte count is in the OVERLAPPED (InternalHigh).
      throw warningError(
        request,
        path,
        started.ntStatus,
        new DataView(overlapped.buffer).getUint32(8, true),
      );
    }
    if (started !== undefined && started.code !== ERROR_IO_PENDING) {
      if (isEndOfFile(request, started.code)) return 0;
      throw new Win32Error({ ...started, ...requestContext(request, path) });
    }
    let timedOut = false;
    if (started !== undefined && timeoutMs !== undefined) {
      if (!event.waitSync(timeoutMs)) {
        timedOut = true;
        k32.CancelIoEx(handle, overlapped);
      }
    }
    if (!k32.GetOverlappedResult(handle, overlapped, returned, 1)) {
      const code = k32.GetLastError();
      if (timedOut && code === ERROR_OPERATION_ABORTED) {
        throw new TimeoutError({ ...requestContext(request, path), timeoutMs: timeoutMs! });
      }
      const status = new DataView(overlapped.buffer).getUint32(0, true);
      if (isWarningStatus(status)) throw warningError(request, path, status, returned[0]);
      if (isEndOfFile(request, code)) return 0;
      throw new Win32Error({
        ...requestContext(request, path),
        code,
        ntStatus: knownStatus(status),
      });
    }
    return returned[0];
  }

  /** Cancels every request of `handle` (before it is closed). */
  cancelAll(handle: Deno.PointerValue): void {
    const k32 = kernel32("CancelIoEx");
    let any = false;
    for (const operation of this.#operations.values()) {
      // The device passes its one handle object to every call, so identity is enough.
      if (operation.handle === handle) {
        operation.cancelled ??= { kind: "closed" };
        any = true;
      }
    }
    if (any) k32.CancelIoEx(handle, null);
  }

  #cancel(key: bigint, reason: CancelReason): void {
    const operation = this.#operations.get(key);
    if (!operation || operation.cancelled) return;
    operation.cancelled = reason;
    // A request that has just completed is no longer found: CancelIoEx then fails
    // with ERROR_NOT_FOUND and the completion stands.
    kernel32("CancelIoEx").CancelIoEx(operation.handle, operation.slot.bytes);
  }

  #failure(operation: Operation, status: number): Error {
    const context = requestContext(operation.request, operation.path);
    if (status === STATUS_CANCELLED && operation.cancelled) {
      const cancelled = operation.cancelled;
      if (cancelled.kind === "timeout") {
        return new TimeoutError({ ...context, timeoutMs: cancelled.ms });
      }
      return new AbortError({
        ...context,
        reason: cancelled.kind === "signal" ? cancelled.reason : "device closed",
      });
    }
    return new Win32Error({ ...context, code: win32ErrorOf(status), ntStatus: status });
  }

  /**
   * Starts taking completions once the code that issued this request has run
   * (a microtask later): requests issued together (a burst, then the call
   * that completes them) are all in flight before the first look at the port,
   * and no worker thread is woken while they are being issued. Looking at
   * once cost a nonblocking wait per burst, whose wake-up competed with the
   * requests still being issued: PEND 64 at 2.5 k/s instead of ~9 k/s.
   */
  #schedulePoll(): void {
    if (this.#polling) return;
    this.#polling = true;
    queueMicrotask(() => this.#poll());
  }

  /**
   * Takes completions from the port while requests are in flight: first
   * without waiting (no thread hop when some are ready), then by polling while
   * completions have been coming close together (a wake-up from the worker
   * thread costs ~150 µs under Wine: inverted-call latency p50 fell from ~3.1×
   * to ~1.4× the C client's), else with one nonblocking wait at a time.
   */
  async #poll(): Promise<void> {
    const k32 = kernel32("GetQueuedCompletionStatusEx");
    const view = new DataView(this.#entries.buffer);
    const port = this.#port;
    const call = "GetQueuedCompletionStatusEx";
    /** One look without waiting: true when entries were taken or the port failed. */
    let failure: Error | undefined;
    const takeReady = (waitMs = 0) => {
      this.#looks++;
      if (k32.GetQueuedCompletionStatusEx(port, this.#entries, BATCH, this.#removed, waitMs, 0)) {
        if (this.#removed[0] < BATCH) this.#drainedLook = this.#looks;
        return true;
      }
      this.#drainedLook = this.#looks;
      const code = k32.GetLastError();
      if (code !== WAIT_TIMEOUT) failure = new Win32Error({ code, call });
      this.#removed[0] = 0;
      return failure !== undefined;
    };
    try {
      const atOnce = this.#completedAtOnce;
      while (this.#operations.size > 0 || atOnce.length > 0) {
        if (!takeReady() && atOnce.length === 0) {
          const taken = await this.#spin.poll(
            () => this.#operations.size === 0 || takeReady(this.#pollWaitMs) || atOnce.length > 0,
            Infinity,
          );
          if (!taken && atOnce.length === 0) {
            this.#sleeping = true;
            const ok = await k32.GetQueuedCompletionStatusExAsync(
              port,
              this.#entries,
              BATCH,
              this.#removed,
              INFINITE,
              0,
            ).finally(() => {
              this.#sleeping = false;
              this.#wakePosted = false;
            });
            // It failed on a worker thread, which keeps its error code.
            if (ok === 0) failure = new NonblockingCallError(call, "FALSE");
          }
        }
        if (failure !== undefined) {
          // The port itself failed: no completion can be trusted any more, but the
          // kernel may still write the requests' buffers, so they stay referenced.
          for (const operation of this.#operations.values()) {
            operation.abandon(failure);
            this.#abandoned.push(operation);
          }
          this.#operations.clear();
          // These completed: the kernel is done with them.
          for (const { settle } of atOnce.splice(0)) settle();
          return;
        }
        let settled = 0;
        for (let i = 0; i < this.#removed[0]; i++) {
          const base = i * ENTRY_SIZE;
          const key = view.getBigUint64(base + 8, true);
          const operation = this.#operations.get(key);
          // A wake-up packet (no OVERLAPPED) settles nothing.
          if (!operation) continue;
          this.#operations.delete(key);
          this.#recycle(operation.slot); // its completion is taken: the kernel is done with it
          operation.settle(
            Number(view.getBigUint64(base + 16, true) & 0xffff_ffffn),
            view.getUint32(base + 24, true),
          );
          settled++;
        }
        if (settled > 0) this.#spin.arrived();
        // With nothing left in flight no completion can still be queued before them.
        if (this.#operations.size === 0) this.#drainedLook = this.#looks;
        while (atOnce.length > 0 && atOnce[0].look < this.#drainedLook) {
          atOnce.shift()!.settle();
          settled++;
        }
        // Let the settled requests' continuations run to their end (consumers woken, next
        // requests issued) before the next look, a system call (a wineserver round trip under
        // Wine): one microtask let the look run amid their promise chains, and the inverted
        // channel's consumer saw its message ~70 µs after the completion was taken.
        if (settled > 0) await nextMacrotask();
      }
    } finally {
      this.#polling = false;
    }
  }
}

let port: CompletionPort | undefined;

/** The process-wide {@linkcode CompletionPort}, created on first use. */
export function completionPort(): CompletionPort {
  port ??= new CompletionPort();
  return port;
}
