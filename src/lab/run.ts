/**
 * `kbridge lab run` and `kbridge lab test`: the Windows Deno under Wine, in
 * the lab's prefix with the harness's environment, its output through a file
 * (copied on live), the driver hosts watched meanwhile, and a crash report
 * for every host that died.
 *
 * @module
 */
import { type CrashReport, crashReports } from "./crash.ts";
import type { HostModule } from "./hosts.ts";
import { HostWatcher } from "./hosts.ts";
import { LabError } from "./lab_error.ts";
import { type LabPaths, windowsPath, windowsSpecifier } from "./paths.ts";
import { driverPrintSink } from "./driver_print.ts";
import { ensureWineServer, fileFollower, fileSize, runToFile, wineEnv } from "./wine.ts";

/**
 * The outcome of a Windows Deno run.
 *
 * @example
 * ```ts ignore
 * const run: WineRun = await runWindowsDeno(paths, ["run", "-A", "x.ts"], { log: "x.log" });
 * ```
 */
export interface WineRun {
  /**
   * deno.exe's exit code. For `run`, the code the script exited with even when
   * Wine killed the process at its exit (src/lab/exit_code.ts keeps it);
   * {@linkcode KILLED_AT_EXIT} when it was killed with no code kept.
   */
  readonly code: number;
  /** One report per driver host that died during the run. */
  readonly crashes: readonly CrashReport[];
  /** The file holding the run's output. */
  readonly log: string;
  /** What the drivers printed during the run (`DbgPrint`, `DbgPrintEx`, `KdPrint`), in order. */
  readonly driverPrints: readonly string[];
}

/**
 * Options of {@linkcode runWindowsDeno}.
 *
 * @example
 * ```ts
 * import type { WindowsDenoOptions } from "./run.ts";
 * const options: WindowsDenoOptions = { log: "/tmp/lab/logs/run.log" };
 * ```
 */
export interface WindowsDenoOptions {
  /** The output file. */
  log: string;
  /** Receives the output while it is written (CRs removed). */
  follow?: (bytes: Uint8Array) => Promise<unknown> | unknown;
  /** More environment variables for deno.exe. */
  env?: Record<string, string>;
  /** Called with each line a driver prints (`DbgPrint`, …) while the run goes on. */
  onDriverPrint?: (text: string) => void;
  /** Modules to place crash addresses in when no live host showed them (e.g. a driver being loaded, at its preferred base). */
  knownModules?: readonly HostModule[];
}

/**
 * The text of file `path` after byte `offset` ("" when there is none).
 *
 * @example
 * ```ts ignore
 * const crashLines = await readFrom(paths.wineStartLog, mark);
 * ```
 */
export async function readFrom(path: string, offset: number): Promise<string> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch {
    return "";
  }
  try {
    // Only the part after `offset`: a lab's Wine log grows over its life.
    const size = (await file.stat()).size;
    if (size <= offset) return "";
    await file.seek(offset, Deno.SeekMode.Start);
    const bytes = new Uint8Array(size - offset);
    let read = 0;
    while (read < bytes.length) {
      const n = await file.read(bytes.subarray(read));
      if (n === null) break;
      read += n;
    }
    return new TextDecoder().decode(bytes.subarray(0, read));
  } finally {
    file.close();
  }
}

/**
 * Checks that the lab is set up and its wineserver runs (starting it when needed).
 *
 * @throws {LabError} `not-set-up` without the patched deno.exe
 *
 * @example
 * ```ts ignore
 * await requireLab(paths);
 * ```
 */
export async function requireLab(paths: LabPaths): Promise<void> {
  try {
    await Deno.stat(paths.denoExe);
    await Deno.stat(paths.prefixReady);
  } catch {
    throw new LabError(
      "not-set-up",
      `kbridge lab: ${paths.dir} is not set up (run: kbridge lab setup)`,
    );
  }
  await ensureWineServer(paths);
}

/** The exit code src/lab/exit_code.ts wrote, or undefined when it wrote none. */
async function keptExitCode(file: string): Promise<number | undefined> {
  const match = /^(\d+)\n$/.exec(await Deno.readTextFile(file));
  return match === null ? undefined : Number(match[1]);
}

/**
 * Runs the Windows Deno with `args` in the lab, watching the driver hosts.
 *
 * @example
 * ```ts ignore
 * const run = await runWindowsDeno(paths, ["run", "-A", "script.ts"], { log, follow: (b) => Deno.stdout.write(b) });
 * for (const crash of run.crashes) console.error(formatCrashReport(crash));
 * ```
 */
export async function runWindowsDeno(
  paths: LabPaths,
  args: readonly string[],
  options: WindowsDenoOptions,
): Promise<WineRun> {
  await requireLab(paths);
  const mark = await fileSize(paths.wineStartLog);
  const watcher = new HostWatcher(paths.prefix);
  await watcher.poll();
  const follow = options.follow === undefined
    ? undefined
    : fileFollower(options.log, options.follow);
  const driverPrints: string[] = [];
  const printSink = driverPrintSink((text) => {
    driverPrints.push(text);
    options.onDriverPrint?.(text);
  });
  // The one reader of Wine's output during the run: the prints as they come, the crash lines at the end.
  let wineOutput = "";
  const followWine = fileFollower(paths.wineStartLog, (bytes) => {
    wineOutput += printSink(bytes);
  }, mark);
  let ticks = 0;
  // A `run` keeps its exit code in a file, which outlives a kill at the process's exit.
  const exitFile = args[0] === "run" ? await Deno.makeTempFile({ prefix: "kbridge-exit-" }) : "";
  let code: number;
  try {
    const denoArgs = exitFile === "" ? args : [
      "run",
      "--preload",
      windowsSpecifier(new URL("./exit_code.ts", import.meta.url)),
      ...args.slice(1),
    ];
    const status = await runToFile("wine", [paths.denoExe, ...denoArgs], {
      out: options.log,
      env: {
        ...wineEnv(paths),
        ...options.env,
        ...(exitFile === "" ? {} : { KBRIDGE_LAB_EXIT_FILE: windowsPath(exitFile) }),
      },
      onTick: async () => {
        if (++ticks % 3 === 0) await watcher.poll();
        await followWine();
        await follow?.();
      },
    });
    code = (exitFile === "" ? undefined : await keptExitCode(exitFile)) ?? status;
  } finally {
    if (exitFile !== "") await Deno.remove(exitFile);
  }
  await watcher.poll();
  await followWine();
  await follow?.();
  const crashes = await crashReports(
    wineOutput,
    [...watcher.modules, ...(options.knownModules ?? [])],
    watcher.died,
  );
  return { code, crashes, log: options.log, driverPrints };
}

/**
 * The exit status of a Windows process killed by SIGKILL (128 + 9), with no
 * exit code kept: Wine kills a process whose exit takes over a second, as it
 * can on a loaded machine (a `run` that ended normally keeps its code; a
 * `test`, or a script ended by an uncaught error, does not), or something
 * killed it while it ran.
 *
 * @example
 * ```ts
 * import { KILLED_AT_EXIT } from "./run.ts";
 * KILLED_AT_EXIT; // 137
 * ```
 */
export const KILLED_AT_EXIT = 137;

/**
 * What the lab says of a Windows process that ended with `code`: a note for
 * {@linkcode KILLED_AT_EXIT}, otherwise undefined.
 *
 * @example
 * ```ts
 * import { exitNote } from "./run.ts";
 * exitNote(0); // undefined
 * ```
 */
export function exitNote(code: number): string | undefined {
  return code === KILLED_AT_EXIT
    ? `kbridge lab: deno.exe was killed (SIGKILL, exit status ${KILLED_AT_EXIT}) and kept no exit code: ` +
      "Wine kills a process whose exit takes over a second, as on a loaded machine, or something " +
      "killed it while it ran"
    : undefined;
}

/**
 * The counts of Deno's test summary (`ok | 5 passed | 0 failed (1s)`, as
 * printed with NO_COLOR), or undefined when the output has none.
 *
 * @example
 * ```ts
 * import { denoTestCounts } from "./run.ts";
 * denoTestCounts("FAILED | 3 passed | 1 failed (2s)\n"); // { passed: 3, failed: 1 }
 * ```
 */
export function denoTestCounts(output: string): { passed: number; failed: number } | undefined {
  let counts: { passed: number; failed: number } | undefined;
  for (const line of output.replaceAll("\r", "").split("\n")) {
    const match = /^(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/.exec(line);
    if (match !== null) counts = { passed: Number(match[1]), failed: Number(match[2]) };
  }
  return counts;
}
