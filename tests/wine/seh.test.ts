// Real structured exception handling under Wine: the test-only fixture driver
// tests/fixture/seh.c (built with the SEH toolchain, driver/seh.mk) faults on
// purpose inside the exception guard, through the kit's guarded copy (the one the
// reference driver's METHOD_NEITHER path uses) and through a store written in the
// guarded block itself. Each fault must fail only its request, with
// STATUS_ACCESS_VIOLATION, and the driver host must answer the next one.
// Also: the reference driver claims NEITHER_SEH exactly in the build that has SEH.
import assert from "node:assert/strict";
import {
  ctlCode,
  installDriver,
  openDevice,
  queryDriver,
  startDriver,
  struct,
  Win32Error,
} from "../../mod.ts";
import { Capability, IOCTL, VersionInfo } from "../../src/reference/mod.ts";
import { openKbridge, seededBytes } from "./_driver.ts";

const SERVICE = "kbseh";
const SYS_PATH = "C:\\windows\\system32\\drivers\\kbseh.sys";
const STATUS_ACCESS_VIOLATION = 0xc000_0005;

const code = (fn: number) =>
  ctlCode({ deviceType: 0x8024, function: fn, method: "BUFFERED", access: "ANY" });
const GET_INFO = code(0x800);
const READ = code(0x801);
const WRITE = code(0x802);
const STORE = code(0x803);

const Info = struct({ haveSeh: "u32", faultsCaught: "u32", scratchAddress: "u64" });
const Access = struct({ address: "u64", length: "u32", reserved: "u32" });

/** Driver-host addresses that cannot be accessed: the null page, high user space, non-canonical. */
const BAD_ADDRESSES = [0n, 0x10n, 0xfffn, 0x7fff_ffff_0000n, 0x8000_0000_0000_0000n];

function openSeh() {
  const status = queryDriver(SERVICE);
  if (status === null) installDriver(SERVICE, SYS_PATH);
  if (status?.state !== "running") startDriver(SERVICE);
  return openDevice("\\\\.\\KbSeh");
}

function access(address: bigint, length: number, data: Uint8Array = new Uint8Array(0)) {
  const request = new Uint8Array(Access.size + data.length);
  request.set(Access.encode({ address, length, reserved: 0 }));
  request.set(data, Access.size);
  return request;
}

function expectAccessViolation(fn: () => unknown, what: string): void {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof Win32Error, `${what}: ${error}`);
    assert.equal(error.errorName, "ERROR_NOACCESS", `${what}: ${error.message}`);
    assert.equal(error.ntStatus, STATUS_ACCESS_VIOLATION, `${what}: ${error.message}`);
    return;
  }
  assert.fail(`${what}: no fault reported`);
}

Deno.test("a fault in a guarded access fails its request with STATUS_ACCESS_VIOLATION, host alive", () => {
  using device = openSeh();
  const before = Info.decode(device.ioctl(GET_INFO, null, Info.size));
  assert.equal(before.haveSeh, 1);

  // The guarded copy works on a valid address: write the scratch block, read it back.
  const bytes = seededBytes(7, 64);
  device.ioctl(WRITE, access(before.scratchAddress, 64, bytes), 0);
  assert.deepEqual(device.ioctl(READ, access(before.scratchAddress, 64), 64), bytes);
  device.ioctl(STORE, access(before.scratchAddress, 0x1234_5678), 0);
  assert.deepEqual(
    device.ioctl(READ, access(before.scratchAddress, 4), 4),
    new Uint8Array([0x78, 0x56, 0x34, 0x12]),
  );

  let faults = 0;
  for (const address of BAD_ADDRESSES) {
    const hex = `0x${address.toString(16)}`;
    expectAccessViolation(() => device.ioctl(READ, access(address, 16), 16), `read ${hex}`);
    expectAccessViolation(
      () => device.ioctl(WRITE, access(address, 4, bytes.subarray(0, 4)), 0),
      `write ${hex}`,
    );
    expectAccessViolation(() => device.ioctl(STORE, access(address, 1), 0), `store ${hex}`);
    faults += 3;
    // The host lives: the next request is answered.
    const after = Info.decode(device.ioctl(GET_INFO, null, Info.size));
    assert.equal(after.faultsCaught - before.faultsCaught, faults, `after ${hex}`);
  }
  // Nothing was written by the failed requests: the scratch block is as left.
  assert.deepEqual(
    device.ioctl(READ, access(before.scratchAddress, 64), 64).subarray(4),
    bytes.subarray(4),
  );
});

Deno.test("the reference driver reports NEITHER_SEH exactly in the SEH build", () => {
  using device = openKbridge();
  const info = VersionInfo.decode(device.ioctl(IOCTL.GET_VERSION, null, VersionInfo.size));
  const build = Deno.env.get("KB_DRIVER_BUILD") ?? "mingw";
  assert.ok(build === "mingw" || build === "seh", `KB_DRIVER_BUILD=${build}`);
  assert.equal((info.capabilities & Capability.NEITHER_SEH) !== 0, build === "seh");
});
