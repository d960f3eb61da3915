/**
 * `kbridge lab load`, `unload` and `restart`: a driver service under Wine,
 * through the library's service API run by the Windows Deno (the lab's
 * agent), with the reason of a failed start in one line.
 *
 * @module
 */
import { AGENT_MARK, type AgentResult } from "./agent.ts";
import { checkDriver, type CheckReport } from "./check.ts";
import { formatCrashReport } from "./crash.ts";
import { driverHosts } from "./hosts.ts";
import { claimLog } from "./log_slot.ts";
import { LabError } from "./lab_error.ts";
import { type LabPaths, windowsPath, windowsSpecifier } from "./paths.ts";
import { parsePe } from "./pe.ts";
import { readFrom, runWindowsDeno } from "./run.ts";
import { type LoadedDriver, readLabState, writeLabState } from "./state.ts";
import { ensureWineServer, stopWineServer } from "./wine.ts";

const ERROR_INVALID_HANDLE = 6;

/**
 * A service name the lab accepts: what `installDriver` accepts, kept to
 * characters that are safe in a file name.
 *
 * @example
 * ```ts
 * import { isServiceName } from "./driver.ts";
 * isServiceName("kbwdm"); // true
 * isServiceName("../x"); // false
 * ```
 */
export function isServiceName(name: string): boolean {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(name) && !name.startsWith(".");
}

/**
 * The default service name of a driver file: its base name without `.sys`.
 *
 * @example
 * ```ts
 * import { serviceNameOf } from "./driver.ts";
 * serviceNameOf("/tmp/build/kbwdm.sys"); // "kbwdm"
 * ```
 */
export function serviceNameOf(sysPath: string): string {
  return sysPath.slice(sysPath.lastIndexOf("/") + 1).replace(/\.sys$/i, "");
}

async function runAgent(
  paths: LabPaths,
  args: readonly string[],
  logBase: string,
  known: LoadedDriver[],
  onDriverPrint?: (text: string) => void,
) {
  const knownModules = [];
  for (const driver of known) {
    try {
      // Before a host of it was seen (a crash in DriverEntry): the preferred base, where Wine put it if free.
      knownModules.push({
        path: driver.sys,
        base: parsePe(await Deno.readFile(driver.sys)).imageBase,
      });
    } catch {
      // Not readable: nothing to place addresses with.
    }
  }
  await using slot = await claimLog(paths.logs, logBase);
  const log = slot.path;
  const run = await runWindowsDeno(paths, [
    "run",
    "-A",
    windowsSpecifier(new URL("./agent.ts", import.meta.url)),
    ...args,
  ], {
    log,
    knownModules,
    onDriverPrint,
  });
  const output = await readFrom(log, 0);
  const line = output.split("\n").find((l) => l.startsWith(AGENT_MARK));
  let result: AgentResult | undefined;
  try {
    result = line === undefined ? undefined : JSON.parse(line.slice(AGENT_MARK.length).trim());
  } catch {
    result = undefined;
  }
  return { run, result, log };
}

/**
 * The missing imports in one line: a DLL Wine lacks altogether once (with what
 * it is), other functions one by one, each with its reason when known.
 */
function missingList(report: CheckReport): string {
  const parts: string[] = [];
  const grouped = new Set<string>();
  for (const entry of report.imports) {
    if (entry.status !== "missing" || grouped.has(entry.dll)) continue;
    const ofDll = report.imports.filter((i) => i.dll === entry.dll);
    const wholeDll = ofDll.every((i) =>
      i.status === "missing" && i.missingReason === entry.missingReason
    );
    const why = entry.missingReason !== undefined ? ` — ${entry.missingReason}` : "";
    if (wholeDll && entry.missingReason !== undefined) {
      grouped.add(entry.dll);
      parts.push(`${entry.dll}${why}`);
    } else {
      parts.push(`${entry.dll}!${entry.name}${why}`);
    }
  }
  return parts.join("; ");
}

function refusal(name: string, report: CheckReport): LabError | undefined {
  const stubs = report.imports.filter((i) => i.status === "stub").map((i) => `${i.dll}!${i.name}`);
  const missing = report.imports.filter((i) => i.status === "missing").map((i) =>
    `${i.dll}!${i.name}`
  );
  if (missing.length > 0) {
    return new LabError(
      "missing-import",
      `kbridge lab: ${name} not loaded, the driver cannot load: Wine lacks ${missingList(report)}`,
    );
  }
  if (stubs.length > 0) {
    return new LabError(
      "stub-import",
      `kbridge lab: ${name} not loaded: it imports Wine stubs ${stubs.join(", ")} ` +
        "(calling one kills the driver host; kbridge lab check for details, --force to load anyway)",
    );
  }
  return undefined;
}

/**
 * Options of {@linkcode loadDriver}.
 *
 * @example
 * ```ts
 * import type { LoadOptions } from "./driver.ts";
 * const options: LoadOptions = { name: "kbwdm", force: false };
 * ```
 */
export interface LoadOptions {
  /** The service name (default: the file's base name). */
  name?: string;
  /** Load even when the driver imports Wine stubs. */
  force?: boolean;
  /** Where Wine's DLLs are, for the import check. */
  wineDir?: string;
  /** Called with each line the driver prints while it starts (`DbgPrint` in `DriverEntry`, …). */
  onDriverPrint?: (text: string) => void;
}

/**
 * Copies the driver into the lab, installs and starts it as a kernel driver
 * service under Wine, and checks that its host runs. Refuses a driver that
 * imports a function Wine lacks or stubs (unless `force` for stubs).
 *
 * @throws {LabError} `missing-import`, `stub-import`, or `load` with the
 *   reason in one line (Wine's crash text and where, a stub hit, or the
 *   service error)
 *
 * @example
 * ```ts ignore
 * const driver = await loadDriver(paths, "build/fixture/kbwdm.sys");
 * console.log(`loaded ${driver.name}`);
 * ```
 */
export async function loadDriver(
  paths: LabPaths,
  sysPath: string,
  options: LoadOptions = {},
): Promise<LoadedDriver> {
  const name = options.name ?? serviceNameOf(sysPath);
  if (!isServiceName(name)) {
    throw new LabError(
      "load",
      `kbridge lab: "${name}" is no service name (letters, digits, _ . -)`,
    );
  }
  const report = await checkDriver(sysPath, { wineDir: options.wineDir });
  const refused = refusal(name, report);
  if (refused !== undefined && !(options.force && refused.reason === "stub-import")) throw refused;

  await ensureWineServer(paths);
  await Deno.mkdir(paths.drivers, { recursive: true });
  const copy = `${paths.drivers}/${name}.sys`;
  // By a rename: a host still running the old image keeps its own file.
  await Deno.copyFile(sysPath, `${copy}.tmp`);
  await Deno.rename(`${copy}.tmp`, copy);
  const driver: LoadedDriver = { name, sys: copy, source: sysPath };
  await startService(paths, driver, options.onDriverPrint);

  const state = await readLabState(paths);
  await writeLabState(paths, {
    drivers: [...state.drivers.filter((d) => d.name !== name), driver],
  });
  return driver;
}

/** Runs the agent's load and turns a failure into one line. */
async function startService(
  paths: LabPaths,
  driver: LoadedDriver,
  onDriverPrint?: (text: string) => void,
): Promise<void> {
  // A host that runs before the load and dies during it was stopping the old instance.
  const earlier = new Set((await driverHosts(paths.prefix)).map((host) => host.pid));
  const { run, result, log } = await runAgent(
    paths,
    ["load", driver.name, windowsPath(driver.sys)],
    `lab-load-${driver.name}`,
    [driver],
    onDriverPrint,
  );
  const crash = run.crashes[0];
  if (result?.ok && crash === undefined) {
    // StartServiceW returned: the host must still be there with the driver.
    const hosts = await driverHosts(paths.prefix);
    if (hosts.some((host) => host.drivers.includes(driver.sys))) return;
    throw new LabError(
      "load",
      `kbridge lab: ${driver.name} started, but no driver host holds ${driver.sys}`,
    );
  }
  if (crash !== undefined) {
    const stage = crash.hostPid !== undefined && earlier.has(crash.hostPid)
      ? "while the running instance stopped, in its DriverUnload"
      : result?.ok
      ? "after DriverEntry"
      : "in DriverEntry";
    throw new LabError(
      "load",
      `${formatCrashReport(crash)} (${stage}; Wine's output: ${paths.wineStartLog})`,
    );
  }
  let why = result?.message ?? `the agent printed no result (exit code ${run.code}, see ${log})`;
  // What StartServiceW says under Wine when a dead host's \DosDevices link is still there.
  if (result?.code === ERROR_INVALID_HANDLE) {
    why +=
      " (a driver host that died left its \\DosDevices link behind? kbridge lab restart clears it)";
  }
  throw new LabError("load", `kbridge lab: ${driver.name} did not start: ${why}`);
}

/**
 * Stops and removes driver service `name` (a dead host is expected) and
 * forgets it.
 *
 * @example
 * ```ts ignore
 * await unloadDriver(paths, "kbwdm");
 * ```
 */
export async function unloadDriver(paths: LabPaths, name: string): Promise<void> {
  if (!isServiceName(name)) throw new LabError("load", `kbridge lab: "${name}" is no service name`);
  const { run, result, log } = await runAgent(paths, ["unload", name], `lab-unload-${name}`, []);
  if (!result?.ok) {
    throw new LabError(
      "load",
      `kbridge lab: ${name} not unloaded: ${
        result?.message ?? `exit code ${run.code}, see ${log}`
      }`,
    );
  }
  const state = await readLabState(paths);
  await writeLabState(paths, { drivers: state.drivers.filter((d) => d.name !== name) });
}

/**
 * Restarts the prefix's wineserver (every Wine process of the prefix ends,
 * stale `\DosDevices` links of dead hosts go) and loads again the drivers the
 * lab had loaded. Returns the new server's pid and the drivers reloaded.
 *
 * @throws {LabError} `load` when a driver does not start again
 *
 * @example
 * ```ts ignore
 * const { pid, reloaded } = await restartLab(paths);
 * ```
 */
export async function restartLab(paths: LabPaths): Promise<{ pid: number; reloaded: string[] }> {
  await stopWineServer(paths);
  const pid = await ensureWineServer(paths);
  const reloaded: string[] = [];
  for (const driver of (await readLabState(paths)).drivers) {
    await startService(paths, driver);
    reloaded.push(driver.name);
  }
  return { pid, reloaded };
}
