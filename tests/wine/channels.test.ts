// Kernel → application channels against the reference driver: the named
// section ring, the inverted call, and the classic channel's clean refusal
// under Wine.
import assert from "node:assert/strict";
import {
  ArgumentError,
  ChannelUnavailableError,
  ClosedError,
  type Device,
  KernelEvent,
  NonblockingCallError,
  processResources,
  RecordHeader,
  subscribe,
  type Subscription,
  Win32Error,
} from "../../mod.ts";
import {
  Channel,
  InjectHeader,
  IOCTL,
  patternByte,
  ProducerRequest,
  Protocol,
  referenceProtocol,
} from "../../src/reference/mod.ts";
import { assertHandlesBack, openKbridge, readStats } from "./_driver.ts";
import { workerReplies } from "../_util.ts";

function startProducer(
  device: Device,
  request: {
    channels: number;
    count: number;
    minSize: number;
    maxSize: number;
    seed: number;
    intervalUs?: number;
  },
  flags = 0,
): void {
  device.ioctl(IOCTL.PRODUCER_START, ProducerRequest.encode({ intervalUs: 0, flags, ...request }));
}

/** Reads `count` messages, checking order, gaps and every payload byte. */
async function receiveAll(
  subscription: Subscription,
  count: number,
  seed: number,
): Promise<{ bytes: number }> {
  let expected = 0;
  let bytes = 0;
  while (expected < count) {
    const got = await subscription.drain((data, sequence) => {
      assert.equal(sequence, expected, "in order, no gap, no duplicate");
      const messageSeed = (seed ^ sequence) >>> 0;
      for (let i = 0; i < data.length; i++) {
        if (data[i] !== patternByte(messageSeed, i)) assert.fail(`message ${sequence} byte ${i}`);
      }
      bytes += data.length;
      expected++;
    }, { timeoutMs: 10_000 });
    assert.ok(got > 0, `stalled after ${expected} messages`);
  }
  return { bytes };
}

Deno.test("auto subscribes to the section channel under Wine (classic is unavailable)", async () => {
  await using device = openKbridge();
  await using subscription = subscribe(device, {
    protocol: referenceProtocol,
    channel: "auto",
    ringBytes: 1 << 16,
  });
  assert.equal(subscription.channel, "section");
});

Deno.test("classic: a typed 'unavailable on this host' error, and nothing left allocated", async () => {
  await using device = openKbridge();
  const before = readStats(device);
  assert.throws(
    () => subscribe(device, { protocol: referenceProtocol, channel: "classic" }),
    (error: unknown) => {
      assert.ok(error instanceof ChannelUnavailableError);
      assert.equal(error.channel, "classic");
      assert.match(error.message, /unavailable/);
      return true;
    },
  );
  const after = readStats(device);
  assert.equal(after.poolAllocations, before.poolAllocations);
  assert.equal(after.classicMappings, 0);
  assert.equal(after.eventReferences, 0);
});

Deno.test("section ring: 1,000,000 messages of 1 B .. 4 KiB with wrap-around, all in order, byte-exact", async () => {
  await using device = openKbridge();
  await using subscription = subscribe(device, {
    protocol: referenceProtocol,
    channel: "section",
    ringBytes: 1 << 20,
  });
  const count = 1_000_000;
  startProducer(device, {
    channels: Channel.SECTION,
    count,
    minSize: 1,
    maxSize: 4096,
    seed: 0x5eed,
  }, Protocol.PRODUCER_WAIT_FOR_SPACE);
  const { bytes } = await receiveAll(subscription, count, 0x5eed);
  assert.ok(bytes > 1 << 20, "wrapped around the 1 MiB ring many times");
  assert.equal(subscription.dropped, 0);
});

Deno.test("section ring: a full ring counts drops exactly and the reader reports them", async () => {
  await using device = openKbridge();
  await using subscription = subscribe(device, {
    protocol: referenceProtocol,
    channel: "section",
    ringBytes: 4096,
  });
  const count = 200;
  startProducer(device, { channels: Channel.SECTION, count, minSize: 100, maxSize: 100, seed: 1 });
  for (let i = 0; i < 200 && readStats(device).producerRunning; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  const sequences: number[] = [];
  await subscription.drain((_, sequence) => sequences.push(sequence), { timeoutMs: 1000 });
  assert.ok(subscription.dropped > 0);
  assert.equal(sequences.length + subscription.dropped, count);
  assert.deepEqual(
    sequences,
    [...Array(sequences.length).keys()],
    "the first messages fill the ring",
  );
});

Deno.test("section ring: a subscription closed inside its drain callback ends the drain cleanly", async () => {
  await using device = openKbridge();
  const subscription = subscribe(device, {
    protocol: referenceProtocol,
    channel: "section",
    ringBytes: 4096,
  });
  startProducer(device, { channels: Channel.SECTION, count: 20, minSize: 8, maxSize: 8, seed: 3 });
  for (let i = 0; i < 200 && readStats(device).producerRunning; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  const sequences: number[] = [];
  const drained = await subscription.drain((_, sequence) => {
    sequences.push(sequence);
    if (sequence === 4) void subscription.close(); // unmaps the ring before the next record
  }, { timeoutMs: 1000 });
  assert.equal(drained, 5);
  assert.deepEqual(sequences, [0, 1, 2, 3, 4]);
  assert.equal(await subscription.drain(() => assert.fail("a message after close")), 0);
});

for (const pending of [1, 8, 64]) {
  Deno.test(`inverted call: 10,000 messages with ${pending} pending IOCTLs`, async () => {
    await using device = openKbridge();
    await using subscription = subscribe(device, {
      protocol: referenceProtocol,
      channel: "inverted",
      pending,
    });
    startProducer(device, {
      channels: Channel.INVERTED,
      count: 10_000,
      minSize: 1,
      maxSize: 512,
      seed: pending,
    }, 1);
    await receiveAll(subscription, 10_000, pending);
  });
}

Deno.test("inverted call: injected messages arrive; CancelIoEx at close leaves the driver's queue empty", async () => {
  const device = openKbridge();
  const subscription = subscribe(device, {
    protocol: referenceProtocol,
    channel: "inverted",
    pending: 8,
  });
  const payload = new TextEncoder().encode("injected");
  const header = InjectHeader.encode({ channels: Channel.INVERTED, length: payload.length });
  const input = new Uint8Array(header.length + payload.length);
  input.set(header);
  input.set(payload, header.length);
  device.ioctl(IOCTL.INJECT, input);
  const [message] = await subscription.readMany(1, { timeoutMs: 5000 });
  assert.equal(new TextDecoder().decode(message.data), "injected");
  await subscription.close();
  using observer = openKbridge();
  assert.equal(readStats(observer).invertedIrps, 0);
  device.close();
  assert.equal(readStats(observer).invertedIrps, 0);
});

Deno.test("subscribe/read/close 1,000 times: handles and driver allocations back to their start", async () => {
  await using device = openKbridge();
  device.ioctl(IOCTL.PRODUCER_STOP);
  // One cycle of each channel first: the first named-object call makes kernel32 open (and keep)
  // a handle to \BaseNamedObjects, which is not a leak.
  for (const channel of ["section", "inverted"] as const) {
    await subscribe(device, { protocol: referenceProtocol, channel, ringBytes: 4096, pending: 2 })
      .close();
  }
  const statsBefore = readStats(device);
  const before = processResources();
  for (let i = 0; i < 1000; i++) {
    const channel = i % 2 === 0 ? "section" : "inverted";
    await using subscription = subscribe(device, {
      protocol: referenceProtocol,
      channel,
      ringBytes: 4096,
      pending: 2,
    });
    const payload = new Uint8Array([i & 0xff]);
    const header = InjectHeader.encode({
      channels: channel === "section" ? Channel.SECTION : Channel.INVERTED,
      length: 1,
    });
    device.ioctl(IOCTL.INJECT, new Uint8Array([...header, ...payload]));
    const [message] = await subscription.readMany(1, { timeoutMs: 5000 });
    assert.equal(message?.data[0], i & 0xff);
  }
  const statsAfter = readStats(device);
  assert.equal(statsAfter.poolAllocations, statsBefore.poolAllocations);
  assert.equal(statsAfter.sections, 0);
  assert.equal(statsAfter.invertedIrps, 0);
  assert.equal(statsAfter.invertedQueued, 0);
  assertHandlesBack(before);
});

for (const channel of ["section", "inverted"] as const) {
  Deno.test(`readInto on the ${channel} channel: 20,000 records in order, byte-exact`, async () => {
    await using device = openKbridge();
    await using subscription = subscribe(device, {
      protocol: referenceProtocol,
      channel,
      ringBytes: 1 << 16,
      pending: 16,
    });
    const count = 20_000;
    startProducer(
      device,
      {
        channels: channel === "section" ? Channel.SECTION : Channel.INVERTED,
        count,
        minSize: 1,
        maxSize: 300,
        seed: 77,
      },
      Protocol.PRODUCER_WAIT_FOR_SPACE,
    );
    const batch = new Uint8Array(1 << 16);
    const view = new DataView(batch.buffer);
    let expected = 0;
    while (expected < count) {
      const bytes = await subscription.readInto(batch, { timeoutMs: 10_000 });
      assert.ok(bytes > 0, `stalled after ${expected}`);
      for (let at = 0; at < bytes;) {
        const length = view.getUint32(at, true);
        assert.equal(Number(view.getBigUint64(at + RecordHeader.offsets.sequence, true)), expected);
        const seed = (77 ^ expected) >>> 0;
        for (let i = 0; i < length; i++) {
          if (batch[at + RecordHeader.size + i] !== patternByte(seed, i)) {
            assert.fail(`record ${expected} byte ${i}`);
          }
        }
        at += (RecordHeader.size + length + 7) & ~7;
        expected++;
      }
    }
    await assert.rejects(subscription.readInto(new Uint8Array(100)), ArgumentError);
    await assert.rejects(subscription.readInto(batch.subarray(4)), /8-byte boundary/);
  });
}

Deno.test("drainSync in a Worker reads the section ring in order; the inverted channel refuses it", async () => {
  await using device = openKbridge();
  const worker = new Worker(new URL("./clients/sync_reader.ts", import.meta.url), {
    type: "module",
  });
  try {
    const next = workerReplies<{ ready?: boolean; received?: number; errors?: number }>(worker);
    worker.postMessage({ count: 5000, seed: 11 });
    assert.deepEqual(await next(), { ready: true });
    startProducer(
      device,
      { channels: Channel.SECTION, count: 5000, minSize: 1, maxSize: 200, seed: 11 },
      Protocol.PRODUCER_WAIT_FOR_SPACE,
    );
    assert.deepEqual(await next(), { received: 5000, errors: 0 });
  } finally {
    worker.terminate();
  }
  await using inverted = subscribe(device, {
    protocol: referenceProtocol,
    channel: "inverted",
    pending: 1,
  });
  assert.throws(() => inverted.drainSync(() => {}), ChannelUnavailableError);
});

Deno.test("leaving a for await loop closes the subscription", async () => {
  await using device = openKbridge();
  startProducer(device, {
    channels: Channel.SECTION,
    count: 0,
    minSize: 8,
    maxSize: 8,
    seed: 9,
    intervalUs: 100,
  });
  const subscription = subscribe(device, {
    protocol: referenceProtocol,
    channel: "section",
    ringBytes: 4096,
  });
  let seen = 0;
  for await (const message of subscription) {
    assert.equal(message.data.length, 8);
    if (++seen === 3) break;
  }
  device.ioctl(IOCTL.PRODUCER_STOP);
  assert.equal(readStats(device).sections, 0);
  await using again = subscribe(device, {
    protocol: referenceProtocol,
    channel: "section",
    ringBytes: 4096,
  });
  assert.equal(again.channel, "section");
});

/** Whether `handle` is an open handle of this process (`GetHandleInformation`). */
function handleIsOpen(handle: Deno.PointerValue): boolean {
  const kernel32 = Deno.dlopen("kernel32.dll", {
    GetHandleInformation: { parameters: ["pointer", "buffer"], result: "i32" },
  });
  try {
    return kernel32.symbols.GetHandleInformation(handle, new Uint32Array(1)) !== 0;
  } finally {
    kernel32.close();
  }
}

Deno.test("closing a device closes its subscriptions first, while its handle is open", async () => {
  const device = openKbridge();
  const handle = device.unsafeHandle;
  const section = subscribe(device, {
    protocol: referenceProtocol,
    channel: "section",
    ringBytes: 4096,
  });
  const inverted = subscribe(device, {
    protocol: referenceProtocol,
    channel: "inverted",
    pending: 2,
  });
  const handleOpenAtClose: boolean[] = [];
  device.addDependent({ close: () => handleOpenAtClose.push(handleIsOpen(handle)) });
  await inverted.close();
  // Closed on its own, it is no dependent any more: the device must not close it again.
  inverted.close = () => {
    throw new Error("closed twice");
  };
  device.close();
  assert.deepEqual(handleOpenAtClose, [true]);
  assert.equal(handleIsOpen(handle), false);
  assert.equal(
    await section.drain(() => assert.fail("a message after close"), { timeoutMs: 0 }),
    0,
  );
  for await (const _ of section) assert.fail("the stream of a closed device ended");
  await section.close();
  assert.throws(() => device.addDependent({ close() {} }), ClosedError);
});

Deno.test("a dependent that throws on close: the handle still closes, the error is rethrown", async () => {
  const device = openKbridge();
  const handle = device.unsafeHandle;
  const subscription = subscribe(device, {
    protocol: referenceProtocol,
    channel: "inverted",
    pending: 2,
  });
  const failure = new Error("dependent failed");
  device.addDependent({
    close() {
      throw failure;
    },
  });
  assert.throws(() => device.close(), (error) => error === failure);
  assert.equal(handleIsOpen(handle), false);
  assert.equal(await subscription.readMany(1, { timeoutMs: 0 }).then((m) => m.length), 0);
  await subscription.close();
});

Deno.test("inverted queue overflow is counted and reported", async () => {
  await using device = openKbridge();
  const before = readStats(device).invertedOverflow;
  const header = InjectHeader.encode({ channels: Channel.INVERTED, length: 1 });
  for (let i = 0; i < Protocol.INVERTED_QUEUE_LIMIT + 10; i++) {
    device.ioctl(IOCTL.INJECT, new Uint8Array([...header, 1]));
  }
  assert.equal(readStats(device).invertedOverflow - before, 10n);
  await using subscription = subscribe(device, {
    protocol: referenceProtocol,
    channel: "inverted",
    pending: 4,
  });
  assert.equal(subscription.dropped, 0, "counted from the subscription's start");
  let drained = 0;
  while (drained < Protocol.INVERTED_QUEUE_LIMIT) {
    drained += await subscription.drain(() => {}, { timeoutMs: 5000 });
  }
  assert.equal(readStats(device).invertedQueued, 0);
});

Deno.test("a failed nonblocking wait names the call and no error code (the worker's stays on the worker)", async () => {
  const ERROR_INVALID_HANDLE = 6;
  const MAIN_THREAD_CODE = 0x1234;
  const k32 = Deno.dlopen("kernel32.dll", {
    SetLastError: { parameters: ["u32"], result: "void" },
  });
  // A handle value no handle table entry has: the wait fails at once with ERROR_INVALID_HANDLE.
  const waiter = new KernelEvent(Deno.UnsafePointer.create(0x00ff_fff0n) as Deno.PointerObject);
  try {
    // What a GetLastError on the main thread would (wrongly) report for the worker's wait.
    k32.symbols.SetLastError(MAIN_THREAD_CODE);
    await assert.rejects(waiter.wait({ timeoutMs: 1000 }), (error: unknown) => {
      assert.ok(error instanceof NonblockingCallError, String(error));
      assert.ok(!(error instanceof Win32Error));
      assert.ok(!("code" in error));
      assert.equal(error.call, "WaitForMultipleObjects");
      assert.equal(error.result, "WAIT_FAILED");
      assert.match(error.message, /WaitForMultipleObjects returned WAIT_FAILED on a worker thread/);
      return true;
    });
    // The blocking wait runs on this thread: its own code is readable and reported.
    assert.throws(
      () => waiter.waitSync(0),
      (error: unknown) => error instanceof Win32Error && error.code === ERROR_INVALID_HANDLE,
    );
  } finally {
    waiter.close();
    k32.close();
  }
});
