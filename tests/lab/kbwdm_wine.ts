// Windows-side tests of the lab's fixture driver, run by tests/lab_wine.test.ts
// through `kbridge lab test` (deno.exe test under Wine).
import assert from "node:assert/strict";
import { openDevice, Win32Error } from "../../mod.ts";
import { KBWDM } from "./kbwdm.ts";

Deno.test("kbwdm HELLO answers its magic and counts requests", () => {
  using device = openDevice(KBWDM.DEVICE_PATH);
  const first = new DataView(device.ioctl(KBWDM.HELLO, null, 16).buffer);
  const second = new DataView(device.ioctl(KBWDM.HELLO, null, 16).buffer);
  assert.equal(first.getUint32(0, true), KBWDM.MAGIC);
  assert.equal(second.getUint32(8, true), first.getUint32(8, true) + 1);
});

Deno.test("kbwdm REVERSE reverses through try/except (METHOD_NEITHER)", () => {
  using device = openDevice(KBWDM.DEVICE_PATH);
  const input = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);
  assert.deepEqual(device.ioctl(KBWDM.REVERSE, input, 300), input.slice().reverse());
  assert.throws(
    () => device.ioctl(KBWDM.REVERSE, input, 10),
    (e: unknown) => e instanceof Win32Error && e.code === 122,
  );
});

Deno.test("kbwdm FILL fills an OUT_DIRECT buffer (MdlMappingNoExecute)", () => {
  using device = openDevice(KBWDM.DEVICE_PATH);
  assert.deepEqual(
    device.ioctl(KBWDM.FILL, new Uint8Array([0x5a]), 4096),
    new Uint8Array(4096).fill(0x5a),
  );
});
