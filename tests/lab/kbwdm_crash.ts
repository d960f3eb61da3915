// Run by tests/lab_wine.test.ts through `kbridge lab run`: takes the fixture
// driver's planted crash (a LOG record with the VERBOSE flag), after a request that prints.
import { openDevice, Win32Error } from "../../mod.ts";
import { KBWDM } from "./kbwdm.ts";

using device = openDevice(KBWDM.DEVICE_PATH);
// REVERSE prints a line (DbgPrint) on the thread that takes the crash next.
device.ioctl(KBWDM.REVERSE, new Uint8Array([1, 2, 3, 4]), 4);
try {
  device.ioctl(KBWDM.LOG, new Uint8Array([KBWDM.LOG_VERBOSE, 1, 2, 3]), 0);
  console.log("no crash");
} catch (error) {
  if (!(error instanceof Win32Error)) throw error;
  console.log(`LOG failed: ${error.message}`);
}
