/**
 * The demo (`deno task demo` loads the reference driver under Wine first):
 * prints the driver's version, checks an echoed payload, then subscribes with
 * `channel: "auto"` and streams the driver's messages live, with a rate line.
 *
 * On Windows, with the driver loaded: `deno run -A examples/demo.ts [--count N]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  Capability,
  Channel,
  IOCTL,
  Names,
  openDevice,
  patternByte,
  ProducerRequest,
  Protocol,
  VersionInfo,
} from "../mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { count: { type: "string", default: "200000" } },
});
const count = Number(values.count);

await using device = openDevice(Names.DEVICE_PATH);

const info = VersionInfo.decode(device.ioctl(IOCTL.GET_VERSION, null, VersionInfo.size));
const capabilities = Object.entries(Capability)
  .filter(([, bit]) => (info.capabilities & bit) !== 0)
  .map(([name]) => name.toLowerCase());
console.log(
  `kbridge driver ${info.driverMajor}.${info.driverMinor}, protocol ${info.protocolVersion}, ` +
    `capabilities: ${capabilities.join(", ")}`,
);

const payload = new TextEncoder().encode(`hello from Deno ${Deno.version.deno}`);
const echoed = device.ioctl(IOCTL.ECHO, payload, payload.length);
const same = echoed.length === payload.length && echoed.every((byte, i) => byte === payload[i]);
console.log(
  `echo: ${echoed.length} bytes, ${same ? "byte-exact" : "MISMATCH"}: "${
    new TextDecoder().decode(echoed)
  }"`,
);
if (!same) Deno.exit(1);

await using messages = device.subscribe({ channel: "auto" });
console.log(`subscribed: channel "${messages.channel}" (auto)`);
const channelBit = {
  section: Channel.SECTION,
  inverted: Channel.INVERTED,
  classic: Channel.CLASSIC,
}[messages.channel];
const seed = Date.now() >>> 0;
device.ioctl(
  IOCTL.PRODUCER_START,
  ProducerRequest.encode({
    channels: channelBit,
    count,
    minSize: 16,
    maxSize: 256,
    intervalUs: 0,
    seed,
    flags: Protocol.PRODUCER_WAIT_FOR_SPACE,
  }),
);

let received = 0;
let bytes = 0;
let corrupt = 0;
let lastReport = performance.now();
let reportedCount = 0;
const started = lastReport;
while (received < count) {
  const got = await messages.drain((data, sequence) => {
    if (received < 5) {
      const hex = [...data.subarray(0, 12)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
      console.log(`  message #${sequence}: ${data.length} bytes  ${hex} ...`);
    }
    const messageSeed = (seed ^ sequence) >>> 0;
    if (sequence !== received || data.some((b, i) => b !== patternByte(messageSeed, i))) corrupt++;
    received++;
    bytes += data.length;
  }, { timeoutMs: 5000 });
  if (got === 0) {
    console.error(`demo: no message for 5 s after ${received}`);
    Deno.exit(1);
  }
  const now = performance.now();
  if (now - lastReport >= 500 || received === count) {
    const rate = ((received - reportedCount) * 1000) / (now - lastReport);
    console.log(
      `  ${received} messages, ${(bytes / 1e6).toFixed(1)} MB, ${Math.round(rate)} msg/s, ` +
        `dropped ${messages.dropped}, corrupt ${corrupt}`,
    );
    lastReport = now;
    reportedCount = received;
  }
}
const seconds = (performance.now() - started) / 1000;
console.log(
  `done: ${received} messages in ${seconds.toFixed(2)} s (${
    Math.round(received / seconds)
  } msg/s, ` +
    `${(bytes / seconds / 1e6).toFixed(1)} MB/s) over the ${messages.channel} channel, ` +
    `${corrupt === 0 ? "all in order and byte-exact" : `${corrupt} CORRUPT`}`,
);
if (corrupt !== 0) Deno.exit(1);
