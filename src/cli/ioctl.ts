/**
 * `kbridge ioctl`: send one raw I/O control request and show what came back.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { decodeCtlCode, formatCtlCode } from "../core/ctl_code.ts";
import { openDevice } from "../io/device.ts";
import { Win32Error } from "../core/win32_error.ts";
import { parseInteger, UsageError } from "./usage.ts";
import { fromHex, toHex } from "../core/hex.ts";

const HELP = `Usage:
  kbridge ioctl <device> <code> [--in <hex>|@<file>|-] [--out-size <n> | --direct <hex>|@<file>]
                [--method-aware] [--overlapped] [--timeout <ms>] [--repeat <n>] [--json] [--raw <file>]

  --in        input bytes: hex ("01 02 ff", "0102ff"), @file, or - for standard input
  --out-size  output buffer size in bytes (default 0)
  --direct    the second buffer's bytes instead (what METHOD_IN_DIRECT hands the driver to read)
  --method-aware  say how the code's transfer method moves the buffers, and require --direct
              for METHOD_IN_DIRECT
  --overlapped  send it as an overlapped request (needed for --timeout)
  --timeout   cancel the request after this many milliseconds
  --repeat    send it n times (prints the last reply and the time per call)
  --json      print one JSON object; --raw writes the output bytes to a file

Examples:
  kbridge ioctl '\\\\.\\Kbridge' 0x80222004 --in "68 69" --out-size 2
  kbridge ioctl '\\\\.\\Kbridge' 0x80222000 --out-size 16 --json
  kbridge ioctl '\\\\.\\Kbridge' 0x80222009 --in @request.bin --direct @data.bin --method-aware`;

/** How each transfer method moves the buffers, for --method-aware. */
const METHOD_NOTES: Record<string, string> = {
  BUFFERED: "input and output share one system buffer; the bytes returned are copied back",
  IN_DIRECT:
    "input is copied to a system buffer; the second buffer is locked (MDL) and read by the driver",
  OUT_DIRECT:
    "input is copied to a system buffer; the output buffer is locked (MDL) and written by the driver",
  NEITHER:
    "the driver gets the raw user addresses (Type3InputBuffer, UserBuffer) and must probe them",
};

/**
 * Parses hex input: pairs of hex digits, optionally separated by spaces, commas or colons.
 *
 * @example
 * ```ts
 * import { parseHex } from "./ioctl.ts";
 * parseHex("de ad be ef"); // Uint8Array [0xde, 0xad, 0xbe, 0xef]
 * ```
 */
export function parseHex(text: string, label = "--in"): Uint8Array {
  const bytes = fromHex(text.replace(/0x/gi, "").replace(/[\s,:]/g, ""));
  if (bytes === undefined) {
    throw new UsageError(`${label}: malformed hex "${text}" (need pairs of hex digits)`);
  }
  return bytes;
}

/**
 * A classic hex dump: offset, 16 bytes in hex, and their printable ASCII.
 *
 * @example
 * ```ts
 * import { hexDump } from "./ioctl.ts";
 * hexDump(new Uint8Array([0x68, 0x69])); // "00000000  68 69  ...  |hi|"
 * ```
 */
export function hexDump(data: Uint8Array): string {
  const lines: string[] = [];
  for (let offset = 0; offset < data.length; offset += 16) {
    const row = data.subarray(offset, offset + 16);
    const hex = toHex(row, " ").padEnd(47);
    const ascii = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join(
      "",
    );
    lines.push(`${offset.toString(16).padStart(8, "0")}  ${hex}  |${ascii}|`);
  }
  return lines.join("\n");
}

/**
 * The bytes of an `--in` argument (or the one `label` names): hex, `@file`,
 * or `-` for standard input (none when absent).
 *
 * @example
 * ```ts ignore
 * const input = await readInput("@request.bin");
 * ```
 */
export async function readInput(spec: string | undefined, label = "--in"): Promise<Uint8Array> {
  if (spec === undefined) return new Uint8Array();
  if (spec === "-") return new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
  if (spec.startsWith("@")) {
    try {
      return await Deno.readFile(spec.slice(1));
    } catch (error) {
      throw new UsageError(`${label}: cannot read ${spec.slice(1)}: ${(error as Error).message}`);
    }
  }
  return parseHex(spec, label);
}

/**
 * The milliseconds of a `--timeout` argument (none when absent), which needs `--overlapped`.
 *
 * @example
 * ```ts ignore
 * const timeoutMs = parseTimeout(values.timeout, values.overlapped);
 * ```
 */
export function parseTimeout(text: string | undefined, overlapped: boolean): number | undefined {
  if (text === undefined) return undefined;
  const timeoutMs = parseInteger(text, "--timeout", 0x7fff_ffff);
  if (!overlapped) throw new UsageError("--timeout needs --overlapped");
  return timeoutMs;
}

/**
 * A failed request's error as the `--json` output shows it.
 *
 * @example
 * ```ts ignore
 * console.log(JSON.stringify({ error: errorJson(error) }));
 * ```
 */
export function errorJson(
  error: Win32Error,
): { code: number; name: string; ntStatus?: number; message: string } {
  return {
    code: error.code,
    name: error.errorName,
    ntStatus: error.ntStatus,
    message: error.message,
  };
}

/**
 * Runs `kbridge ioctl ...` and returns the exit code.
 *
 * @example
 * ```ts ignore
 * await ioctlCommand(["\\\\.\\Kbridge", "0x80222000", "--out-size", "16"]);
 * ```
 */
export async function ioctlCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      in: { type: "string" },
      "out-size": { type: "string" },
      direct: { type: "string" },
      "method-aware": { type: "boolean", default: false },
      overlapped: { type: "boolean", default: false },
      timeout: { type: "string" },
      repeat: { type: "string", default: "1" },
      json: { type: "boolean", default: false },
      raw: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const [path, codeText, ...extra] = positionals;
  if (path === undefined || codeText === undefined) {
    throw new UsageError("ioctl needs <device> <code>");
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const code = parseInteger(codeText, "<code>", 0xffff_ffff);
  if (values["out-size"] !== undefined && values.direct !== undefined) {
    throw new UsageError("give --out-size or --direct, not both");
  }
  const method = decodeCtlCode(code).methodName;
  if (values["method-aware"] && method === "IN_DIRECT" && values.direct === undefined) {
    throw new UsageError(
      "METHOD_IN_DIRECT hands the driver its second buffer to read: give it with --direct",
    );
  }
  const repeat = Math.max(1, parseInteger(values.repeat, "--repeat", 1e9));
  const timeoutMs = parseTimeout(values.timeout, values.overlapped);
  const input = await readInput(values.in);
  const direct = values.direct === undefined ? undefined : await readInput(values.direct);
  const outSize = direct?.length ??
    parseInteger(values["out-size"] ?? "0", "--out-size", 0xffff_ffff);
  if (values["method-aware"]) console.error(`${formatCtlCode(code)}: ${METHOD_NOTES[method]}`);

  await using device = openDevice(path, { overlapped: values.overlapped });
  let output: Uint8Array = new Uint8Array();
  let error: Win32Error | undefined;
  const started = performance.now();
  for (let i = 0; i < repeat && error === undefined; i++) {
    try {
      // With --direct the second buffer starts with those bytes (a fresh copy per call).
      const second = direct?.slice() ?? outSize;
      output = values.overlapped
        ? await device.ioctlAsync(code, input, second, { timeoutMs })
        : device.ioctl(code, input, second);
    } catch (caught) {
      if (!(caught instanceof Win32Error)) throw caught;
      error = caught;
    }
  }
  const perCallUs = ((performance.now() - started) * 1000) / repeat;
  if (values.raw !== undefined && error === undefined) await Deno.writeFile(values.raw, output);
  if (values.json) {
    console.log(JSON.stringify({
      code,
      control: formatCtlCode(code),
      bytesReturned: output.length,
      output: toHex(output),
      error: error ? errorJson(error) : null,
      ...(repeat > 1 ? { repeat, perCallUs } : {}),
    }));
  } else if (error) {
    console.error(error.message);
  } else {
    console.log(`${formatCtlCode(code)}: ${output.length} bytes returned`);
    if (output.length > 0) console.log(hexDump(output));
    if (repeat > 1) console.log(`${repeat} calls, ${perCallUs.toFixed(1)} µs per call`);
  }
  return error ? 1 : 0;
}
