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

Deno.test("kbwdm ReadFile/WriteFile: its store at an offset, both forms, the end of what was stored", async () => {
  await using device = openDevice(KBWDM.DEVICE_PATH);
  using direct = openDevice(KBWDM.DEVICE_PATH, { overlapped: false });
  const text = new TextEncoder().encode("stored by WriteFile");
  assert.equal(device.write(text, { offset: 100 }), text.length);
  assert.deepEqual(direct.read(text.length, { offset: 100n }), text);
  // The store's last bytes: its stored end is then its size, whatever earlier runs wrote.
  assert.equal(await device.writeAsync(new Uint8Array([1, 2, 3]), { offset: 4093 }), 3);
  assert.deepEqual(await device.readAsync(16, { offset: 4093 }), new Uint8Array([1, 2, 3]));
  assert.equal(direct.read(16, { offset: 4096 }).length, 0, "STATUS_END_OF_FILE: no bytes");
  assert.equal((await device.readAsync(16, { offset: 5000 })).length, 0);
  assert.throws(
    () => device.write(new Uint8Array(10), { offset: 4090 }),
    (e: unknown) => e instanceof Win32Error && e.ntStatus === 0xc000_007f, // STATUS_DISK_FULL
  );
});
