/**
 * Overlapped requests that the driver keeps pending, ended three ways:
 * released by another request, aborted with an AbortSignal, and timed out.
 *
 * `deno run -A examples/cancel.ts` (with the reference driver loaded)
 *
 * @module
 */
import { AbortError, openDevice, TimeoutError } from "../mod.ts";
import { IOCTL, Names, PendRequest, PendResult, ReleaseRequest } from "../src/reference/mod.ts";

await using device = openDevice(Names.DEVICE_PATH);
const pend = (tag: number) => PendRequest.encode({ tag, timeoutMs: 0 });

const released = device.ioctlAsync(IOCTL.PEND, pend(1), PendResult.size);
await new Promise((resolve) => setTimeout(resolve, 50));
device.ioctl(IOCTL.RELEASE, ReleaseRequest.encode({ tag: 1, reserved: 0 }), 4);
console.log("released:", PendResult.decode(await released));

const controller = new AbortController();
const aborted = device.ioctlAsync(IOCTL.PEND, pend(2), PendResult.size, {
  signal: controller.signal,
});
setTimeout(() => controller.abort(new Error("changed my mind")), 50);
try {
  await aborted;
} catch (error) {
  if (!(error instanceof AbortError)) throw error;
  console.log("aborted:", error.message);
}

try {
  await device.ioctlAsync(IOCTL.PEND, pend(3), PendResult.size, { timeoutMs: 100 });
} catch (error) {
  if (!(error instanceof TimeoutError)) throw error;
  console.log("timed out:", error.message);
}
