// copyBytes against real buffers: their addresses decide whether a copy is cut into pieces.
import assert from "node:assert/strict";
import { copyBytes, pageOffset } from "../src/core/copy.ts";
import { pattern } from "../src/reference/mod.ts";
import { countSets, placedAfter } from "./_util.ts";

Deno.test("pageOffset is the address modulo 4096, for views at any offset", () => {
  const buffer = new ArrayBuffer(3 * 4096);
  for (const offset of [0, 8, 100, 4095, 4096, 9000]) {
    const view = new Uint8Array(buffer, offset, 16);
    const address = Deno.UnsafePointer.value(Deno.UnsafePointer.of(view));
    assert.equal(pageOffset(view), Number(address % 4096n), `offset ${offset}`);
  }
});

Deno.test("copyBytes: byte-exact at every distance; pieces only for copies over 8 KiB 1..63 bytes ahead", () => {
  const source = pattern(7, 64 << 10);
  const destination = new ArrayBuffer((64 << 10) + 2 * 4096);
  for (const length of [100, 8192, 8193, 20_000, 64 << 10]) {
    for (const distance of [0, 4, 8, 16, 24, 32, 56, 63, 64, 72, 2048, 4088]) {
      const from = source.subarray(0, length);
      const target = placedAfter(destination, from, distance, length + 16);
      target.fill(0xee);
      const calls = countSets(() => copyBytes(target, 0, from));
      const what = `${length} bytes, ${distance} ahead`;
      assert.deepEqual(target.subarray(0, length), from, what);
      assert.ok(target.subarray(length).every((byte) => byte === 0xee), `${what}: nothing after`);
      const slow = length > 8192 && distance > 0 && distance < 64;
      assert.equal(calls, slow ? Math.ceil(length / 8192) : 1, what);
    }
  }
});

Deno.test("copyBytes: the distance counts from where the copy lands in the target", () => {
  const source = pattern(3, 20_000);
  const destination = new ArrayBuffer(32 << 10);
  const target = placedAfter(destination, source, 0, 28_000);
  // Landing 16 bytes in puts the copy 16 bytes ahead of its source.
  assert.equal(countSets(() => copyBytes(target, 16, source)), 3);
  assert.deepEqual(target.subarray(16, 20_016), source);
  assert.equal(countSets(() => copyBytes(target, 4096, source)), 1);
  assert.deepEqual(target.subarray(4096, 24_096), source);
});
