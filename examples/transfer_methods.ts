/**
 * One request in each of the four transfer methods, checked byte for byte:
 * BUFFERED echo, IN_DIRECT verify, OUT_DIRECT fill, NEITHER echo.
 *
 * `deno run -A examples/transfer_methods.ts` (with the reference driver loaded)
 *
 * @module
 */
import { decodeCtlCode, openDevice } from "../mod.ts";
import {
  ChecksumRequest,
  FillRequest,
  fnv1a,
  IOCTL,
  Names,
  pattern,
} from "../src/reference/mod.ts";

using device = openDevice(Names.DEVICE_PATH, { overlapped: false });
const data = pattern(42, 64 * 1024);
const same = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

const results: [number, boolean][] = [
  [IOCTL.ECHO, same(device.ioctl(IOCTL.ECHO, data, data.length), data)],
  [
    IOCTL.IN_DIRECT_VERIFY,
    device.ioctl(
      IOCTL.IN_DIRECT_VERIFY,
      ChecksumRequest.encode({ length: data.length, fnv1a: fnv1a(data) }),
      data,
    )
      .length === 0,
  ],
  [
    IOCTL.OUT_DIRECT_FILL,
    same(
      device.ioctl(
        IOCTL.OUT_DIRECT_FILL,
        FillRequest.encode({ seed: 42, reserved: 0 }),
        data.length,
      ),
      data,
    ),
  ],
  [IOCTL.NEITHER_ECHO, same(device.ioctl(IOCTL.NEITHER_ECHO, data, data.length), data)],
];
for (const [code, ok] of results) {
  console.log(`${decodeCtlCode(code).methodName.padEnd(10)} ${ok ? "ok" : "MISMATCH"}  64 KiB`);
}
if (results.some(([, ok]) => !ok)) Deno.exit(1);
