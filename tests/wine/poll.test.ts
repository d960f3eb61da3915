// The adaptive poll (src/io/adaptive_spin.ts) of the ring channels and of the
// completion port against the reference driver: it catches close messages (or
// completions) without sleeping, stops when they stop (an idle subscriber, or a
// request left pending, burns almost no CPU), keeps the event loop running, and
// close() and timeouts still end a wait that is polling.
import assert from "node:assert/strict";
import { ArgumentError, type Device, subscribe, type Subscription } from "../../mod.ts";
import {
  Channel,
  InjectHeader,
  IOCTL,
  patternByte,
  PendRequest,
  PendResult,
  ProducerRequest,
  Protocol,
  referenceProtocol,
  ReleaseRequest,
} from "../../src/reference/mod.ts";
import { openKbridge } from "./_driver.ts";

const { GetCurrentProcess, GetProcessTimes } = Deno.dlopen(
  "kernel32.dll",
  {
    GetCurrentProcess: { parameters: [], result: "pointer" },
    // HANDLE, LPFILETIME creation, exit, kernel, user
    GetProcessTimes: {
      parameters: ["pointer", "buffer", "buffer", "buffer", "buffer"],
      result: "i32",
    },
  } as const,
).symbols;

/** This process's CPU time (all threads, kernel + user), in milliseconds. */
function cpuMs(): number {
  const times = new BigUint64Array(4);
  const [creation, exit, kernel, user] = [0, 1, 2, 3].map((i) => times.subarray(i, i + 1));
  assert.ok(GetProcessTimes(GetCurrentProcess(), creation, exit, kernel, user));
  return Number(times[2] + times[3]) / 1e4;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A lossless producer of `count` messages of 1 .. 512 B, one every `intervalUs`. */
function startProducer(device: Device, count: number, intervalUs: number, seed: number): void {
  device.ioctl(
    IOCTL.PRODUCER_START,
    ProducerRequest.encode({
      channels: Channel.SECTION,
      count,
      minSize: 1,
      maxSize: 512,
      intervalUs,
      seed,
      flags: Protocol.PRODUCER_WAIT_FOR_SPACE,
    }),
  );
}

/** Reads `count` messages with drain from sequence `first`, checking order and every byte. */
async function receiveAll(
  subscription: Subscription,
  count: number,
  seed: number,
  first = 0,
): Promise<void> {
  let expected = first;
  while (expected < first + count) {
    const got = await subscription.drain((data, sequence) => {
      assert.equal(sequence, expected, "in order, no gap, no duplicate");
      const messageSeed = (seed ^ (sequence - first)) >>> 0; // the run's n-th message
      for (let i = 0; i < data.length; i++) {
        if (data[i] !== patternByte(messageSeed, i)) assert.fail(`message ${sequence} byte ${i}`);
      }
      expected++;
    }, { timeoutMs: 10_000 });
    assert.ok(got > 0, `stalled after ${expected} messages`);
  }
}

function inject(device: Device, byte: number): void {
  const header = InjectHeader.encode({ channels: Channel.SECTION, length: 1 });
  device.ioctl(IOCTL.INJECT, new Uint8Array([...header, byte]));
}

Deno.test("ring poll: after a dense stream an idle subscriber burns little CPU and still wakes", async () => {
  await using device = openKbridge();
  await using subscription = subscribe(device, {
    protocol: referenceProtocol,
    channel: "section",
  });
  // Messages every ~millisecond: the poll engages (the gaps are under its 4 ms cap).
  startProducer(device, 300, 1000, 0x5a17);
  await receiveAll(subscription, 300, 0x5a17);
  // Idle with a drain pending: one last poll window, then a sleep on the event.
  let woke = 0;
  const pending = subscription.drain((data) => woke = data[0], { timeoutMs: 5000 });
  const before = cpuMs();
  const started = performance.now();
  await sleep(1000);
  const idleCpu = cpuMs() - before;
  const idleMs = performance.now() - started;
  inject(device, 0x42);
  assert.equal(await pending, 1, "the sleeping drain wakes for the next message");
  assert.equal(woke, 0x42);
  // Polling through the idle second would use most of a core (GetProcessTimes counts
  // in 10 ms steps; idle Deno under Wine takes ~2%).
  assert.ok(idleCpu < idleMs * 0.2, `${idleCpu} ms of CPU over ${idleMs.toFixed(0)} ms idle`);
});

Deno.test("ring poll: a dense stream arrives in order and byte-exact, timers keep running", async () => {
  for (const pollMs of [4, 0]) {
    await using device = openKbridge();
    await using subscription = subscribe(device, {
      protocol: referenceProtocol,
      channel: "section",
      ringBytes: 1 << 16,
      pollMs,
    });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const started = performance.now();
    try {
      startProducer(device, 3000, 200, 0x77 + pollMs);
      await receiveAll(subscription, 3000, 0x77 + pollMs);
    } finally {
      clearInterval(timer);
    }
    const elapsed = performance.now() - started;
    // ~0.6 ticks per ms with the poll, ~0.5 without; a poll that yielded only microtasks
    // starved the interval to ~0.1.
    assert.ok(
      ticks >= elapsed / 5,
      `pollMs ${pollMs}: ${ticks} ticks in ${elapsed.toFixed(0)} ms`,
    );
  }
});

Deno.test("ring poll: close() and a timeout end a wait that is polling", async () => {
  await using device = openKbridge();
  const subscription = subscribe(device, { protocol: referenceProtocol, channel: "section" });
  startProducer(device, 100, 1000, 0x31);
  await receiveAll(subscription, 100, 0x31);
  // No more messages: this wait polls first (the last gaps were short), then sleeps.
  let started = performance.now();
  assert.equal(await subscription.drain(() => assert.fail("no message"), { timeoutMs: 30 }), 0);
  const waited = performance.now() - started;
  assert.ok(waited >= 25 && waited < 1000, `a 30 ms timeout took ${waited.toFixed(1)} ms`);
  // Close right away: polling or sleeping, the wait ends with no message and no error.
  startProducer(device, 50, 1000, 0x32);
  await receiveAll(subscription, 20, 0x32, 100);
  const pending = subscription.drain(() => {}, { timeoutMs: 5000 });
  started = performance.now();
  await subscription.close();
  await pending;
  assert.ok(performance.now() - started < 200, "close ends the wait at once");
  device.ioctl(IOCTL.PRODUCER_STOP);
});

Deno.test("port poll: after a burst of completions a pending request burns little CPU and still completes", async () => {
  await using device = openKbridge();
  const output = new Uint8Array(PendResult.size);
  const released = new Uint8Array(4);
  const releaseAll = ReleaseRequest.encode({ tag: Protocol.RELEASE_ALL, reserved: 0 });
  // Completions every few hundred µs: the port's poll engages.
  for (let i = 0; i < 200; i++) {
    const pended = device.ioctlAsync(
      IOCTL.PEND,
      PendRequest.encode({ tag: i, timeoutMs: 0 }),
      output,
    );
    await device.ioctlAsync(IOCTL.RELEASE, releaseAll, released);
    assert.equal(PendResult.decode(await pended).how, Protocol.PEND_RELEASED);
  }
  const last = device.ioctlAsync(
    IOCTL.PEND,
    PendRequest.encode({ tag: 999, timeoutMs: 0 }),
    output,
  );
  const before = cpuMs();
  const started = performance.now();
  await sleep(1000);
  const idleCpu = cpuMs() - before;
  const idleMs = performance.now() - started;
  device.ioctl(IOCTL.RELEASE, releaseAll, 4);
  assert.deepEqual(PendResult.decode(await last), { tag: 999, how: Protocol.PEND_RELEASED });
  assert.ok(idleCpu < idleMs * 0.2, `${idleCpu} ms of CPU over ${idleMs.toFixed(0)} ms pending`);
});

Deno.test("subscribe checks pollMs", async () => {
  await using device = openKbridge();
  for (const pollMs of [-1, 1.5, 1001, NaN, "2" as unknown as number]) {
    assert.throws(
      () => subscribe(device, { protocol: referenceProtocol, channel: "section", pollMs }),
      ArgumentError,
      String(pollMs),
    );
  }
});
