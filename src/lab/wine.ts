/**
 * Running Wine programs for the lab, from the Linux side: the environment of
 * the harness, output through files (never a pipe: the first Wine process of
 * a server starts services.exe, which inherits its output and would keep a
 * pipe open forever), and the persistent wineserver of the prefix, verified.
 *
 * @module
 */
import { LabError } from "./lab_error.ts";
import { type LabPaths, windowsPath } from "./paths.ts";
import { CRASH_LOG_ENV } from "./crash.ts";
import { withDriverPrints } from "./driver_print.ts";

/**
 * The environment Wine programs of the lab run with: the prefix, Wine's own
 * logging off (`WINEDEBUG=-all`, unless set), no Mono/Gecko prompts, and
 * `DENO_DISABLE_NODE_SHIM=1` (without it every deno.exe run leaves a 97 MB copy
 * of itself in the prefix), and `KBRIDGE_CRASH_LOG` (`CRASH_LOG_ENV`): the
 * Windows path of the log Wine's crash lines go to.
 *
 * @example
 * ```ts
 * import { labPaths } from "./paths.ts";
 * import { wineEnv } from "./wine.ts";
 * wineEnv(labPaths("/tmp/lab")).WINEPREFIX; // "/tmp/lab/wine-prefix"
 * ```
 */
export function wineEnv(paths: LabPaths): Record<string, string> {
  const get = (name: string): string | undefined => {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined;
    }
  };
  return {
    WINEPREFIX: paths.prefix,
    WINEDEBUG: get("WINEDEBUG") ?? "-all",
    WINEDLLOVERRIDES: get("WINEDLLOVERRIDES") ?? "mscoree,mshtml=",
    DENO_DISABLE_NODE_SHIM: "1",
    // Where a fuzz run finds the crash lines of the hosts it crashes.
    [CRASH_LOG_ENV]: windowsPath(paths.wineStartLog),
  };
}

/**
 * Options of {@linkcode runToFile}.
 *
 * @example
 * ```ts
 * import type { RunToFileOptions } from "./wine.ts";
 * const options: RunToFileOptions = { out: "/tmp/lab/logs/x.log", append: true };
 * ```
 */
export interface RunToFileOptions {
  /** The file that receives standard output and error. */
  out: string;
  /** Append instead of truncating (default false). */
  append?: boolean;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** The working directory. */
  cwd?: string;
  /** Called every 100 ms while the program runs (e.g. to copy its output on). */
  onTick?: () => Promise<void> | void;
}

/**
 * Runs `command args…` with standard input from /dev/null and its output into
 * a file, and returns its exit code. Never a pipe (see the module's documentation).
 *
 * @example
 * ```ts ignore
 * const code = await runToFile("wine", ["cmd.exe", "/c", "exit", "0"], { out: "/tmp/x.log", env });
 * ```
 */
export async function runToFile(
  command: string,
  args: readonly string[],
  options: RunToFileOptions,
): Promise<number> {
  const redirect = options.append ? ">>" : ">";
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("/bin/sh", {
      args: [
        "-c",
        `exec "$@" </dev/null ${redirect}"$KBRIDGE_LAB_OUT" 2>&1`,
        "sh",
        command,
        ...args,
      ],
      env: { ...options.env, KBRIDGE_LAB_OUT: options.out },
      cwd: options.cwd,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  } catch (cause) {
    throw new LabError("wine", `kbridge lab: cannot run ${command}: ${(cause as Error).message}`, {
      cause,
    });
  }
  if (options.onTick === undefined) return (await child.status).code;
  let done = false;
  const status = child.status.finally(() => {
    done = true;
  });
  while (!done) {
    await Promise.race([status, new Promise((resolve) => setTimeout(resolve, 100))]);
    await options.onTick();
  }
  return (await status).code;
}

/**
 * Copies what was appended to a file (after byte `from`) since the last call
 * to `write`, with the CR of Windows line ends removed.
 *
 * @example
 * ```ts ignore
 * const follow = fileFollower("/tmp/lab/logs/run.log", (text) => Deno.stdout.write(text));
 * await follow(); // call again to copy more
 * ```
 */
export function fileFollower(
  path: string,
  write: (bytes: Uint8Array) => Promise<unknown> | unknown,
  from = 0,
): () => Promise<void> {
  let offset = from;
  return async () => {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch {
      return;
    }
    try {
      await file.seek(offset, Deno.SeekMode.Start);
      const chunk = new Uint8Array(64 * 1024);
      for (;;) {
        const n = await file.read(chunk);
        if (n === null || n === 0) break;
        offset += n;
        await write(chunk.subarray(0, n).filter((byte) => byte !== 0x0d));
      }
    } finally {
      file.close();
    }
  };
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
}

/**
 * The pid of the persistent wineserver (`-p`) serving `prefix`, if one runs.
 * A wineserver works in `…/server-<device>-<inode>/` of its prefix directory:
 * its working directory names the prefix.
 *
 * @example
 * ```ts ignore
 * const pid = await wineServerPid("/tmp/lab/wine-prefix", { persistentOnly: true });
 * ```
 */
export async function wineServerPid(
  prefix: string,
  options: { persistentOnly?: boolean } = {},
): Promise<number | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(prefix);
  } catch {
    return undefined;
  }
  if (info.dev === null || info.ino === null) return undefined;
  const serverDir = `/server-${info.dev.toString(16)}-${info.ino.toString(16)}`;
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const cmdline = await readText(`/proc/${entry.name}/cmdline`);
    if (cmdline === undefined) continue;
    const argv = cmdline.split("\0").filter((arg) => arg !== "");
    if (argv.length === 0 || !/wineserver[^/]*$/.test(argv[0])) continue;
    let cwd: string;
    try {
      cwd = await Deno.readLink(`/proc/${entry.name}/cwd`);
    } catch {
      continue;
    }
    if (!cwd.endsWith(serverDir)) continue;
    // Debian's wrapper passes -p0 first; a later bare -p makes the server stay forever.
    if (options.persistentOnly && !argv.slice(1).includes("-p")) continue;
    return Number(entry.name);
  }
  return undefined;
}

/** Beyond this, a running server's `wine-start.log` is emptied when a lab command starts. */
export const WINE_START_LOG_LIMIT = 32 * 1024 * 1024;

/**
 * The size of file `path`, 0 when there is none.
 *
 * @example
 * ```ts ignore
 * const mark = await fileSize(paths.wineStartLog);
 * ```
 */
export async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts a persistent wineserver for the prefix unless one runs, and starts
 * the prefix's services with their output in `logs/wine-start.log` (where Wine
 * writes the crash lines of driver hosts); a server it starts begins both of
 * the prefix's Wine logs afresh and keeps the last ones as `*.previous.log`. Verified: returns the pid of a
 * `wineserver -p` that serves the prefix, or throws.
 *
 * @throws {LabError} `wine` when no persistent server runs afterwards
 *
 * @example
 * ```ts ignore
 * const pid = await ensureWineServer(labPaths("/tmp/lab"));
 * ```
 */
export async function ensureWineServer(paths: LabPaths): Promise<number> {
  const env = wineEnv(paths);
  const log = `${paths.logs}/wineserver.log`;
  await Deno.mkdir(paths.logs, { recursive: true });
  const running = await wineServerPid(paths.prefix, { persistentOnly: true });
  if (running !== undefined) {
    // Its services (and their output, the crash log) were set up when it started. Their
    // output is opened for appending: emptied, it goes on at its new end.
    if (await fileSize(paths.wineStartLog) > WINE_START_LOG_LIMIT) {
      await Deno.truncate(paths.wineStartLog, 0);
    }
    return running;
  }
  // A short-lived server (wineboot's, or one a `wine` command started) makes
  // `wineserver -p` exit 2 without making anything persistent: wait for it to end.
  if (await wineServerPid(paths.prefix) !== undefined) {
    await runToFile("wineserver", ["-w"], { out: log, append: true, env });
  }
  // No Wine process of the prefix runs now, so none writes its logs: each server
  // starts them afresh, the last server's kept beside them (`*.previous.log`).
  for (const file of [log, paths.wineStartLog]) {
    await Deno.rename(file, file.replace(/\.log$/, ".previous.log")).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  }
  await runToFile("wineserver", ["-p"], { out: log, append: true, env });
  let pid: number | undefined;
  for (let i = 0; i < 50 && pid === undefined; i++) {
    pid = await wineServerPid(paths.prefix, { persistentOnly: true });
    if (pid === undefined) await delay(100);
  }
  if (pid === undefined) {
    throw new LabError(
      "wine",
      `kbridge lab: no persistent wineserver runs for ${paths.prefix} (see ${log}); ` +
        `stop Wine for this prefix (WINEPREFIX=${paths.prefix} wineserver -k) and run again`,
    );
  }
  // The first Wine process of the server starts services.exe (and so every
  // driver host), which inherit its output: give it the crash log.
  const code = await runToFile("wine", ["cmd.exe", "/c", "exit", "0"], {
    out: paths.wineStartLog,
    append: true,
    // The driver hosts inherit it: their drivers' DbgPrint lines go to the crash log too.
    env: { ...env, WINEDEBUG: withDriverPrints(env.WINEDEBUG) },
  });
  if (code !== 0) {
    throw new LabError(
      "wine",
      `kbridge lab: wine cmd.exe failed with exit code ${code} (see ${paths.wineStartLog})`,
    );
  }
  if (await wineServerPid(paths.prefix, { persistentOnly: true }) !== pid) {
    throw new LabError(
      "wine",
      `kbridge lab: the persistent wineserver of ${paths.prefix} went away`,
    );
  }
  return pid;
}

/**
 * Stops the prefix's wineserver and every Wine process of the prefix (`wineserver -k`)
 * and waits until it is gone.
 *
 * @example
 * ```ts ignore
 * await stopWineServer(labPaths("/tmp/lab"));
 * ```
 */
export async function stopWineServer(paths: LabPaths): Promise<void> {
  if (await wineServerPid(paths.prefix) === undefined) return;
  const env = wineEnv(paths);
  await runToFile("wineserver", ["-k"], { out: `${paths.logs}/wineserver.log`, append: true, env });
  for (let i = 0; i < 100 && await wineServerPid(paths.prefix) !== undefined; i++) await delay(100);
  if (await wineServerPid(paths.prefix) !== undefined) {
    throw new LabError("wine", `kbridge lab: the wineserver of ${paths.prefix} does not stop`);
  }
}
