/**
 * `kbridge read` and `kbridge write`: one ReadFile or WriteFile on a device
 * (for drivers with IRP_MJ_READ / IRP_MJ_WRITE routines), shown like `kbridge ioctl`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { openDevice } from "../io/device.ts";
import { Win32Error } from "../core/win32_error.ts";
import { toHex } from "../core/hex.ts";
import { errorJson, hexDump, parseTimeout, readInput } from "./ioctl.ts";
import { parseInteger, UsageError } from "./usage.ts";

const READ_HELP = `Usage:
  kbridge read <device> [--size <n>] [--offset <n>] [--overlapped] [--timeout <ms>] [--json] [--raw <file>]

  --size      bytes to ask for (default 4096)
  --offset    the file position (OVERLAPPED.Offset; most devices ignore it)
  --overlapped  send it as an overlapped request (needed for --timeout)
  --timeout   cancel the request after this many milliseconds
  --json      print one JSON object; --raw writes the bytes read to a file

Examples:
  kbridge read '\\\\.\\MyDriver' --size 64
  kbridge read '\\\\.\\MyDriver' --overlapped --timeout 1000 --json`;

const WRITE_HELP = `Usage:
  kbridge write <device> <hex>|@<file>|- [--offset <n>] [--overlapped] [--timeout <ms>] [--json]

  --offset    the file position (OVERLAPPED.Offset; most devices ignore it)
  --overlapped  send it as an overlapped request (needed for --timeout)
  --timeout   cancel the request after this many milliseconds
  --json      print one JSON object

Examples:
  kbridge write '\\\\.\\MyDriver' "68 65 6c 6c 6f"
  kbridge write '\\\\.\\MyDriver' @frame.bin --overlapped --timeout 1000`;

/**
 * Runs `kbridge read ...` or `kbridge write ...` and returns the exit code.
 *
 * @example
 * ```ts ignore
 * await transferCommand("read", ["\\\\.\\MyDriver", "--size", "64"]);
 * ```
 */
export async function transferCommand(kind: "read" | "write", args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      size: { type: "string", default: "4096" },
      offset: { type: "string" },
      overlapped: { type: "boolean", default: false },
      timeout: { type: "string" },
      json: { type: "boolean", default: false },
      raw: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(kind === "read" ? READ_HELP : WRITE_HELP);
    return 0;
  }
  const [path, data, ...extra] = kind === "read"
    ? [positionals[0], undefined, ...positionals.slice(1)]
    : positionals;
  if (path === undefined || (kind === "write" && data === undefined)) {
    throw new UsageError(kind === "read" ? "read needs <device>" : "write needs <device> <data>");
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const offset = values.offset === undefined
    ? undefined
    : parseInteger(values.offset, "--offset", Number.MAX_SAFE_INTEGER);
  const timeoutMs = parseTimeout(values.timeout, values.overlapped);
  if (kind === "write" && values.raw !== undefined) throw new UsageError("--raw is for read");
  const size = parseInteger(values.size, "--size", 0xffff_ffff);
  const input = kind === "write" ? await readInput(data, "<data>") : undefined;
  const options = { offset, timeoutMs };

  await using device = openDevice(path, { overlapped: values.overlapped });
  const call = kind === "read" ? "ReadFile" : "WriteFile";
  let bytes: Uint8Array = new Uint8Array();
  let written = 0;
  let error: Win32Error | undefined;
  try {
    if (input === undefined) {
      bytes = values.overlapped
        ? await device.readAsync(size, options)
        : device.read(size, options);
    } else {
      written = values.overlapped
        ? await device.writeAsync(input, options)
        : device.write(input, options);
    }
  } catch (caught) {
    if (!(caught instanceof Win32Error)) throw caught;
    error = caught;
  }
  if (values.raw !== undefined && error === undefined) await Deno.writeFile(values.raw, bytes);
  const count = input === undefined ? bytes.length : written;
  if (values.json) {
    console.log(JSON.stringify({
      call,
      bytes: count,
      ...(input === undefined ? { data: toHex(bytes) } : {}),
      error: error ? errorJson(error) : null,
    }));
  } else if (error) {
    console.error(error.message);
  } else {
    console.log(`${call}: ${count} bytes ${input === undefined ? "read" : "written"}`);
    if (bytes.length > 0) console.log(hexDump(bytes));
  }
  return error ? 1 : 0;
}
