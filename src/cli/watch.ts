/**
 * `kbridge watch`: stream a device's messages live.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { openDevice } from "../io/device.ts";
import { subscribe } from "../channels/subscribe.ts";
import type { ChannelName } from "../channels/protocol_spec.ts";
import { referenceProtocol } from "../reference/channels.ts";
import { parseInteger, UsageError } from "./usage.ts";
import { toHex } from "../core/hex.ts";

const HELP = `Usage:
  kbridge watch <device> [--channel auto|section|inverted|classic] [--count <n>] [--json]
                [--ring-bytes <n>] [--pending <n>]

  Prints one line per message (sequence, length, first bytes in hex), or one JSON
  object per line with --json. On a terminal a status line (messages/s, bytes/s,
  drops) is kept on standard error; it is quiet when piped. Stops after --count
  messages, or on Ctrl+C.

Examples:
  kbridge watch '\\\\.\\Kbridge'
  kbridge watch '\\\\.\\Kbridge' --channel inverted --count 100 --json`;

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
  if (!CHANNELS.includes(values.channel)) {
    throw new UsageError(
      `--channel must be one of ${CHANNELS.join(", ")}, got "${values.channel}"`,
    );
  }
  const count = values.count === undefined
    ? Infinity
    : parseInteger(values.count, "--count", 2 ** 53);
  const ringBytes = values["ring-bytes"] === undefined
    ? undefined
    : parseInteger(values["ring-bytes"], "--ring-bytes", 64 << 20);
  const pending = values.pending === undefined
    ? undefined
    : parseInteger(values.pending, "--pending", 256);

  await using device = openDevice(path);
  await using messages = subscribe(device, {
    protocol: referenceProtocol,
    channel: values.channel as ChannelName | "auto",
    ringBytes,
    pending,
  });
  const status = Deno.stderr.isTerminal();
  const encoder = new TextEncoder();
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  let received = 0;
  let bytes = 0;
  let windowStart = performance.now();
  let windowMessages = 0;
  let windowBytes = 0;
  try {
    if (!values.json) console.error(`watching ${path} on the ${messages.channel} channel`);
    while (received < count && !stop.signal.aborted) {
      const lines: string[] = [];
      await messages.drain((data, sequence, timestamp) => {
        received++;
        bytes += data.length;
        windowMessages++;
        windowBytes += data.length;
        const hex = toHex(data.subarray(0, 16), " ");
        lines.push(
          values.json
            ? JSON.stringify({
              sequence,
              timestamp,
              length: data.length,
              data: toHex(data),
            })
            : `#${sequence} ${data.length} B  ${hex}${data.length > 16 ? " ..." : ""}`,
        );
      }, { max: count - received, timeoutMs: 250 });
      if (lines.length > 0) await Deno.stdout.write(encoder.encode(lines.join("\n") + "\n"));
      const now = performance.now();
      if (status && now - windowStart >= 500) {
        const seconds = (now - windowStart) / 1000;
        const line = `${received} messages | ${Math.round(windowMessages / seconds)} msg/s | ` +
          `${(windowBytes / seconds / 1e6).toFixed(2)} MB/s | dropped ${messages.dropped}`;
        await Deno.stderr.write(encoder.encode(`\r\x1b[K${line}`));
        windowStart = now;
        windowMessages = 0;
        windowBytes = 0;
      }
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    if (status) await Deno.stderr.write(encoder.encode("\n"));
  }
  if (!values.json) {
    console.error(`${received} messages, ${bytes} bytes, dropped ${messages.dropped}`);
  }
  return 0;
}
