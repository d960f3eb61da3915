/**
 * `kbridge service`: install, start, stop, remove and query a kernel driver service.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  installDriver,
  queryDriver,
  removeDriver,
  startDriver,
  stopDriver,
} from "../io/service.ts";
import { UsageError } from "./usage.ts";

const HELP = `Usage:
  kbridge service install <name> --sys <path> [--display-name <text>]
  kbridge service start|stop|remove|status <name> [--json]

status exits with 1 when the service does not exist.

Examples:
  kbridge service install kbridge --sys C:\\Windows\\System32\\drivers\\kbridge.sys
  kbridge service start kbridge
  kbridge service status kbridge --json`;

/**
 * Runs `kbridge service ...` and returns the exit code.
 *
 * @example
 * ```ts ignore
 * await serviceCommand(["status", "kbridge"]);
 * ```
 */
export async function serviceCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      sys: { type: "string" },
      "display-name": { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const [action, name, ...extra] = positionals;
  if (action === undefined) throw new UsageError("service needs an action");
  if (name === undefined) throw new UsageError(`service ${action} needs a service name`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  switch (action) {
    case "install":
      if (values.sys === undefined) {
        throw new UsageError("service install needs --sys <path>");
      }
      installDriver(name, values.sys, { displayName: values["display-name"] });
      console.log(`installed ${name}`);
      return 0;
    case "start":
      startDriver(name);
      console.log(`started ${name}`);
      return 0;
    case "stop":
      await stopDriver(name);
      console.log(`stopped ${name}`);
      return 0;
    case "remove":
      removeDriver(name);
      console.log(`removed ${name}`);
      return 0;
    case "status": {
      const status = queryDriver(name);
      if (values.json) console.log(JSON.stringify(status));
      else console.log(status ? `${name}: ${status.state}` : `${name}: not installed`);
      return status ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown service action "${action}"`);
  }
}
