// The kit's sample driver (driver/sample, service kbsample) through the library's
// public request/response calls only: its ticks, its pended WAIT_NEXT, the kit's
// inverted call and ring open on its own codes, and the classic pattern's clean
// refusal under Wine.
import assert from "node:assert/strict";
import {
  Access,
  bytes,
  ctlCode,
  type Device,
  Method,
  openDevice,
  queryDriver,
  startDriver,
  struct,
  wchar,
  Win32Error,
} from "../../mod.ts";

const DEVICE_PATH = "\\\\.\\KbSample";
const DEVICE_TYPE = 0x9000;
const code = (fn: number, access: number) =>
  ctlCode({ deviceType: DEVICE_TYPE, function: fn, method: Method.Buffered, access });
const SET_EVENT = code(0x900, Access.Write);
const GET_SHARE_ADD = code(0x901, Access.Write);
const START = code(0x902, Access.Write);
const STOP = code(0x903, Access.Write);
const WAIT_NEXT = code(0x904, Access.Any);
const RING_OPEN = code(0x910, Access.Write);
const RING_CLOSE = code(0x911, Access.Write);
const RING_WAIT = code(0x912, Access.Any);

const Tick = struct({
  Magic: "u32",
  Counter: "u32",
  Time: "u64",
  Value: "u32",
  Reserved: "u32",
  Text: wchar(16),
  Reserved2: bytes(8),
});
const Record = struct({ Length: "u32", Flags: "u32", Sequence: "u64", Timestamp: "u64" });
const StartRequest = struct({ IntervalMs: "u32", Count: "u32" });
const SectionRequest = struct({ RingBytes: "u32", Flags: "u32" });
const SectionInfo = struct({
  ViewBytes: "u32",
  RingBytes: "u32",
  SectionName: wchar(64),
  EventName: wchar(64),
});
const MAGIC = 0x4c50_4d53;
/** 100 ns units between 1601-01-01 and 1970-01-01. */
const EPOCH_1601 = 116_444_736_000_000_000n;

function openSample(options: { overlapped?: boolean } = {}): Device {
  if (queryDriver("kbsample")?.state !== "running") startDriver("kbsample");
  return openDevice(DEVICE_PATH, options);
}

function start(device: Device, intervalMs: number, count: number): void {
  device.ioctl(START, StartRequest.encode({ IntervalMs: intervalMs, Count: count }));
}

/** Asserts the layout of tick number `counter`. */
function checkTick(tick: ReturnType<typeof Tick.decode>, counter: number): void {
  assert.equal(tick.Magic, MAGIC);
  assert.equal(tick.Counter, counter);
  assert.equal(tick.Value, counter * 3);
  assert.equal(tick.Reserved, 0);
  assert.equal(tick.Text, `tick ${counter}`);
  assert.deepEqual([...tick.Reserved2], new Array(8).fill(0));
  const ms = Number((tick.Time - EPOCH_1601) / 10_000n);
  assert.ok(Math.abs(ms - Date.now()) < 60_000, `tick time ${new Date(ms).toISOString()}`);
}

async function rejectsWith(promise: Promise<unknown>, win32: number, ntStatus: number) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof Win32Error, String(error));
    assert.equal(error.code, win32, error.message);
    assert.equal(error.ntStatus, ntStatus, error.message);
    return true;
  });
}

function throwsWith(call: () => unknown, win32: number, ntStatus: number) {
  assert.throws(call, (error: unknown) => {
    assert.ok(error instanceof Win32Error, String(error));
    assert.equal(error.code, win32, error.message);
    assert.equal(error.ntStatus, ntStatus, error.message);
    return true;
  });
}

Deno.test("START ticks; WAIT_NEXT completes with increasing counters in the TICK layout", async () => {
  await using device = openSample({ overlapped: true });
  start(device, 20, 0);
  try {
    let last = 0;
    for (let i = 0; i < 5; i++) {
      const reply = await device.ioctlAsync(WAIT_NEXT, null, Tick.size, { timeoutMs: 5000 });
      assert.equal(reply.length, 64);
      const tick = Tick.decode(reply);
      assert.ok(tick.Counter > last, `${tick.Counter} after ${last}`);
      checkTick(tick, tick.Counter);
      last = tick.Counter;
    }
  } finally {
    device.ioctl(STOP);
  }
});

Deno.test("a run of Count ticks ends by itself; every WAIT_NEXT pending at a tick gets it", async () => {
  await using device = openSample({ overlapped: true });
  const waits = [0, 1, 2].map(() =>
    device.ioctlAsync(WAIT_NEXT, null, Tick.size, { timeoutMs: 5000 })
  );
  start(device, 10, 2);
  const first = (await Promise.all(waits)).map((reply) => Tick.decode(reply));
  for (const tick of first) checkTick(tick, 1);
  checkTick(
    Tick.decode(await device.ioctlAsync(WAIT_NEXT, null, Tick.size, { timeoutMs: 5000 })),
    2,
  );
  // The run is over: the next wait stays pending until it times out.
  await assert.rejects(device.ioctlAsync(WAIT_NEXT, null, Tick.size, { timeoutMs: 200 }));
});

Deno.test("the kit's inverted call on the sample's code delivers each tick as one record", async () => {
  await using device = openSample({ overlapped: true });
  const waitBytes = Record.size + Tick.size;
  // The first wait makes this file a subscriber; it pends until the first tick.
  const first = device.ioctlAsync(RING_WAIT, null, waitBytes, { timeoutMs: 5000 });
  start(device, 10, 3);
  const replies = [await first];
  for (let i = 0; i < 2; i++) {
    replies.push(await device.ioctlAsync(RING_WAIT, null, waitBytes, { timeoutMs: 5000 }));
  }
  replies.forEach((reply, i) => {
    assert.equal(reply.length, waitBytes);
    const record = Record.decode(reply);
    assert.deepEqual([record.Length, record.Flags, record.Sequence], [64, 0, BigInt(i)]);
    checkTick(Tick.decode(reply, Record.size), i + 1);
  });
});

Deno.test("RING_OPEN gives each open its own unpredictable names; one ring per file", () => {
  using first = openSample();
  using second = openSample();
  const open = (device: Device) =>
    SectionInfo.decode(
      device.ioctl(RING_OPEN, SectionRequest.encode({ RingBytes: 4096 }), SectionInfo.size),
    );
  const a = open(first);
  const b = open(second);
  for (const info of [a, b]) {
    assert.deepEqual([info.ViewBytes, info.RingBytes], [256 + 4096, 4096]);
    assert.match(info.SectionName, /^Global\\KbSampleRing-[0-9a-f]{16}-Ring$/);
    assert.equal(info.EventName, info.SectionName.replace(/-Ring$/, "-Event"));
  }
  assert.notEqual(a.SectionName, b.SectionName);
  // STATUS_DEVICE_BUSY: this file has a ring already.
  throwsWith(() => open(first), 170, 0x8000_0011);
  first.ioctl(RING_CLOSE);
  // STATUS_INVALID_DEVICE_STATE: nothing left to close.
  throwsWith(() => first.ioctl(RING_CLOSE), 22, 0xc000_0184);
  assert.notEqual(open(first).SectionName, a.SectionName);
  // Bad requests: not a power of two, flags set, no room for the reply.
  throwsWith(
    () => second.ioctl(RING_OPEN, SectionRequest.encode({ RingBytes: 5000 }), 400),
    87,
    0xc000_000d,
  );
  throwsWith(
    () => second.ioctl(RING_OPEN, SectionRequest.encode({ RingBytes: 4096, Flags: 1 }), 400),
    87,
    0xc000_000d,
  );
});

Deno.test("the classic pattern is refused cleanly under Wine: SET_EVENT, then GET_SHARE_ADD", () => {
  const k32 = Deno.dlopen("kernel32.dll", {
    CreateEventW: { parameters: ["pointer", "i32", "i32", "pointer"], result: "pointer" },
    CloseHandle: { parameters: ["pointer"], result: "i32" },
  });
  const event = k32.symbols.CreateEventW(null, 0, 0, null);
  try {
    using device = openSample();
    const handle = BigInt(Deno.UnsafePointer.value(event));
    // ERROR_NOT_SUPPORTED from STATUS_NOT_SUPPORTED: the host cannot reference the app's handle.
    throwsWith(
      () => device.ioctl(SET_EVENT, struct({ h: "u64" }).encode({ h: handle })),
      50,
      0xc000_00bb,
    );
    // Nothing was taken, so there is no event to map for: STATUS_INVALID_DEVICE_STATE.
    throwsWith(() => device.ioctl(GET_SHARE_ADD, null, 16), 22, 0xc000_0184);
    throwsWith(() => device.ioctl(SET_EVENT, new Uint8Array(4)), 87, 0xc000_000d);
  } finally {
    k32.symbols.CloseHandle(event);
    k32.close();
  }
});

Deno.test("bad requests get typed errors; a run belongs to its file", async () => {
  await using owner = openSample({ overlapped: true });
  using other = openSample();
  throwsWith(() => start(other, 0, 1), 87, 0xc000_000d);
  throwsWith(() => start(other, 10_001, 1), 87, 0xc000_000d);
  throwsWith(() => other.ioctl(START, new Uint8Array(4)), 87, 0xc000_000d);
  await rejectsWith(owner.ioctlAsync(WAIT_NEXT, null, 63), 122, 0xc000_0023);
  await rejectsWith(owner.ioctlAsync(RING_WAIT, null, 87), 122, 0xc000_0023);
  throwsWith(() => other.ioctl(code(0x905, Access.Any)), 1, 0xc000_0010);

  start(owner, 1000, 0);
  throwsWith(() => start(other, 10, 1), 170, 0x8000_0011);
  throwsWith(() => other.ioctl(STOP), 170, 0x8000_0011);
  // Closing the owner ends its run: another file can start at once.
  owner.close();
  start(other, 10, 1);
  other.ioctl(STOP);
});
