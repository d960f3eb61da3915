/**
 * The kbridge command line: control codes, raw IOCTLs and driver services.
 *
 * ```sh
 * deno run -A jsr:@kbridge/kbridge/cli ctl decode 0x80222004
 * deno run -A jsr:@kbridge/kbridge/cli service status kbridge
 * ```
 *
 * Exit codes: 0 success, 1 failure, 2 usage error.
 *
 * @example
 * ```ts ignore
 * import { main } from "@kbridge/kbridge/cli";
 * Deno.exit(await main(["ctl", "decode", "0x222003"]));
 * ```
 *
 * @module
 */
import { KbridgeError } from "./src/core/errors.ts";
import { benchCommand } from "./src/cli/bench.ts";
import { ctlCommand } from "./src/cli/ctl.ts";
import { fuzzCommand } from "./src/cli/fuzz.ts";
import { serviceCommand } from "./src/cli/service.ts";
import { ioctlCommand } from "./src/cli/ioctl.ts";
import { labCommand } from "./src/cli/lab.ts";
import { transferCommand } from "./src/cli/transfer.ts";
import { UsageError } from "./src/cli/usage.ts";
import { watchCommand } from "./src/cli/watch.ts";

const HELP = `kbridge - talk to Windows kernel drivers from Deno

Usage: kbridge <command> [options]

Commands:
  bench [<device> [<code>]]    time one control code: sync round trips, overlapped throughput
  ctl decode <code>            decode a control code
  ctl encode --device-type T --function N [--method M] [--access A]
  ioctl <device> <code> [...]  send one I/O control request
  read <device> [...]          one ReadFile; write <device> <data> [...]: one WriteFile
  lab <action> [...]           test a driver under Wine on Linux: setup | status | build |
                               check | load | unload | run | test | restart
  service <action> <name>      install | start | stop | remove | status a driver service
  watch <device> [...]         stream the driver's messages live
  fuzz <device> [...]          fuzz a driver's IOCTLs (crashes, hangs, leaks); --replay a finding

Run "kbridge <command> --help" for a command's options and examples.`;

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  bench: benchCommand,
  ctl: ctlCommand,
  fuzz: fuzzCommand,
  ioctl: ioctlCommand,
  lab: labCommand,
  read: (args) => transferCommand("read", args),
  service: serviceCommand,
  watch: watchCommand,
  write: (args) => transferCommand("write", args),
};

/**
 * Runs the command line with `args` and returns the exit code (0 success,
 * 1 failure, 2 usage error). Errors are printed as one line, never a stack trace.
 *
 * @example
 * ```ts ignore
 * const code = await main(["ctl", "decode", "0x222003"]);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    console.log(HELP);
    return command === undefined ? 2 : 0;
  }
  const run = COMMANDS[command];
  try {
    if (!run) throw new UsageError(`unknown command "${command}"`);
    return await run(rest);
  } catch (error) {
    return reportError(error);
  }
}

function reportError(error: unknown): number {
  if (error instanceof UsageError) {
    console.error(`kbridge: ${error.message} (see --help)`);
    return 2;
  }
  if (isParseArgsError(error)) {
    console.error(`kbridge: ${(error as Error).message}`);
    return 2;
  }
  if (error instanceof KbridgeError) {
    console.error(error.message);
    return 1;
  }
  console.error(`kbridge: ${error instanceof Error ? error.message : String(error)}`);
  return 1;
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS");
}

if (import.meta.main) Deno.exit(await main(Deno.args));
