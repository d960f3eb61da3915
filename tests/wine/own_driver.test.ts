// A driver of one's own — the kit's sample (driver/sample, service kbsample: device type
// 0x9000, its own names and record layout) — through the PUBLIC API only (mod.ts): the
// classic pattern's refusal, its named event and section, its pended WAIT_NEXT as a
// stream, subscribe with its own protocol value, and the reference driver streaming
// at the same time.
import assert from "node:assert/strict";
import {
  bytes,
  type ChannelProtocol,
  ChannelUnavailableError,
  createEvent,
  ctlCode,
  type Device,
  kitProtocol,
  KitSectionInfo,
  KitSectionRequest,
  openDevice,
  openEvent,
  openSharedMemory,
  queryDriver,
  startDriver,
  struct,
  subscribe,
  wchar,
  Win32Error,
} from "../../mod.ts";

const code = (fn: number, access: "ANY" | "WRITE") =>
  ctlCode({ deviceType: 0x9000, function: fn, method: "BUFFERED", access });
const SET_EVENT = code(0x900, "WRITE");
const GET_SHARE_ADD = code(0x901, "WRITE");
const START = code(0x902, "WRITE");
const STOP = code(0x903, "WRITE");
const WAIT_NEXT = code(0x904, "ANY");
const RING_OPEN = code(0x910, "WRITE");
const RING_CLOSE = code(0x911, "WRITE");
const RING_WAIT = code(0x912, "ANY");
const Tick = struct({
  magic: "u32",
  counter: "u32",
  time: "u64",
  value: "u32",
  reserved: "u32",
  text: wchar(16),
  reserved2: bytes(8),
});
const SetEventRequest = struct({ eventHandle: "u64" });
const ShareInfo = struct({ userAddress: "u64", size: "u32", reserved: "u32" });
const StartRequest = struct({ intervalMs: "u32", count: "u32" });
const MAGIC = 0x4c50_4d53;
const sampleProtocol = kitProtocol({
  name: "kbsample",
  sectionOpen: RING_OPEN,
  sectionClose: RING_CLOSE,
  invertedWait: RING_WAIT,
  maxMessage: Tick.size,
});
/** The reference driver's section and inverted channels, described with the public API alone:
 * it is a kit driver (names per open, in the reply); its privileged codes need read/write access. */
const referenceCode = (fn: number, access: "ANY" | "READ_WRITE" = "ANY") =>
  ctlCode({ deviceType: 0x8022, function: fn, method: "BUFFERED", access });
const referenceSection: ChannelProtocol = kitProtocol({
  name: "kbridge reference (public API)",
  sectionOpen: referenceCode(0x830, "READ_WRITE"),
  sectionClose: referenceCode(0x831),
  invertedWait: referenceCode(0x832),
  maxMessage: 4096,
});
const ERROR_NOT_SUPPORTED = 50;
const STATUS_NOT_SUPPORTED = 0xc000_00bb;

function openSample(options: { overlapped?: boolean } = {}): Device {
  if (queryDriver("kbsample")?.state !== "running") startDriver("kbsample");
  return openDevice("\\\\.\\KbSample", options);
}

function openReference(): Device {
  if (queryDriver("kbridge")?.state !== "running") startDriver("kbridge");
  return openDevice("\\\\.\\Kbridge");
}

function checkTick(tick: ReturnType<typeof Tick.decode>): void {
  assert.equal(tick.magic, MAGIC);
  assert.equal(tick.value, tick.counter * 3);
  assert.equal(tick.text, `tick ${tick.counter}`);
}

Deno.test("own driver (a): the classic SET_EVENT is refused with a clear typed error", async () => {
  await using device = openSample();
  using event = createEvent();
  assert.throws(
    () => device.ioctl(SET_EVENT, SetEventRequest.encode({ eventHandle: event })),
    (error: unknown) => {
      assert.ok(error instanceof Win32Error);
      assert.equal(error.code, ERROR_NOT_SUPPORTED);
      assert.equal(error.ntStatus, STATUS_NOT_SUPPORTED);
      assert.equal(error.controlCode?.deviceType, 0x9000);
      assert.match(error.message, /ERROR_NOT_SUPPORTED \(50\)/);
      return true;
    },
  );
  // Without an event set, the share is refused too, and nothing was mapped into us.
  assert.throws(() => device.ioctl(GET_SHARE_ADD, null, ShareInfo.size), Win32Error);
});

Deno.test("own driver (b): its named event and section with its own layout; the event loop keeps ticking", async () => {
  await using device = openSample();
  using tick = openEvent("Global\\KbSampleTick");
  using shared = openSharedMemory("Global\\KbSampleShared");
  assert.equal(shared.size, 4096);
  tick.reset(); // the last tick of an earlier run may have left it signalled
  let timerTicks = 0;
  const timer = setInterval(() => timerTicks++, 5);
  const counters: number[] = [];
  try {
    device.ioctl(START, StartRequest.encode({ intervalMs: 20, count: 10 }));
    while (counters.length < 10 && await tick.wait({ timeoutMs: 2000 })) {
      const record = Tick.decode(shared.bytes);
      checkTick(record);
      counters.push(record.counter);
    }
  } finally {
    clearInterval(timer);
    device.ioctl(STOP);
  }
  assert.ok(counters.length >= 5, `saw ${counters.length} ticks`);
  for (let i = 1; i < counters.length; i++) {
    assert.ok(counters[i] > counters[i - 1], `counters increase: ${counters}`);
  }
  assert.ok(timerTicks >= 10, `setInterval ran ${timerTicks} times during the waits`);
});

Deno.test("own driver (c): device.stream(WAIT_NEXT) yields the ticks in order", async () => {
  await using device = openSample();
  // WAIT_NEXT completes every pending request with the same tick: keep one pending.
  await using ticks = device.stream(WAIT_NEXT, { outputSize: Tick.size, pending: 1 });
  device.ioctl(START, StartRequest.encode({ intervalMs: 10, count: 30 }));
  const counters: number[] = [];
  for await (const output of ticks) {
    const record = Tick.decode(output);
    checkTick(record);
    counters.push(record.counter);
    if (record.counter === 30) break;
  }
  assert.equal(ticks.closed, true);
  for (let i = 1; i < counters.length; i++) assert.ok(counters[i] > counters[i - 1], `${counters}`);
  assert.ok(counters.length >= 20, `${counters.length} of 30 ticks: ${counters}`);
});

Deno.test("own driver (d): subscribe with its own protocol value: section and inverted, unique names", async () => {
  // Each open of the kit's section gets its own unpredictable names.
  await using probe = openSample();
  const names = new Set<string>();
  for (let i = 0; i < 2; i++) {
    const info = KitSectionInfo.decode(
      probe.ioctl(RING_OPEN, KitSectionRequest.encode({ ringBytes: 4096 }), KitSectionInfo.size),
    );
    assert.match(info.sectionName, /^Global\\KbSampleRing-[0-9a-f]{16}-Ring$/i);
    names.add(info.sectionName);
    probe.ioctl(RING_CLOSE);
  }
  assert.equal(names.size, 2);

  await using sectionDevice = openSample();
  await using invertedDevice = openSample();
  await using section = subscribe(sectionDevice, { protocol: sampleProtocol, ringBytes: 4096 });
  await using inverted = subscribe(invertedDevice, {
    protocol: sampleProtocol,
    channel: "inverted",
    pending: 4,
  });
  assert.equal(section.channel, "section", "auto: the sample has no classic channel");
  assert.equal(inverted.channel, "inverted");
  sectionDevice.ioctl(START, StartRequest.encode({ intervalMs: 5, count: 20 }));
  for (const subscription of [section, inverted]) {
    let last = 0;
    for await (const message of subscription) {
      assert.equal(message.data.length, Tick.size);
      const record = Tick.decode(message.data);
      checkTick(record);
      assert.ok(record.counter > last);
      last = record.counter;
      if (last === 20) break;
    }
  }
});

Deno.test("own driver (d): auto falls back on an unknown control code; a squatted old name changes nothing", async () => {
  await using device = openSample();
  const wrongSection = kitProtocol({
    name: "kbsample with a wrong section code",
    sectionOpen: code(0x9f0, "WRITE"),
    sectionClose: code(0x9f1, "WRITE"),
    invertedWait: RING_WAIT,
    maxMessage: Tick.size,
  });
  await using fallback = subscribe(device, { protocol: wrongSection, pending: 2 });
  assert.equal(fallback.channel, "inverted");
  assert.throws(
    () => subscribe(device, { protocol: wrongSection, channel: "section" }),
    (error: unknown) => {
      assert.ok(error instanceof ChannelUnavailableError);
      assert.match(error.reason, /does not know the control code/);
      assert.ok(error.cause instanceof Win32Error);
      return true;
    },
  );
  // The reference driver's old fixed section name (protocol 1), taken by an event of ours, no
  // longer disables its section channel: its names are drawn per open.
  await using reference = openReference();
  using _squatter = createEvent({ name: "Global\\KbridgeRing" });
  await using unaffected = subscribe(reference, { protocol: referenceSection, pending: 2 });
  assert.equal(unaffected.channel, "section");
});

Deno.test("own driver (e): the reference driver and the sample stream at the same time", async () => {
  await using sample = openSample();
  await using reference = openReference();
  const PRODUCER_START = referenceCode(0x840, "READ_WRITE");
  const ProducerRequest = struct({
    channels: "u32",
    count: "u32",
    minSize: "u32",
    maxSize: "u32",
    intervalUs: "u32",
    seed: "u32",
    flags: "u32",
  });
  await using fromSample = subscribe(sample, { protocol: sampleProtocol, channel: "section" });
  await using fromReference = subscribe(reference, {
    protocol: referenceSection,
    channel: "section",
    ringBytes: 1 << 16,
  });
  sample.ioctl(START, StartRequest.encode({ intervalMs: 2, count: 100 }));
  reference.ioctl(
    PRODUCER_START,
    ProducerRequest.encode({ channels: 1, count: 2000, minSize: 32, maxSize: 32, intervalUs: 100 }),
  );
  const readSample = (async () => {
    let last = 0;
    for await (const message of fromSample) {
      const record = Tick.decode(message.data);
      checkTick(record);
      assert.ok(record.counter > last);
      last = record.counter;
      if (last === 100) return last;
    }
    return last;
  })();
  const readReference = (async () => {
    let expected = 0;
    for await (const message of fromReference) {
      assert.equal(message.sequence, expected, "the reference ring: in order, no gap");
      assert.equal(message.data.length, 32);
      if (++expected === 2000) return expected;
    }
    return expected;
  })();
  assert.deepEqual(await Promise.all([readSample, readReference]), [100, 2000]);
});
