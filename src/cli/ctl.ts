/**
 * `kbridge ctl`: decode and encode control codes (works on any OS).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ctlCode, ctlCodeExpression, decodeCtlCode } from "../core/ctl_code.ts";
import { parseInteger, UsageError } from "./usage.ts";
import { hex32 } from "../core/hex.ts";

const HELP = `Usage:
  kbridge ctl decode <code> [--json]
  kbridge ctl encode --device-type <T> --function <N> [--method <M>] [--access <A>] [--json]

  <T>: a number or a FILE_DEVICE_* name; <M>: BUFFERED | IN_DIRECT | OUT_DIRECT | NEITHER
  (default BUFFERED); <A>: ANY | READ | WRITE | READ_WRITE (default ANY).

Examples:
  kbridge ctl decode 0x222003
  kbridge ctl encode --device-type FILE_DEVICE_UNKNOWN --function 0x800 --method NEITHER`;

function describe(code: number, json: boolean): string {
  const info = decodeCtlCode(code);
  if (json) return JSON.stringify({ ...info, expression: ctlCodeExpression(code) });
  const hex = hex32(code);
  return [
    `code         ${hex} (${code})`,
    `device type  0x${info.deviceType.toString(16).toUpperCase()}${
      info.deviceTypeName ? ` ${info.deviceTypeName}` : ""
    }${info.common ? " (vendor)" : ""}`,
    `function     0x${info.function.toString(16).toUpperCase()} (${info.function})${
      info.custom ? " (vendor)" : ""
    }`,
    `method       ${info.methodName}`,
    `access       ${info.accessName}`,
    `expression   ${ctlCodeExpression(code)}`,
  ].join("\n");
}

/**
 * Runs `kbridge ctl ...` and returns the exit code.
 *
 * @example
 * ```ts ignore
 * await ctlCommand(["decode", "0x222003"]);
 * ```
 */
export function ctlCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      "device-type": { type: "string" },
      function: { type: "string" },
      method: { type: "string", default: "BUFFERED" },
      access: { type: "string", default: "ANY" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return Promise.resolve(0);
  }
  const [action, codeText, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (action === "decode") {
    console.log(describe(parseInteger(codeText, "<code>", 0xffff_ffff), values.json));
    return Promise.resolve(0);
  }
  if (action === "encode") {
    if (codeText !== undefined) throw new UsageError(`unexpected argument "${codeText}"`);
    const typeText = values["device-type"];
    if (typeText === undefined) throw new UsageError("--device-type is required");
    const deviceType = /^(0x)?[0-9a-f]+$/i.test(typeText)
      ? parseInteger(typeText, "--device-type", 0xffff)
      : typeText;
    const code = ctlCode(
      {
        deviceType,
        function: parseInteger(values.function, "--function", 0xfff),
        method: values.method,
        access: values.access,
      } as Parameters<typeof ctlCode>[0],
    );
    console.log(describe(code, values.json));
    return Promise.resolve(0);
  }
  throw new UsageError(
    action === undefined ? "ctl needs an action" : `unknown ctl action "${action}"`,
  );
}
