// The classic pattern against the sample driver (driver/sample): our event in, the driver's
// shared memory out, wait and read. Under Wine the driver refuses it (it runs in another process).
import { bytes, struct, wchar } from "../mod.ts";
import { createEvent, ctlCode, mapUserAddress, openDevice, Win32Error } from "../mod.ts";

const Tick = struct({
  magic: "u32",
  counter: "u32",
  time: "u64",
  value: "u32",
  reserved: "u32",
  text: wchar(16),
  reserved2: bytes(8),
});
const SetEvent = struct({ eventHandle: "u64" });
const ShareInfo = struct({ userAddress: "u64", size: "u32", reserved: "u32" });
const Start = struct({ intervalMs: "u32", count: "u32" });

const code = (fn: number) =>
  ctlCode({ deviceType: 0x9000, function: fn, method: "BUFFERED", access: "WRITE" });
using device = openDevice("\\\\.\\KbSample");
using event = createEvent();
try {
  device.ioctl(code(0x900), SetEvent.encode({ eventHandle: event }));
  const share = ShareInfo.decode(device.ioctl(code(0x901), null, ShareInfo.size));
  using shared = mapUserAddress(share.userAddress, share.size);
  device.ioctl(code(0x902), Start.encode({ intervalMs: 100, count: 5 }));
  while (await event.wait({ timeoutMs: 1000 })) console.log(Tick.decode(shared.bytes).text);
} catch (error) {
  if (!(error instanceof Win32Error) || error.code !== 50) throw error;
  console.log(`the driver refuses the classic pattern here: ${error.message}`);
}
