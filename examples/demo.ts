/**
 * The demo: talks to the reference driver (loaded by `deno task demo`),
 * prints its version and checks an echoed payload.
 *
 * Run under Windows (or Wine) with the driver loaded:
 * `deno run -A examples/demo.ts`
 *
 * @module
 */
import { Capability, IOCTL, Names, openDevice, VersionInfo } from "../mod.ts";

using device = openDevice(Names.DEVICE_PATH);

const info = VersionInfo.decode(device.ioctl(IOCTL.GET_VERSION, null, VersionInfo.size));
const capabilities = Object.entries(Capability)
  .filter(([, bit]) => (info.capabilities & bit) !== 0)
  .map(([name]) => name.toLowerCase());
console.log(
  `kbridge driver ${info.driverMajor}.${info.driverMinor}, protocol ${info.protocolVersion}, ` +
    `capabilities: ${capabilities.join(", ")}`,
);

const payload = new TextEncoder().encode(`hello from Deno ${Deno.version.deno} at ${new Date().toISOString()}`);
const echoed = device.ioctl(IOCTL.ECHO, payload, payload.length);
const same = echoed.length === payload.length && echoed.every((byte, i) => byte === payload[i]);
console.log(`echo: ${echoed.length} bytes, ${same ? "byte-exact" : "MISMATCH"}: "${new TextDecoder().decode(echoed)}"`);
if (!same) Deno.exit(1);
