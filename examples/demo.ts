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
import { openDevice, subscribe } from "../mod.ts";
import {
  Capability,
  Channel,
  IOCTL,
  Names,
  patternByte,
  ProducerRequest,
  Protocol,
  referenceProtocol,
  VersionInfo,
} from "../src/reference/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { count: { type: "string", default: "1000000" } },
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

await using messages = subscribe(device, { protocol: referenceProtocol, channel: "auto" });
console.log(`subscribed: channel "${messages.channel}" (auto)`);
const channelBit = {
  section: Channel.SECTION,
  inverted: Channel.INVERTED,
  classic: Channel.CLASSIC,
}[messages.channel];
const seed = Date.now() >>> 0;
const start = (run: { count: number; intervalUs: number; seed: number }) =>
  device.ioctl(
    IOCTL.PRODUCER_START,
    ProducerRequest.encode({
      channels: channelBit,
      minSize: 16,
      maxSize: 256,
      flags: Protocol.PRODUCER_WAIT_FOR_SPACE,
      ...run,
    }),
  );
const hexOf = (data: Uint8Array) =>
  [...data.subarray(0, 12)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
// Payload byte i of a run's message n is patternByte(seed ^ n, i).
const intact = (data: Uint8Array, runSeed: number, n: number) => {
  const messageSeed = (runSeed ^ n) >>> 0;
  return data.every((b, i) => b === patternByte(messageSeed, i));
};

// Live: the driver's thread writes one message every 100 ms; each is printed as it arrives.
const live = 10;
start({ count: live, intervalUs: 100_000, seed });
let liveSeen = 0;
while (liveSeen < live) {
  const got = await messages.drain((data, sequence) => {
    const time = new Date().toISOString().slice(11, 23);
    console.log(
      `  ${time}  message #${sequence}  ${String(data.length).padStart(3)} B  ${hexOf(data)} ...  ${
        intact(data, seed, liveSeen) ? "ok" : "CORRUPT"
      }`,
    );
    liveSeen++;
  }, { timeoutMs: 5000 });
  if (got === 0) {
    console.error(`demo: no message for 5 s after ${liveSeen}`);
    Deno.exit(1);
  }
}

// Burst: as fast as the driver writes and the reader keeps up, with a rate line.
const burstSeed = (seed + 1) >>> 0;
console.log(`burst: ${count} messages of 16..256 B`);
start({ count, intervalUs: 0, seed: burstSeed });
let received = 0;
let bytes = 0;
let corrupt = 0;
const started = performance.now();
let lastReport = started;
let reportedCount = 0;
while (received < count) {
  const got = await messages.drain((data, sequence) => {
    // Sequence numbers continue from the live phase on the same channel.
    if (sequence !== live + received || !intact(data, burstSeed, received)) corrupt++;
    received++;
    bytes += data.length;
  }, { timeoutMs: 5000 });
  if (got === 0) {
    console.error(`demo: no message for 5 s after ${received}`);
    Deno.exit(1);
  }
  const now = performance.now();
  if (now - lastReport >= 100 || received === count) {
    const rate = ((received - reportedCount) * 1000) / (now - lastReport);
    console.log(
      `  ${String(received).padStart(8)} messages  ${(bytes / 1e6).toFixed(1).padStart(6)} MB  ` +
        `${
          String(Math.round(rate)).padStart(7)
        } msg/s  dropped ${messages.dropped}  corrupt ${corrupt}`,
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
