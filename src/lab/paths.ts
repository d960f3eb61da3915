/**
 * Where the lab keeps its state: one directory (default `./build`, or
 * `--dir`, or the environment variable `KBRIDGE_LAB_DIR`), shared by the
 * repository's harness and by users.
 *
 * ```
 * <dir>/wine-prefix/        the private Wine prefix (WINEPREFIX)
 * <dir>/win/deno-wine.exe   the patched private copy of Deno for Windows; win/version
 * <dir>/win/bcryptprimitives.dll  the shim, built from src/lab/bcryptprimitives.c
 * <dir>/include/kbport.h    the porting header for WDK-style sources
 * <dir>/kit/                the kit's coverage runtime, for `kbridge lab build --coverage`
 * <dir>/logs/               wine-start.log (Wine's crash lines), setup and run logs (lab-run.log;
 *                           lab-run.2.log for a second run at the same time, …)
 * <dir>/lab/drivers/        the copies of loaded drivers (crash reports read them), and
 *                           the drivers `kbridge lab build` makes (<name>.sys)
 * <dir>/lab/state.json      the drivers the lab loaded (for `lab restart`)
 * ```
 *
 * @module
 */

/**
 * The lab's files and directories.
 *
 * @example
 * ```ts
 * import { labPaths } from "./paths.ts";
 * labPaths("/tmp/lab").prefix; // "/tmp/lab/wine-prefix"
 * ```
 */
export interface LabPaths {
  /** The lab directory (absolute). */
  readonly dir: string;
  /** The Wine prefix. */
  readonly prefix: string;
  /** Deno for Windows and the shim. */
  readonly win: string;
  /** The patched private deno.exe. */
  readonly denoExe: string;
  /** The Deno version the patched deno.exe is of. */
  readonly denoVersionFile: string;
  /** The bcryptprimitives.dll shim. */
  readonly shim: string;
  /** The porting header's directory. */
  readonly include: string;
  /** The kit's coverage runtime sources, for coverage builds. */
  readonly kit: string;
  /** Log files. */
  readonly logs: string;
  /** Output of the process that started the wineserver's services: Wine's crash lines. */
  readonly wineStartLog: string;
  /** Copies of loaded drivers. */
  readonly drivers: string;
  /** The loaded drivers, as JSON. */
  readonly state: string;
  /** A marker written once `wineboot -i` completed. */
  readonly prefixReady: string;
}

/**
 * The lab directory: `dir` if given, else `$KBRIDGE_LAB_DIR`, else `./build`; made absolute.
 *
 * @example
 * ```ts ignore
 * resolveLabDir(undefined); // "/home/me/project/build"
 * ```
 */
export function resolveLabDir(dir: string | undefined): string {
  let chosen = dir;
  if (chosen === undefined) {
    try {
      chosen = Deno.env.get("KBRIDGE_LAB_DIR");
    } catch {
      // No --allow-env: the default.
    }
  }
  chosen = chosen === undefined || chosen === "" ? "build" : chosen;
  return chosen.startsWith("/")
    ? chosen.replace(/\/+$/, "") || "/"
    : `${Deno.cwd()}/${chosen}`.replace(/\/+$/, "");
}

/**
 * The lab's paths under `dir` (see the module's documentation).
 *
 * @example
 * ```ts
 * import { labPaths } from "./paths.ts";
 * labPaths("/tmp/lab").denoExe; // "/tmp/lab/win/deno-wine.exe"
 * ```
 */
export function labPaths(dir: string): LabPaths {
  const win = `${dir}/win`;
  const logs = `${dir}/logs`;
  const prefix = `${dir}/wine-prefix`;
  return {
    dir,
    prefix,
    win,
    denoExe: `${win}/deno-wine.exe`,
    denoVersionFile: `${win}/version`,
    shim: `${win}/bcryptprimitives.dll`,
    include: `${dir}/include`,
    kit: `${dir}/kit`,
    logs,
    wineStartLog: `${logs}/wine-start.log`,
    drivers: `${dir}/lab/drivers`,
    state: `${dir}/lab/state.json`,
    prefixReady: `${prefix}/.kbridge-ready`,
  };
}

/**
 * The Windows path (drive `Z:` maps `/`) of a Linux path, as Wine sees it.
 *
 * @example
 * ```ts
 * import { windowsPath } from "./paths.ts";
 * windowsPath("/tmp/lab/x.sys"); // "Z:\\tmp\\lab\\x.sys"
 * ```
 */
export function windowsPath(linuxPath: string): string {
  return `Z:${linuxPath.replaceAll("/", "\\")}`;
}

/**
 * A module's URL as the Windows Deno reads it: a local file as its Windows
 * path, anything else as is.
 *
 * @example
 * ```ts
 * import { windowsSpecifier } from "./paths.ts";
 * windowsSpecifier(new URL("file:///tmp/lab/agent.ts")); // "Z:\\tmp\\lab\\agent.ts"
 * ```
 */
export function windowsSpecifier(url: URL): string {
  return url.protocol === "file:" ? windowsPath(decodeURIComponent(url.pathname)) : url.href;
}
