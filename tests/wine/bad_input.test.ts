// Random and extreme arguments to every public function that reaches Windows:
// only typed errors, never a crash or a hang; and a handle-leak check.
import assert from "node:assert/strict";
import {
  ArgumentError,
  ClosedError,
  installDriver,
  KbridgeError,
  openDevice,
  processResources,
  queryDriver,
  removeDriver,
  startDriver,
  stopDriver,
  subscribe,
} from "../../mod.ts";
import { IOCTL, referenceProtocol } from "../../src/reference/mod.ts";
import { assertHandlesBack, DEVICE_PATH, openKbridge } from "./_driver.ts";
import { xorshift32 } from "../_util.ts";

function detachedBuffer(): ArrayBuffer {
  const buffer = new ArrayBuffer(16);
  structuredClone(buffer, { transfer: [buffer] });
  return buffer;
}

/** Values of every kind, including the extremes. */
const ODD_VALUES: unknown[] = [
  undefined,
  null,
  NaN,
  Infinity,
  -Infinity,
  -1,
  -0,
  0.5,
  2 ** 32,
  2 ** 53,
  Number.MAX_VALUE,
  10n,
  "",
  "\0",
  "x".repeat(70_000),
  {},
  [],
  () => 0,
  Symbol("s"),
  true,
  new Uint8Array(0),
  new Uint8Array(8),
  new Uint16Array(3),
  new DataView(new ArrayBuffer(4)),
  new SharedArrayBuffer(8),
  detachedBuffer(),
];

/** Runs `fn`; passes when it returns, resolves, or throws/rejects a kbridge error. */
async function onlyTypedErrors(label: string, fn: () => unknown): Promise<void> {
  try {
    const result = fn();
    if (result instanceof Promise) await result;
  } catch (error) {
    if (!(error instanceof KbridgeError)) assert.fail(`${label}: untyped ${String(error)}`);
  }
}

Deno.test("device calls with random arguments raise only typed errors", async () => {
  await using device = openKbridge();
  const nextInt = xorshift32(99);
  const next = () => nextInt() / 0x1_0000_0000;
  const pick = () => ODD_VALUES[Math.floor(next() * ODD_VALUES.length)];
  const codes = [...Object.values(IOCTL), 0, 0xffff_ffff, IOCTL.PEND];
  const untyped = device as unknown as Record<
    "ioctl" | "ioctlAsync",
    (...args: unknown[]) => unknown
  >;
  for (let i = 0; i < 3000; i++) {
    const code = next() < 0.5 ? codes[Math.floor(next() * codes.length)] : pick();
    const input = pick();
    const output = next() < 0.5 ? Math.floor(next() * 70_000) : pick();
    await onlyTypedErrors(
      `ioctl #${i}`,
      () => untyped.ioctl(code, input, output, { timeoutMs: 50 }),
    );
    const signal = next() < 0.3 ? AbortSignal.abort() : undefined;
    await onlyTypedErrors(
      `ioctlAsync #${i}`,
      () => untyped.ioctlAsync(code, input, output, { timeoutMs: 50, signal }),
    );
  }
  assert.equal(device.pendingCount, 0);
});

Deno.test("openDevice, subscribe and the service calls refuse odd arguments with ArgumentError", async () => {
  for (const value of ODD_VALUES) {
    if (typeof value === "string" && value.length > 0 && !value.includes("\0")) continue;
    // @ts-expect-error: deliberately untyped
    assert.throws(() => openDevice(value), ArgumentError, `openDevice(${String(value)})`);
    for (const fn of [startDriver, queryDriver, removeDriver]) {
      // @ts-expect-error: deliberately untyped
      assert.throws(() => fn(value), ArgumentError);
    }
    // @ts-expect-error: deliberately untyped
    await assert.rejects(() => stopDriver(value), ArgumentError);
    // @ts-expect-error: deliberately untyped
    assert.throws(() => installDriver(value, "C:\\x.sys"), ArgumentError);
  }
  await using device = openKbridge();
  for (
    const options of [
      { channel: "bogus" },
      { ringBytes: 5000 },
      { ringBytes: -1 },
      { pending: 0 },
      { pending: 1e9 },
    ]
  ) {
    assert.throws(
      // @ts-expect-error: deliberately untyped
      () => subscribe(device, { protocol: referenceProtocol, ...options }),
      ArgumentError,
      JSON.stringify(options),
    );
  }
  for (const protocol of [undefined, null, {}, { name: "no maxMessage" }]) {
    // @ts-expect-error: deliberately untyped
    assert.throws(() => subscribe(device, { protocol }), ArgumentError, JSON.stringify(protocol));
  }
  assert.throws(() => openDevice(DEVICE_PATH, { access: -5 }), ArgumentError);
});

Deno.test("a closed device refuses everything with ClosedError, without FFI calls", async () => {
  const device = openKbridge();
  device.close();
  assert.throws(() => device.ioctl(IOCTL.GET_VERSION, null, 16), ClosedError);
  await assert.rejects(device.ioctlAsync(IOCTL.GET_VERSION, null, 16), ClosedError);
  assert.throws(() => subscribe(device, { protocol: referenceProtocol }), ClosedError);
  await device[Symbol.asyncDispose]();
});

Deno.test("10,000 open/ioctl/close cycles leave the handle count where it started", () => {
  using warm = openDevice(DEVICE_PATH);
  warm.ioctl(IOCTL.ECHO, new Uint8Array(8), 8);
  const before = processResources().handles;
  assert.ok(before > 0);
  // The count sees one handle more, so it would see a leak.
  const extra = openDevice(DEVICE_PATH, { overlapped: false });
  assert.equal(processResources().handles, before + 1);
  extra.close();
  assert.equal(processResources().handles, before);
  const resources = processResources();
  for (let i = 0; i < 10_000; i++) {
    using device = openDevice(DEVICE_PATH, { overlapped: i % 2 === 0 });
    device.ioctl(IOCTL.ECHO, new Uint8Array(8), 8);
  }
  assertHandlesBack(resources);
});

Deno.test("removing a service that does not exist names ERROR_SERVICE_DOES_NOT_EXIST", () => {
  assert.throws(
    () => removeDriver("kbridgeNoSuchService"),
    /ERROR_SERVICE_DOES_NOT_EXIST \(1060\)/,
  );
  assert.equal(queryDriver("kbridgeNoSuchService"), null);
});
