/**
 * A bounded, adaptive poll on the event-loop thread: after data arrived, keep
 * checking for the next for a short window before going to sleep on a kernel
 * object. Waking a sleeping event loop from another thread is the dominant
 * cost of a notification (under Wine a wineserver round trip and a thread
 * hop, ~150 µs); when messages come close together, the poll catches the
 * next one without that cost.
 *
 * The window follows the gap between arrivals, smoothed (one late message
 * does not end the poll): four times the smoothed gap, at most the cap, and
 * none while the smoothed gap is longer than the cap. Each arrival buys one
 * window at most, so an idle consumer sleeps after one last window, and a
 * sparse stream (gaps above the cap) is not polled at all. Twice the gap with
 * a 2 ms cap let a 1 kHz stream's jitter end the poll about once in a hundred
 * messages: its section latency p99 was a sleeping consumer's (~500 µs
 * instead of ~70 µs).
 *
 * The checks run in slices of at most {@linkcode SLICE_MS}, each check after
 * `SwitchToThread` (on a busy machine the producer, or whatever else is
 * ready, runs now rather than after the poll's time slice); between slices
 * the poll yields a macrotask (`setImmediate`, which never sleeps), so
 * timers and I/O run at most that much late. A macrotask per check cost an
 * event-loop turn per check, and under Wine a turn now and then stalls for
 * 0.4-0.8 ms: 6 % of a 1 kHz stream's messages came that late, 0.4 % in
 * slices.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { kernel32 } from "../core/native.ts";

/** The default cap of the window (ms): the longest a consumer polls before it sleeps. */
export const DEFAULT_POLL_MS = 4;
/** The window is this many times the smoothed gap between arrivals. */
const GAP_FACTOR = 4;
/** The longest the poll checks without yielding to the event loop (ms). */
const SLICE_MS = 0.5;
/** Weight of the newest gap in the smoothed gap. */
const SMOOTHING = 1 / 4;
/**
 * A gap counts as at most this many caps: after an idle spell a few close
 * arrivals bring the poll back.
 */
const GAP_CLIP = 2;

/**
 * Resolves after one macrotask: the event loop runs whatever is ready meanwhile.
 *
 * @example
 * ```ts ignore
 * await nextMacrotask(); // pending promise chains and ready I/O callbacks have run
 * ```
 */
export function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The poll window of one consumer, adapted to its arrivals.
 *
 * @example
 * ```ts ignore
 * const spin = new AdaptiveSpin(DEFAULT_POLL_MS);
 * if (!(await spin.poll(() => reader.hasData, timeoutMs))) await sleepOnTheEvent();
 * spin.arrived();
 * ```
 */
export class AdaptiveSpin {
  readonly #capMs: number;
  #lastArrival = -Infinity;
  #gapMs = Infinity;

  /** A window of at most `capMs` milliseconds (0: never poll). */
  constructor(capMs: number) {
    this.#capMs = capMs;
  }

  /** Notes that data was found now: the gap since the last arrival adjusts the next windows. */
  arrived(): void {
    const now = performance.now();
    const gapMs = Math.min(now - this.#lastArrival, GAP_CLIP * this.#capMs);
    this.#lastArrival = now;
    this.#gapMs = this.#gapMs === Infinity
      ? gapMs
      : this.#gapMs + (gapMs - this.#gapMs) * SMOOTHING;
  }

  /**
   * Checks `done` for the current window (at most `limitMs`), in slices
   * between macrotasks; resolves `true` as soon as it holds, `false` when
   * the window passed (or there is none: the smoothed gap is longer than the cap).
   */
  async poll(done: () => boolean, limitMs: number): Promise<boolean> {
    const windowMs = Math.min(this.#capMs, GAP_FACTOR * this.#gapMs, limitMs);
    if (!(this.#gapMs <= this.#capMs && windowMs > 0)) return false;
    const k32 = kernel32("SwitchToThread");
    const until = performance.now() + windowMs;
    for (let now = performance.now(); now < until;) {
      await nextMacrotask();
      const sliceEnd = Math.min(until, performance.now() + SLICE_MS);
      do {
        k32.SwitchToThread();
        if (done()) return true;
        now = performance.now();
      } while (now < sliceEnd);
    }
    return false;
  }
}
