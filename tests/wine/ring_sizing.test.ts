// Ring sizing (the reference driver, on the kit's ring writer): a record and
// the pad before it need not fit in one step, so every message whose span is at
// most the capacity is written once the reader catches up, and one that can
// never fit is refused and counted, never waited for.
import assert from "node:assert/strict";
import { type Device, subscribe, type Subscription } from "../../mod.ts";
import {
  Channel,
  InjectHeader,
  IOCTL,
  patternByte,
  ProducerRequest,
  referenceProtocol,
} from "../../src/reference/mod.ts";
import { openKbridge, readStats } from "./_driver.ts";

const WAIT_FOR_SPACE = 1;

/** Writes one message of `size` pattern bytes (seed `seed`, message 0 of its run). */
function produce(device: Device, size: number, seed: number, flags: number): void {
  device.ioctl(
    IOCTL.PRODUCER_START,
    ProducerRequest.encode({
      channels: Channel.SECTION,
      count: 1,
      minSize: size,
      maxSize: size,
      intervalUs: 0,
      seed,
      flags,
    }),
  );
}

/** Injects `size` pattern bytes: the drop-when-full path. */
function inject(device: Device, size: number, seed: number): void {
  const header = InjectHeader.encode({ channels: Channel.SECTION, length: size });
  const input = new Uint8Array(header.length + size);
  input.set(header);
  for (let i = 0; i < size; i++) input[header.length + i] = patternByte(seed, i);
  device.ioctl(IOCTL.INJECT, input);
}

/** Waits until the producer's run is over; fails if it still runs after 3 s. */
async function runEnds(device: Device): Promise<void> {
  const deadline = Date.now() + 3000;
  while (readStats(device).producerRunning !== 0) {
    if (Date.now() > deadline) {
      assert.fail("the producer still runs: it waits for room that never comes");
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Receives the next message and checks its size, sequence and bytes. */
async function receive(
  subscription: Subscription,
  size: number,
  seed: number,
  sequence: number,
): Promise<void> {
  const messages = await subscription.readMany(1, { timeoutMs: 3000 });
  assert.equal(messages.length, 1, `message ${sequence} (${size} bytes) never arrived`);
  const [message] = messages;
  assert.deepEqual([message.sequence, message.data.length], [sequence, size]);
  for (let i = 0; i < size; i++) {
    if (message.data[i] !== patternByte(seed, i)) assert.fail(`message ${sequence} byte ${i}`);
  }
}

const dropModes = [
  { name: "INJECT", write: (d: Device, size: number, seed: number) => inject(d, size, seed) },
  { name: "producer", write: (d: Device, size: number, seed: number) => produce(d, size, seed, 0) },
];
const cases = [[4096, [2000, 2100]], [8192, [4072, 4096]]] as const;

for (const [capacity, [first, second]] of cases) {
  Deno.test(`capacity ${capacity}, ${first} then ${second} B, WAIT_FOR_SPACE: both are written`, async () => {
    await using device = openKbridge();
    await using subscription = subscribe(device, {
      protocol: referenceProtocol,
      channel: "section",
      ringBytes: capacity,
    });
    try {
      for (const [n, size] of [first, second].entries()) {
        produce(device, size, 0x5eed + n, WAIT_FOR_SPACE);
        // The second needs the pad before it read first: the producer waits for the reader.
        await Promise.all([receive(subscription, size, 0x5eed + n, n), runEnds(device)]);
      }
      assert.equal(subscription.dropped, 0);
    } finally {
      device.ioctl(IOCTL.PRODUCER_STOP);
    }
  });

  for (const mode of dropModes) {
    Deno.test(
      `capacity ${capacity}, ${first} then ${second} B, dropping when full (${mode.name}): ` +
        "dropped while the reader has not passed the pad, written after",
      async () => {
        await using device = openKbridge();
        await using subscription = subscribe(device, {
          protocol: referenceProtocol,
          channel: "section",
          ringBytes: capacity,
        });
        try {
          mode.write(device, first, 1);
          await receive(subscription, first, 1, 0);
          const before = readStats(device).ringDropped;
          // Only the pad fits before the end; the record needs the pad's room at offset 0.
          mode.write(device, second, 2);
          await runEnds(device);
          assert.equal(readStats(device).ringDropped - before, 1n);
          assert.equal(await subscription.drain(() => {}, { timeoutMs: 100 }), 0, "only the pad");
          mode.write(device, second, 2);
          await runEnds(device);
          await receive(subscription, second, 2, 2);
          assert.equal(subscription.dropped, 1);
        } finally {
          device.ioctl(IOCTL.PRODUCER_STOP);
        }
      },
    );
  }
}

for (
  const mode of [...dropModes, {
    name: "WAIT_FOR_SPACE",
    write: (d: Device, size: number, seed: number) => produce(d, size, seed, WAIT_FOR_SPACE),
  }]
) {
  Deno.test(`capacity 4096, a 4096 B message, ${mode.name}: refused and counted, never waited for`, async () => {
    await using device = openKbridge();
    await using subscription = subscribe(device, {
      protocol: referenceProtocol,
      channel: "section",
      ringBytes: 4096,
    });
    const before = readStats(device).ringDropped;
    try {
      mode.write(device, 4096, 7);
      await runEnds(device);
      assert.equal(readStats(device).ringDropped - before, 1n);
      // The ring still works: the next message that fits arrives, after the gap.
      mode.write(device, 100, 8);
      await runEnds(device);
      await receive(subscription, 100, 8, 1);
      assert.equal(subscription.dropped, 1);
    } finally {
      device.ioctl(IOCTL.PRODUCER_STOP);
    }
  });
}
