/**
 * The event-loop wake-up, alone: how long after a SetEvent (another thread's) the main
 * thread runs, by three designs. It backs the bench notes on why the library keeps its
 * `nonblocking` wait (see results.md); run it under Wine with the Windows build of Deno:
 *
 *     deno.exe run -A tests/bench/wakeup.ts [--count 200] [--rounds 5]
 *
 * - `nonblocking FFI`: today's KernelEvent.wait (a nonblocking WaitForMultipleObjects on a
 *   worker thread of Deno's pool; its completion wakes the event loop).
 * - `Worker + Atomics.waitAsync`: a Worker blocks in WaitForSingleObject and wakes the main
 *   thread with Atomics.notify on a SharedArrayBuffer.
 * - `Worker + postMessage`: the same Worker posts a message instead.
 * - `in the Worker`: the blocked Worker's own wake-up (no hop to the main thread): the floor.
 *
 * A setter Worker stamps QueryPerformanceCounter and sets the event every millisecond, once
 * the previous wake-up was taken. The designs alternate round after round; each prints the
 * median over the rounds of its p50 (min … max), of its p99, and of its p50 / the
 * nonblocking wait's p50 in the same round.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createEvent } from "../../mod.ts";

const symbols = Deno.dlopen(
  "kernel32.dll",
  {
    SetEvent: { parameters: ["pointer"], result: "i32" },
    WaitForSingleObject: { parameters: ["pointer", "u32"], result: "u32" }, // HANDLE, DWORD ms
    QueryPerformanceCounter: { parameters: ["buffer"], result: "i32" },
    QueryPerformanceFrequency: { parameters: ["buffer"], result: "i32" },
  } as const,
).symbols;
const INFINITE = 0xffff_ffff;
const counter = new BigInt64Array(1);
function ticks(): bigint {
  symbols.QueryPerformanceCounter(counter);
  return counter[0];
}

/** The shared words: the setter's stamp, the wake-ups taken, the waiter's count and its latency. */
interface Shared {
  stamp: BigInt64Array;
  taken: Int32Array;
  woken: Int32Array;
  workerLatency: BigInt64Array;
}
function shared(buffer: SharedArrayBuffer): Shared {
  return {
    stamp: new BigInt64Array(buffer, 0, 1),
    taken: new Int32Array(buffer, 8, 1),
    woken: new Int32Array(buffer, 12, 1),
    workerLatency: new BigInt64Array(buffer, 16, 1),
  };
}

type Role = "setter" | "waiter";
interface Start {
  role: Role;
  handle: bigint;
  buffer: SharedArrayBuffer;
  count: number;
  notify: "atomics" | "message";
}

const scope = globalThis as unknown as {
  name?: string;
  onmessage: unknown;
  postMessage(m: unknown): void;
};
if (scope.name === "setter" || scope.name === "waiter") {
  scope.onmessage = ({ data }: MessageEvent<Start>) => {
    const event = Deno.UnsafePointer.create(data.handle);
    const words = shared(data.buffer);
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    if (data.role === "setter") {
      for (let i = 0; i < data.count; i++) {
        Atomics.wait(sleeper, 0, 0, 1);
        while (Atomics.load(words.taken, 0) !== i) Atomics.wait(sleeper, 0, 0, 0.05);
        words.stamp[0] = ticks();
        symbols.SetEvent(event);
      }
      return;
    }
    // One wake-up per SetEvent (an auto-reset event, set again only once this one is taken).
    for (let i = 0; i < data.count; i++) {
      symbols.WaitForSingleObject(event, INFINITE);
      words.workerLatency[0] = ticks() - words.stamp[0];
      if (data.notify === "message") scope.postMessage(0);
      else {
        Atomics.add(words.woken, 0, 1);
        Atomics.notify(words.woken, 0);
      }
    }
  };
} else {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      count: { type: "string", default: "200" },
      rounds: { type: "string", default: "5" },
    },
  });
  const count = Number(values.count);
  const rounds = Number(values.rounds);
  symbols.QueryPerformanceFrequency(counter);
  const microsPerTick = 1e6 / Number(counter[0]);
  const percentile = (samples: number[], p: number) =>
    [...samples].sort((a, b) => a - b)[Math.floor(samples.length * p)];

  const DESIGNS = ["nonblocking FFI", "Worker + Atomics.waitAsync", "Worker + postMessage"];
  type Design = (typeof DESIGNS)[number];
  /** One round of one design: the main thread's wake-ups, and the Worker's own (when it has one). */
  const measure = async (design: Design) => {
    using event = createEvent();
    const buffer = new SharedArrayBuffer(32);
    const words = shared(buffer);
    const start = (role: Role, notify: Start["notify"]) => {
      const worker = new Worker(import.meta.url, { type: "module", name: role });
      worker.postMessage({ role, handle: event.handleValue, buffer, count, notify });
      return worker;
    };
    let nextMessage: (() => void) | undefined;
    const waiter = design === "nonblocking FFI"
      ? undefined
      : start("waiter", design === "Worker + postMessage" ? "message" : "atomics");
    if (waiter !== undefined) waiter.onmessage = () => nextMessage?.();
    const setter = start("setter", "atomics");
    const main: number[] = [];
    const inWorker: number[] = [];
    let seen = 0;
    for (let i = 0; i < count; i++) {
      if (waiter === undefined) await event.wait();
      else if (design === "Worker + postMessage") {
        await new Promise<void>((resolve) => nextMessage = resolve);
      } else {
        const wait = Atomics.waitAsync(words.woken, 0, seen);
        if (wait.async) await wait.value;
        seen = Atomics.load(words.woken, 0);
      }
      main.push(Number(ticks() - words.stamp[0]) * microsPerTick);
      if (waiter !== undefined) inWorker.push(Number(words.workerLatency[0]) * microsPerTick);
      Atomics.store(words.taken, 0, i + 1);
    }
    setter.terminate();
    waiter?.terminate();
    return { main, inWorker };
  };

  // The designs alternate round after round, so that each round's load is shared by all.
  const p50s = new Map<string, number[]>();
  const p99s = new Map<string, number[]>();
  const record = (label: string, samples: number[]) => {
    p50s.set(label, [...(p50s.get(label) ?? []), percentile(samples, 0.5)]);
    p99s.set(label, [...(p99s.get(label) ?? []), percentile(samples, 0.99)]);
  };
  for (let round = 0; round < rounds; round++) {
    for (const design of DESIGNS) {
      const { main, inWorker } = await measure(design);
      console.error(`round ${round + 1}: ${design} p50 ${percentile(main, 0.5).toFixed(0)} µs`);
      record(design, main);
      if (design === "Worker + Atomics.waitAsync") record("in the Worker (no hop)", inWorker);
    }
  }
  const median = (values: number[]) => percentile(values, 0.5);
  const baseline = p50s.get("nonblocking FFI")!;
  for (const [label, values] of p50s) {
    const ratios = values.map((value, round) => value / baseline[round]);
    console.log(
      `${label}: p50 ${median(values).toFixed(0)} µs (${Math.min(...values).toFixed(0)} … ${
        Math.max(...values).toFixed(0)
      }), p99 ${median(p99s.get(label)!).toFixed(0)} µs; p50 / nonblocking FFI's, by round: ${
        median(ratios).toFixed(2)
      } (${Math.min(...ratios).toFixed(2)} … ${Math.max(...ratios).toFixed(2)})`,
    );
  }
}
