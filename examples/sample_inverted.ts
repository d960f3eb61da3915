// The inverted call against the sample driver: a WAIT_NEXT request kept pending, completed
// with the next tick, issued again; leaving the loop cancels it.
import { bytes, ctlCode, openDevice, struct, wchar } from "../mod.ts";

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

const code = (fn: number, access: "ANY" | "WRITE") =>
  ctlCode({ deviceType: 0x9000, function: fn, method: "BUFFERED", access });
await using device = openDevice("\\\\.\\KbSample");
// WAIT_NEXT completes every pending request with the same tick: keep one pending.
await using ticks = device.stream(code(0x904, "ANY"), { outputSize: Tick.size, pending: 1 });
device.ioctl(code(0x902, "WRITE"), Start.encode({ intervalMs: 100, count: 5 }));
for await (const output of ticks) {
  const { counter, text } = Tick.decode(output);
  console.log(`${text} (${new Date().toISOString()})`);
  if (counter === 5) break;
}
