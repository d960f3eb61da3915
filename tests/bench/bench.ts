/**
 * The kbridge benchmark: Deno against a native C client (tests/bench/client.c)
 * doing the same work against the reference driver under the same wineserver,
 * alternately, round after round. Absolute times under Wine are not Windows
 * times, so the figures that count are the ratios Deno / C of medians.
 *
 * `deno task bench` (tools/bench.sh) builds and loads everything, then runs
 * this file with the Windows build of Deno under Wine:
 *
 *     deno.exe run -A tests/bench/bench.ts --client build/bench/client.exe
 *       [--quirky Z:\...\kbquirky.sys] [--rounds 5] [--scale 1] [--only REGEXP]
 *       [--micro micro.json] [--cpu NAME] [--wine VERSION]
 *
 * It prints the results table and replaces this machine's (the `--cpu` name's) run in
 * tests/bench/results.json and results.md, keeping the other machines' (see report.ts).
 * `--scale` multiplies every iteration count (e.g. 0.1 for a quick look); `--only`
 * runs just the workloads whose name matches (and then prints their runs instead
 * of writing the results files).
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  type Device,
  installDriver,
  openDevice,
  processResources,
  queryDriver,
  RecordHeader,
  startDriver,
  stopDriver,
  subscribe,
} from "../../mod.ts";
import {
  Capability,
  Channel,
  InjectHeader,
  IOCTL,
  Names,
  pattern,
  PendRequest,
  PendResult,
  ProducerRequest,
  Protocol,
  referenceProtocol,
  ReleaseRequest,
  Stats,
  VersionInfo,
} from "../../src/reference/mod.ts";
import { Fuzzer, type FuzzSummary } from "../../src/fuzz/engine.ts";
import type { SequenceStep } from "../../src/fuzz/reproducer.ts";
import { HostRanges } from "../../src/fuzz/ranges.ts";
import { DeviceTarget } from "../../src/fuzz/target.ts";
import { ctlCode } from "../../src/core/ctl_code.ts";
import { workerReplies } from "../_util.ts";
import {
  type MachineReport,
  mergePartialRun,
  mergeRun,
  renderResults,
  type ResultsFile,
  type Summary,
  table,
} from "./report.ts";

const { values: options } = parseArgs({
  args: Deno.args,
  options: {
    client: { type: "string", default: "build/bench/client.exe" },
    quirky: { type: "string" },
    rounds: { type: "string", default: "5" },
    scale: { type: "string", default: "1" },
    only: { type: "string" },
    micro: { type: "string" },
    cpu: { type: "string", default: "unknown" },
    wine: { type: "string", default: "unknown" },
  },
});
const ROUNDS = Number(options.rounds);
const SCALE = Number(options.scale);

const RING_BYTES = 1 << 20;
/** The ring of the pre-filled ring workload: the largest the protocol allows. */
const FILLED_RING_BYTES = 64 << 20;
/**
 * Untimed cycles before the timed ones: under Wine a Deno reader of 64 B records ran 16, 37
 * and 91 M msg/s in its first three cycles (the JIT at work), steady from there.
 */
const FILLED_WARMUP = 3;
const FILLED_CYCLES = 5;
/** The batch buffer of the pre-filled readInto and batches() readers. */
const FILLED_BATCH_BYTES = 1 << 20;
/** Word index of the sequence in a record header. */
const SEQUENCE_WORD = RecordHeader.offsets.sequence / 4;
const INVERTED_PENDING = 8;
const LATENCY_INTERVAL_US = 1000;
const LATENCY_BYTES = 64;
const OVERLAPPED_BYTES = 64;
const STALL_MS = 10_000;
/** Sync round trips are timed in chunks; the median chunk resists bursts of other load. */
const SYNC_CHUNKS = 11;
const PRODUCER_SEED = 0xbe7c;

const GENERIC_READ_WRITE = 0xc000_0000;
const FILE_SHARE_READ_WRITE = 0x3;
const OPEN_EXISTING = 3;
const FILE_FLAG_OVERLAPPED = 0x4000_0000;
const ERROR_IO_PENDING = 997;
const WAIT_OBJECT_0 = 0;
const INFINITE = 0xffff_ffff;
const OVERLAPPED_SIZE = 32;
const OVERLAPPED_EVENT = 24;

// The benchmark's own kernel32 binding: the clock, and completion design (b) below.
const {
  QueryPerformanceCounter,
  QueryPerformanceFrequency,
  CreateFileW,
  CloseHandle,
  CreateEventW,
  DeviceIoControl,
  GetOverlappedResult,
  GetLastError,
  WaitForSingleObjectAsync,
  GetCurrentProcess,
  GetProcessTimes,
} = Deno.dlopen(
  "kernel32.dll",
  {
    QueryPerformanceCounter: { parameters: ["buffer"], result: "i32" }, // LARGE_INTEGER*
    QueryPerformanceFrequency: { parameters: ["buffer"], result: "i32" },
    CreateFileW: {
      // LPCWSTR name, DWORD access, DWORD share, LPSECURITY_ATTRIBUTES, DWORD disposition,
      // DWORD flags, HANDLE template
      parameters: ["buffer", "u32", "u32", "pointer", "u32", "u32", "pointer"],
      result: "pointer",
    },
    CloseHandle: { parameters: ["pointer"], result: "i32" },
    // LPSECURITY_ATTRIBUTES, BOOL manualReset, BOOL initialState, LPCWSTR name
    CreateEventW: { parameters: ["pointer", "i32", "i32", "pointer"], result: "pointer" },
    DeviceIoControl: {
      // HANDLE, DWORD code, LPVOID in, DWORD inSize, LPVOID out, DWORD outSize,
      // LPDWORD returned, LPOVERLAPPED
      parameters: ["pointer", "u32", "buffer", "u32", "buffer", "u32", "buffer", "buffer"],
      result: "i32",
    },
    // HANDLE, LPOVERLAPPED, LPDWORD, BOOL wait
    GetOverlappedResult: { parameters: ["pointer", "buffer", "buffer", "i32"], result: "i32" },
    GetLastError: { parameters: [], result: "u32" },
    WaitForSingleObjectAsync: {
      name: "WaitForSingleObject",
      parameters: ["pointer", "u32"], // HANDLE, DWORD ms
      result: "u32",
      nonblocking: true,
    },
    GetCurrentProcess: { parameters: [], result: "pointer" },
    // HANDLE, LPFILETIME creation, exit, kernel, user
    GetProcessTimes: {
      parameters: ["pointer", "buffer", "buffer", "buffer", "buffer"],
      result: "i32",
    },
  } as const,
).symbols;

// --- The clock: QueryPerformanceCounter, which the driver's timestamps share ---

const counter = new BigInt64Array(1);
const FREQUENCY = (() => {
  QueryPerformanceFrequency(counter);
  return Number(counter[0]);
})();

function ticks(): number {
  QueryPerformanceCounter(counter);
  return Number(counter[0]);
}

function seconds(elapsedTicks: number): number {
  return elapsedTicks / FREQUENCY;
}

const processTimes = new BigUint64Array(4);
/** This process's CPU time (kernel + user, all threads) in seconds. */
function cpuSeconds(): number {
  const [creation, exit, kernel, user] = [0, 1, 2, 3].map((i) => processTimes.subarray(i, i + 1));
  if (!GetProcessTimes(GetCurrentProcess(), creation, exit, kernel, user)) {
    throw new Error(`GetProcessTimes failed: error ${GetLastError()}`);
  }
  return Number(processTimes[2] + processTimes[3]) / 1e7;
}

// --- Statistics ---

type Metrics = Record<string, number>;

function summarize(values: number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 === 1
    ? sorted[middle]
    : (sorted[middle - 1] + sorted[middle]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1] };
}

/** Nearest-rank percentile, as the C client computes it. */
function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.max(1, Math.ceil(p * sorted.length - 1e-6)) - 1];
}

/** Percentiles of the samples after the first tenth (warm-up: the first messages find a cold consumer). */
function latencyMetrics(samples: Float64Array, gaps: number): Metrics {
  const steady = samples.slice(Math.floor(samples.length / 10)).sort();
  const us = (t: number) => seconds(t) * 1e6;
  return {
    p50Us: us(percentile(steady, 0.5)),
    p99Us: us(percentile(steady, 0.99)),
    samples: steady.length,
    gaps,
  };
}

// --- The Deno side of each workload ---

const scaled = (count: number) => Math.max(2, Math.round(count * SCALE));

function startProducer(
  device: Device,
  channels: number,
  count: number,
  bytes: number,
  intervalUs: number,
): void {
  device.ioctl(
    IOCTL.PRODUCER_START,
    ProducerRequest.encode({
      channels,
      count,
      minSize: bytes,
      maxSize: bytes,
      intervalUs,
      seed: PRODUCER_SEED,
      flags: Protocol.PRODUCER_WAIT_FOR_SPACE,
    }),
  );
}

/** 1. Synchronous round trips with a preallocated output buffer, timed in chunks as the C client does. */
function syncRoundTrip(code: number, bytes: number, calls: number, overlapped: boolean): Metrics {
  using device = openDevice(Names.DEVICE_PATH, { overlapped });
  const input = pattern(1, bytes);
  const output = new Uint8Array(bytes);
  const echoed = device.ioctl(code, input, output);
  if (echoed.length !== bytes || echoed.some((byte, i) => byte !== input[i])) {
    throw new Error("the echo differs from the input");
  }
  for (let i = 0; i < Math.floor(calls / 10); i++) device.ioctl(code, input, output);
  const perChunk = Math.floor(calls / SYNC_CHUNKS);
  const chunks = Array.from({ length: SYNC_CHUNKS }, () => {
    const start = ticks();
    for (let i = 0; i < perChunk; i++) device.ioctl(code, input, output);
    return ticks() - start;
  });
  return { nsPerCall: seconds(summarize(chunks).median) * 1e9 / perChunk };
}

/**
 * Keeps `depth` requests in flight until `requests` completed (each slot re-issues
 * when its request completes). Returns the thread count with the first `depth`
 * issued when `sampleThreads` (a snapshot takes milliseconds), else 0.
 */
async function keepInFlight(
  issue: (slot: number) => Promise<unknown>,
  depth: number,
  requests: number,
  sampleThreads: boolean,
): Promise<number> {
  let issued = 0;
  const slot = async (index: number) => {
    while (issued < requests) {
      issued++;
      await issue(index);
    }
  };
  const slots = Array.from({ length: Math.min(depth, requests) }, (_, index) => slot(index));
  const threads = sampleThreads ? processResources().threads : 0;
  await Promise.all(slots);
  return threads;
}

/** 2. Overlapped ECHO kept `depth` deep through the library (ioctlAsync). */
async function overlappedEcho(depth: number, requests: number): Promise<Metrics> {
  await using device = openDevice(Names.DEVICE_PATH);
  const buffers = Array.from({ length: depth }, () => ({
    input: pattern(2, OVERLAPPED_BYTES),
    output: new Uint8Array(OVERLAPPED_BYTES),
  }));
  const issue = (slot: number) =>
    device.ioctlAsync(IOCTL.ECHO, buffers[slot].input, buffers[slot].output);
  const threads = await keepInFlight(issue, depth, Math.floor(requests / 10) + depth, true);
  const start = ticks();
  await keepInFlight(issue, depth, requests, false);
  return { requestsPerSecond: requests / seconds(ticks() - start), threads };
}

/** Starts `depth` PEND requests (tags 0 … depth-1) that stay pending until RELEASE. */
type PendIssuer = (depth: number) => Promise<unknown>[];
/** Sends RELEASE (all) on the handle that issued the PENDs: a file releases only its own. */
type PendReleaser = (input: Uint8Array, output: Uint8Array) => Promise<unknown>;

/**
 * 2. Pended requests: `depth` PENDs in flight at once, one RELEASE of all of them
 * on the same handle, then their completions; again until `requests` completed.
 * Returns requests/s and the thread count with the first burst pending.
 */
async function pendBursts(
  issueBurst: PendIssuer,
  releaseAll: PendReleaser,
  depth: number,
  requests: number,
) {
  const release = ReleaseRequest.encode({ tag: Protocol.RELEASE_ALL, reserved: 0 });
  const released = new Uint8Array(4);
  const burst = async (sampleThreads: boolean) => {
    const pending = issueBurst(depth);
    const threads = sampleThreads ? processResources().threads : 0;
    await releaseAll(release, released);
    await Promise.all(pending);
    return threads;
  };
  const bursts = Math.ceil(requests / depth);
  const threads = await burst(true);
  for (let i = 0; i < Math.floor(bursts / 10); i++) await burst(false);
  const start = ticks();
  for (let i = 0; i < bursts; i++) await burst(false);
  return { requestsPerSecond: bursts * depth / seconds(ticks() - start), threads };
}

function pendRequests(depth: number): Uint8Array[] {
  return Array.from({ length: depth }, (_, tag) => PendRequest.encode({ tag, timeoutMs: 0 }));
}

function checkReleased(result: Uint8Array): void {
  if (PendResult.decode(result).how !== Protocol.PEND_RELEASED) {
    throw new Error("a PEND request ended otherwise than released");
  }
}

/** 2 (a). Pended requests through the library: one IOCP, one nonblocking GetQueuedCompletionStatusEx. */
async function pendedLibrary(depth: number, requests: number): Promise<Metrics> {
  await using device = openDevice(Names.DEVICE_PATH);
  const inputs = pendRequests(depth);
  const outputs = inputs.map(() => new Uint8Array(PendResult.size));
  return await pendBursts(
    () =>
      inputs.map((input, slot) =>
        device.ioctlAsync(IOCTL.PEND, input, outputs[slot]).then(checkReleased)
      ),
    (input, output) => device.ioctlAsync(IOCTL.RELEASE, input, output),
    depth,
    requests,
  );
}

function wideString(text: string): Uint16Array {
  return Uint16Array.from([...text, "\0"], (char) => char.charCodeAt(0));
}

/**
 * Completion design (b): an event per request, waited on with a nonblocking
 * WaitForSingleObject (a worker thread blocked per request), then
 * GetOverlappedResult. On a handle of its own, not associated with any port.
 */
class EventCompletedRequest {
  readonly #overlapped = new Uint8Array(OVERLAPPED_SIZE);
  readonly #returned = new Uint32Array(1);
  readonly #event: Deno.PointerObject;

  constructor() {
    const event = CreateEventW(null, 1, 0, null);
    if (event === null) throw new Error(`CreateEventW failed: error ${GetLastError()}`);
    this.#event = event;
    new DataView(this.#overlapped.buffer).setBigUint64(
      OVERLAPPED_EVENT,
      BigInt(Deno.UnsafePointer.value(event)),
      true,
    );
  }

  async ioctl(
    handle: Deno.PointerObject,
    code: number,
    input: Uint8Array,
    output: Uint8Array,
  ): Promise<Uint8Array> {
    this.#overlapped.fill(0, 0, OVERLAPPED_EVENT);
    const overlapped = this.#overlapped;
    if (
      !DeviceIoControl(handle, code, input, input.length, output, output.length, null, overlapped)
    ) {
      const error = GetLastError();
      if (error !== ERROR_IO_PENDING) throw new Error(`DeviceIoControl failed: error ${error}`);
      if (await WaitForSingleObjectAsync(this.#event, INFINITE) !== WAIT_OBJECT_0) {
        throw new Error(`WaitForSingleObject failed: error ${GetLastError()}`);
      }
    }
    if (!GetOverlappedResult(handle, overlapped, this.#returned, 0)) {
      throw new Error(`GetOverlappedResult failed: error ${GetLastError()}`);
    }
    return output.subarray(0, this.#returned[0]);
  }

  close(): void {
    CloseHandle(this.#event);
  }
}

/** 2 (b). Pended requests completed through per-request events. */
async function pendedEvents(depth: number, requests: number): Promise<Metrics> {
  const handle = CreateFileW(
    wideString(Names.DEVICE_PATH),
    GENERIC_READ_WRITE,
    FILE_SHARE_READ_WRITE,
    null,
    OPEN_EXISTING,
    FILE_FLAG_OVERLAPPED,
    null,
  );
  if (handle === null || Deno.UnsafePointer.value(handle) === 0xffff_ffff_ffff_ffffn) {
    throw new Error(`CreateFileW failed: error ${GetLastError()}`);
  }
  const inputs = pendRequests(depth);
  const outputs = inputs.map(() => new Uint8Array(PendResult.size));
  const requestsBySlot = inputs.map(() => new EventCompletedRequest());
  const releaseRequest = new EventCompletedRequest();
  try {
    return await pendBursts(
      () =>
        requestsBySlot.map((request, slot) =>
          request.ioctl(handle, IOCTL.PEND, inputs[slot], outputs[slot]).then(checkReleased)
        ),
      (input, output) => releaseRequest.ioctl(handle, IOCTL.RELEASE, input, output),
      depth,
      requests,
    );
  } finally {
    for (const request of requestsBySlot) request.close();
    releaseRequest.close();
    CloseHandle(handle);
  }
}

const CHANNEL_BITS: Record<"section" | "inverted", number> = {
  section: Channel.SECTION,
  inverted: Channel.INVERTED,
};

/**
 * 3. Producer timestamp → consumer wake-up, one message per millisecond; also the
 * process's CPU time over the run, in percent of one core (`pollMs`: the ring's poll).
 */
async function latency(
  channel: "section" | "inverted",
  count: number,
  pollMs?: number,
): Promise<Metrics> {
  await using device = openDevice(Names.DEVICE_PATH);
  await using subscription = subscribe(device, {
    protocol: referenceProtocol,
    channel,
    ringBytes: RING_BYTES,
    pending: INVERTED_PENDING,
    pollMs,
  });
  const cpuAtStart = cpuSeconds();
  const start = ticks();
  startProducer(device, CHANNEL_BITS[channel], count, LATENCY_BYTES, LATENCY_INTERVAL_US);
  const samples = new Float64Array(count);
  let received = 0;
  let gaps = 0;
  let woke = 0;
  const onMessage = (_data: Uint8Array, sequence: number, timestamp: number) => {
    if (woke === 0) woke = ticks();
    samples[received] = woke - timestamp;
    if (sequence !== received) gaps++;
    received++;
  };
  while (received < count) {
    woke = 0;
    if (await subscription.drain(onMessage, { timeoutMs: STALL_MS }) === 0) {
      throw new Error(`the ${channel} channel stalled after ${received} messages`);
    }
  }
  const cpuPercent = (cpuSeconds() - cpuAtStart) / seconds(ticks() - start) * 100;
  device.ioctl(IOCTL.PRODUCER_STOP);
  return { ...latencyMetrics(samples, gaps), cpuPercent };
}

/** 3b. Section latency with the consumer in a Worker that blocks in drainSync. */
async function latencyInWorker(count: number): Promise<Metrics> {
  await using device = openDevice(Names.DEVICE_PATH);
  const worker = new Worker(new URL("./latency_worker.ts", import.meta.url), { type: "module" });
  try {
    const next = workerReplies<
      { ready?: boolean; samples?: Float64Array; gaps?: number; received?: number }
    >(worker);
    worker.postMessage({ count, ringBytes: RING_BYTES });
    await next();
    startProducer(device, Channel.SECTION, count, LATENCY_BYTES, LATENCY_INTERVAL_US);
    const { samples, gaps, received } = await next();
    if (received !== count) throw new Error(`the worker got ${received} of ${count} messages`);
    device.ioctl(IOCTL.PRODUCER_STOP);
    return latencyMetrics(samples!, gaps!);
  } finally {
    worker.terminate();
  }
}

/** 4. Ring throughput with a lossless producer: every payload is copied out once. */
async function ringThroughput(
  reader: "drain" | "iterator",
  bytes: number,
  count: number,
): Promise<Metrics> {
  await using device = openDevice(Names.DEVICE_PATH);
  await using subscription = subscribe(device, {
    protocol: referenceProtocol,
    channel: "section",
    ringBytes: RING_BYTES,
  });
  startProducer(device, Channel.SECTION, count, bytes, 0);
  const scratch = new Uint8Array(Protocol.MAX_MESSAGE);
  let received = 0;
  let gaps = 0;
  let batches = 0;
  let first = 0;
  let last = 0;
  const onMessage = (data: Uint8Array, sequence: number) => {
    scratch.set(data);
    if (sequence !== received) gaps++;
    if (++received === 1) first = ticks();
  };
  if (reader === "drain") {
    while (received < count) {
      if (await subscription.drain(onMessage, { timeoutMs: STALL_MS }) === 0) {
        throw new Error(`the section ring stalled after ${received} messages`);
      }
      last = ticks();
      batches++;
    }
  } else {
    // The iterator hands out copies already: that is this reader's one copy. Leaving the
    // loop closes the subscription, so the clock stops inside it.
    for await (const message of subscription) {
      if (message.sequence !== received) gaps++;
      if (++received === 1) first = ticks();
      if (received === count) {
        last = ticks();
        break;
      }
    }
  }
  device.ioctl(IOCTL.PRODUCER_STOP);
  const elapsed = seconds(last - first);
  return {
    messagesPerSecond: (count - 1) / elapsed,
    bytesPerSecond: (count - 1) * bytes / elapsed,
    ...(reader === "drain" ? { messagesPerBatch: count / batches } : {}),
    gaps,
  };
}

/** The ring bytes a record of `bytes` takes. */
function span(bytes: number): number {
  return (RecordHeader.size + bytes + 7) & ~7;
}

/** Records of `bytes` that fit in a ring whatever its Head, with room for one pad record. */
function recordsThatFit(ringBytes: number, bytes: number): number {
  return Math.floor(ringBytes / span(bytes)) - 1;
}

async function waitForProducer(device: Device): Promise<void> {
  const deadline = Date.now() + STALL_MS;
  while (Stats.decode(device.ioctl(IOCTL.GET_STATS, null, Stats.size)).producerRunning !== 0) {
    if (Date.now() > deadline) throw new Error("the producer did not finish");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * 4. The reader alone: the producer fills the ring first, then the reader drains
 * it. `FILLED_WARMUP` untimed cycles first (they fault the view's pages in and
 * let the JIT compile the reader); the rate is the median timed cycle's.
 */
async function ringFilled(
  reader: "drain" | "iterator" | "readInto" | "batches",
  bytes: number,
  cycles: number,
): Promise<Metrics> {
  await using device = openDevice(Names.DEVICE_PATH);
  await using subscription = subscribe(device, {
    protocol: referenceProtocol,
    channel: "section",
    ringBytes: FILLED_RING_BYTES,
  });
  const count = recordsThatFit(FILLED_RING_BYTES, bytes);
  // One iterator for every cycle: leaving a for-await loop would close the subscription.
  const messages = subscription[Symbol.asyncIterator]();
  const scratch = new Uint8Array(Protocol.MAX_MESSAGE);
  const batch = new Uint8Array(FILLED_BATCH_BYTES);
  const batches = subscription.batches({ maxMessages: Math.floor(batch.length / span(bytes)) });
  const batchWords = new Int32Array(batch.buffer);
  let received = 0;
  let gaps = 0;
  const cycleSeconds: number[] = [];
  const onMessage = (data: Uint8Array, sequence: number) => {
    scratch.set(data);
    if (sequence !== received) gaps++;
    received++;
  };
  for (let cycle = 0; cycle < FILLED_WARMUP + cycles; cycle++) {
    startProducer(device, Channel.SECTION, count, bytes, 0);
    await waitForProducer(device);
    const target = received + count;
    const start = ticks();
    if (reader === "drain") {
      while (received < target) {
        if (await subscription.drain(onMessage, { timeoutMs: STALL_MS }) === 0) {
          throw new Error(`the section ring stalled after ${received} messages`);
        }
      }
    } else if (reader === "readInto") {
      // The batch copy is this reader's one copy; walking the headers is its per-message work.
      while (received < target) {
        const copied = await subscription.readInto(batch, { timeoutMs: STALL_MS });
        if (copied === 0) throw new Error(`the section ring stalled after ${received} messages`);
        // Stepped in words, as the readInto example does (the sequence's low word, received mod 2^32).
        const end = copied >> 2;
        for (let word = 0; word < end;) {
          if (batchWords[word + SEQUENCE_WORD] !== (received | 0)) gaps++;
          received++;
          word += ((RecordHeader.size + batchWords[word] + 7) >> 3) << 1;
        }
      }
    } else if (reader === "batches") {
      // As for readInto: one copy of the batch's records, each sequence checked.
      while (received < target) {
        const next = await batches.next();
        if (next.done) throw new Error(`the subscription ended after ${received} messages`);
        const records = next.value;
        batch.set(records.bytes);
        for (let i = 0; i < records.count; i++) {
          if (records.sequence(i) !== received) gaps++;
          received++;
        }
        records.release();
      }
    } else {
      // The iterator hands out copies already: that is this reader's one copy.
      while (received < target) {
        const next = await messages.next();
        if (next.done) throw new Error(`the subscription ended after ${received} messages`);
        if (next.value.sequence !== received) gaps++;
        received++;
      }
    }
    if (cycle >= FILLED_WARMUP) cycleSeconds.push(seconds(ticks() - start));
  }
  const median = summarize(cycleSeconds).median;
  return { messagesPerSecond: count / median, bytesPerSecond: count * bytes / median, gaps };
}

// --- 5. The fuzzer ---

const FUZZ_SEED = 1;
const FUZZ_ITERATIONS = 3000;
/** The fuzzer's request deadline and hang limit (ms), its defaults; the C replay uses the same. */
const FUZZ_TIMEOUT_MS = 25;
const FUZZ_HANG_MS = 5000;
/**
 * The reference driver's codes that complete at once and answer a request the same way every
 * time, so that a seed makes the same requests run after run (GET_STATS's counters change).
 */
const FUZZ_CODES = [
  IOCTL.GET_VERSION,
  IOCTL.ECHO,
  IOCTL.IN_DIRECT_VERIFY,
  IOCTL.OUT_DIRECT_ECHO,
  IOCTL.OUT_DIRECT_FILL,
  IOCTL.NEITHER_ECHO,
  IOCTL.CHECKSUM,
  IOCTL.OVERFLOW,
];
/** Where the Deno side leaves its requests for the C side (client.c's fuzz_replay format). */
const fuzzRecording = await Deno.makeTempFile({ prefix: "kbfuzz-requests-" });

/** The requests in client.c's format: code, input length, output size (u32 LE each), input. */
function encodeRequests(requests: readonly SequenceStep[]): Uint8Array {
  const bytes = new Uint8Array(requests.reduce((n, r) => n + 12 + r.input.length, 0));
  const view = new DataView(bytes.buffer);
  let at = 0;
  for (const { code, input, outputSize } of requests) {
    view.setUint32(at, code, true);
    view.setUint32(at + 4, input.length, true);
    view.setUint32(at + 8, outputSize, true);
    bytes.set(input, at + 12);
    at += 12 + input.length;
  }
  return bytes;
}

/** A short digest of `bytes` (FNV-1a 32), to tell whether two runs sent the same requests. */
function digest(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash;
}

/**
 * 5. The Fuzzer against the reference driver's steady codes: every request it sends (the
 * iterations and its oracles' own) per second; the requests go to `fuzzRecording`.
 */
async function fuzzReference(iterations: number): Promise<Metrics> {
  const sent: SequenceStep[] = [];
  const target = new DeviceTarget(Names.DEVICE_PATH);
  try {
    const fuzzer = new Fuzzer(target, {
      seed: FUZZ_SEED,
      timeoutMs: FUZZ_TIMEOUT_MS,
      hangMs: FUZZ_HANG_MS,
      ranges: new HostRanges("kbridge.sys"),
      onRequest: ({ code, input, outputSize }) =>
        sent.push({ code, input: input.slice(), outputSize }),
    });
    const start = ticks();
    await fuzzer.run(FUZZ_CODES, { iterations });
    const elapsed = seconds(ticks() - start);
    const summary = fuzzer.summary();
    if (summary.uniqueBugs > 0) {
      throw new Error(`the fuzzer found bugs: ${JSON.stringify(summary)}`);
    }
    const recording = encodeRequests(sent);
    await Deno.writeFile(fuzzRecording, recording);
    return {
      requestsPerSecond: sent.length / elapsed,
      requests: sent.length,
      iterations: summary.iterations,
      digest: digest(recording),
    };
  } finally {
    await target.close();
  }
}

/** The fixture with a known hang (tests/fixture/quirky.c): its service, device and codes. */
const QUIRKY = {
  service: "kbquirky",
  path: "\\\\.\\KbQuirky",
  code: (fn: number) => ctlCode({ deviceType: 0x8024, function: fn, method: 0, access: 0 }),
};
/** INFO, XOR, STORE, LOAD, SCRATCH: codes that answer at once; HANG holds 8-byte inputs 10 s. */
const QUIRKY_CODES = [0x800, 0x801, 0x802, 0x803, 0x805].map(QUIRKY.code);
const QUIRKY_HANG = QUIRKY.code(0x807);
const HANG_RUN_MS = 30_000;
/** The hang limit of these runs (the known-hang test's): a new hang costs this much. */
const HANG_RUN_LIMIT_MS = 1000;

/** Loads the fixture afresh: a new host, its state at the start. */
async function loadQuirky(sysPath: string): Promise<void> {
  if (queryDriver(QUIRKY.service) === null) installDriver(QUIRKY.service, sysPath);
  try {
    await stopDriver(QUIRKY.service);
  } catch {
    // Not running, or its host is gone.
  }
  startDriver(QUIRKY.service);
}

/**
 * 5. The fuzzer on the fixture for `ms`: iterations per second, with or without its hanging
 * code, with or without the known-fault budget.
 */
async function fuzzQuirky(
  sysPath: string,
  withHang: boolean,
  knownFaultBudget: boolean,
  ms: number,
): Promise<Metrics> {
  await loadQuirky(sysPath);
  const outDir = await Deno.makeTempDir({ prefix: "kbfuzz-bench-" });
  const target = new DeviceTarget(QUIRKY.path, { service: QUIRKY.service });
  try {
    const fuzzer = new Fuzzer(target, {
      seed: 3,
      outDir,
      service: QUIRKY.service,
      hangMs: HANG_RUN_LIMIT_MS,
      ranges: new HostRanges(`${QUIRKY.service}.sys`),
      knownFaultBudget,
    });
    await fuzzer.run(withHang ? [...QUIRKY_CODES, QUIRKY_HANG] : QUIRKY_CODES, { durationMs: ms });
    const summary: FuzzSummary = fuzzer.summary();
    const hangs = summary.hangs.reduce((n, hang) => n + hang.count, 0);
    if (withHang !== (hangs > 0)) throw new Error(`${hangs} hangs: ${JSON.stringify(summary)}`);
    return { iterationsPerSecond: summary.perSecond, hangs, restarts: summary.restarts };
  } finally {
    await target.close();
    await Deno.remove(outDir, { recursive: true });
  }
}

// --- The C side ---

async function client(...args: (string | number)[]): Promise<Metrics> {
  const command = new Deno.Command(options.client, {
    args: args.map(String),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  // Under Wine a CreateProcess now and then fails with ERROR_INTERNAL_ERROR (1359): once in a
  // full run of 2026-12-04, which it ended. The client never started then, so it is run again.
  const output = await command.output().catch((error) => {
    console.error(`bench: client ${args.join(" ")} did not start (${error}), once more`);
    return command.output();
  });
  const text = new TextDecoder().decode(output.stdout).trim();
  if (!output.success) {
    const error = new TextDecoder().decode(output.stderr).trim();
    throw new Error(`client ${args.join(" ")} exited with ${output.code}: ${error}`);
  }
  return JSON.parse(text);
}

// --- Workloads: each runs all its sides once per round, in an order that rotates ---

interface Workload {
  name: string;
  sides: Record<string, () => Promise<Metrics> | Metrics>;
  /** Runs once before the rounds (untimed), e.g. to make what a side needs. */
  prepare?: () => Promise<unknown>;
}

const MiB = 1 << 20;
const workloads: Workload[] = [];

for (
  const [name, code, bytes, calls] of [
    ["ECHO 64 B", IOCTL.ECHO, 64, 3000],
    ["ECHO 4 KiB", IOCTL.ECHO, 4096, 3000],
    ["OUT_DIRECT_ECHO 1 MiB", IOCTL.OUT_DIRECT_ECHO, MiB, 150],
  ] as const
) {
  const command = code === IOCTL.ECHO ? "echo" : "out_direct_echo";
  for (const overlapped of [false, true]) {
    workloads.push({
      name: `sync ${name}${overlapped ? " (overlapped handle)" : ""}`,
      sides: {
        c: () => client("sync", command, bytes, scaled(calls), overlapped ? 1 : 0),
        deno: () => syncRoundTrip(code, bytes, scaled(calls), overlapped),
      },
    });
  }
}
const DEPTHS = [1, 8, 64] as const;
const ECHO_REQUESTS: Record<number, number> = { 1: 3000, 8: 6000, 64: 6000 };
const PEND_REQUESTS: Record<number, number> = { 1: 3000, 8: 8000, 64: 10000 };
for (const depth of DEPTHS) {
  workloads.push({
    name: `overlapped ECHO ${depth} deep`,
    sides: {
      c: () => client("overlapped", depth, scaled(ECHO_REQUESTS[depth]), OVERLAPPED_BYTES),
      deno: () => overlappedEcho(depth, scaled(ECHO_REQUESTS[depth])),
    },
  });
}
// All of design (a) before any of (b): the worker threads (b) starts stay alive a while
// and would count in (a)'s thread figure.
for (const depth of DEPTHS) {
  workloads.push({
    name: `overlapped PEND ${depth} in flight`,
    sides: {
      c: () => client("pended", depth, scaled(PEND_REQUESTS[depth])),
      deno: () => pendedLibrary(depth, scaled(PEND_REQUESTS[depth])),
    },
  });
}
for (const depth of DEPTHS) {
  workloads.push({
    name: `overlapped PEND ${depth} in flight, event per request`,
    sides: { deno: () => pendedEvents(depth, scaled(PEND_REQUESTS[depth])) },
  });
}
for (const channel of ["section", "inverted"] as const) {
  // 3,000 messages a round: a p99 over 900 samples moved by 2-4x from round to round.
  const count = scaled(3000);
  workloads.push({
    name: `latency ${channel}`,
    sides: {
      c: () => client("latency", channel, count, LATENCY_INTERVAL_US, LATENCY_BYTES),
      deno: () => latency(channel, count),
      ...(channel === "section"
        ? { denoNoPoll: () => latency(channel, count, 0), denoWorker: () => latencyInWorker(count) }
        : {}),
    },
  });
}
const RING_SIZES = [[64, "64 B"], [4096, "4 KiB"]] as const;
for (const [bytes, label] of RING_SIZES) {
  const count = scaled(bytes === 64 ? 300_000 : 60_000);
  workloads.push({
    name: `ring ${label} streaming`,
    sides: {
      c: () => client("ring", bytes, count, RING_BYTES),
      deno: () => ringThroughput("drain", bytes, count),
      denoIterator: () => ringThroughput("iterator", bytes, count),
    },
  });
}
for (const [bytes, label] of RING_SIZES) {
  const cycles = Math.max(1, Math.round(FILLED_CYCLES * SCALE));
  workloads.push({
    name: `ring ${label} pre-filled`,
    sides: {
      c: () => client("ring_filled", bytes, FILLED_WARMUP, cycles, FILLED_RING_BYTES),
      cBatch: () =>
        client("ring_filled", bytes, FILLED_WARMUP, cycles, FILLED_RING_BYTES, FILLED_BATCH_BYTES),
      deno: () => ringFilled("drain", bytes, cycles),
      denoReadInto: () => ringFilled("readInto", bytes, cycles),
      denoBatches: () => ringFilled("batches", bytes, cycles),
      denoIterator: () => ringFilled("iterator", bytes, cycles),
      memcpy: () =>
        client(
          "memcpy",
          bytes,
          recordsThatFit(FILLED_RING_BYTES, bytes) * cycles,
          FILLED_RING_BYTES,
        ),
    },
  });
}

workloads.push({
  name: "fuzz reference driver",
  sides: {
    // The recording the C side replays is the Deno side's latest: a warm-up run writes the first.
    c: () => client("fuzz_replay", fuzzRecording, FUZZ_TIMEOUT_MS, FUZZ_HANG_MS),
    deno: () => fuzzReference(scaled(FUZZ_ITERATIONS)),
  },
  prepare: () => fuzzReference(scaled(FUZZ_ITERATIONS)),
});

if (options.quirky !== undefined) {
  const sys = options.quirky;
  const ms = Math.max(1000, Math.round(HANG_RUN_MS * SCALE));
  workloads.push({
    name: "fuzz with a known hang",
    sides: {
      noHang: () => fuzzQuirky(sys, false, true, ms),
      knownHang: () => fuzzQuirky(sys, true, true, ms),
      knownHangNoBudget: () => fuzzQuirky(sys, true, false, ms),
    },
  });
}

type Results = Record<string, Record<string, Metrics[]>>;

async function runWorkloads(selected: Workload[]): Promise<Results> {
  const results: Results = {};
  for (const workload of selected) {
    const sides = Object.keys(workload.sides);
    const started = Date.now();
    const perSide: Record<string, Metrics[]> = Object.fromEntries(sides.map((side) => [side, []]));
    await workload.prepare?.();
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < sides.length; i++) {
        const side = sides[(i + round) % sides.length];
        perSide[side].push(await workload.sides[side]());
      }
    }
    results[workload.name] = perSide;
    const line = sides.map((side) => `${side} ${JSON.stringify(perSide[side].at(-1))}`);
    const took = ((Date.now() - started) / 1000).toFixed(1);
    console.error(`bench: ${workload.name} (${took} s): ${line.join("; ")}`);
  }
  return results;
}

// --- Clock check: the driver's timestamps against this process's QueryPerformanceCounter ---

interface ClockCheck {
  frequency: number;
  clientFrequency: number;
  /** Each injected message's timestamp lay between the QPC readings before and after the call. */
  bracketed: boolean;
  /** Driver ticks / QPC ticks over a 200 ms interval (1: same units). */
  rate: number;
}

async function checkClock(): Promise<ClockCheck> {
  await using device = openDevice(Names.DEVICE_PATH);
  await using subscription = subscribe(device, {
    protocol: referenceProtocol,
    channel: "section",
    ringBytes: 1 << 16,
  });
  const payload = new Uint8Array(8);
  const input = new Uint8Array(InjectHeader.size + payload.length);
  InjectHeader.encode({ channels: Channel.SECTION, length: payload.length }, input);
  const inject = async () => {
    const before = ticks();
    device.ioctl(IOCTL.INJECT, input);
    const after = ticks();
    const [message] = await subscription.readMany(1, { timeoutMs: STALL_MS });
    return { before, after, stamp: message.timestamp };
  };
  const first = await inject();
  await new Promise((resolve) => setTimeout(resolve, 200));
  const second = await inject();
  const middle = (sample: typeof first) => (sample.before + sample.after) / 2;
  return {
    frequency: FREQUENCY,
    clientFrequency: (await client("frequency")).frequency,
    bracketed: [first, second].every((s) => s.before <= s.stamp && s.stamp <= s.after),
    rate: (second.stamp - first.stamp) / (middle(second) - middle(first)),
  };
}

// --- The report ---

interface Cell {
  workload: string;
  side: string;
  metric: string;
}

interface Row {
  workload: string;
  c: Cell;
  deno: Cell;
  format: (value: number) => string;
  /** Deno / C must be at most (`<=`) or at least (`>=`) `ratio`. */
  target?: { op: "<=" | ">="; ratio: number };
}

const us = (ns: number) => `${(ns / 1000).toFixed(1)} µs`;
const perSecond = (value: number) =>
  value >= 1e6
    ? `${(value / 1e6).toFixed(2)} M/s`
    : value >= 1e3
    ? `${(value / 1e3).toFixed(1)} k/s`
    : `${value.toFixed(0)}/s`;
const microseconds = (value: number) => `${value.toFixed(0)} µs`;
const messages = (bytes: number) => (value: number) =>
  `${(value / 1e6).toFixed(2)} M msg/s = ${(value * bytes / 1e9).toFixed(2)} GB/s`;
const gigabytes = (value: number) => `${(value / 1e9).toFixed(2)} GB/s`;

const cell = (workload: string, side: string, metric: string): Cell => ({ workload, side, metric });

const rows: Row[] = [
  ...(["ECHO 64 B", "ECHO 4 KiB", "OUT_DIRECT_ECHO 1 MiB"] as const).flatMap((name) =>
    ["", " (overlapped handle)"].map((handle): Row => ({
      workload: `sync ${name}${handle}, per call`,
      c: cell(`sync ${name}${handle}`, "c", "nsPerCall"),
      deno: cell(`sync ${name}${handle}`, "deno", "nsPerCall"),
      format: us,
      target: handle === ""
        ? { op: "<=", ratio: name === "OUT_DIRECT_ECHO 1 MiB" ? 1.02 : 1.05 }
        : undefined,
    }))
  ),
  ...DEPTHS.map((depth): Row => ({
    workload: `overlapped ECHO 64 B kept ${depth} deep (completes at once)`,
    c: cell(`overlapped ECHO ${depth} deep`, "c", "requestsPerSecond"),
    deno: cell(`overlapped ECHO ${depth} deep`, "deno", "requestsPerSecond"),
    format: perSecond,
    target: depth === 64 ? { op: ">=", ratio: 0.95 } : undefined,
  })),
  ...DEPTHS.map((depth): Row => ({
    workload: `overlapped PEND, ${depth} pending at once`,
    c: cell(`overlapped PEND ${depth} in flight`, "c", "requestsPerSecond"),
    deno: cell(`overlapped PEND ${depth} in flight`, "deno", "requestsPerSecond"),
    format: perSecond,
    target: depth === 64 ? { op: ">=", ratio: 0.95 } : undefined,
  })),
  ...(["section", "inverted"] as const).flatMap((channel) =>
    (["p50", "p99"] as const).map((p): Row => ({
      workload: `latency ${channel}, ${p}`,
      c: cell(`latency ${channel}`, "c", `${p}Us`),
      deno: cell(`latency ${channel}`, "deno", `${p}Us`),
      format: microseconds,
      target: { op: "<=", ratio: p === "p50" ? 1.1 : 1.5 },
    }))
  ),
  ...(["p50", "p99"] as const).map((p): Row => ({
    workload: `latency section, ${p}, Deno without the poll (pollMs 0)`,
    c: cell("latency section", "c", `${p}Us`),
    deno: cell("latency section", "denoNoPoll", `${p}Us`),
    format: microseconds,
  })),
  ...(["p50", "p99"] as const).map((p): Row => ({
    workload: `latency section, ${p}, Deno drainSync in a Worker`,
    c: cell("latency section", "c", `${p}Us`),
    deno: cell("latency section", "denoWorker", `${p}Us`),
    format: microseconds,
    target: { op: "<=", ratio: p === "p50" ? 1.1 : 1.5 },
  })),
  ...RING_SIZES.flatMap(([bytes, label]) =>
    (["streaming", "pre-filled"] as const).flatMap((mode) => [
      {
        workload: `ring ${label} ${mode}, Deno drain (batch) vs C reader`,
        c: cell(`ring ${label} ${mode}`, "c", "messagesPerSecond"),
        deno: cell(`ring ${label} ${mode}`, "deno", "messagesPerSecond"),
        format: messages(bytes),
      } satisfies Row,
      ...(mode === "pre-filled"
        ? [
          {
            workload: `ring ${label} ${mode}, Deno readInto (batch copy) vs C reader`,
            c: cell(`ring ${label} ${mode}`, "c", "messagesPerSecond"),
            deno: cell(`ring ${label} ${mode}`, "denoReadInto", "messagesPerSecond"),
            format: messages(bytes),
            target: { op: ">=", ratio: bytes === 64 ? 0.7 : 0.9 },
          } satisfies Row,
          {
            workload: `ring ${label} ${mode}, Deno readInto vs C batch reader (the same copy)`,
            c: cell(`ring ${label} ${mode}`, "cBatch", "messagesPerSecond"),
            deno: cell(`ring ${label} ${mode}`, "denoReadInto", "messagesPerSecond"),
            format: messages(bytes),
          } satisfies Row,
          {
            workload: `ring ${label} ${mode}, Deno batches() (batch iterator) vs C reader`,
            c: cell(`ring ${label} ${mode}`, "c", "messagesPerSecond"),
            deno: cell(`ring ${label} ${mode}`, "denoBatches", "messagesPerSecond"),
            format: messages(bytes),
            target: { op: ">=", ratio: bytes === 64 ? 0.5 : 0.9 },
          } satisfies Row,
        ]
        : []),
      {
        workload: `ring ${label} ${mode}, Deno async iterator vs C reader`,
        c: cell(`ring ${label} ${mode}`, "c", "messagesPerSecond"),
        deno: cell(`ring ${label} ${mode}`, "denoIterator", "messagesPerSecond"),
        format: messages(bytes),
        // 10× the per-message iterator's 0.01 of C before it read a batch per step.
        ...(mode === "pre-filled" && bytes === 64
          ? { target: { op: ">=", ratio: 0.1 } as const }
          : {}),
      } satisfies Row,
    ])
  ),
  ...RING_SIZES.map(([_, label]): Row => ({
    workload: `ring ${label} pre-filled, C reader (Deno column) vs C memcpy (C column)`,
    c: cell(`ring ${label} pre-filled`, "memcpy", "bytesPerSecond"),
    deno: cell(`ring ${label} pre-filled`, "c", "bytesPerSecond"),
    format: gigabytes,
    target: label === "4 KiB" ? { op: ">=", ratio: 0.5 } : undefined,
  })),
  {
    workload: "fuzz requests/s, Deno Fuzzer vs C replay of its requests",
    c: cell("fuzz reference driver", "c", "requestsPerSecond"),
    deno: cell("fuzz reference driver", "deno", "requestsPerSecond"),
    format: perSecond,
    target: { op: ">=", ratio: 0.8 },
  },
  ...(options.quirky === undefined ? [] : [
    {
      workload: "fuzz iterations/s with a known hang (Deno column) vs without it (C column)",
      c: cell("fuzz with a known hang", "noHang", "iterationsPerSecond"),
      deno: cell("fuzz with a known hang", "knownHang", "iterationsPerSecond"),
      format: perSecond,
      target: { op: ">=", ratio: 0.5 },
    } satisfies Row,
    {
      workload:
        "fuzz iterations/s with a known hang, known-fault budget off (Deno column) vs without it (C column)",
      c: cell("fuzz with a known hang", "noHang", "iterationsPerSecond"),
      deno: cell("fuzz with a known hang", "knownHangNoBudget", "iterationsPerSecond"),
      format: perSecond,
    } satisfies Row,
  ]),
];

function summaryOf(results: Results, { workload, side, metric }: Cell): Summary {
  return summarize(results[workload][side].map((metrics) => metrics[metric]));
}

function formatSummary(summary: Summary, format: (value: number) => string): string {
  return `${format(summary.median)} (${format(summary.min)} … ${format(summary.max)})`;
}

interface MicroResult {
  group: string | null;
  name: string;
  avgNs: number;
  p75Ns: number;
}

async function readMicro(path: string | undefined): Promise<MicroResult[]> {
  if (path === undefined) return [];
  const report = JSON.parse(await Deno.readTextFile(path));
  return report.benches.map((bench: {
    group: string | null;
    name: string;
    results: { ok: { avg: number; p75: number } }[];
  }) => ({
    group: bench.group,
    name: bench.name,
    avgNs: bench.results[0].ok.avg,
    p75Ns: bench.results[0].ok.p75,
  }));
}

// --- Main ---

{
  using device = openDevice(Names.DEVICE_PATH, { overlapped: false });
  const info = VersionInfo.decode(device.ioctl(IOCTL.GET_VERSION, null, VersionInfo.size));
  const needed = Capability.ECHO | Capability.DIRECT | Capability.SECTION | Capability.INVERTED |
    Capability.PRODUCER;
  if ((info.capabilities & needed) !== needed) {
    throw new Error(`the driver lacks capabilities: 0x${info.capabilities.toString(16)}`);
  }
}
const startedAt = new Date();
console.error(`bench: CPU ${options.cpu}, ${options.wine}, Deno ${Deno.version.deno}`);
const baseThreads = processResources().threads;
const clock = await checkClock();
console.error(`bench: clock check ${JSON.stringify(clock)}`);
if (!clock.bracketed || Math.abs(clock.rate - 1) > 0.01) {
  throw new Error(
    "the driver's KeQueryPerformanceCounter and QueryPerformanceCounter disagree here: " +
      "latency from timestamps would be meaningless",
  );
}
const only = options.only === undefined ? undefined : new RegExp(options.only);
const results = await runWorkloads(
  only === undefined ? workloads : workloads.filter((workload) => only.test(workload.name)),
);

/** Deno / C round by round: each round ran both sides back to back, under the same load. */
function pairedRatios(row: Row): Summary {
  const value = ({ workload, side, metric }: Cell, round: number) =>
    results[workload][side][round][metric];
  return summarize(
    Array.from({ length: ROUNDS }, (_, round) => value(row.deno, round) / value(row.c, round)),
  );
}

const measured = rows.filter((row) =>
  results[row.c.workload] !== undefined && results[row.deno.workload] !== undefined
).map((row) => {
  const c = summaryOf(results, row.c);
  const deno = summaryOf(results, row.deno);
  const ratio = pairedRatios(row);
  const met = row.target === undefined
    ? undefined
    : row.target.op === "<="
    ? ratio.median <= row.target.ratio
    : ratio.median >= row.target.ratio;
  return { row, c, deno, ratio, met };
});

const TABLE_HEADER = ["workload", "C", "Deno", "ratio Deno/C", "target", "met?"];
function tableLine({ row, c, deno, ratio, met }: typeof measured[number]): string[] {
  return [
    row.workload,
    formatSummary(c, row.format),
    formatSummary(deno, row.format),
    formatSummary(ratio, (value) => value.toFixed(2)),
    row.target ? `${row.target.op} ${row.target.ratio}` : "—",
    met === undefined ? "—" : met ? "yes" : "**no**",
  ];
}
const reportRows = measured.map(({ row, c, deno, ratio, met }) => ({
  workload: row.workload,
  c,
  deno,
  ratio,
  target: row.target ?? null,
  met: met ?? null,
}));
const deno = `${Deno.version.deno} (Windows build under Wine)`;
const resultsUrl = new URL("./results.json", import.meta.url);

if (only !== undefined) {
  for (const [name, sides] of Object.entries(results)) {
    for (const [side, runs] of Object.entries(sides)) {
      const metrics = Object.keys(runs[0]).map((metric) =>
        `${metric} ${summarize(runs.map((m) => m[metric])).median.toPrecision(4)}`
      );
      console.log(`${name} | ${side} | ${metrics.join(", ")}`);
    }
  }
  // The rows these workloads make replace their earlier figures in this machine's run.
  if (measured.length > 0) {
    console.log(table(TABLE_HEADER, measured.map(tableLine)));
    const previous: ResultsFile = JSON.parse(await Deno.readTextFile(resultsUrl));
    const lines = Object.fromEntries(
      measured.map((m) => [m.row.workload, `| ${tableLine(m).join(" | ")} |`]),
    );
    const merged = mergePartialRun(
      previous,
      { cpu: options.cpu, wine: options.wine, deno },
      `${startedAt.toISOString().slice(0, 10)}, ${ROUNDS} rounds`,
      reportRows,
      lines,
      `| ${TABLE_HEADER.join(" | ")} |`,
    );
    await Deno.writeTextFile(new URL("./results.md", import.meta.url), renderResults(merged));
    await Deno.writeTextFile(resultsUrl, JSON.stringify(merged, null, 2) + "\n");
  }
  await Deno.remove(fuzzRecording);
  Deno.exit(0);
}
await Deno.remove(fuzzRecording);
const micro = await readMicro(options.micro);

const designs = DEPTHS.map((depth) => {
  const library = results[`overlapped PEND ${depth} in flight`];
  const events = results[`overlapped PEND ${depth} in flight, event per request`];
  const rate = (runs: Metrics[]) => summarize(runs.map((m) => m.requestsPerSecond));
  const threads = (runs: Metrics[]) => Math.max(...runs.map((m) => m.threads));
  return {
    depth,
    c: { requestsPerSecond: rate(library.c), threads: threads(library.c) },
    iocp: { requestsPerSecond: rate(library.deno), threads: threads(library.deno) },
    events: { requestsPerSecond: rate(events.deno), threads: threads(events.deno) },
  };
});

const streamingDetail = RING_SIZES.map(([_, label]) => {
  const runs = results[`ring ${label} streaming`];
  const median = (values: number[]) => summarize(values).median;
  const wakeups = median(runs.c.map((m) => m.wakeupsPerMessage));
  const batch = median(runs.deno.map((m) => m.messagesPerBatch));
  return `${label}: the C reader slept ${wakeups.toFixed(3)} times per message, ` +
    `Deno's drain took ${batch.toFixed(1)} messages per batch`;
}).join("; ");

const latencyCpu = (() => {
  const runs = results["latency section"];
  const median = (side: string) => summarize(runs[side].map((m) => m.cpuPercent)).median;
  return `the Deno process used ${median("deno").toFixed(0)} % of a core with the poll, ` +
    `${median("denoNoPoll").toFixed(0)} % without (medians over the rounds)`;
})();

const markdown = [
  `## ${options.cpu}`,
  "",
  `${startedAt.toISOString()} · CPU ${options.cpu} · ${options.wine} · Deno ${deno} · ` +
  `${ROUNDS} rounds, C and Deno alternating, scale ${SCALE}`,
  "",
  "Medians over the rounds, (min … max) after each. Ratio: the median over the rounds of " +
  "Deno / C within a round (both ran back to back, so they shared the machine's load of the " +
  "moment); targets are judged on it. Absolute times under Wine are not Windows times; the " +
  "ratios are what counts.",
  "",
  table(TABLE_HEADER, measured.map(tableLine)),
  "",
  "How to read it:",
  "",
  "- ECHO completes inside the driver's dispatch routine, so an overlapped DeviceIoControl " +
  "returns TRUE at once (and, the handle skipping the port for such a request, brings no completion packet): ECHO kept N deep is " +
  "never more than one request in flight. PEND requests really pend: N are issued, one RELEASE " +
  "(from a second, synchronous handle) completes them all, their completions are collected, " +
  "again.",
  "- Ring streaming: the producer runs alongside the reader (lossless, it waits for space) " +
  "and is the bottleneck: it generates every payload byte and signals the event whenever the " +
  "reader sleeps. Pre-filled: the producer fills a " +
  `${FILLED_RING_BYTES >> 20} MiB ring, then the reader alone drains it (${FILLED_WARMUP} ` +
  `untimed cycles first, then the median of ${FILLED_CYCLES} timed ones, C and Deno alike); ` +
  "the memcpy ceiling copies the same records' bytes out of a buffer of the same size. " +
  "The C reader copies each payload into one 4 KiB buffer; the C batch reader does readInto's " +
  "work: one memcpy of each stretch of records into a batch of the same size as Deno's, then " +
  "a walk of the whole records there. " +
  "Every reader copies each payload once (the iterator's message copy counts as that copy): " +
  "drain copies each view into a 4 KiB buffer; readInto copies whole records into a " +
  `${FILLED_BATCH_BYTES >> 10} KiB buffer and walks their headers; batches() copies each ` +
  `batch's records (up to ${FILLED_BATCH_BYTES >> 10} KiB) into that buffer with one set() and ` +
  "reads each message's sequence through the batch; the " +
  "iterator copies a batch at a time (one slice() of up to 256 KiB) and makes a message with a " +
  "view of that copy per step. Before it read a batch per step, the iterator made a Promise, " +
  "a copy and an object per message: 0.41 M msg/s at 64 B (0.01 of C, 2026-11-25), the base " +
  "of its >= 0.1 target.",
  `- Ring streaming detail (medians): ${streamingDetail}.`,
  "",
  `- Latency section: ${latencyCpu}.`,
  "",
  "### Changes of 2026-12-04, Intel Xeon, 2 CPUs: before / after, same machine",
  "",
  "- Found, why readInto of 4 KiB records trails the C reader on this Xeon (one Deno process under Wine, the reference driver's 64 MiB ring pre-filled, medians of 5 cycles): a native memcpy (a DLL called through FFI) of the ring's records into one 4 KiB scratch, as the C reader does, read 8.8-10.8 GB/s; into a 1 MiB target, as readInto into the bench's batch, 7.5-8.0; into 256 KiB 9.4-9.7; readInto itself 7.3-8.7, the C reader's process 10.3-11.3 in the same minutes. So the gap is where the bytes go: readInto writes each one into the caller's batch, the C reader into a scratch that stays in the first-level cache. `set()` and msvcrt's memcpy copy alike (private memory 9.6 vs 9.0 GB/s, from the ring 8.3 vs 8.8), and this Xeon has no slow copy distance (0-4088 bytes, 8.3-10.7 GB/s).",
  "- Lost: a 256 KiB batch for the pre-filled readInto and batches() readers (`--only` runs of 3 rounds alternating with 1 MiB): readInto 4 KiB 0.73 and 0.72 against 0.89 and 0.79, 64 B 0.48 and 0.65 against 0.53 and 0.53, within the noise, so the batch stays 1 MiB.",
  "- Found, readInto of 64 B records per record (a 64 MiB ring in plain memory under Wine): the `set()` of the records 8.4-8.9 ns, the library's check of the copy 3.9 ns, the bench's consumer walking the batch 4.2 ns (the next record's place waits for the length just loaded; 1.8 ns when it reuses the last span); the C reader takes 10 ns in all (98.6 M msg/s).",
  "- Won (small): the ring's one walk (drain and scan in place, copyRecords in its copy) reads lengths as signed words and tests one bound per record; unsigned words made V8 compare lengths as doubles. Same probe, per 64 B record, alternating processes: copyRecords 11.2-11.6 -> 10.2-10.9 ns (12.0-12.3 -> 10.7-11.4 in an earlier pair), the batches() pattern (scan + copy + sequence) 22.0-22.8 -> 20.0-21.4, readInto with the bench's consumer 15.9-17.0 -> 15.1-15.9, drain 43.9-45.8 -> 42.6-45.5. A second loop of its own for copyRecords (no offsets to write) gained another 0.3-1 ns; not kept, the walk stays one. Bench rows, `--only` runs alternating before / after (the first form): readInto 64 B 0.48, 0.61, 0.53 / 0.58, 0.56, 0.58; 4 KiB 0.75, 0.73, 0.74 / 0.73, 0.83, 0.79: within the noise.",
  "- New rows: readInto against a C batch reader that does readInto's work (client.c `ring_filled` with a batch size: one memcpy of each stretch of records into a 1 MiB batch, then one walk of the records there), beside the C reader that copies each payload into one 4 KiB buffer. Its first `--only` run (3 rounds): 64 B 0.77 (0.74 … 0.83) and 4 KiB 0.83 (0.83 … 0.86) against the C batch reader, 0.63 and 0.73 against the C reader; the C batch reader read 88.8 M msg/s at 64 B where the C reader read 108, and 11.4 against 12.1 GB/s at 4 KiB. So part of the readInto rows' gap is the batch copy the C reader does not make; the rest is `set()` against msvcrt's memcpy (each process its own) and the second walk (the library checks the copy, then the consumer walks it; the C batch reader walks once).",
  "- Fixed: copyRecords (readInto) returns the records before a corrupt one and throws at the next call, as scan does; it used to throw at once, and the caller never learnt of the records it had copied and released.",
  "- Won (small): the ring's walk steps a word index instead of a byte offset shifted into one per record, and the readInto consumer (the bench's, and the readInto example) steps through the batch in words of an Int32Array. Walk alone over 1 MiB of 64 B records (Linux and Wine alike): 2.5 -> 2.05-2.1 ns per record (1.7 without the count bound drain needs); the consumer 4.2-4.5 -> 2.7. In one process under Wine (64 MiB ring in plain memory, copyRecords into 1 MiB, medians of 5 cycles, two runs of three pairs): copyRecords with the old consumer 15.0-16.5 -> 14.6-15.8 ns per record, with the word consumer 14.0-16.4 -> 13.5-14.5. Bench rows, `--only` runs of 3 rounds alternating before / after: readInto 64 B 0.58, 0.60, 0.58 / 0.64, 0.63, 0.58 (against the C batch reader 0.70, 0.81, 0.69 / 0.77, 0.79, 0.71); 4 KiB (no walk to speak of) 0.84, 0.77, 0.77 / 0.72, 0.72, 0.73, the process-to-process spread; batches() 64 B 0.45, 0.40, 0.46 / 0.50, 0.46, 0.45, drain 64 B 0.21-0.23 / 0.20-0.22.",
  "- Found, where readInto's time goes in the bench's own setting (one Deno process under Wine, the reference driver's 64 MiB section pre-filled with 64 B records, readInto into 1 MiB, timers around each part, 10 cycles): the `set()` from the ring alone 9.6-10.5 ns per record in the good cycles, the check of the copy 2.5-2.8, the rest of readInto ~1, the consumer's walk 4.6-4.9 (the batch no longer hot in the cache, 2.7 when it is): 17.4-18.5 in all, while the C reader's whole read takes 10.4-11.6 ns (86-96 M msg/s). So on this Xeon the copy out of the ring alone costs what the C reader's read does (it walks and copies into a cached 4 KiB scratch in the same pass); 0.7 would leave 4.5 ns for two walks. Pieces of 16 or 64 KiB, each checked after its copy: 17.4-18.5 against 17.4-18.6 ns, no change.",
  "- Lost: copying the stretch in pieces of 4-64 KiB and checking each piece's records right after its copy, while they sit in the first-level cache (one process under Wine, alternating): 4 KiB pieces 1-4 ns per record slower, 8-64 KiB within ±0.5 ns. The check is not waiting on the cache.",
  "",
  "### Changes of 2026-12-03, AMD EPYC, 2 CPUs: before / after, same machine",
  "",
  "- Won: payload views are made with the `Uint8Array` constructor (buffer, offset, length) instead of `subarray()`, which looks up a species constructor each time (drain's views, `MessageBatch.data`, the iterator's messages). Linux, one view: 25-52 ns before, 15-22 ns after. In-process A/B of the ring reader (a 64 MiB ring in plain memory, 64 B records, 25 timed cycles alternating): drain 15.8 -> 22.1 M msg/s on Linux, 12.4 -> 15.6 under Wine. The pre-filled rows of a `--only` run before this change (5 rounds, same day): drain 64 B 0.14, iterator 64 B 0.07, readInto 64 B 0.69 and 4 KiB 0.65, batches() 64 B 0.67 and 4 KiB 0.77.",
  "- Kept, within the noise: the ring walk reuses the last record's span while lengths repeat, so the next record's place does not wait for the length just loaded. Walk alone, Linux: 2.92 -> 2.73 ns per 64 B record; readInto 64 B in-process -6 % … +10 % over 5 runs; mixed sizes -5 % … +5 %.",
  "- Found: a wineserver round trip costs 65-130 µs on this VM (SetEvent in a loop, from C and from Deno alike), and most of it is the wake-up of an idle virtual CPU: the C client with one more thread spinning issues a burst of 64 PENDs in 4.2 ms instead of 6.4-11 ms, a whole burst in 7.2 ms instead of 17-21 ms. So every Wine row measures the hypervisor's wake-ups, which move 2x between runs minutes apart. Not used: a thread that burns a core to keep a CPU awake is a trick on this hypervisor, not a library's business.",
  "- Found: PEND 64 by phase in one process, the library and raw FFI alternating in blocks of 10 bursts (300 bursts a run): issue phase 7.72 / 6.99, 7.03 / 6.34, 8.47 / 8.58 and 9.79 / 9.61 ms per 64 in four runs, burst 19.5 / 18.6, 17.6 / 16.9, 19.6 / 20.3, 22.5 / 22.5 ms: within the noise. A CPU profile of the library's bursts: 79 % of the time in DeviceIoControl, 16.5 % in GetQueuedCompletionStatusEx, under 2 % in JavaScript. The C client's issue phase in separate processes: 6.1-11.4 ms. The miss of PEND 64 is not in the library's code.",
  "- Lost: each pre-filled Deno reader in a Deno process of its own every round, as the C reader runs (the process's copy speed stays with it: a second full run of the day had every Deno reader slow at 4 KiB, drain 1.7 against 2.9 M msg/s, while the C reader read 5.0 M msg/s in both). A 3-round `--only` run so: readInto 64 B 0.66 and 4 KiB 0.67, batches() 0.48 and 0.60, against 0.72 / 0.88 and 0.74 / 0.96 in the bench's process that morning: a fresh process read slower (why was not found: its 3 untimed cycles are 3 M records at 64 B), so the readers stay in the bench's process.",
  "- Found and fixed: a copy's speed depends on where its destination lies against its source modulo the 4 KiB page. Copies over 8 KiB take another path in deno.exe's C runtime than smaller ones, and on this AMD EPYC that path runs 1.6-2.7 GB/s when the destination is 4-28 bytes after the source (mod 4096) and 11-21 GB/s at every other distance (one set() of 1 MiB under Wine; 8 KiB and smaller: no slow distance; glibc's memmove on Linux the same from 4 KiB up). A readInto target's distance from the ring is fixed by where it was allocated and moves by the batch's size mod 4096: with records spanning 4 KiB every batch of a process has the same distance. `copyBytes` (src/core/copy.ts) now cuts a copy at a slow distance into 8 KiB pieces. Probe, copyRecords of 4 KiB records into a 1 MiB target in a 64 MiB section under Wine, medians of 5 cycles: 16 bytes ahead 2.7 GB/s before, 9.0 and 9.1 after (4 KiB pieces: 6.7), against 9.7-10.5 at 64 or 1024 bytes ahead in the same processes. The bench's 4 KiB records (4120-byte spans) sweep the distances in steps of 2000 bytes and its 64 B records in steps of 56, so its batches hit the slow band about once in 85 or 73: it moves these rows little.",
  "- Won (small): overlapped requests reuse an OVERLAPPED once the kernel is done with it (its completion taken, or completed or failed at once), instead of a new one per request. Found with a raw-FFI probe in one process (PEND bursts of 64, 10-burst blocks alternating, medians): a fresh 32-byte OVERLAPPED per request (new Uint8Array + its address) made the issue phase 0.6-0.8 ms slower per burst than reused ones; the library's burst rate against raw FFI went 0.83 / 0.83 / 0.83 without reuse to 0.98 / 0.88 / 0.85 with it (three alternating process pairs). Bench rows, `--only` runs of 3 rounds alternating without / with: PEND 64 0.80, 0.84 / 0.85, 0.85; PEND 8 0.86, 0.88 / 0.94, 0.87; ECHO 64 deep 1.02, 1.11 / 1.10, 1.14. That afternoon the wineserver answered ~3x faster than in the morning (C PEND 64 at 7-8 k/s against 2.5 k/s), so what the library adds per request weighs more: a CPU profile of the library's bursts still puts 81 % of the time in DeviceIoControl itself and 9 % in GetQueuedCompletionStatusEx.",
  "- Checked: output buffers small enough to live on the V8 heap (8-byte Uint8Arrays) passed to 16 pending requests, with young-generation churn (a forced GC each round) before their completion, 50 rounds: 0 of 800 outputs wrong (Deno moves a buffer's bytes off the heap when it passes its pointer); tests/wine/overlapped.test.ts keeps a check of it.",
  "",
  "### Changes of 2026-12-02 (third session), AMD EPYC, 2 CPUs: before / after, same machine",
  "",
  "- Won: `readInto` (`copyRecords`) copies the stretch it may take with one `set()`, then checks the records in the copy (one read of the ring's bytes instead of a walk of the ring and then its copy; what the caller gets is what was checked), and every walk checks the first record with every rule, then the rest with one bound (the stretch within the published bytes and the ring). `--only` runs (3-7 rounds, the new method below): readInto 64 B 0.58-0.60 before, 0.72-0.77 after; 4 KiB 0.80 before, 1.03 after. Linux probe, hot 1 MiB ring of 64 B records: copyRecords 6.3 -> 5.3 ns per record (`set()` alone 1.6), scan with a sequence read 14.2 -> 12.5.",
  "- Method: the pre-filled readers run 3 untimed cycles and report the median of 5 timed ones (C too), instead of 1 untimed cycle and the sum of 2: a Deno-only probe under Wine read 16, 37, then 91 M msg/s in its first three cycles (the JIT compiling), so a timed cycle still paid for compilation. The same probe's steady rate differed 51-86 M msg/s from process to process (memory placement), so these ratios keep a wide spread. The readInto consumer walks its batch with a Uint32Array (the target is on the 8-byte grid) instead of a DataView.",
  "- Port: with nothing left in flight, a request completed at once settles in the same look (one GetQueuedCompletionStatusEx less per PEND burst); in-process A/B of the collect phase 4.8-5.6 ms vs 5.0-6.3 ms per burst of 64 (noise level).",
  "- Won: under Wine each check of the port's poll waits up to 2 ms on the port (GetQueuedCompletionStatusEx with a timeout) instead of looking without waiting. Found: Wine copies a pended request's output into the process by an APC to the thread that issued it (the event-loop thread), which a thread waiting on the port takes at once and a running thread late. Raw-FFI probe on the inverted channel (8 pending, 1 kHz), p50 from the driver's timestamp to the packet taken: blocked on the port 155-160 µs (C 153 µs), polling without waiting 418-433 µs, spinning on the OVERLAPPEDs' status word (no call) 433 µs (the status changed at ~270-317 µs). The library's inverted latency p50 Deno / C: 3.0 before (b28d7b0 too, so not a regression of this session); with 1 ms waits 1.34, 1.73 and 1.52 (3-round runs); with 2 ms waits 1.32 (3-round `--only` run, C 119 µs, Deno 154 µs). Waits of 1 ms ended just before the next message of the 1 kHz stream: library probe p50 205-237 µs with 1 ms, 165-191 with 4 ms, 143-171 with 2 ms (C 148). PEND 64 0.90-1.05 across these runs. On Windows the checks keep a zero timeout: a wait that short lasts a clock tick there, and completions do not wait for the thread.",
  "- Found: Wine's IPC on this machine varied by 3x within the session (sync ECHO 64 B, C: 497 µs in one run, 97-363 µs in others), so absolute figures of different runs do not compare. PEND 64 by phase, in-process: C issues 64 PENDs in 7.4-8.1 ms, Deno in 9.0-9.9 ms, the library no slower than raw FFI. Looking at the port only once an OVERLAPPED's status changed (`HasOverlappedIoCompleted`) cut a probe's GetQueuedCompletionStatusEx calls from 4.2 to 1.0 per message without moving the library's latency (554 vs 558 µs), so it was not kept.",
  "",
  "### Changes of 2026-12-02 (second session), AMD EPYC, 2 CPUs: before / after, same machine",
  "",
  "- Won: the poll checks in 0.5 ms slices between macrotasks (`SwitchToThread` before each check) instead of a macrotask per check, and its window is 4x the smoothed gap up to 4 ms instead of 2x up to 2 ms. Under Wine an event-loop turn now and then stalls for 0.4-0.8 ms: with a turn per check 6 % of a 1 kHz stream's messages came that late; and the stream's jitter ended a 2x / 2 ms window about once in a hundred messages, so its p99 was a sleeping consumer's. Section latency, `--only` runs of 5 rounds: p50 0.80 -> 0.27, p99 2.72 -> 0.54 (3,000 messages a round from now on: a p99 over 900 samples moved 2-4x between rounds).",
  "- Won: after settling completions the port looks again after a macrotask, not after one microtask: the look (a wineserver round trip) ran amid the consumers' promise chains, and the inverted consumer saw its message ~70 µs after the completion was taken. Inverted p50 1.67 -> 1.31 with the slices.",
  "- Won: overlapped handles skip the port for requests completed at once (`FILE_SKIP_COMPLETION_PORT_ON_SUCCESS`; Wine's rule in server/async.c, as Windows': no packet for a request completed at once, warnings included). Raw FFI, ECHO 64 B: 199 µs per request with its packet, 157 without, sync handle 172. Fuzzer on the reference driver 2.0-2.3 -> 2.7 k/s in-process; the bench row 0.53 -> 0.62.",
  "- Found: the known-hang fuzz run was slow because of the pointer oracle, not the port: its test of whether an input held a value scanned every input once per candidate value, seconds per 64 KiB XOR output; with one pass over the inputs the known-hang test went from 146 vs 801 to 1,732 vs 1,819 requests/s.",
  "- Lost or no change: waking the port's outstanding wait with a posted packet when a request is issued while one is held (A/B with a held request: no difference); a macrotask per check on the port instead of slices (PEND 64 0.77 / 0.76 vs 0.88 / 0.70, inverted p50 1.22 / 1.13 vs 1.27 / 0.97: within the noise, so one poll for both). Not met on this machine today: PEND 64 (0.76; per burst Deno spends 8.8 ms issuing 64 PENDs, 138 µs per DeviceIoControl, 3.6 ms in the RELEASE and 2.3 ms collecting), `readInto` 64 B (0.39; the C reader ran at 46 M msg/s today against 68 M yesterday on the same type of machine), sync ECHO 64 B 1.24 (the overlapped-handle variant 1.05).",
  "",
  "### Wake-ups and copies: what won, what lost (2026-12-02, AMD EPYC, 2 loaded CPUs)",
  "",
  "- Won: the ring channels poll the ring on the event-loop thread for a bounded window after " +
  "messages came close together (twice the smoothed gap between arrivals, at most `pollMs`, " +
  "default 2 ms; none while the smoothed gap is longer), yielding a macrotask (`setImmediate`) " +
  "and the processor (`SwitchToThread`) between checks. Section latency p50, same run: " +
  "Deno / C 6.7 without the poll, 0.63 with it (C 41 µs, Deno 27 µs, CPU 12 % -> 49 % of a " +
  "core while messages come every ~1.3 ms). `SwitchToThread` mattered: without it the poll's " +
  "p50 was 60-90 µs on the loaded machine (the producer waited for the poll's time slice), " +
  "with it 8-24 µs.",
  "- Lost: yield primitives, per yield under Wine: `setTimeout(0)` 2.2 ms (clamped), " +
  "MessageChannel 2.6-4.9 µs (and its port keeps the process alive), `setImmediate` " +
  "1.9-5.5 µs (kept). A window of exactly twice the last gap, off after one gap above the cap: " +
  "p50 161 µs (one late message ended the poll); smoothing the gap (1/4 weight, gaps clipped " +
  "at twice the cap) fixed it.",
  "- Won: the completion port is first looked at a microtask after a request is issued, not " +
  "inside the issuing call: the old design armed a nonblocking GetQueuedCompletionStatusEx " +
  "at the first request of a burst, so each burst paid a worker-thread wake-up that competed " +
  "with the requests still being issued. In-process PEND 1 / 8 / 64: 0.77 / 2.6 / 6.1 k/s " +
  "before, 3.7 / 7.4 / 9.4 k/s after, with no nonblocking wait left in a burst (each burst's " +
  "65 completions came in 2 looks at the port, 64 + 1).",
  "- Won: the same adaptive poll on the port (timeout-0 GetQueuedCompletionStatusEx between " +
  "macrotasks): inverted latency p50 Deno / C 3.09 and 3.13 before, 1.31 and 1.57 after " +
  "(alternating processes, 5 rounds each).",
  "- Lost: native copies for readInto through FFI: Wine's ntdll RtlMoveMemory 1.2-1.8 GB/s, " +
  "msvcrt memmove 6.3-8.7 GB/s, against 12-17 GB/s for one TypedArray `set()` per contiguous " +
  "run (kept). Word-indexed record checks instead of DataView: +20 % at 64 B. The one walk " +
  "shared by drain, copyRecords and scan: readInto 64 B 0.89-0.98 of the three loops by " +
  "round (medians 72.6 -> 78.1 M msg/s), batches 1.15-1.30, drain 0.94 (in-process, 30 rounds). " +
  "A 256 KiB destination (fits the L2) copied 4 KiB records at 14-17 GB/s against 9-12 GB/s " +
  "into 1 MiB in a Deno-only probe, but the alternating bench runs of 2026-12-01 saw no gain, " +
  "so the bench keeps its 1 MiB buffer.",
  "",
  "### Overlapped completion designs (PEND, N pending at once)",
  "",
  "(a) the library: one IOCP per process drained by one nonblocking GetQueuedCompletionStatusEx; " +
  "(b) an event per request and a nonblocking WaitForSingleObject each (a worker thread " +
  "blocked per request), then GetOverlappedResult. Threads: the process's count with the " +
  `requests pending (the Deno process had ${baseThreads} at start).`,
  "",
  table(
    [
      "in flight",
      "C, IOCP",
      "C threads",
      "Deno (a) IOCP",
      "(a) threads",
      "Deno (b) event per request",
      "(b) threads",
    ],
    designs.map(({ depth, c, iocp, events }) => [
      String(depth),
      formatSummary(c.requestsPerSecond, perSecond),
      String(c.threads),
      formatSummary(iocp.requestsPerSecond, perSecond),
      String(iocp.threads),
      formatSummary(events.requestsPerSecond, perSecond),
      String(events.threads),
    ]),
  ),
  "",
  "### Clock",
  "",
  `QueryPerformanceFrequency ${clock.frequency} Hz (C client: ${clock.clientFrequency} Hz). ` +
  `Injected messages' KeQueryPerformanceCounter timestamps lay between this process's ` +
  `QueryPerformanceCounter readings before and after the INJECT call: ${clock.bracketed}; ` +
  `driver ticks / process ticks over 200 ms: ${clock.rate.toFixed(4)}. Latency is consumer ` +
  "QueryPerformanceCounter at wake-up minus the record's timestamp; the producer writes one " +
  `${LATENCY_BYTES} B message every ${LATENCY_INTERVAL_US} µs.`,
  "",
  ...(micro.length === 0 ? [] : [
    "### Linux microbenchmarks (deno bench)",
    "",
    table(
      ["group", "benchmark", "avg", "p75"],
      micro.map((m) => [
        m.group ?? "",
        m.name,
        `${m.avgNs.toFixed(1)} ns`,
        `${m.p75Ns.toFixed(1)} ns`,
      ]),
    ),
    "",
  ]),
].join("\n");

const report: MachineReport = {
  date: startedAt.toISOString(),
  machine: { cpu: options.cpu, wine: options.wine, deno },
  rounds: ROUNDS,
  scale: SCALE,
  clock,
  baseThreads,
  rows: reportRows,
  designs,
  micro,
  markdown,
  runs: results,
};

console.log(markdown);
// Each machine keeps its latest run: this one replaces only its own CPU model's.
const previous: ResultsFile = JSON.parse(await Deno.readTextFile(resultsUrl));
const merged = mergeRun(previous, report);
await Deno.writeTextFile(new URL("./results.md", import.meta.url), renderResults(merged));
await Deno.writeTextFile(resultsUrl, JSON.stringify(merged, null, 2) + "\n");
