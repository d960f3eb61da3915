/**
 * `kbridge bench`: a quick benchmark of one control code on a device —
 * synchronous round trips and overlapped throughput at several depths.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { formatCtlCode } from "../core/ctl_code.ts";
import { type Device, openDevice } from "../io/device.ts";
import { IOCTL, Names } from "../reference/mod.ts";
import { parseHex } from "./ioctl.ts";
import { parseInteger, UsageError } from "./usage.ts";

const HELP = `Usage:
  kbridge bench [<device> [<code>]] [--size <n>] [--in <hex>] [--out-size <n>]
                [--iterations <n>] [--depths 1,8,64] [--json]

  Without arguments: the reference driver's ECHO at 64 B and 4 KiB.
  --size      input bytes (filled with a pattern) and output size, for echo-like codes
  --in        exact input bytes instead (hex); --out-size the output size
  --iterations  requests per measurement (default 20000)
  --depths    overlapped requests kept in flight (default 1,8,64)

Examples:
  kbridge bench
  kbridge bench '\\\\.\\Kbridge' 0x80222004 --size 512 --iterations 5000 --json`;

interface Row {
  workload: string;
  perCallUs?: number;
  p99Us?: number;
  requestsPerSecond: number;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function syncRoundTrips(
  path: string,
  code: number,
  input: Uint8Array,
  outSize: number,
  iterations: number,
): Row {
  using device = openDevice(path, { overlapped: false });
  const output = new Uint8Array(outSize);
  const samples = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const started = performance.now();
    device.ioctl(code, input, output);
    samples[i] = performance.now() - started;
  }
  samples.sort();
  const total = samples.reduce((sum, x) => sum + x, 0);
  return {
    workload: `sync ${input.length} B`,
    perCallUs: percentile(samples, 0.5) * 1000,
    p99Us: percentile(samples, 0.99) * 1000,
    requestsPerSecond: iterations / (total / 1000),
  };
}

async function overlappedThroughput(
  device: Device,
  code: number,
  input: Uint8Array,
  outSize: number,
  iterations: number,
  depth: number,
): Promise<Row> {
  let started = 0;
  const worker = async () => {
    const output = new Uint8Array(outSize);
    while (started < iterations) {
      started++;
      await device.ioctlAsync(code, input, output);
    }
  };
  const begin = performance.now();
  await Promise.all(Array.from({ length: depth }, worker));
  const seconds = (performance.now() - begin) / 1000;
  return {
    workload: `overlapped ${input.length} B, ${depth} in flight`,
    requestsPerSecond: iterations / seconds,
  };
}

/**
 * Runs `kbridge bench ...` and returns the exit code.
 *
 * @example
 * ```ts ignore
 * await benchCommand(["--iterations", "1000"]);
 * ```
 */
export async function benchCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      size: { type: "string" },
      in: { type: "string" },
      "out-size": { type: "string" },
      iterations: { type: "string", default: "20000" },
      depths: { type: "string", default: "1,8,64" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const [path = Names.DEVICE_PATH, codeText, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const code = codeText === undefined ? IOCTL.ECHO : parseInteger(codeText, "<code>", 0xffff_ffff);
  const iterations = Math.max(1, parseInteger(values.iterations, "--iterations", 1e9));
  const depths = values.depths.split(",").map((d) =>
    Math.max(1, parseInteger(d, "--depths", 4096))
  );
  let inputs: Uint8Array[];
  if (values.in !== undefined) {
    inputs = [parseHex(values.in)];
  } else {
    const sizes = values.size === undefined
      ? [64, 4096]
      : [parseInteger(values.size, "--size", 1 << 30)];
    inputs = sizes.map((size) => Uint8Array.from({ length: size }, (_, i) => i & 0xff));
  }
  const rows: Row[] = [];
  for (const input of inputs) {
    const outSize = values["out-size"] === undefined
      ? input.length
      : parseInteger(values["out-size"], "--out-size", 0xffff_ffff);
    rows.push(syncRoundTrips(path, code, input, outSize, iterations));
    await using device = openDevice(path, { overlapped: true });
    for (const depth of depths) {
      rows.push(await overlappedThroughput(device, code, input, outSize, iterations, depth));
    }
  }
  if (values.json) {
    console.log(
      JSON.stringify({ device: path, code, control: formatCtlCode(code), iterations, rows }),
    );
    return 0;
  }
  console.log(`${path} ${formatCtlCode(code)}, ${iterations} requests per row\n`);
  console.log("| workload | p50 µs/call | p99 µs/call | requests/s |");
  console.log("| --- | ---: | ---: | ---: |");
  for (const row of rows) {
    console.log(
      `| ${row.workload} | ${row.perCallUs?.toFixed(1) ?? ""} | ${row.p99Us?.toFixed(1) ?? ""} | ${
        Math.round(row.requestsPerSecond)
      } |`,
    );
  }
  return 0;
}
