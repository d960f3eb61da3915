/**
 * `kbridge lab`: test any `.sys` under Wine from Linux — set-up, import
 * check, load, run, test, crash reports, restart. Runs with the Linux Deno.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { buildDriver } from "../lab/build.ts";
import { checkDriver, formatCheckReport } from "../lab/check.ts";
import { type CrashReport, formatCrashReport } from "../lab/crash.ts";
import { loadDriver, restartLab, unloadDriver } from "../lab/driver.ts";
import { claimLog } from "../lab/log_slot.ts";
import { type LabPaths, labPaths, resolveLabDir } from "../lab/paths.ts";
import { denoTestCounts, exitNote, KILLED_AT_EXIT, readFrom, runWindowsDeno } from "../lab/run.ts";
import { formatLabStatus, labStatus, setupLab } from "../lab/setup.ts";
import { UsageError } from "./usage.ts";

const HELP = `Usage: kbridge lab [--dir <lab dir>] <action> ...

Test a Windows kernel driver under Wine on Linux (run with the Linux Deno).
State lives in the lab directory: --dir, else $KBRIDGE_LAB_DIR, else ./build.

Actions:
  setup [--deno-version V] [--with <pkg,...>]
                          install and prepare everything (Debian packages, Deno for
                          Windows, the Wine prefix, the shim, a persistent wineserver);
                          not root and packages missing: prints the apt-get line, exits 1
  status [--json]         what is there and what runs
  build <x.c>... [--name N] [-I dir]... [-D NAME[=VALUE]]... [--coverage]
                          build <dir>/lab/drivers/<N>.sys with mingw-w64 (porting header
                          force-included, -g); --coverage: a coverage build for
                          kbridge fuzz --coverage (sources instrumented, the kit's runtime
                          linked in and started before DriverEntry: no edit of the sources)
  check <x.sys> [--json] [--all] [--wine-dir D]
                          each import: implemented, stub (calling it kills the host) or
                          missing in the installed Wine; exits 1 on a stub or missing one
  load <x.sys> [--name N] [--force]
                          install and start it as a driver service; on failure one line
                          says why (crash in DriverEntry, missing import, stub)
  unload <name>           stop and remove the service
  run <script.ts> [args]  the script with the Windows Deno under Wine (deno.exe run -A);
                          exits with its exit code, kept even when Wine kills it at exit
  test [paths...]         deno.exe test -A under Wine; ends with "N passed, N failed"
  restart                 restart the wineserver (clears stale \\DosDevices links of dead
                          driver hosts) and load again the drivers the lab loaded

A driver host that dies during load, run or test is reported: the driver, Wine's
exception, module+offset and, for a driver built with -g, the function and line.

Examples:
  kbridge lab setup
  kbridge lab build mydrv.c util.c -I include --coverage --name mydrv
  kbridge lab check build/fixture/kbwdm.sys
  kbridge lab load build/fixture/kbwdm.sys
  kbridge lab run examples/my_client.ts --verbose
  kbridge lab test tests/wine/
  kbridge lab restart`;

const encoder = new TextEncoder();

function say(line: string): void {
  Deno.stderr.writeSync(encoder.encode(`lab: ${line}\n`));
}

function parse<T extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: T) {
  try {
    return parseArgs({ args, allowPositionals: true, options });
  } catch (error) {
    const code = (error as { code?: unknown })?.code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS")) {
      throw new UsageError((error as Error).message.split("\n")[0]);
    }
    throw error;
  }
}

function reportCrashes(crashes: readonly CrashReport[]): void {
  for (const crash of crashes) console.error(formatCrashReport(crash));
}

function reportExit(code: number): void {
  const note = exitNote(code);
  if (note !== undefined) console.error(note);
}

async function setup(paths: LabPaths, args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    "deno-version": { type: "string" },
    with: { type: "string" },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const extra = typeof values.with === "string"
    ? values.with.split(",").filter((p: string) => p !== "")
    : [];
  if (extra.some((p: string) => !/^[a-z0-9][a-z0-9+.-]*$/.test(p))) {
    throw new UsageError(`--with: "${values.with}" is no list of Debian package names`);
  }
  const version = values["deno-version"];
  if (version !== undefined && (typeof version !== "string" || !/^\d+\.\d+\.\d+$/.test(version))) {
    throw new UsageError(`--deno-version must look like 2.9.6, got "${version}"`);
  }
  await setupLab(paths, {
    extraPackages: extra,
    denoVersion: version as string | undefined,
    progress: say,
  });
  return 0;
}

async function status(paths: LabPaths, args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: "boolean", default: false } });
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const result = await labStatus(paths);
  console.log(values.json ? JSON.stringify(result) : formatLabStatus(result));
  return result.ready ? 0 : 1;
}

async function build(paths: LabPaths, args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    name: { type: "string" },
    include: { type: "string", short: "I", multiple: true },
    define: { type: "string", short: "D", multiple: true },
    coverage: { type: "boolean", default: false },
  });
  if (positionals.length === 0) throw new UsageError("lab build needs <x.c>");
  const built = await buildDriver(paths, {
    sources: positionals,
    name: values.name as string | undefined,
    includeDirs: values.include as string[] | undefined,
    defines: values.define as string[] | undefined,
    coverage: values.coverage === true,
  });
  console.log(
    `built ${built.sys}` +
      (built.coverage
        ? ` (coverage build: section Global\\KbCov-<service>; kbridge lab load ${built.sys}, then kbridge fuzz --service ${built.name} --coverage)`
        : ""),
  );
  return 0;
}

async function check(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    json: { type: "boolean", default: false },
    all: { type: "boolean", default: false },
    "wine-dir": { type: "string" },
  });
  const [sys, ...extra] = positionals;
  if (sys === undefined) throw new UsageError("lab check needs <x.sys>");
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const report = await checkDriver(sys, { wineDir: values["wine-dir"] as string | undefined });
  console.log(
    values.json ? JSON.stringify(report) : formatCheckReport(report, { all: values.all === true }),
  );
  return report.ok ? 0 : 1;
}

async function load(paths: LabPaths, args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    name: { type: "string" },
    force: { type: "boolean", default: false },
    "wine-dir": { type: "string" },
  });
  const [sys, ...extra] = positionals;
  if (sys === undefined) throw new UsageError("lab load needs <x.sys>");
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const driver = await loadDriver(paths, sys, {
    name: values.name as string | undefined,
    force: values.force === true,
    wineDir: values["wine-dir"] as string | undefined,
    onDriverPrint: showDriverPrint,
  });
  console.log(`loaded ${driver.name} (${driver.sys})`);
  return 0;
}

async function unload(paths: LabPaths, args: string[]): Promise<number> {
  const [name, ...extra] = args;
  if (name === undefined) throw new UsageError("lab unload needs a service name");
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  await unloadDriver(paths, name);
  console.log(`unloaded ${name}`);
  return 0;
}

const toStdout = (bytes: Uint8Array) => Deno.stdout.write(bytes);
/** A driver's print, on standard error beside the script's output. */
const showDriverPrint = (text: string) => console.error(`dbgprint: ${text}`);

async function run(paths: LabPaths, args: string[]): Promise<number> {
  if (args.length === 0) throw new UsageError("lab run needs <script.ts>");
  await using log = await claimLog(paths.logs, "lab-run");
  const result = await runWindowsDeno(paths, ["run", "-A", ...args], {
    log: log.path,
    follow: toStdout,
    onDriverPrint: showDriverPrint,
  });
  reportCrashes(result.crashes);
  reportExit(result.code);
  return result.code !== 0 ? result.code : result.crashes.length > 0 ? 1 : 0;
}

async function test(paths: LabPaths, args: string[]): Promise<number> {
  await using log = await claimLog(paths.logs, "lab-test");
  const result = await runWindowsDeno(paths, ["test", "-A", ...args], {
    log: log.path,
    follow: toStdout,
    onDriverPrint: showDriverPrint,
    env: { NO_COLOR: "1" },
  });
  reportCrashes(result.crashes);
  reportExit(result.code);
  const counts = denoTestCounts(await readFrom(log.path, 0));
  // No summary (deno.exe died, or nothing ran): that is a failure too. A summary is the last
  // thing deno test prints, so one printed before Wine killed the process at its exit stands.
  const exitFailed = result.code !== 0 && result.code !== KILLED_AT_EXIT;
  const passed = counts?.passed ?? 0;
  const failed = (counts?.failed ?? 0) +
    (counts === undefined || (exitFailed && counts.failed === 0) ? 1 : 0);
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

async function restart(paths: LabPaths, args: string[]): Promise<number> {
  if (args.length > 0) throw new UsageError(`unexpected argument "${args[0]}"`);
  const { pid, reloaded } = await restartLab(paths);
  console.log(
    `restarted the wineserver (pid ${pid})${
      reloaded.length ? `; loaded ${reloaded.join(", ")} again` : ""
    }`,
  );
  return 0;
}

/**
 * Runs `kbridge lab ...` and returns the exit code.
 *
 * @example
 * ```ts ignore
 * await labCommand(["check", "build/fixture/kbwdm.sys"]);
 * ```
 */
export async function labCommand(args: string[]): Promise<number> {
  let rest = args;
  let dir: string | undefined;
  while (rest[0] === "--dir" || rest[0]?.startsWith("--dir=")) {
    if (rest[0] === "--dir") {
      if (rest[1] === undefined) throw new UsageError("--dir needs a directory");
      dir = rest[1];
      rest = rest.slice(2);
    } else {
      dir = rest[0].slice("--dir=".length);
      rest = rest.slice(1);
    }
  }
  const [action, ...actionArgs] = rest;
  if (action === undefined) throw new UsageError("lab needs an action");
  if (action === "--help" || action === "-h" || action === "help") {
    console.log(HELP);
    return 0;
  }
  if (actionArgs.includes("--help") && action !== "run" && action !== "test") {
    console.log(HELP);
    return 0;
  }
  const paths = labPaths(resolveLabDir(dir));
  switch (action) {
    case "setup":
      return await setup(paths, actionArgs);
    case "status":
      return await status(paths, actionArgs);
    case "build":
      return await build(paths, actionArgs);
    case "check":
      return await check(actionArgs);
    case "load":
      return await load(paths, actionArgs);
    case "unload":
      return await unload(paths, actionArgs);
    case "run":
      return await run(paths, actionArgs);
    case "test":
      return await test(paths, actionArgs);
    case "restart":
      return await restart(paths, actionArgs);
    default:
      throw new UsageError(`unknown lab action "${action}"`);
  }
}
