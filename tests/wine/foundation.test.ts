// The foundation, against the real reference driver under Wine: open/close,
// GET_VERSION, ECHO, errors, and the service life cycle through advapi32.
import assert from "node:assert/strict";
import {
  ArgumentError,
  ClosedError,
  decodeCtlCode,
  installDriver,
  openDevice,
  queryDriver,
  removeDriver,
  startDriver,
  stopDriver,
  Win32Error,
} from "../../mod.ts";
import { Capability, IOCTL, Protocol, VersionInfo } from "../../src/reference/mod.ts";
import {
  DEVICE_PATH,
  ensureDriverRunning,
  openKbridge,
  readStats,
  seededBytes,
  SERVICE,
  SYS_PATH,
} from "./_driver.ts";

Deno.test("open and close the device, sync and overlapped handles", () => {
  for (const overlapped of [false, true]) {
    const device = openKbridge({ overlapped });
    assert.equal(device.overlapped, overlapped);
    assert.equal(device.closed, false);
    device.close();
    assert.equal(device.closed, true);
    device.close(); // idempotent
  }
});

Deno.test("GET_VERSION reports the protocol version and capabilities", () => {
  using device = openKbridge();
  const info = VersionInfo.decode(device.ioctl(IOCTL.GET_VERSION, null, VersionInfo.size));
  assert.equal(info.protocolVersion, Protocol.VERSION);
  for (const cap of [Capability.ECHO, Capability.DIRECT, Capability.NEITHER, Capability.PEND]) {
    assert.ok((info.capabilities & cap) !== 0, `capability 0x${cap.toString(16)}`);
  }
});

Deno.test("ECHO returns 0, 1, 4096 and 65536 bytes byte-exact on both kinds of handle", () => {
  for (const overlapped of [false, true]) {
    using device = openKbridge({ overlapped });
    for (const size of [0, 1, 4096, 65536]) {
      const input = seededBytes(size + 1, size);
      const output = device.ioctl(IOCTL.ECHO, input, size);
      assert.equal(output.length, size);
      assert.deepEqual(output, input);
    }
  }
});

Deno.test("ECHO into a too-small output buffer fails with ERROR_INSUFFICIENT_BUFFER naming the code", () => {
  using device = openKbridge({ overlapped: false });
  let error: unknown;
  try {
    device.ioctl(IOCTL.ECHO, new Uint8Array(64), 16);
  } catch (caught) {
    error = caught;
  }
  assert.ok(error instanceof Win32Error);
  assert.equal(error.code, 122);
  assert.equal(error.errorName, "ERROR_INSUFFICIENT_BUFFER");
  assert.equal(error.call, "DeviceIoControl");
  assert.equal(error.controlCode?.code, IOCTL.ECHO);
  assert.equal(error.detail, device.path);
  assert.ok(
    error.message.startsWith(
      `DeviceIoControl(0x80222004 0x8022 fn 0x801 BUFFERED ANY, "${device.path}") failed: ` +
        "ERROR_INSUFFICIENT_BUFFER (122)",
    ),
    error.message,
  );
});

Deno.test("an unknown control code fails with ERROR_INVALID_FUNCTION", () => {
  using device = openKbridge();
  const unknown = IOCTL.GET_VERSION + (0x7ff << 2); // function 0xFFF
  try {
    device.ioctl(unknown, null, 16);
    assert.fail("expected an error");
  } catch (error) {
    assert.ok(error instanceof Win32Error);
    assert.equal(error.errorName, "ERROR_INVALID_FUNCTION");
    assert.equal(error.controlCode?.function, decodeCtlCode(unknown).function);
  }
});

Deno.test("a closed device refuses calls before any FFI call", () => {
  const device = openKbridge();
  device.close();
  assert.throws(() => device.ioctl(IOCTL.GET_VERSION, null, 16), ClosedError);
  assert.throws(() => device.unsafeHandle, ClosedError);
});

Deno.test("arguments are checked before any FFI call", () => {
  using device = openKbridge();
  assert.throws(() => device.ioctl(1.5), ArgumentError);
  assert.throws(() => device.ioctl(-1), ArgumentError);
  assert.throws(() => device.ioctl(IOCTL.ECHO, null, -1), ArgumentError);
  assert.throws(() => device.ioctl(IOCTL.ECHO, null, 2 ** 32), ArgumentError);
  const detached = new ArrayBuffer(8);
  structuredClone(detached, { transfer: [detached] });
  assert.throws(() => device.ioctl(IOCTL.ECHO, detached, 8), ArgumentError);
});

Deno.test("opening a device that does not exist names ERROR_FILE_NOT_FOUND and the path", () => {
  try {
    openDevice("\\\\.\\KbridgeNoSuchDevice");
    assert.fail("expected an error");
  } catch (error) {
    assert.ok(error instanceof Win32Error);
    assert.equal(error.code, 2);
    assert.equal(error.call, "CreateFileW");
    assert.match(
      error.message,
      /CreateFileW\("\\\\\.\\KbridgeNoSuchDevice"\) failed: ERROR_FILE_NOT_FOUND \(2\)/,
    );
  }
});

Deno.test("the driver's counters return to their start after open/ioctl/close", () => {
  using probe = openKbridge();
  const before = readStats(probe);
  for (let i = 0; i < 20; i++) {
    using device = openDevice(DEVICE_PATH);
    device.ioctl(IOCTL.ECHO, new Uint8Array(100), 100);
  }
  const after = readStats(probe);
  assert.equal(after.openFiles, before.openFiles);
  assert.equal(after.poolAllocations, before.poolAllocations);
});

Deno.test("service life cycle through advapi32: install, start, stop, remove, twice", async () => {
  const name = "kbridgeLifeCycle";
  await stopDriver(SERVICE); // one instance of the device at a time
  try {
    for (let round = 0; round < 2; round++) {
      if (queryDriver(name) !== null) removeDriver(name);
      installDriver(name, SYS_PATH);
      assert.equal(queryDriver(name)?.state, "stopped");
      startDriver(name);
      assert.equal(queryDriver(name)?.state, "running");
      {
        using device = openDevice(DEVICE_PATH);
        assert.equal(
          VersionInfo.decode(device.ioctl(IOCTL.GET_VERSION, null, VersionInfo.size))
            .protocolVersion,
          Protocol.VERSION,
        );
      }
      await stopDriver(name);
      assert.equal(queryDriver(name)?.state, "stopped");
      assert.throws(() => openDevice(DEVICE_PATH), Win32Error);
      removeDriver(name);
    }
  } finally {
    if (queryDriver(name)?.state === "running") await stopDriver(name);
    ensureDriverRunning();
  }
});
