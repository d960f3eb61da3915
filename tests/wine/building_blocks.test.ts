// The public kernel → application building blocks against real OS objects and the
// reference driver: KernelEvent, SharedMemory, Device.stream, ringSubscription.
import assert from "node:assert/strict";
import {
  AbortError,
  ArgumentError,
  ClosedError,
  createEvent,
  KbridgeError,
  mapUserAddress,
  openEvent,
  openSharedMemory,
  processResources,
  RecordHeader,
  Ring,
  RingHeader,
  ringSubscription,
  struct,
  subscribe,
  Win32Error,
} from "../../mod.ts";
import {
  Channel,
  IOCTL,
  patternByte,
  ProducerRequest,
  referenceProtocol,
  SectionInfo,
  SectionRequest,
} from "../../src/reference/mod.ts";
import { openKbridge, readStats } from "./_driver.ts";

const ERROR_FILE_NOT_FOUND = 2;
const ERROR_INVALID_FUNCTION = 1;
const ERROR_ALREADY_EXISTS = 183;

function uniqueName(what: string): string {
  return `Local\\kbridge-test-${what}-${Deno.pid}-${crypto.randomUUID()}`;
}

function startProducer(
  device: ReturnType<typeof openKbridge>,
  channels: number,
  count: number,
  size: number,
  seed = 1,
  intervalUs = 0,
): void {
  device.ioctl(
    IOCTL.PRODUCER_START,
    ProducerRequest.encode({ channels, count, minSize: size, maxSize: size, seed, intervalUs }),
  );
}

Deno.test("KernelEvent: wait() lets timers run, wakes on set(), times out, and resets an auto-reset event", async () => {
  using event = createEvent();
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  try {
    const setter = setTimeout(() => event.set(), 150);
    const started = Date.now();
    assert.equal(await event.wait({ timeoutMs: 5000 }), true);
    clearTimeout(setter);
    const took = Date.now() - started;
    assert.ok(took >= 100 && took < 2000, `woke after ${took} ms`);
    assert.ok(ticks >= 5, `the event loop ran during the wait (${ticks} ticks)`);
  } finally {
    clearInterval(timer);
  }
  assert.equal(await event.wait({ timeoutMs: 50 }), false, "auto-reset: the wake-up consumed it");
  assert.equal(event.waitSync(0), false);
  event.set();
  assert.equal(event.waitSync(0), true);
  assert.equal(event.waitSync(0), false);
});

Deno.test("KernelEvent: manual reset and initial state; reset() clears it", async () => {
  using event = createEvent({ manualReset: true, initialState: true });
  assert.equal(event.waitSync(0), true);
  assert.equal(await event.wait({ timeoutMs: 0 }), true, "a manual-reset event stays signalled");
  event.reset();
  assert.equal(event.waitSync(0), false);
  assert.equal(typeof event.handleValue, "bigint");
  assert.ok(event.handleValue > 0n);
});

Deno.test("KernelEvent: close() ends pending waits with ClosedError at once; closed → ClosedError", async () => {
  const event = createEvent();
  const waits = [event.wait(), event.wait({ timeoutMs: 60_000 })];
  await new Promise((resolve) => setTimeout(resolve, 50));
  const started = Date.now();
  event.close();
  for (const wait of waits) await assert.rejects(wait, ClosedError);
  assert.ok(Date.now() - started < 1000, "the waits ended at close");
  event.close(); // idempotent
  assert.equal(event.closed, true);
  assert.throws(() => event.handle, ClosedError);
  assert.throws(() => event.handleValue, ClosedError);
  assert.throws(() => event.set(), ClosedError);
  assert.throws(() => event.reset(), ClosedError);
  assert.throws(() => event.waitSync(0), ClosedError);
  await assert.rejects(event.wait(), ClosedError);
});

Deno.test("KernelEvent: an AbortSignal ends a wait with AbortError; the event keeps working", async () => {
  using event = createEvent();
  const controller = new AbortController();
  const wait = event.wait({ signal: controller.signal });
  setTimeout(() => controller.abort(new Error("enough")), 50);
  await assert.rejects(wait, (error: unknown) => {
    assert.ok(error instanceof AbortError);
    assert.match(error.message, /enough/);
    return true;
  });
  await assert.rejects(event.wait({ signal: AbortSignal.abort() }), AbortError);
  event.set();
  assert.equal(await event.wait({ timeoutMs: 1000 }), true, "the wake-up event was reset");
});

Deno.test("KernelEvent: named events, name collisions and missing names are typed errors", () => {
  const name = uniqueName("event");
  using created = createEvent({ name });
  using opened = openEvent(name);
  assert.equal(opened.name, name);
  opened.set();
  assert.equal(created.waitSync(0), true, "the same event under two handles");
  assert.throws(() => createEvent({ name }), (error: unknown) => {
    assert.ok(error instanceof Win32Error);
    assert.equal(error.code, ERROR_ALREADY_EXISTS);
    return true;
  });
  assert.throws(() => openEvent(uniqueName("missing")), (error: unknown) => {
    assert.ok(error instanceof Win32Error);
    assert.equal(error.code, ERROR_FILE_NOT_FOUND);
    return true;
  });
  for (const bad of ["", "a\0b", 5, null]) {
    // @ts-expect-error: deliberately untyped
    assert.throws(() => openEvent(bad), ArgumentError);
    // @ts-expect-error: deliberately untyped
    assert.throws(() => createEvent({ name: bad }), ArgumentError);
  }
  using event = createEvent();
  for (const timeoutMs of [-1, 1.5, 2 ** 31, NaN]) {
    assert.throws(() => event.waitSync(timeoutMs), ArgumentError);
  }
  // @ts-expect-error: deliberately untyped
  assert.rejects(event.wait({ signal: "no" }), ArgumentError);
});

Deno.test("KernelEvent: a struct u64 field takes the event; 2,000 create/wait/close cycles leak no handle", async () => {
  const SetEvent = struct({ eventHandle: "u64" });
  using event = createEvent();
  assert.equal(
    SetEvent.decode(SetEvent.encode({ eventHandle: event })).eventHandle,
    event.handleValue,
  );
  const warm = createEvent();
  await warm.wait({ timeoutMs: 0 });
  warm.close();
  const before = processResources().handles;
  for (let i = 0; i < 2000; i++) {
    const cycle = createEvent();
    if (i % 4 === 0) await cycle.wait({ timeoutMs: 0 });
    cycle.close();
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  const after = processResources().handles;
  assert.ok(after - before < 20, `handles ${before} → ${after}`);
});

Deno.test("SharedMemory: the reference driver's named section (names from the reply), whole view by default, live both ways", async () => {
  await using device = openKbridge();
  const info = SectionInfo.decode(
    device.ioctl(IOCTL.SECTION_OPEN, SectionRequest.encode({ ringBytes: 4096 }), SectionInfo.size),
  );
  try {
    using whole = openSharedMemory(info.sectionName);
    assert.ok(whole.size >= info.viewBytes && whole.size % 4096 === 0, `size ${whole.size}`);
    const header = RingHeader.decode(whole.bytes);
    assert.equal(header.magic, Ring.MAGIC);
    assert.equal(header.capacity, 4096);
    using sized = openSharedMemory(info.sectionName, { size: info.viewBytes });
    assert.equal(sized.size, info.viewBytes);
    // Two views of one section: a write through one is seen through the other.
    const probeOffset = info.viewBytes - 8;
    sized.bytes[probeOffset] = 0x5a;
    assert.equal(whole.bytes[probeOffset], 0x5a);
    // "read" is copy-on-write: a write changes only that view.
    using readOnly = openSharedMemory(info.sectionName, { access: "read" });
    assert.equal(readOnly.bytes[probeOffset], 0x5a);
    readOnly.bytes[probeOffset] = 0x11;
    assert.equal(whole.bytes[probeOffset], 0x5a, "the section is unchanged");
    sized.bytes[probeOffset] = 0;
    // A user address (as a driver returns one): the same bytes, no unmapping at close.
    const alias = mapUserAddress(whole.address, whole.size);
    assert.equal(alias.bytes[0], whole.bytes[0]);
    alias.close();
    assert.equal(RingHeader.decode(whole.bytes).magic, Ring.MAGIC, "still mapped");
  } finally {
    device.ioctl(IOCTL.SECTION_CLOSE);
  }
  assert.equal(readStats(device).sections, 0);
});

Deno.test("SharedMemory: close() detaches every view made before; closed → ClosedError", async () => {
  await using device = openKbridge();
  const info = SectionInfo.decode(
    device.ioctl(IOCTL.SECTION_OPEN, SectionRequest.encode({ ringBytes: 4096 }), SectionInfo.size),
  );
  try {
    const memory = openSharedMemory(info.sectionName);
    const bytes = memory.bytes;
    const view = new DataView(memory.buffer);
    assert.equal(view.getUint32(0, true), Ring.MAGIC);
    memory.close();
    memory.close(); // idempotent
    assert.equal(memory.closed, true);
    assert.equal(bytes.length, 0, "the old view is detached: it cannot read unmapped memory");
    assert.throws(() => view.getUint32(0, true), TypeError);
    assert.throws(() => memory.bytes, ClosedError);
    assert.throws(() => memory.buffer, ClosedError);
    assert.throws(() => memory.address, ClosedError);
  } finally {
    device.ioctl(IOCTL.SECTION_CLOSE);
  }
});

Deno.test("SharedMemory: bad names, sizes and addresses are typed errors", () => {
  assert.throws(() => openSharedMemory(uniqueName("section")), (error: unknown) => {
    assert.ok(error instanceof Win32Error);
    assert.equal(error.code, ERROR_FILE_NOT_FOUND);
    return true;
  });
  for (const name of ["", "x\0y", 1]) {
    // @ts-expect-error: deliberately untyped
    assert.throws(() => openSharedMemory(name), ArgumentError);
  }
  for (const size of [0, -1, 1.5, 2 ** 41]) {
    assert.throws(() => openSharedMemory("Global\\X", { size }), ArgumentError);
    assert.throws(() => mapUserAddress(0x10000n, size), ArgumentError);
  }
  // @ts-expect-error: deliberately untyped
  assert.throws(() => openSharedMemory("Global\\X", { access: "write" }), ArgumentError);
  for (const address of [0n, -1n, 1n << 64n, null, {}, 5]) {
    // @ts-expect-error: deliberately untyped
    assert.throws(() => mapUserAddress(address, 4096), ArgumentError);
  }
});

Deno.test("ringSubscription: any shared memory laid out as the ring, with its event", async () => {
  await using device = openKbridge();
  const info = SectionInfo.decode(
    device.ioctl(
      IOCTL.SECTION_OPEN,
      SectionRequest.encode({ ringBytes: 1 << 16 }),
      SectionInfo.size,
    ),
  );
  try {
    const memory = openSharedMemory(info.sectionName);
    const event = openEvent(info.eventName);
    const earlyView = memory.bytes;
    await using messages = ringSubscription(memory, event);
    assert.equal(messages.channel, "section");
    startProducer(device, Channel.SECTION, 500, 32, 9, 200);
    let expected = 0;
    for await (const message of messages) {
      assert.equal(message.sequence, expected);
      for (let i = 0; i < message.data.length; i++) {
        assert.equal(message.data[i], patternByte((9 ^ message.sequence) >>> 0, i));
      }
      if (++expected === 500) break;
    }
    assert.equal(messages.closed, true, "leaving the loop closed it");
    assert.equal(memory.closed, true, "it owned the memory");
    assert.equal(event.closed, true, "and the event");
    assert.equal(earlyView.length, 0, "views of the ring are detached");
  } finally {
    device.ioctl(IOCTL.SECTION_CLOSE);
  }
  assert.throws(
    () => ringSubscription(openSharedMemory(info.sectionName), createEvent()),
    Win32Error,
  );
});

Deno.test("ringSubscription: memory that is not a ring is a typed error", async () => {
  await using device = openKbridge();
  const info = SectionInfo.decode(
    device.ioctl(IOCTL.SECTION_OPEN, SectionRequest.encode({ ringBytes: 4096 }), SectionInfo.size),
  );
  try {
    using memory = openSharedMemory(info.sectionName, { access: "read" });
    memory.bytes[0] ^= 0xff; // a private copy-on-write page: the magic is wrong here only
    using event = createEvent();
    assert.throws(() => ringSubscription(memory, event), KbridgeError);
    memory.close();
    assert.throws(() => ringSubscription(memory, event), ClosedError);
  } finally {
    device.ioctl(IOCTL.SECTION_CLOSE);
  }
});

Deno.test("Device.stream: the inverted call for any pended code, kept N deep, cancelled by break", async () => {
  await using device = openKbridge();
  const stream = device.stream(IOCTL.INVERTED_WAIT, {
    outputSize: RecordHeader.size + 4096,
    pending: 4,
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(readStats(device).invertedIrps, 4, "four requests pending at the driver");
  startProducer(device, Channel.INVERTED, 300, 16, 3);
  let expected = 0;
  const kept: Uint8Array[] = [];
  for await (const output of stream) {
    const record = RecordHeader.decode(output);
    assert.equal(Number(record.sequence), expected);
    assert.equal(record.length, 16);
    kept.push(output);
    if (++expected === 300) break;
  }
  assert.equal(stream.closed, true);
  // Every output is the caller's own buffer: the first one still holds message 0.
  assert.equal(Number(RecordHeader.decode(kept[0]).sequence), 0);
  assert.equal(new Set(kept.map((output) => output.buffer)).size, kept.length);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(readStats(device).invertedIrps, 0, "break cancelled every request");
});

Deno.test("Device.stream: abort → AbortError, device.close() ends it, driver errors are typed", async () => {
  const device = openKbridge();
  const controller = new AbortController();
  const aborted = device.stream(IOCTL.INVERTED_WAIT, {
    outputSize: RecordHeader.size + 4096,
    signal: controller.signal,
  });
  setTimeout(() => controller.abort("stop"), 50);
  await assert.rejects(aborted.next(), AbortError);
  assert.equal(aborted.closed, true);

  const unknown = device.stream(0x8022_3ffc, { outputSize: 8 }); // a code the driver lacks
  await assert.rejects(unknown.next(), (error: unknown) => {
    assert.ok(error instanceof Win32Error);
    assert.equal(error.code, ERROR_INVALID_FUNCTION);
    return true;
  });

  const open = device.stream(IOCTL.INVERTED_WAIT, { outputSize: RecordHeader.size + 4096 });
  const next = open.next();
  device.close();
  assert.equal(await next, undefined, "the device closed the stream before its handle");
  assert.equal(open.closed, true);
  assert.throws(
    () => device.stream(IOCTL.INVERTED_WAIT, { outputSize: 64 }),
    ClosedError,
  );
  await device[Symbol.asyncDispose]();
});

Deno.test("Device.stream: bad arguments are ArgumentErrors before any request", async () => {
  await using device = openKbridge();
  const bad: unknown[] = [
    undefined,
    {},
    { outputSize: 0 },
    { outputSize: 1.5 },
    { outputSize: 64, pending: 0 },
    { outputSize: 64, pending: 257 },
    { outputSize: 64, signal: "x" },
    { outputSize: 64, input: "text" },
  ];
  for (const options of bad) {
    // @ts-expect-error: deliberately untyped
    assert.throws(() => device.stream(IOCTL.INVERTED_WAIT, options), ArgumentError);
  }
  assert.throws(() => device.stream(-1, { outputSize: 64 }), ArgumentError);
  await using sync = openKbridge({ overlapped: false });
  assert.throws(() => sync.stream(IOCTL.INVERTED_WAIT, { outputSize: 64 }), ArgumentError);
  assert.equal(readStats(device).invertedIrps, 0);
});

Deno.test("batches(): zero-copy batches valid until the next step; closing the device detaches them", async () => {
  const device = openKbridge();
  const subscription = subscribe(device, {
    protocol: referenceProtocol,
    channel: "section",
    ringBytes: 1 << 16,
  });
  startProducer(device, Channel.SECTION, 200, 24, 5);
  let expected = 0;
  const batches = subscription.batches({ maxMessages: 50 });
  let last;
  while (expected < 200) {
    const step = await batches.next();
    assert.equal(step.done, false);
    const batch = step.value!;
    assert.ok(batch.count > 0 && batch.count <= 50);
    for (let i = 0; i < batch.count; i++) {
      assert.equal(batch.sequence(i), expected++);
      assert.equal(batch.data(i).length, 24);
    }
    last = batch;
  }
  startProducer(device, Channel.SECTION, 10, 24, 6);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const step = await batches.next();
  const held = step.value!;
  const payload = held.data(0);
  const bytes = held.bytes;
  assert.equal(payload.length, 24);
  device.close(); // closes the subscription before the handle
  assert.equal(subscription.closed, true);
  assert.equal(payload.length, 0, "a view of the ring made before reads nothing after close");
  assert.equal(bytes.length, 0);
  assert.equal((await batches.next()).done, true);
  assert.equal(last, held, "one batch object, refilled at each step");
  await device[Symbol.asyncDispose]();
});

Deno.test("a view kept from drain() reads nothing once closing the device closed the subscription", async () => {
  const device = openKbridge();
  const subscription = subscribe(device, {
    protocol: referenceProtocol,
    channel: "section",
    ringBytes: 4096,
  });
  startProducer(device, Channel.SECTION, 1, 64, 1);
  let kept: Uint8Array | undefined;
  await subscription.drain((data) => kept = data, { timeoutMs: 5000 });
  assert.equal(kept?.length, 64);
  await device[Symbol.asyncDispose](); // the subscription first, then the handle
  assert.equal(subscription.closed, true);
  assert.equal(kept.length, 0, "detached before the view was unmapped");
  assert.equal(kept[0], undefined);
});
