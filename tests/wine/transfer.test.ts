// The four transfer methods against the reference driver, at the sizes of the
// IOCTL API issue: data byte-exact both ways, wrong lengths refused.
import assert from "node:assert/strict";
import { Win32Error } from "../../mod.ts";
import { ChecksumRequest, FillRequest, fnv1a, IOCTL, pattern } from "../../src/reference/mod.ts";
import { openKbridge, seededBytes } from "./_driver.ts";

const SIZES = [0, 1, 16, 4095, 4096, 65536, 1 << 20];

function expectWin32(fn: () => unknown, name: string): Win32Error {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof Win32Error, String(error));
    assert.equal(error.errorName, name, error.message);
    return error;
  }
  assert.fail(`expected ${name}`);
}

Deno.test("METHOD_BUFFERED: echo and checksum at every size", () => {
  using device = openKbridge();
  for (const size of SIZES) {
    const input = seededBytes(size + 11, size);
    assert.deepEqual(device.ioctl(IOCTL.ECHO, input, size), input, `echo ${size}`);
    const sum = ChecksumRequest.decode(device.ioctl(IOCTL.CHECKSUM, input, ChecksumRequest.size));
    assert.deepEqual(sum, { length: size, fnv1a: fnv1a(input) }, `checksum ${size}`);
  }
  expectWin32(
    () => device.ioctl(IOCTL.CHECKSUM, new Uint8Array(4), ChecksumRequest.size - 1),
    "ERROR_INSUFFICIENT_BUFFER",
  );
});

Deno.test("METHOD_IN_DIRECT: the driver reads the direct buffer byte-exact", () => {
  using device = openKbridge();
  for (const size of SIZES) {
    const data = seededBytes(size + 3, size);
    const request = ChecksumRequest.encode({ length: size, fnv1a: fnv1a(data) });
    assert.equal(device.ioctl(IOCTL.IN_DIRECT_VERIFY, request, data).length, 0, `verify ${size}`);
    if (size > 0) {
      const corrupted = data.slice();
      corrupted[size - 1] ^= 1;
      expectWin32(() => device.ioctl(IOCTL.IN_DIRECT_VERIFY, request, corrupted), "ERROR_CRC");
    }
  }
  const short = ChecksumRequest.encode({ length: 10, fnv1a: 0 });
  expectWin32(
    () => device.ioctl(IOCTL.IN_DIRECT_VERIFY, short, new Uint8Array(9)),
    "ERROR_INVALID_PARAMETER",
  );
  expectWin32(
    () => device.ioctl(IOCTL.IN_DIRECT_VERIFY, new Uint8Array(3), new Uint8Array(9)),
    "ERROR_INVALID_PARAMETER",
  );
});

Deno.test("METHOD_OUT_DIRECT: echo and pattern fill at every size", () => {
  using device = openKbridge();
  for (const size of SIZES) {
    const input = seededBytes(size + 5, size);
    assert.deepEqual(device.ioctl(IOCTL.OUT_DIRECT_ECHO, input, size), input, `echo ${size}`);
    const filled = device.ioctl(
      IOCTL.OUT_DIRECT_FILL,
      FillRequest.encode({ seed: size, reserved: 0 }),
      size,
    );
    assert.deepEqual(filled, pattern(size, size), `fill ${size}`);
  }
  expectWin32(
    () => device.ioctl(IOCTL.OUT_DIRECT_ECHO, new Uint8Array(100), 99),
    "ERROR_INSUFFICIENT_BUFFER",
  );
  expectWin32(
    () => device.ioctl(IOCTL.OUT_DIRECT_FILL, new Uint8Array(2), 16),
    "ERROR_INVALID_PARAMETER",
  );
});

Deno.test("METHOD_NEITHER: echo through user pointers at every size", () => {
  using device = openKbridge();
  for (const size of SIZES) {
    const input = seededBytes(size + 7, size);
    assert.deepEqual(device.ioctl(IOCTL.NEITHER_ECHO, input, size), input, `echo ${size}`);
  }
  expectWin32(
    () => device.ioctl(IOCTL.NEITHER_ECHO, new Uint8Array(100), 99),
    "ERROR_INSUFFICIENT_BUFFER",
  );
});

Deno.test("bytes returned never exceed what the driver wrote: the rest of the buffer is untouched", () => {
  using device = openKbridge();
  for (const code of [IOCTL.ECHO, IOCTL.OUT_DIRECT_ECHO, IOCTL.NEITHER_ECHO]) {
    const output = new Uint8Array(4096).fill(0xcc);
    const returned = device.ioctl(code, new Uint8Array(100).fill(7), output);
    assert.equal(returned.length, 100);
    assert.ok(output.subarray(100).every((b) => b === 0xcc), `canary of 0x${code.toString(16)}`);
  }
});
