/**
 * `kbridge watch`: stream a device's messages live.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { openDevice } from "../io/device.ts";
import { subscribe } from "../channels/subscribe.ts";
import { type ChannelName, type ChannelProtocol, kitProtocol } from "../channels/protocol_spec.ts";
import { formatCtlCode } from "../core/ctl_code.ts";
import { referenceProtocol } from "../reference/channels.ts";
import { readInput } from "./ioctl.ts";
import { parseInteger, UsageError } from "./usage.ts";
import { toHex } from "../core/hex.ts";

const HELP = `Usage:
  kbridge watch <device> [--channel auto|section|inverted|classic] [--count <n>] [--json]
                [--ring-bytes <n>] [--pending <n>]
                [--section-open <code> --section-close <code>] [--inverted-wait <code>]
                [--max-message <n>]
  kbridge watch <device> --stream <code> --out-size <n> [--in <hex>|@<file>] [--pending <n>]
                [--count <n>] [--json]

  Prints one line per message (sequence, length, first bytes in hex), or one JSON
  object per line with --json; what it watches and a summary go to standard error.
  On a terminal a status line (messages/s, bytes/s, drops) is kept there too; it is
  quiet when piped. Stops after --count messages, or on Ctrl+C.

  Channels: the reference driver's by default; a driver built on the channel kit
  (driver/kit/) with its own codes: --section-open/--section-close (section channel)
  and/or --inverted-wait (inverted call), --max-message its largest message.

  --stream: any driver that completes pended requests with data: keeps --pending
  requests of <code> outstanding (the same --in each), prints each completed output
  (its first --out-size bytes) and sends the request again.

Examples:
  kbridge watch '\\\\.\\Kbridge'
  kbridge watch '\\\\.\\Kbridge' --channel inverted --count 100 --json
  kbridge watch '\\\\.\\KbSample' --section-open 0x9000A440 --section-close 0x9000A444 --inverted-wait 0x90002448
  kbridge watch '\\\\.\\KbSample' --stream 0x90002410 --out-size 64 --pending 1 --count 5`;

const CHANNELS = ["auto", "section", "inverted", "classic"];

/**
 * Runs `kbridge watch ...` and returns the exit code.
 *
 * @example
 * ```ts ignore
 * await watchCommand(["\\\\.\\Kbridge", "--count", "10"]);
 * ```
 */
export async function watchCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      channel: { type: "string", default: "auto" },
      count: { type: "string" },
      json: { type: "boolean", default: false },
      "ring-bytes": { type: "string" },
      pending: { type: "string" },
      "section-open": { type: "string" },
      "section-close": { type: "string" },
      "inverted-wait": { type: "string" },
      "max-message": { type: "string" },
      stream: { type: "string" },
      in: { type: "string" },
      "out-size": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const [path, ...extra] = positionals;
  if (path === undefined) throw new UsageError("watch needs <device>");
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const count = values.count === undefined
    ? Infinity
    : parseInteger(values.count, "--count", 2 ** 53);
  const pending = values.pending === undefined
    ? undefined
    : parseInteger(values.pending, "--pending", 256);
  const printer = new MessagePrinter(values.json);
  if (values.stream !== undefined) {
    for (
      const option of ["section-open", "section-close", "inverted-wait", "ring-bytes"] as const
    ) {
      if (values[option] !== undefined) {
        throw new UsageError(`--${option} is for channels, not --stream`);
      }
    }
    if (values["out-size"] === undefined) throw new UsageError("--stream needs --out-size");
    return await watchStream(path, {
      code: parseInteger(values.stream, "--stream", 0xffff_ffff),
      input: await readInput(values.in),
      outputSize: parseInteger(values["out-size"], "--out-size", 1 << 24),
      pending,
      count,
    }, printer);
  }
  if (values.in !== undefined || values["out-size"] !== undefined) {
    throw new UsageError("--in and --out-size go with --stream");
  }
  if (!CHANNELS.includes(values.channel)) {
    throw new UsageError(
      `--channel must be one of ${CHANNELS.join(", ")}, got "${values.channel}"`,
    );
  }
  const ringBytes = values["ring-bytes"] === undefined
    ? undefined
    : parseInteger(values["ring-bytes"], "--ring-bytes", 64 << 20);

  await using device = openDevice(path);
  await using messages = subscribe(device, {
    protocol: protocolOf(values),
    channel: values.channel as ChannelName | "auto",
    ringBytes,
    pending,
  });
  console.error(`watching ${path} on the ${messages.channel} channel`);
  await printer.run(async (stop) => {
    while (printer.received < count && !stop.aborted) {
      await messages.drain(
        (data, sequence, timestamp) => printer.add(data, sequence, timestamp),
        { max: count - printer.received, timeoutMs: 250 },
      );
      await printer.flush(messages.dropped);
    }
  });
  console.error(
    `${printer.received} messages, ${printer.bytes} bytes, dropped ${messages.dropped}`,
  );
  return 0;
}

/** The reference driver's protocol, or a kit driver's from its codes on the command line. */
function protocolOf(values: {
  "section-open"?: string;
  "section-close"?: string;
  "inverted-wait"?: string;
  "max-message"?: string;
}): ChannelProtocol {
  const open = values["section-open"];
  const close = values["section-close"];
  const wait = values["inverted-wait"];
  if (open === undefined && close === undefined && wait === undefined) {
    if (values["max-message"] !== undefined) {
      throw new UsageError(
        "--max-message goes with a kit driver's codes (--section-open, --inverted-wait)",
      );
    }
    return referenceProtocol;
  }
  if ((open === undefined) !== (close === undefined)) {
    throw new UsageError("the section channel needs both --section-open and --section-close");
  }
  const code = (text: string, name: string) => parseInteger(text, name, 0xffff_ffff);
  return kitProtocol({
    name: "the command line's kit codes",
    ...(open !== undefined ? { sectionOpen: code(open, "--section-open") } : {}),
    ...(close !== undefined ? { sectionClose: code(close, "--section-close") } : {}),
    ...(wait !== undefined ? { invertedWait: code(wait, "--inverted-wait") } : {}),
    ...(values["max-message"] !== undefined
      ? { maxMessage: parseInteger(values["max-message"], "--max-message", 1 << 24) }
      : {}),
  });
}

/** `--stream`: pended requests of one code, each completed output printed. */
async function watchStream(
  path: string,
  request: { code: number; input: Uint8Array; outputSize: number; pending?: number; count: number },
  printer: MessagePrinter,
): Promise<number> {
  await using device = openDevice(path, { overlapped: true });
  const stop = new AbortController();
  await using outputs = device.stream(request.code, {
    input: request.input.length > 0 ? request.input : null,
    outputSize: request.outputSize,
    ...(request.pending !== undefined ? { pending: request.pending } : {}),
    signal: stop.signal,
  });
  console.error(`watching ${path}: requests of ${formatCtlCode(request.code)} kept pending`);
  await printer.run(async (interrupted) => {
    interrupted.addEventListener("abort", () => stop.abort(), { once: true });
    try {
      for await (const output of outputs) {
        printer.add(output, printer.received, undefined);
        await printer.flush(0);
        if (printer.received >= request.count) break;
      }
    } catch (error) {
      // Ctrl+C cancels the pending requests: the iteration ends with an AbortError.
      if (!(interrupted.aborted && error instanceof DOMException && error.name === "AbortError")) {
        throw error;
      }
    }
  });
  console.error(`${printer.received} outputs, ${printer.bytes} bytes`);
  return 0;
}

/** Prints messages as lines (or JSON lines) and keeps the terminal's status line. */
class MessagePrinter {
  readonly json: boolean;
  received = 0;
  bytes = 0;
  #lines: string[] = [];
  #status = Deno.stderr.isTerminal();
  #encoder = new TextEncoder();
  #windowStart = performance.now();
  #windowMessages = 0;
  #windowBytes = 0;

  constructor(json: boolean) {
    this.json = json;
  }

  add(data: Uint8Array, sequence: number, timestamp: bigint | number | undefined): void {
    this.received++;
    this.bytes += data.length;
    this.#windowMessages++;
    this.#windowBytes += data.length;
    const hex = toHex(data.subarray(0, 16), " ");
    this.#lines.push(
      this.json
        ? JSON.stringify({
          sequence,
          ...(timestamp !== undefined ? { timestamp: Number(timestamp) } : {}),
          length: data.length,
          data: toHex(data),
        })
        : `#${sequence} ${data.length} B  ${hex}${data.length > 16 ? " ..." : ""}`,
    );
  }

  async flush(dropped: number): Promise<void> {
    if (this.#lines.length > 0) {
      await Deno.stdout.write(this.#encoder.encode(this.#lines.join("\n") + "\n"));
      this.#lines = [];
    }
    const now = performance.now();
    if (this.#status && now - this.#windowStart >= 500) {
      const seconds = (now - this.#windowStart) / 1000;
      const line =
        `${this.received} messages | ${Math.round(this.#windowMessages / seconds)} msg/s | ` +
        `${(this.#windowBytes / seconds / 1e6).toFixed(2)} MB/s | dropped ${dropped}`;
      await Deno.stderr.write(this.#encoder.encode(`\r\x1b[K${line}`));
      this.#windowStart = now;
      this.#windowMessages = 0;
      this.#windowBytes = 0;
    }
  }

  /** Runs `body` with a signal that Ctrl+C aborts; the status line ends after it. */
  async run(body: (stop: AbortSignal) => Promise<void>): Promise<void> {
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    Deno.addSignalListener("SIGINT", onSignal);
    try {
      await body(stop.signal);
    } finally {
      Deno.removeSignalListener("SIGINT", onSignal);
      if (this.#status) await Deno.stderr.write(this.#encoder.encode("\n"));
    }
  }
}
