// Run by tests/lab_wine.test.ts through `kbridge lab run`: talks to the lab's
// fixture driver and prints what it answered.
import { openDevice } from "../../mod.ts";
import { KBWDM } from "./kbwdm.ts";

using device = openDevice(KBWDM.DEVICE_PATH);
const hello = new DataView(device.ioctl(KBWDM.HELLO, null, 16).buffer);
const reversed = device.ioctl(KBWDM.REVERSE, new TextEncoder().encode(Deno.args[0] ?? ""), 64);
console.log(
  `magic 0x${hello.getUint32(0, true).toString(16)} reversed ${new TextDecoder().decode(reversed)}`,
);
