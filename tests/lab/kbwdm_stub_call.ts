import { openDevice, Win32Error } from "../../mod.ts";
import { KBWDM } from "./kbwdm.ts";
using device = openDevice(KBWDM.DEVICE_PATH);
try {
  device.ioctl(KBWDM.QUEUE, new Uint8Array(4), 0);
  console.log("no crash");
} catch (error) {
  if (!(error instanceof Win32Error)) throw error;
  console.log(`QUEUE failed: ${error.message}`);
}
