/**
 * The lab: test a Windows kernel driver under Wine on Linux — set-up, builds
 * from C sources (with coverage instrumentation for the fuzzer), a check
 * of its imports against the installed Wine, load/unload as a driver service,
 * scripts and tests with the Windows Deno, crash reports of driver hosts
 * (module+offset, function and line), and restart. What `kbridge lab` runs;
 * use it with the Linux Deno.
 *
 * @example
 * ```ts ignore
 * import { checkDriver, labPaths, loadDriver, resolveLabDir, runWindowsDeno } from "@kbridge/kbridge/lab";
 *
 * const paths = labPaths(resolveLabDir(undefined));
 * if ((await checkDriver("x.sys")).ok) await loadDriver(paths, "x.sys");
 * const run = await runWindowsDeno(paths, ["run", "-A", "client.ts"], { log: "run.log" });
 * ```
 *
 * @module
 */
export { KbridgeError } from "../core/errors.ts";
export { LabError, type LabErrorReason } from "./lab_error.ts";
export { type LabPaths, labPaths, resolveLabDir, windowsPath } from "./paths.ts";
export {
  aptLine,
  debianHost,
  formatLabStatus,
  LAB_PACKAGES,
  type LabStatus,
  labStatus,
  patchDenoExe,
  type SetupHost,
  setupLab,
  type SetupOptions,
} from "./setup.ts";
export {
  checkDriver,
  type CheckedImport,
  type CheckOptions,
  type CheckReport,
  findWineDllDir,
  formatCheckReport,
  type ImportStatus,
  isWineStub,
  WINE_DLL_DIRS,
} from "./check.ts";
export {
  type BuildCommand,
  buildDriver,
  type BuildOptions,
  type BuildPlan,
  buildPlan,
  type BuiltDriver,
  MINGW_DDK,
  MINGW_GCC,
} from "./build.ts";
export { parsePe, type PeExport, type PeImage, type PeImport, type PeSection } from "./pe.ts";
export { loadDriver, type LoadOptions, restartLab, unloadDriver } from "./driver.ts";
export type { LoadedDriver } from "./state.ts";
export {
  denoTestCounts,
  exitNote,
  KILLED_AT_EXIT,
  runWindowsDeno,
  type WindowsDenoOptions,
  type WineRun,
} from "./run.ts";
export {
  type CrashReport,
  crashReports,
  formatCrashReport,
  parseWineCrashes,
  type PlacedAddress,
  PRINTS_BEFORE_CRASH,
  type WineCrash,
} from "./crash.ts";
export { type DriverHost, driverHosts, type HostModule, HostWatcher } from "./hosts.ts";
export { dosLinkOf, removeDosDeviceLink } from "../io/dos_link.ts";
export { underWine } from "../core/native.ts";
