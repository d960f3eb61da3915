// Protocol 2 of the reference driver: least privilege. Access bits on the codes that map
// memory, allocate, start work or end requests; section names drawn per open; per-file
// ownership of PEND IRPs and producer runs; caps per file and on sizes; the PEND sweep
// timer armed only while a timed PEND waits. Everything against the real driver under Wine.
import assert from "node:assert/strict";
import {
  createEvent,
  type Device,
  openDevice,
  openSharedMemory,
  subscribe,
  Win32Error,
} from "../../mod.ts";
import {
  Channel,
  ClassicInfo,
  ClassicRequest,
  InjectHeader,
  IOCTL,
  PendRequest,
  PendResult,
  ProducerRequest,
  Protocol,
  referenceProtocol,
  ReleaseRequest,
  SectionInfo,
  SectionRequest,
  VersionInfo,
} from "../../src/reference/mod.ts";
import { RecordHeader, Ring, RingHeader } from "../../mod.ts";
import { DEVICE_PATH, ensureDriverRunning, openKbridge, readStats } from "./_driver.ts";

const ERROR_ACCESS_DENIED = 5;
const ERROR_INVALID_PARAMETER = 87;
const ERROR_BUSY = 170;
const ERROR_NO_SYSTEM_RESOURCES = 1450;
const STATUS_INVALID_BUFFER_SIZE = 0xc000_0206;

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, condition: () => boolean): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (condition()) return;
    await delay(10);
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** Asserts that `call` fails with Win32 error `code`. */
function throwsCode(call: () => unknown, code: number, what: string): void {
  assert.throws(call, (error: unknown) => {
    assert.ok(error instanceof Win32Error, `${what}: ${error}`);
    assert.equal(error.code, code, `${what}: ${error.message}`);
    return true;
  });
}

/** Asserts that a request's promise rejects with Win32 error `code`. */
async function rejectsCode(request: Promise<unknown>, code: number, what: string): Promise<void> {
  await assert.rejects(request, (error: unknown) => {
    assert.ok(error instanceof Win32Error, `${what}: ${error}`);
    assert.equal(error.code, code, `${what}: ${error.message}`);
    return true;
  });
}

const producer = (count: number, intervalUs: number, channels = Channel.SECTION) =>
  ProducerRequest.encode({
    channels,
    count,
    minSize: 8,
    maxSize: 8,
    intervalUs,
    seed: 1,
    flags: 0,
  });
const inject = (channels: number, payload: Uint8Array) =>
  new Uint8Array([...InjectHeader.encode({ channels, length: payload.length }), ...payload]);
const release = (tag: number) => ReleaseRequest.encode({ tag, reserved: 0 });
const releasedCount = (output: Uint8Array) =>
  new DataView(output.buffer, output.byteOffset, 4).getUint32(0, true);
const pend = (device: Device, tag: number, timeoutMs = 0) =>
  device.ioctlAsync(IOCTL.PEND, PendRequest.encode({ tag, timeoutMs }), PendResult.size);

Deno.test("a handle without write access is refused the privileged codes and keeps the read-only ones", async () => {
  ensureDriverRunning();
  await using observer = openKbridge();
  await using reader = openDevice(DEVICE_PATH, { access: "read" });
  using event = createEvent();
  const refused: [string, () => unknown][] = [
    ["RELEASE", () => reader.ioctl(IOCTL.RELEASE, release(Protocol.RELEASE_ALL), 4)],
    [
      "SECTION_OPEN",
      () =>
        reader.ioctl(
          IOCTL.SECTION_OPEN,
          SectionRequest.encode({ ringBytes: 4096 }),
          SectionInfo.size,
        ),
    ],
    [
      "CLASSIC_OPEN",
      () =>
        reader.ioctl(
          IOCTL.CLASSIC_OPEN,
          ClassicRequest.encode({ eventHandle: event.handleValue, ringBytes: 4096 }),
          ClassicInfo.size,
        ),
    ],
    ["PRODUCER_START", () => reader.ioctl(IOCTL.PRODUCER_START, producer(1, 0))],
    ["PRODUCER_STOP", () => reader.ioctl(IOCTL.PRODUCER_STOP)],
    ["INJECT", () => reader.ioctl(IOCTL.INJECT, inject(Channel.SECTION, new Uint8Array(4)))],
  ];
  for (const [name, call] of refused) throwsCode(call, ERROR_ACCESS_DENIED, name);
  // Nothing started, nothing mapped.
  const stats = readStats(observer);
  assert.equal(stats.sections, 0);
  assert.equal(stats.producerRunning, 0);
  assert.equal(stats.classicMappings, 0);
  // The read-only codes answer the same handle.
  const version = VersionInfo.decode(reader.ioctl(IOCTL.GET_VERSION, null, VersionInfo.size));
  assert.equal(version.protocolVersion, Protocol.VERSION);
  const data = Uint8Array.from({ length: 100 }, (_, i) => i * 7);
  assert.deepEqual(reader.ioctl(IOCTL.ECHO, data, data.length), data);
  assert.ok(readStats(reader).openFiles >= 2);
  // A read/write handle gets the privileged codes.
  assert.equal(releasedCount(observer.ioctl(IOCTL.RELEASE, release(Protocol.RELEASE_ALL), 4)), 0);
  observer.ioctl(IOCTL.PRODUCER_STOP);
});

Deno.test("two section subscribers get distinct per-open names, and each gets the messages", async () => {
  await using first = openKbridge();
  await using second = openKbridge();
  const infos = [first, second].map((device) =>
    SectionInfo.decode(
      device.ioctl(
        IOCTL.SECTION_OPEN,
        SectionRequest.encode({ ringBytes: 4096 }),
        SectionInfo.size,
      ),
    )
  );
  try {
    for (const info of infos) {
      assert.match(info.sectionName, /^Global\\Kbridge-[0-9a-f]{16}-Ring$/i);
      assert.match(info.eventName, /^Global\\Kbridge-[0-9a-f]{16}-Event$/i);
      using memory = openSharedMemory(info.sectionName, { size: info.viewBytes });
      assert.equal(RingHeader.decode(memory.bytes).magic, Ring.MAGIC);
    }
    assert.notEqual(infos[0].sectionName, infos[1].sectionName);
    assert.notEqual(infos[0].eventName, infos[1].eventName);
    assert.equal(readStats(first).sections, 2);
  } finally {
    first.ioctl(IOCTL.SECTION_CLOSE);
    second.ioctl(IOCTL.SECTION_CLOSE);
  }
  // Through subscribe: two rings at once, one injected message reaches both.
  await using a = subscribe(first, { protocol: referenceProtocol, channel: "section" });
  await using b = subscribe(second, { protocol: referenceProtocol, channel: "section" });
  const payload = new TextEncoder().encode("to both rings");
  first.ioctl(IOCTL.INJECT, inject(Channel.SECTION, payload));
  for (const subscription of [a, b]) {
    for await (const message of subscription) {
      assert.deepEqual(message.data, payload);
      break;
    }
  }
});

/** CreateFileMappingW of a pagefile-backed section named `name`, as a squatter would. */
function createNamedSection(name: string): { close(): void } {
  const kernel32 = Deno.dlopen("kernel32.dll", {
    CreateFileMappingW: {
      parameters: ["pointer", "pointer", "u32", "u32", "u32", "buffer"],
      result: "pointer",
    },
    CloseHandle: { parameters: ["pointer"], result: "i32" },
  });
  const wide = new Uint16Array([...name].map((c) => c.charCodeAt(0)).concat(0));
  const INVALID_HANDLE_VALUE = Deno.UnsafePointer.create(0xffff_ffff_ffff_ffffn);
  const PAGE_READWRITE = 4;
  const handle = kernel32.symbols.CreateFileMappingW(
    INVALID_HANDLE_VALUE,
    null,
    PAGE_READWRITE,
    0,
    4096,
    new Uint8Array(wide.buffer),
  );
  if (handle === null) {
    kernel32.close();
    throw new Error(`CreateFileMappingW(${name}) failed`);
  }
  return {
    close() {
      kernel32.symbols.CloseHandle(handle);
      kernel32.close();
    },
  };
}

Deno.test("objects pre-created under the old fixed names do not disable the section channel", async () => {
  await using device = openKbridge();
  const squattedSection = createNamedSection("Global\\KbridgeRing");
  using _squattedEvent = createEvent({ name: "Global\\KbridgeRingEvent" });
  try {
    await using messages = subscribe(device, { protocol: referenceProtocol, channel: "section" });
    assert.equal(messages.channel, "section");
    const payload = new TextEncoder().encode("past the squatter");
    device.ioctl(IOCTL.INJECT, inject(Channel.SECTION, payload));
    for await (const message of messages) {
      assert.deepEqual(message.data, payload);
      break;
    }
  } finally {
    squattedSection.close();
  }
});

Deno.test("a second file can neither release nor stop the first file's work", async () => {
  await using owner = openKbridge();
  await using other = openKbridge();
  const before = readStats(owner).pendedIrps;
  const pended = pend(owner, 4242);
  await waitFor("the PEND to pend", () => readStats(owner).pendedIrps === before + 1);
  assert.equal(releasedCount(other.ioctl(IOCTL.RELEASE, release(4242), 4)), 0, "by tag");
  assert.equal(
    releasedCount(other.ioctl(IOCTL.RELEASE, release(Protocol.RELEASE_ALL), 4)),
    0,
    "all of its own: none",
  );
  assert.equal(readStats(owner).pendedIrps, before + 1, "still pending");
  assert.equal(releasedCount(owner.ioctl(IOCTL.RELEASE, release(4242), 4)), 1);
  assert.deepEqual(PendResult.decode(await pended), { tag: 4242, how: Protocol.PEND_RELEASED });

  // An endless paced run of the owner: the other file can neither stop nor replace it.
  owner.ioctl(IOCTL.PRODUCER_START, producer(0, 1000));
  try {
    throwsCode(() => other.ioctl(IOCTL.PRODUCER_STOP), ERROR_ACCESS_DENIED, "STOP");
    throwsCode(() => other.ioctl(IOCTL.PRODUCER_START, producer(1, 0)), ERROR_BUSY, "START");
    assert.equal(readStats(other).producerRunning, 1);
    owner.ioctl(IOCTL.PRODUCER_START, producer(0, 2000)); // its own run: replaced
  } finally {
    owner.ioctl(IOCTL.PRODUCER_STOP);
  }
  assert.equal(readStats(other).producerRunning, 0);
  other.ioctl(IOCTL.PRODUCER_STOP); // no run: not an error
});

Deno.test("caps: PENDs and inverted waits per file, PEND buffer sizes, no endless run without pauses", async () => {
  await using observer = openKbridge();
  await using greedy = openKbridge();
  await using modest = openKbridge();
  // PEND: one file is capped at PEND_LIMIT; another file still gets its request through.
  const pends = Array.from({ length: Protocol.PEND_LIMIT }, (_, i) => pend(greedy, 9000 + i));
  const base = readStats(observer).pendedIrps;
  await waitFor("PEND_LIMIT PENDs", () => readStats(observer).pendedIrps >= Protocol.PEND_LIMIT);
  await rejectsCode(pend(greedy, 1), ERROR_NO_SYSTEM_RESOURCES, "PEND beyond the file's cap");
  const modestPend = pend(modest, 2);
  await waitFor("another file's PEND", () => readStats(observer).pendedIrps === base + 1);
  assert.equal(
    releasedCount(greedy.ioctl(IOCTL.RELEASE, release(Protocol.RELEASE_ALL), 4)),
    Protocol.PEND_LIMIT,
  );
  assert.equal(releasedCount(modest.ioctl(IOCTL.RELEASE, release(2), 4)), 1);
  await Promise.all([...pends, modestPend]);

  // PEND buffers: at most PEND_MAX_OUTPUT bytes (a pending IRP pins its system buffer).
  for (const outputSize of [Protocol.PEND_MAX_OUTPUT + 1, 1 << 20]) {
    await assert.rejects(
      greedy.ioctlAsync(IOCTL.PEND, PendRequest.encode({ tag: 3, timeoutMs: 0 }), outputSize),
      (error: unknown) => {
        assert.ok(error instanceof Win32Error, String(error));
        assert.equal(error.ntStatus, STATUS_INVALID_BUFFER_SIZE, error.message);
        return true;
      },
    );
  }

  // Inverted waits: INVERTED_WAIT_LIMIT per file.
  assert.equal(
    readStats(observer).invertedQueued,
    0,
    "no message queued (they would complete waits)",
  );
  const waitSize = RecordHeader.size + Protocol.MAX_MESSAGE;
  const waiting = await (async () => {
    await using waiter = openKbridge();
    const waits = Array.from(
      { length: Protocol.INVERTED_WAIT_LIMIT },
      () => waiter.ioctlAsync(IOCTL.INVERTED_WAIT, null, waitSize).catch((error) => error),
    );
    await waitFor(
      "INVERTED_WAIT_LIMIT waits",
      () => readStats(observer).invertedIrps >= Protocol.INVERTED_WAIT_LIMIT,
    );
    await rejectsCode(
      waiter.ioctlAsync(IOCTL.INVERTED_WAIT, null, waitSize),
      ERROR_NO_SYSTEM_RESOURCES,
      "wait beyond the file's cap",
    );
    const other = modest.ioctlAsync(IOCTL.INVERTED_WAIT, null, waitSize).catch((error) => error);
    await waitFor(
      "another file's wait",
      () => readStats(observer).invertedIrps === Protocol.INVERTED_WAIT_LIMIT + 1,
    );
    return [...waits, other];
  })(); // closing the waiter cancels its waits
  modest.close();
  const outcomes = await Promise.all(waiting);
  assert.ok(outcomes.every((outcome) => outcome instanceof Win32Error), "all cancelled");
  assert.equal(readStats(observer).invertedIrps, 0);

  // The producer: an endless run needs a pause between messages.
  throwsCode(
    () => observer.ioctl(IOCTL.PRODUCER_START, producer(0, 0)),
    ERROR_INVALID_PARAMETER,
    "Count 0 with IntervalUs 0",
  );
  assert.equal(readStats(observer).producerRunning, 0);
});

Deno.test("the PEND sweep timer runs only while a timed PEND waits", async () => {
  await using device = openKbridge();
  await waitFor("the timer idle", () => readStats(device).pendTimerArmed === 0);
  // An untimed PEND needs no sweep.
  const untimed = pend(device, 11);
  await waitFor("the untimed PEND", () => readStats(device).pendedIrps >= 1);
  assert.equal(readStats(device).pendTimerArmed, 0);
  // A timed one arms it, its timeout disarms it.
  const started = performance.now();
  const timed = pend(device, 12, 150);
  await waitFor("the timer armed", () => readStats(device).pendTimerArmed === 1);
  assert.deepEqual(PendResult.decode(await timed), { tag: 12, how: Protocol.PEND_TIMED_OUT });
  assert.ok(performance.now() - started >= 140, "not before its timeout");
  await waitFor("the timer disarmed", () => readStats(device).pendTimerArmed === 0);
  // Released before its timeout: the sweep finds nothing left and stops too.
  const released = pend(device, 13, 60_000);
  await waitFor("armed again", () => readStats(device).pendTimerArmed === 1);
  assert.equal(releasedCount(device.ioctl(IOCTL.RELEASE, release(13), 4)), 1);
  await released;
  await waitFor("disarmed again", () => readStats(device).pendTimerArmed === 0);
  assert.equal(releasedCount(device.ioctl(IOCTL.RELEASE, release(11), 4)), 1);
  await untimed;
});
