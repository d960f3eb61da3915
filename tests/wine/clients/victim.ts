// A client that takes every kind of driver resource, says so, then waits to be
// killed: 64 pended IRPs, 8 inverted waits on a second handle, and a section
// subscription with its mapped ring.
import { openDevice, subscribe } from "../../../mod.ts";
import { IOCTL, PendRequest, PendResult, referenceProtocol } from "../../../src/reference/mod.ts";
import { DEVICE_PATH } from "../_driver.ts";

const device = openDevice(DEVICE_PATH);
for (let i = 0; i < 64; i++) {
  device.ioctlAsync(
    IOCTL.PEND,
    PendRequest.encode({ tag: 9000 + i, timeoutMs: 0 }),
    PendResult.size,
  )
    .catch(() => {});
}
const listener = openDevice(DEVICE_PATH);
const inverted = subscribe(listener, {
  protocol: referenceProtocol,
  channel: "inverted",
  pending: 8,
});
const section = subscribe(openDevice(DEVICE_PATH), {
  protocol: referenceProtocol,
  channel: "section",
  ringBytes: 1 << 16,
});
console.log(`ready ${inverted.channel} ${section.channel}`);
await new Promise(() => {}); // until killed
