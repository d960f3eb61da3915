/**
 * `kbridge lab setup` and `kbridge lab status`: everything a driver needs to
 * run under Wine on Debian, in the lab directory, idempotently — the Debian
 * packages (or the apt-get line to run when not root), Deno for Windows at the
 * running Deno's version (npm `@deno/win32-x64`), a Wine prefix, the
 * `bcryptprimitives.dll` shim built with mingw from the C source shipped in
 * this package, a patched private copy of deno.exe, the porting header, and a
 * persistent wineserver, verified to run.
 *
 * @module
 */
import { LabError } from "./lab_error.ts";
import { driverHosts } from "./hosts.ts";
import type { LabPaths } from "./paths.ts";
import { readLabState } from "./state.ts";
import { ensureWineServer, runToFile, wineEnv, wineServerPid } from "./wine.ts";

/**
 * The Debian packages the lab needs (Wine, its 64-bit loader, mingw-w64 and its DDK headers).
 *
 * @example
 * ```ts
 * import { LAB_PACKAGES } from "./setup.ts";
 * LAB_PACKAGES.includes("wine64"); // true
 * ```
 */
export const LAB_PACKAGES: readonly string[] = [
  "wine",
  "wine64",
  "gcc-mingw-w64-x86-64",
  "mingw-w64-x86-64-dev",
];

/**
 * What set-up asks of the machine; injectable for tests (e.g. a package
 * checker that reports packages missing, as on a fresh machine).
 *
 * @example
 * ```ts
 * import type { SetupHost } from "./setup.ts";
 * const fresh: Partial<SetupHost> = { isInstalled: () => Promise.resolve(false), isRoot: () => false };
 * ```
 */
export interface SetupHost {
  /** Whether Debian package `name` is installed. */
  isInstalled(name: string): Promise<boolean>;
  /** Whether the process runs as root (and may run apt-get). */
  isRoot(): boolean;
  /** Installs packages (as root); returns the exit code. */
  installPackages(names: readonly string[], log: string): Promise<number>;
}

/**
 * dpkg's view of the machine, and apt-get.
 *
 * @example
 * ```ts ignore
 * await debianHost.isInstalled("wine"); // true once installed
 * ```
 */
export const debianHost: SetupHost = {
  async isInstalled(name: string): Promise<boolean> {
    try {
      const { stdout, success } = await new Deno.Command("dpkg-query", {
        args: ["-W", "-f=${Status}", name],
        stdin: "null",
        stdout: "piped",
        stderr: "null",
      }).output();
      return success && new TextDecoder().decode(stdout).trim() === "install ok installed";
    } catch {
      return false;
    }
  },
  isRoot(): boolean {
    try {
      return Deno.uid() === 0;
    } catch {
      return false;
    }
  },
  async installPackages(names: readonly string[], log: string): Promise<number> {
    const env = { DEBIAN_FRONTEND: "noninteractive" };
    const update = await runToFile("apt-get", ["update", "-qq"], { out: log, env });
    if (update !== 0) return update;
    return await runToFile(
      "apt-get",
      ["install", "-y", "-qq", "--no-install-recommends", ...names],
      {
        out: log,
        append: true,
        env,
      },
    );
  },
};

/**
 * Options of {@linkcode setupLab}.
 *
 * @example
 * ```ts
 * import type { SetupOptions } from "./setup.ts";
 * const options: SetupOptions = { extraPackages: ["clang"] };
 * ```
 */
export interface SetupOptions {
  /** More Debian packages to require (the repository's harness adds clang for its analyzer). */
  extraPackages?: readonly string[];
  /** The Deno version of the Windows build (default: the running Deno's). */
  denoVersion?: string;
  /** The machine (default {@linkcode debianHost}). */
  host?: Partial<SetupHost>;
  /** Progress, one line per step (default: nothing). */
  progress?: (line: string) => void;
}

/**
 * The `apt-get` line that installs `packages`.
 *
 * @example
 * ```ts
 * import { aptLine } from "./setup.ts";
 * aptLine(["wine"]); // "apt-get update && apt-get install -y --no-install-recommends wine"
 * ```
 */
export function aptLine(packages: readonly string[]): string {
  return `apt-get update && apt-get install -y --no-install-recommends ${packages.join(" ")}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
}

/** The headers `lab setup` writes to the lab's include folder for WDK-style sources. */
const PORTING_HEADERS = ["kbport.h", "dontuse.h"] as const;

/**
 * The bytes of a file shipped with this package, `relative` to this module
 * (works from a checkout and from JSR).
 *
 * @throws {LabError} `setup` when it cannot be read
 *
 * @example
 * ```ts ignore
 * const header = await shipped("./include/kbport.h");
 * ```
 */
export async function shipped(relative: string): Promise<Uint8Array> {
  const url = new URL(relative, import.meta.url);
  const response = await fetch(url);
  if (!response.ok) {
    throw new LabError("setup", `kbridge lab: cannot read ${url}: HTTP ${response.status}`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

async function sameBytes(path: string, bytes: Uint8Array): Promise<boolean> {
  try {
    const current = await Deno.readFile(path);
    return current.length === bytes.length && current.every((byte, i) => byte === bytes[i]);
  } catch {
    return false;
  }
}

/**
 * Writes `bytes` to `path` unless it already holds them (by a rename, so that
 * readers never see half); whether it wrote.
 *
 * @example
 * ```ts ignore
 * await writeIfChanged("build/include/kbport.h", await shipped("./include/kbport.h"));
 * ```
 */
export async function writeIfChanged(path: string, bytes: Uint8Array): Promise<boolean> {
  if (await sameBytes(path, bytes)) return false;
  await Deno.writeFile(`${path}.tmp`, bytes);
  await Deno.rename(`${path}.tmp`, path);
  return true;
}

/**
 * The Debian packages of `wanted` that are missing.
 *
 * @example
 * ```ts ignore
 * await missingPackages(LAB_PACKAGES); // [] on a set-up machine
 * ```
 */
export async function missingPackages(
  wanted: readonly string[],
  host: Pick<SetupHost, "isInstalled"> = debianHost,
): Promise<string[]> {
  const missing: string[] = [];
  for (const name of wanted) if (!await host.isInstalled(name)) missing.push(name);
  return missing;
}

/**
 * Patches V8's lookup of `VirtualAlloc2` out of a deno.exe image: Wine 8's
 * VirtualAlloc2 rejects MEM_RESERVE_PLACEHOLDER, and without the name V8 falls
 * back to emulated subspaces. Exactly one `VirtualAlloc2\0` must be there.
 *
 * @throws {LabError} `setup` when the string is not there exactly once
 *
 * @example
 * ```ts ignore
 * const patched = patchDenoExe(await Deno.readFile("deno.exe"));
 * ```
 */
export function patchDenoExe(image: Uint8Array): Uint8Array {
  const needle = new TextEncoder().encode("VirtualAlloc2\0");
  const found: number[] = [];
  outer: for (
    let i = image.indexOf(needle[0]);
    i >= 0 && i <= image.length - needle.length;
    i = image.indexOf(needle[0], i + 1)
  ) {
    for (let j = 1; j < needle.length; j++) if (image[i + j] !== needle[j]) continue outer;
    found.push(i);
  }
  if (found.length !== 1) {
    throw new LabError(
      "setup",
      `kbridge lab: expected one "VirtualAlloc2" string in deno.exe, found ${found.length}`,
    );
  }
  const patched = image.slice();
  patched[found[0] + needle.length - 2] = "X".charCodeAt(0);
  return patched;
}

async function installWindowsDeno(
  paths: LabPaths,
  version: string,
  say: (line: string) => void,
): Promise<void> {
  if (await exists(paths.denoExe) && (await readText(paths.denoVersionFile))?.trim() === version) {
    return;
  }
  say(
    `installing Deno ${version} for Windows (npm @deno/win32-x64, about 97 MB) and patching a private copy`,
  );
  const work = `${paths.win}/download`;
  await Deno.remove(work, { recursive: true }).catch(() => {});
  await Deno.mkdir(work, { recursive: true });
  const log = `${paths.logs}/npm-deno-win.log`;
  const pack = await runToFile("npm", ["pack", "--silent", `@deno/win32-x64@${version}`], {
    out: log,
    cwd: work,
  });
  const tarball = pack === 0
    ? [...Deno.readDirSync(work)].find((entry) => entry.name.endsWith(".tgz"))?.name
    : undefined;
  if (tarball === undefined) {
    throw new LabError(
      "setup",
      `kbridge lab: npm pack @deno/win32-x64@${version} failed (see ${log}; ` +
        "the Windows build can lag a patch release: try --deno-version)",
    );
  }
  if (await runToFile("tar", ["-xzf", tarball], { out: log, append: true, cwd: work }) !== 0) {
    throw new LabError("setup", `kbridge lab: cannot unpack ${tarball} (see ${log})`);
  }
  await writeIfChanged(
    paths.denoExe,
    patchDenoExe(await Deno.readFile(`${work}/package/deno.exe`)),
  );
  await Deno.writeTextFile(paths.denoVersionFile, `${version}\n`);
  await Deno.remove(work, { recursive: true });
}

async function buildShim(paths: LabPaths, say: (line: string) => void): Promise<void> {
  const source = await shipped("./bcryptprimitives.c");
  const sourcePath = `${paths.win}/bcryptprimitives.c`;
  if (!await writeIfChanged(sourcePath, source) && await exists(paths.shim)) return;
  say("building the bcryptprimitives.dll shim (mingw-w64)");
  const log = `${paths.logs}/shim.log`;
  const code = await runToFile(
    "x86_64-w64-mingw32-gcc",
    ["-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-o", paths.shim, sourcePath, "-ladvapi32"],
    { out: log },
  );
  if (code !== 0) throw new LabError("setup", `kbridge lab: building the shim failed (see ${log})`);
}

async function createPrefix(paths: LabPaths, say: (line: string) => void): Promise<void> {
  // The registry files appear only when the server flushes them: keep a marker instead.
  if (await exists(paths.prefixReady)) return;
  say(`creating the Wine prefix ${paths.prefix} (about 10 s)`);
  const log = `${paths.logs}/wineboot.log`;
  const code = await runToFile("wine", ["wineboot", "-i"], { out: log, env: wineEnv(paths) });
  if (code !== 0) {
    throw new LabError("setup", `kbridge lab: wineboot -i failed with ${code} (see ${log})`);
  }
  await Deno.writeTextFile(paths.prefixReady, "");
}

async function installShim(paths: LabPaths): Promise<void> {
  await writeIfChanged(
    `${paths.prefix}/drive_c/windows/system32/bcryptprimitives.dll`,
    await Deno.readFile(paths.shim),
  );
}

/** Copies of deno.exe left in the prefix by runs without DENO_DISABLE_NODE_SHIM. */
async function removeNodeShimCopies(paths: LabPaths): Promise<void> {
  const users = `${paths.prefix}/drive_c/users`;
  if (!await exists(users)) return;
  for await (const user of Deno.readDir(users)) {
    await Deno.remove(`${users}/${user.name}/AppData/Local/deno/node_compat_bin`, {
      recursive: true,
    })
      .catch(() => {});
  }
}

/**
 * Sets the lab up in `paths.dir` (see the module's documentation). A second
 * run with everything in place only checks.
 *
 * @throws {LabError} `missing-packages` (with the apt-get line) when packages
 *   are missing and the user is not root; `setup` or `wine` when a step fails
 *
 * @example
 * ```ts ignore
 * await setupLab(labPaths(resolveLabDir(undefined)), { progress: console.error });
 * ```
 */
export async function setupLab(paths: LabPaths, options: SetupOptions = {}): Promise<void> {
  const host: SetupHost = { ...debianHost, ...options.host };
  const say = options.progress ?? (() => {});
  await Deno.mkdir(paths.logs, { recursive: true });
  await Deno.mkdir(paths.win, { recursive: true });

  const wanted = [...LAB_PACKAGES, ...(options.extraPackages ?? [])];
  const missing = await missingPackages(wanted, host);
  if (missing.length > 0) {
    if (!host.isRoot()) {
      throw new LabError(
        "missing-packages",
        `kbridge lab: missing Debian packages: ${missing.join(" ")}; run as root: ${
          aptLine(wanted)
        }`,
      );
    }
    say(`installing ${missing.join(" ")} (apt-get, about 30 s)`);
    const log = `${paths.logs}/apt.log`;
    if (await host.installPackages(wanted, log) !== 0) {
      throw new LabError("setup", `kbridge lab: apt-get failed (see ${log})`);
    }
  }

  await installWindowsDeno(paths, options.denoVersion ?? Deno.version.deno, say);
  await buildShim(paths, say);
  await Deno.mkdir(paths.include, { recursive: true });
  for (const header of PORTING_HEADERS) {
    await writeIfChanged(`${paths.include}/${header}`, await shipped(`./include/${header}`));
  }
  await createPrefix(paths, say);
  await installShim(paths);
  await removeNodeShimCopies(paths);
  const pid = await ensureWineServer(paths);
  say(`ready: persistent wineserver pid ${pid} serves ${paths.prefix}`);
}

/**
 * What {@linkcode labStatus} found.
 *
 * @example
 * ```ts ignore
 * const status: LabStatus = await labStatus(paths);
 * if (!status.ready) console.log(status.missing);
 * ```
 */
export interface LabStatus {
  /** The lab directory. */
  readonly dir: string;
  /** Debian packages missing. */
  readonly missingPackages: readonly string[];
  /** The Deno version of the patched deno.exe, if installed. */
  readonly denoExe?: string;
  /** Whether the prefix was created. */
  readonly prefix: boolean;
  /** Whether the shim is in the prefix. */
  readonly shim: boolean;
  /** The pid of the persistent wineserver, if one runs. */
  readonly wineserver?: number;
  /** The live driver hosts: pid and driver files. */
  readonly hosts: readonly { readonly pid: number; readonly drivers: readonly string[] }[];
  /** The drivers the lab loaded (its state), by service name. */
  readonly loaded: readonly {
    readonly name: string;
    readonly sys: string;
    readonly running: boolean;
  }[];
  /** Everything needed is there and the server runs. */
  readonly ready: boolean;
}

/**
 * What is there and what runs (nothing is changed).
 *
 * @example
 * ```ts ignore
 * console.log(formatLabStatus(await labStatus(paths)));
 * ```
 */
export async function labStatus(
  paths: LabPaths,
  options: { extraPackages?: readonly string[]; host?: Partial<SetupHost> } = {},
): Promise<LabStatus> {
  const host: SetupHost = { ...debianHost, ...options.host };
  const missing = await missingPackages([...LAB_PACKAGES, ...(options.extraPackages ?? [])], host);
  const denoExe = await exists(paths.denoExe)
    ? (await readText(paths.denoVersionFile))?.trim()
    : undefined;
  const prefix = await exists(paths.prefixReady);
  const shim = await exists(`${paths.prefix}/drive_c/windows/system32/bcryptprimitives.dll`);
  const wineserver = await wineServerPid(paths.prefix, { persistentOnly: true });
  const hosts = wineserver === undefined ? [] : await driverHosts(paths.prefix);
  const state = await readLabState(paths);
  const loaded = state.drivers.map((driver) => ({
    name: driver.name,
    sys: driver.sys,
    running: hosts.some((h) => h.drivers.includes(driver.sys)),
  }));
  return {
    dir: paths.dir,
    missingPackages: missing,
    ...(denoExe !== undefined ? { denoExe } : {}),
    prefix,
    shim,
    ...(wineserver !== undefined ? { wineserver } : {}),
    hosts: hosts.map((h) => ({ pid: h.pid, drivers: h.drivers })),
    loaded,
    ready: missing.length === 0 && denoExe !== undefined && prefix && shim &&
      wineserver !== undefined,
  };
}

/**
 * The status as lines of text.
 *
 * @example
 * ```ts ignore
 * console.log(formatLabStatus(await labStatus(paths)));
 * ```
 */
export function formatLabStatus(status: LabStatus): string {
  const yes = (ok: boolean, text: string) => `${ok ? "ok     " : "MISSING"} ${text}`;
  const lines = [
    `lab ${status.dir}: ${status.ready ? "ready" : "not ready (run: kbridge lab setup)"}`,
    yes(
      status.missingPackages.length === 0,
      status.missingPackages.length === 0
        ? "Debian packages"
        : `Debian packages: ${status.missingPackages.join(" ")}`,
    ),
    yes(
      status.denoExe !== undefined,
      `Deno for Windows${status.denoExe ? ` ${status.denoExe} (patched)` : ""}`,
    ),
    yes(status.prefix, "Wine prefix"),
    yes(status.shim, "bcryptprimitives.dll shim in the prefix"),
    status.wineserver !== undefined
      ? `running persistent wineserver, pid ${status.wineserver}`
      : "STOPPED wineserver (kbridge lab setup starts it)",
  ];
  for (const host of status.hosts) {
    lines.push(
      `running driver host pid ${host.pid}${
        host.drivers.length ? `: ${host.drivers.join(", ")}` : ""
      }`,
    );
  }
  for (const driver of status.loaded) {
    lines.push(`${driver.running ? "running" : "DEAD   "} driver ${driver.name} (${driver.sys})`);
  }
  return lines.join("\n");
}
