/**
 * The driver hosts of a prefix, seen from Linux: Wine runs each kernel driver
 * service in its own `winedevice.exe`, a Linux process whose working
 * directory is `<prefix>/drive_c/windows` and whose `/proc/<pid>/maps` lists
 * the PE files it mapped — the driver's `.sys` and Wine's `ntoskrnl.exe` with
 * their load addresses. Wine relocates drivers (e.g. `kbridge.sys`, linked at
 * 0x140000000, runs at 0x021A0000), so a crash address can only be placed
 * with these live addresses. {@linkcode HostWatcher} keeps the last map of
 * every host it saw, so that a host that died can still be named.
 *
 * @module
 */

/**
 * A PE file mapped by a driver host.
 *
 * @example
 * ```ts ignore
 * const module: HostModule = { path: "/tmp/lab/lab/drivers/kbwdm.sys", base: 0x2d5490000n };
 * ```
 */
export interface HostModule {
  /** The file (a Linux path). */
  readonly path: string;
  /** Where its image starts in the host. */
  readonly base: bigint;
}

/**
 * One `winedevice.exe` and the PE files it mapped.
 *
 * @example
 * ```ts ignore
 * const hosts: DriverHost[] = await driverHosts("/tmp/lab/wine-prefix");
 * ```
 */
export interface DriverHost {
  /** The Linux pid. */
  readonly pid: number;
  /** The mapped PE files (the drivers, ntoskrnl.exe, …). */
  readonly modules: readonly HostModule[];
  /** The driver files (`.sys`) it hosts, other than Wine's own. */
  readonly drivers: readonly string[];
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
}

/**
 * The PE files of a `/proc/<pid>/maps` text: each file's mapping at file
 * offset 0 is its image's start.
 *
 * @example
 * ```ts
 * import { mappedModules } from "./hosts.ts";
 * mappedModules("021a0000-021a1000 r--p 00000000 fe:00 2149120   /p/drivers/kbridge.sys\n");
 * // [{ path: "/p/drivers/kbridge.sys", base: 0x21a0000n }]
 * ```
 */
export function mappedModules(maps: string): HostModule[] {
  const modules: HostModule[] = [];
  const seen = new Set<string>();
  for (const line of maps.split("\n")) {
    const match = /^([0-9a-f]+)-[0-9a-f]+ \S+ ([0-9a-f]+) \S+ \d+\s+(\/.*\.(?:sys|exe|dll|drv))$/i
      .exec(line);
    if (match === null || BigInt(`0x${match[2]}`) !== 0n || seen.has(match[3])) continue;
    seen.add(match[3]);
    modules.push({ path: match[3], base: BigInt(`0x${match[1]}`) });
  }
  return modules;
}

/** Whether a mapped file is one of Wine's own PE files rather than a driver under test. */
function isWineFile(path: string): boolean {
  return /\/wine\/[^/]*-windows\//.test(path);
}

/**
 * The live driver hosts (`winedevice.exe`) of `prefix`.
 *
 * @example
 * ```ts ignore
 * for (const host of await driverHosts("/tmp/lab/wine-prefix")) console.log(host.pid, host.drivers);
 * ```
 */
export async function driverHosts(prefix: string): Promise<DriverHost[]> {
  const hosts: DriverHost[] = [];
  const windowsDir = `${prefix}/drive_c/windows`;
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const cmdline = await readText(`/proc/${entry.name}/cmdline`);
    if (cmdline === undefined || !/winedevice\.exe/i.test(cmdline.split("\0")[0] ?? "")) continue;
    let cwd: string;
    try {
      cwd = await Deno.readLink(`/proc/${entry.name}/cwd`);
    } catch {
      continue;
    }
    if (cwd !== windowsDir) continue;
    const maps = await readText(`/proc/${entry.name}/maps`);
    if (maps === undefined) continue;
    const modules = mappedModules(maps);
    hosts.push({
      pid: Number(entry.name),
      modules,
      drivers: modules.filter((m) => /\.sys$/i.test(m.path) && !isWineFile(m.path)).map((m) =>
        m.path
      ),
    });
  }
  return hosts;
}

/**
 * Watches the driver hosts of a prefix: remembers every host it saw with its
 * modules, and tells which died.
 *
 * @example
 * ```ts ignore
 * const watcher = new HostWatcher("/tmp/lab/wine-prefix");
 * await watcher.poll();
 * // … later
 * await watcher.poll();
 * console.log(watcher.died);
 * ```
 */
export class HostWatcher {
  readonly #prefix: string;
  readonly #seen = new Map<number, DriverHost>();
  readonly #died = new Map<number, DriverHost>();

  /** Watches the hosts of `prefix`. */
  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  /** Looks at the hosts once. */
  async poll(): Promise<void> {
    const live = await driverHosts(this.#prefix);
    const livePids = new Set(live.map((host) => host.pid));
    for (const host of live) this.#seen.set(host.pid, host);
    for (const [pid, host] of this.#seen) {
      if (!livePids.has(pid) && !this.#died.has(pid)) this.#died.set(pid, host);
    }
  }

  /** Hosts seen alive and gone since. */
  get died(): DriverHost[] {
    return [...this.#died.values()];
  }

  /** Every module of every host seen, for placing an address. */
  get modules(): HostModule[] {
    const all = new Map<string, HostModule>();
    for (const host of this.#seen.values()) {
      for (const module of host.modules) all.set(`${module.path}@${module.base}`, module);
    }
    return [...all.values()];
  }
}
