/**
 * Win32 event objects for talking to drivers: one the application creates
 * (its handle goes to the driver in an IOCTL) or one a driver created and
 * named (`Global\...`). Waiting never blocks the event loop, and
 * {@linkcode KernelEvent.close} or an `AbortSignal` ends a pending wait.
 *
 * @module
 */
import { ArgumentError, checkInteger, ClosedError, NonblockingCallError } from "../core/errors.ts";
import { AbortError, Win32Error } from "../core/win32_error.ts";
import { kernel32, lastError, pointerValue, wideString } from "../core/native.ts";

const SYNCHRONIZE = 0x0010_0000;
const EVENT_MODIFY_STATE = 0x0002;
const WAIT_OBJECT_0 = 0;
const WAIT_TIMEOUT = 0x102;
const WAIT_FAILED = 0xffff_ffff;
const INFINITE = 0xffff_ffff;
const ERROR_ALREADY_EXISTS = 183;
/** Longest finite wait: a DWORD below INFINITE. */
const MAX_TIMEOUT_MS = 0x7fff_ffff;

/**
 * Options of {@linkcode createEvent}.
 *
 * @example
 * ```ts ignore
 * const options: CreateEventOptions = { manualReset: true, initialState: false };
 * using event = createEvent(options);
 * ```
 */
export interface CreateEventOptions {
  /** A manual-reset (notification) event stays signalled until `reset()`; default `false` (auto-reset). */
  manualReset?: boolean;
  /** Create it signalled; default `false`. */
  initialState?: boolean;
  /** A name (e.g. `Local\MyEvent`); the name must not exist yet. Default: unnamed. */
  name?: string;
}

/**
 * Options of {@linkcode KernelEvent.wait}.
 *
 * @example
 * ```ts ignore
 * const options: WaitOptions = { timeoutMs: 1000, signal: AbortSignal.timeout(5000) };
 * const signalled = await event.wait(options);
 * ```
 */
export interface WaitOptions {
  /** Give up after this many milliseconds (resolves `false`); default: wait forever. */
  timeoutMs?: number;
  /** Ends the wait early: the Promise rejects with an {@linkcode AbortError}. */
  signal?: AbortSignal;
}

/** A wake-up event of one pending wait and the handle pair that wait passes to Windows. */
interface WakeSlot {
  wake: Deno.PointerObject;
  handles: BigUint64Array;
  /** Set when close() or an abort signalled `wake`: it must be reset before reuse. */
  woken: boolean;
}

/** The handles a forgotten event still owns, closed by the finalizer. */
interface OwnedHandles {
  handles: Deno.PointerObject[];
}

const forgottenEvents = new FinalizationRegistry<OwnedHandles>((owned) => {
  const k32 = kernel32("CloseHandle");
  for (const handle of owned.handles) k32.CloseHandle(handle);
});

/**
 * A Win32 event. Make one with {@linkcode createEvent} or {@linkcode openEvent};
 * close it with {@linkcode KernelEvent.close} or a `using` declaration.
 *
 * `wait()` waits on a worker thread (a `nonblocking` FFI call), so timers and
 * I/O keep running; each pending wait also waits on a private wake-up event,
 * through which `close()` and an `AbortSignal` end it at once.
 *
 * @example
 * ```ts ignore
 * using event = createEvent();
 * device.ioctl(SET_EVENT, SetEventRequest.encode({ eventHandle: event }));
 * while (await event.wait({ timeoutMs: 1000 })) console.log("the driver signalled");
 * ```
 */
export class KernelEvent implements Disposable {
  #handle: Deno.PointerObject | null;
  readonly #owned: OwnedHandles;
  readonly #spare: WakeSlot[] = [];
  readonly #waiting = new Set<WakeSlot>();
  readonly #settled = new Set<Promise<unknown>>();
  /** The event's name, when it has one. */
  readonly name: string | undefined;

  /** Use {@linkcode createEvent} or {@linkcode openEvent}. @internal */
  constructor(handle: Deno.PointerObject, name?: string) {
    this.#handle = handle;
    this.name = name;
    this.#owned = { handles: [handle] };
    forgottenEvents.register(this, this.#owned, this);
  }

  /** Whether {@linkcode KernelEvent.close} has run. */
  get closed(): boolean {
    return this.#handle === null;
  }

  /** The `HANDLE`. Throws a {@linkcode ClosedError} once closed. */
  get handle(): Deno.PointerObject {
    if (this.#handle === null) throw new ClosedError(this.#describe());
    return this.#handle;
  }

  /**
   * The handle's value, for a `UINT64`/`HANDLE` field of an IOCTL input (the
   * `struct` codec also takes the event itself). Throws once closed.
   */
  get handleValue(): bigint {
    return pointerValue(this.handle);
  }

  #describe(): string {
    return this.name === undefined ? "event" : `event ${this.name}`;
  }

  /** Signals the event (`SetEvent`). */
  set(): void {
    const k32 = kernel32("SetEvent");
    if (!k32.SetEvent(this.handle)) {
      throw new Win32Error({ ...lastError(k32), call: "SetEvent", detail: this.name });
    }
  }

  /** Resets a signalled event (`ResetEvent`). */
  reset(): void {
    const k32 = kernel32("ResetEvent");
    if (!k32.ResetEvent(this.handle)) {
      throw new Win32Error({ ...lastError(k32), call: "ResetEvent", detail: this.name });
    }
  }

  /**
   * Resolves `true` when the event is signalled (an auto-reset event is reset
   * by that wake-up), `false` when `timeoutMs` passes first. The event loop
   * keeps running meanwhile.
   *
   * @throws {ClosedError} when the event is closed, before or during the wait
   * @throws {AbortError} when `signal` aborts the wait
   * @throws {NonblockingCallError} when the wait fails (it ran on a worker thread, which keeps the code)
   */
  wait(options: WaitOptions = {}): Promise<boolean> {
    let slot: WakeSlot;
    let timeoutMs: number;
    try {
      timeoutMs = checkTimeout("KernelEvent.wait", options.timeoutMs);
      checkSignal("KernelEvent.wait", options.signal);
      if (this.#handle === null) throw new ClosedError(this.#describe());
      options.signal?.throwIfAborted();
      slot = this.#takeSlot();
    } catch (error) {
      return Promise.reject(abortErrorOf(error, options.signal, "KernelEvent.wait"));
    }
    const { signal } = options;
    const onAbort = () => this.#wake(slot);
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#waiting.add(slot);
    const wait = kernel32("WaitForMultipleObjects")
      .WaitForMultipleObjectsAsync(2, slot.handles, 0, timeoutMs)
      .then((result) => {
        signal?.removeEventListener("abort", onAbort);
        this.#waiting.delete(slot);
        if (result === WAIT_OBJECT_0) return true;
        if (result === WAIT_TIMEOUT) return false;
        if (result === WAIT_OBJECT_0 + 1) {
          if (this.#handle === null) throw new ClosedError(this.#describe());
          throw new AbortError({
            call: "KernelEvent.wait",
            detail: this.name,
            reason: signal?.reason,
          });
        }
        // The error code is the worker thread's, out of reach from here.
        throw new NonblockingCallError(
          "WaitForMultipleObjects",
          result === WAIT_FAILED ? "WAIT_FAILED" : `0x${result.toString(16)}`,
        );
      })
      .finally(() => this.#returnSlot(slot));
    const settled = wait.then(() => {}, () => {});
    this.#settled.add(settled);
    settled.then(() => this.#settled.delete(settled));
    return wait;
  }

  /**
   * Like {@linkcode KernelEvent.wait}, but blocks the calling thread: for a
   * Worker that wants the fastest wake-up. Returns `true` when signalled,
   * `false` on timeout.
   */
  waitSync(timeoutMs?: number): boolean {
    const ms = checkTimeout("KernelEvent.waitSync", timeoutMs);
    const k32 = kernel32("WaitForSingleObject");
    const result = k32.WaitForSingleObject(this.handle, ms);
    if (result === WAIT_OBJECT_0) return true;
    if (result === WAIT_TIMEOUT) return false;
    throw new Win32Error({ ...lastError(k32), call: "WaitForSingleObject", detail: this.name });
  }

  #takeSlot(): WakeSlot {
    const spare = this.#spare.pop();
    if (spare !== undefined) return spare;
    const k32 = kernel32("CreateEventW");
    const wake = k32.CreateEventW(null, 1, 0, null);
    if (wake === null) throw new Win32Error({ ...lastError(k32), call: "CreateEventW" });
    this.#owned.handles.push(wake);
    return {
      wake,
      handles: new BigUint64Array([pointerValue(this.#handle), pointerValue(wake)]),
      woken: false,
    };
  }

  #returnSlot(slot: WakeSlot): void {
    if (this.#handle === null) return; // close() releases every slot once the waits settle
    if (slot.woken) {
      kernel32("ResetEvent").ResetEvent(slot.wake);
      slot.woken = false;
    }
    this.#spare.push(slot);
  }

  #wake(slot: WakeSlot): void {
    if (slot.woken) return;
    slot.woken = true;
    kernel32("SetEvent").SetEvent(slot.wake);
  }

  /**
   * Closes the event. Pending waits end at once and reject with a
   * {@linkcode ClosedError}; the handles are closed when they have returned.
   * Calling it again does nothing.
   */
  close(): void {
    if (this.#handle === null) return;
    this.#handle = null;
    forgottenEvents.unregister(this);
    for (const slot of this.#waiting) this.#wake(slot);
    const handles = this.#owned.handles;
    const release = () => {
      const k32 = kernel32("CloseHandle");
      for (const handle of handles) k32.CloseHandle(handle);
    };
    if (this.#settled.size === 0) release();
    else Promise.allSettled([...this.#settled]).then(release);
  }

  /** Same as {@linkcode KernelEvent.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function checkTimeout(fn: string, timeoutMs: number | undefined): number {
  return timeoutMs === undefined
    ? INFINITE
    : checkInteger(fn, "timeoutMs", timeoutMs, 0, MAX_TIMEOUT_MS);
}

function checkSignal(fn: string, signal: unknown): void {
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new ArgumentError(fn, "options.signal", "an AbortSignal", signal);
  }
}

/** The error of a wait that could not start: an abort becomes an {@linkcode AbortError}. */
function abortErrorOf(error: unknown, signal: AbortSignal | undefined, call: string): unknown {
  if (signal?.aborted && error === signal.reason) return new AbortError({ call, reason: error });
  return error;
}

function checkName(fn: string, name: unknown): string {
  if (typeof name !== "string" || name.length === 0 || name.includes("\0")) {
    throw new ArgumentError(fn, "name", "a non-empty string without NUL", name);
  }
  return name;
}

/**
 * Creates an event, e.g. to hand its handle to a driver (`handleValue`, or
 * the event itself in a `struct` field of type `u64`/`handle`).
 *
 * @throws {Win32Error} `ERROR_ALREADY_EXISTS (183)` when `name` is taken (open it with {@linkcode openEvent})
 *
 * @example
 * ```ts ignore
 * using event = createEvent({ manualReset: false });
 * device.ioctl(SET_EVENT, SetEventRequest.encode({ eventHandle: event }));
 * await event.wait({ timeoutMs: 1000 });
 * ```
 */
export function createEvent(options: CreateEventOptions = {}): KernelEvent {
  const name = options.name === undefined ? undefined : checkName("createEvent", options.name);
  const k32 = kernel32("CreateEventW");
  const handle = k32.CreateEventW(
    null,
    options.manualReset ? 1 : 0,
    options.initialState ? 1 : 0,
    name === undefined ? null : wideString(name),
  );
  if (handle === null) {
    throw new Win32Error({ ...lastError(k32), call: "CreateEventW", detail: name });
  }
  if (name !== undefined && k32.GetLastError() === ERROR_ALREADY_EXISTS) {
    // Windows handed back someone else's event: refuse it rather than share it silently.
    k32.CloseHandle(handle);
    throw new Win32Error({ code: ERROR_ALREADY_EXISTS, call: "CreateEventW", detail: name });
  }
  return new KernelEvent(handle, name);
}

/**
 * Opens a named event, e.g. one a driver created as `\BaseNamedObjects\X`
 * (open it as `Global\X`), for waiting, setting and resetting.
 *
 * @throws {Win32Error} `ERROR_FILE_NOT_FOUND (2)` when no event has that name
 *
 * @example
 * ```ts ignore
 * using tick = openEvent("Global\\KbSampleTick");
 * if (await tick.wait({ timeoutMs: 1000 })) console.log("tick");
 * ```
 */
export function openEvent(name: string): KernelEvent {
  checkName("openEvent", name);
  const k32 = kernel32("OpenEventW");
  const handle = k32.OpenEventW(SYNCHRONIZE | EVENT_MODIFY_STATE, 0, wideString(name));
  if (handle === null) {
    throw new Win32Error({ ...lastError(k32), call: "OpenEventW", detail: name });
  }
  return new KernelEvent(handle, name);
}
