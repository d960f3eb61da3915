/**
 * Win32 events: opening a named one, and waiting on one without blocking the
 * event loop in a way that {@linkcode EventWaiter.close} can interrupt.
 *
 * @module
 */
import { NonblockingCallError } from "../core/errors.ts";
import { Win32Error } from "../core/win32_error.ts";
import { kernel32, wideString } from "../core/native.ts";

const SYNCHRONIZE = 0x0010_0000;
const EVENT_MODIFY_STATE = 0x0002;
const WAIT_OBJECT_0 = 0;
const WAIT_TIMEOUT = 0x102;
const WAIT_FAILED = 0xffff_ffff;
const INFINITE = 0xffff_ffff;

/**
 * Opens the named event `name` (e.g. `Global\KbridgeRingEvent`) for waiting and resetting.
 *
 * @example
 * ```ts ignore
 * const event = openNamedEvent("Global\\KbridgeRingEvent");
 * ```
 */
export function openNamedEvent(name: string): Deno.PointerObject {
  const k32 = kernel32("OpenEventW");
  const handle = k32.OpenEventW(SYNCHRONIZE | EVENT_MODIFY_STATE, 0, wideString(name));
  if (handle === null) {
    throw new Win32Error({ code: k32.GetLastError(), call: "OpenEventW", detail: name });
  }
  return handle;
}

/**
 * Creates an unnamed event (manual reset when `manualReset`), e.g. to hand to a driver.
 *
 * @example
 * ```ts ignore
 * const event = createEvent(false);
 * ```
 */
export function createEvent(manualReset: boolean): Deno.PointerObject {
  const k32 = kernel32("CreateEventW");
  const handle = k32.CreateEventW(null, manualReset ? 1 : 0, 0, null);
  if (handle === null) throw new Win32Error({ code: k32.GetLastError(), call: "CreateEventW" });
  return handle;
}

/**
 * Waits on one event from a worker thread (a `nonblocking` FFI call), so the
 * event loop runs meanwhile. {@linkcode EventWaiter.close} wakes a pending
 * wait through a private event and closes both handles.
 *
 * @example
 * ```ts ignore
 * const waiter = new EventWaiter(openNamedEvent("Global\\KbridgeRingEvent"));
 * const signalled = await waiter.wait(1000);
 * waiter.close();
 * ```
 */
export class EventWaiter {
  readonly #handles: BigUint64Array;
  readonly #event: Deno.PointerObject;
  readonly #wake: Deno.PointerObject;
  #closed = false;
  #waiting: Promise<boolean> | undefined;

  /** Takes ownership of `event` (closed by {@linkcode EventWaiter.close}). */
  constructor(event: Deno.PointerObject) {
    this.#event = event;
    this.#wake = createEvent(true);
    this.#handles = new BigUint64Array([
      BigInt(Deno.UnsafePointer.value(event)),
      BigInt(Deno.UnsafePointer.value(this.#wake)),
    ]);
  }

  /** The waited-on event's handle. */
  get handle(): Deno.PointerObject {
    return this.#event;
  }

  /**
   * Resolves `true` when the event is signalled, `false` on timeout or close.
   * A failed wait rejects with a {@linkcode NonblockingCallError}: it ran on a
   * worker thread, whose `GetLastError` this thread cannot read.
   */
  wait(timeoutMs: number = INFINITE): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    const k32 = kernel32("WaitForMultipleObjects");
    this.#waiting = k32.WaitForMultipleObjectsAsync(2, this.#handles, 0, timeoutMs).then((result) =>
      this.#outcome(result, false)
    );
    return this.#waiting;
  }

  /**
   * Like {@linkcode EventWaiter.wait}, but blocks the calling thread: for a
   * Worker that wants the fastest wake-up.
   */
  waitSync(timeoutMs: number = INFINITE): boolean {
    if (this.#closed) return false;
    const k32 = kernel32("WaitForMultipleObjects");
    return this.#outcome(k32.WaitForMultipleObjects(2, this.#handles, 0, timeoutMs), true);
  }

  /** What a wait's `result` means; `onThisThread`: the wait ran here, so its error code is readable. */
  #outcome(result: number, onThisThread: boolean): boolean {
    if (result === WAIT_OBJECT_0) return true;
    if (result === WAIT_OBJECT_0 + 1 || result === WAIT_TIMEOUT) return false;
    const call = "WaitForMultipleObjects";
    const returned = result === WAIT_FAILED ? "WAIT_FAILED" : `0x${result.toString(16)}`;
    if (!onThisThread) throw new NonblockingCallError(call, returned);
    throw new Win32Error({ code: kernel32("GetLastError").GetLastError(), call });
  }

  /** Wakes a pending wait, lets it return, then closes both handles. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const k32 = kernel32("SetEvent");
    k32.SetEvent(this.#wake);
    await this.#waiting?.catch(() => {});
    k32.CloseHandle(this.#event);
    k32.CloseHandle(this.#wake);
  }
}
