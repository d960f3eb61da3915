// The sample driver's named event and named section: wait for a tick, read it in place.
import { bytes, ctlCode, openDevice, openEvent, openSharedMemory, struct, wchar } from "../mod.ts";

const Tick = struct({
  magic: "u32",
  counter: "u32",
  time: "u64",
  value: "u32",
  reserved: "u32",
  text: wchar(16),
  reserved2: bytes(8),
});
const Start = struct({ intervalMs: "u32", count: "u32" });

using device = openDevice("\\\\.\\KbSample");
using tick = openEvent("Global\\KbSampleTick");
using shared = openSharedMemory("Global\\KbSampleShared");
tick.reset(); // a tick of an earlier run may have left it signalled
device.ioctl(
  ctlCode({ deviceType: 0x9000, function: 0x902, method: "BUFFERED", access: "WRITE" }),
  Start.encode({ intervalMs: 100, count: 5 }),
);
for (let i = 0; i < 5 && await tick.wait({ timeoutMs: 1000 }); i++) {
  const { counter, value, text } = Tick.decode(shared.bytes);
  console.log(`${text}: counter ${counter}, value ${value}`);
}
