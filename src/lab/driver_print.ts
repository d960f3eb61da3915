/**
 * A driver's own debug output under Wine. `DbgPrint`, `DbgPrintEx` and
 * `KdPrint` end in `vDbgPrintExWithPrefix`, which Wine writes as a warning of
 * its `debugstr` channel; the lab turns that channel on for the driver hosts
 * ({@linkcode DRIVER_PRINT_CHANNEL}), so each print lands in the lab's
 * `logs/wine-start.log` as
 * `0104:warn:debugstr:vDbgPrintExWithPrefix 00000000:00000001: kbwdm: REVERSE of 5 bytes`.
 *
 * @module
 */

/** The `WINEDEBUG` entry that makes Wine write a driver's prints. */
export const DRIVER_PRINT_CHANNEL = "warn+debugstr";

/**
 * `winedebug` (a `WINEDEBUG` value, maybe empty) with the driver prints'
 * channel added last, so that it holds whatever comes before it.
 *
 * @example
 * ```ts
 * import { withDriverPrints } from "./driver_print.ts";
 * withDriverPrints("-all"); // "-all,warn+debugstr"
 * withDriverPrints(""); // "warn+debugstr"
 * ```
 */
export function withDriverPrints(winedebug: string): string {
  return winedebug === "" ? DRIVER_PRINT_CHANNEL : `${winedebug},${DRIVER_PRINT_CHANNEL}`;
}

/**
 * Wine's line for a print: any prefix (`+pid`, `+timestamp`), the id of the
 * thread that printed, the component id and level mask, the text.
 */
const PRINT_LINE =
  /(?:^|:)(?:([0-9a-f]+):)?warn:debugstr:vDbgPrintExWithPrefix [0-9a-f]+:[0-9a-f]+: ?(.*)$/;

/**
 * A driver's print: its text, and the Windows thread that printed it (hex,
 * as Wine writes thread ids), when the line names it.
 *
 * @example
 * ```ts ignore
 * const print: DriverPrint = { text: "kbwdm: ready", thread: "0104" };
 * ```
 */
export interface DriverPrint {
  readonly text: string;
  readonly thread?: string;
}

/**
 * The print in one line of Wine's output, or undefined for any other line.
 *
 * @example
 * ```ts
 * import { driverPrintLine } from "./driver_print.ts";
 * driverPrintLine("0104:warn:debugstr:vDbgPrintExWithPrefix 00000000:00000001: hi"); // { text: "hi", thread: "0104" }
 * ```
 */
export function driverPrintLine(line: string): DriverPrint | undefined {
  const match = PRINT_LINE.exec(line.replace(/\r?\n$/, ""));
  if (match === null) return undefined;
  return match[1] === undefined ? { text: match[2] } : { text: match[2], thread: match[1] };
}

/**
 * The text a driver printed, from one line of Wine's output, or undefined
 * for any other line.
 *
 * @example
 * ```ts
 * import { driverPrintOf } from "./driver_print.ts";
 * driverPrintOf("0104:warn:debugstr:vDbgPrintExWithPrefix 00000000:00000001: hello\n"); // "hello"
 * ```
 */
export function driverPrintOf(line: string): string | undefined {
  return driverPrintLine(line)?.text;
}

/**
 * A sink for the bytes appended to Wine's output: calls `onPrint` with the
 * text of each complete print line (a line split across two writes is kept
 * until its end arrives) and returns the chunk's text, decoded as a stream.
 *
 * @example
 * ```ts
 * import { driverPrintSink } from "./driver_print.ts";
 * const prints: string[] = [];
 * const sink = driverPrintSink((text) => prints.push(text));
 * sink(new TextEncoder().encode("0104:warn:debugstr:vDbgPrintExWithPrefix 0:1: hi\nwine: other\n"));
 * prints; // ["hi"]
 * ```
 */
export function driverPrintSink(onPrint: (text: string) => void): (bytes: Uint8Array) => string {
  const decoder = new TextDecoder();
  let partial = "";
  return (bytes) => {
    const chunk = decoder.decode(bytes, { stream: true });
    const lines = (partial + chunk).split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      const text = driverPrintOf(line);
      if (text !== undefined) onPrint(text);
    }
    return chunk;
  };
}
