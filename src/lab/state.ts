/**
 * The drivers the lab loaded, kept in `<lab dir>/lab/state.json`, so that
 * `kbridge lab restart` can load them again and crash reports can find the
 * copy of the driver that ran.
 *
 * @module
 */
import type { LabPaths } from "./paths.ts";

/**
 * One driver the lab loaded.
 *
 * @example
 * ```ts
 * import type { LoadedDriver } from "./state.ts";
 * const driver: LoadedDriver = { name: "kbwdm", sys: "/tmp/lab/lab/drivers/kbwdm.sys", source: "x.sys" };
 * ```
 */
export interface LoadedDriver {
  /** The service name. */
  readonly name: string;
  /** The copy that was loaded (a Linux path inside the lab directory). */
  readonly sys: string;
  /** The file the user gave. */
  readonly source: string;
}

/**
 * The lab's state.
 *
 * @example
 * ```ts
 * import type { LabState } from "./state.ts";
 * const empty: LabState = { drivers: [] };
 * ```
 */
export interface LabState {
  /** The loaded drivers, in load order. */
  readonly drivers: readonly LoadedDriver[];
}

function isLoadedDriver(value: unknown): value is LoadedDriver {
  const v = value as Record<string, unknown>;
  return typeof v === "object" && v !== null && typeof v.name === "string" &&
    typeof v.sys === "string" && typeof v.source === "string";
}

/**
 * Reads the state; a missing or unreadable file is an empty state.
 *
 * @example
 * ```ts ignore
 * const { drivers } = await readLabState(paths);
 * ```
 */
export async function readLabState(paths: LabPaths): Promise<LabState> {
  try {
    const parsed = JSON.parse(await Deno.readTextFile(paths.state));
    const drivers = Array.isArray(parsed?.drivers) ? parsed.drivers.filter(isLoadedDriver) : [];
    return { drivers };
  } catch {
    return { drivers: [] };
  }
}

/**
 * Writes the state (by a rename: never half a file).
 *
 * @example
 * ```ts ignore
 * await writeLabState(paths, { drivers: [] });
 * ```
 */
export async function writeLabState(paths: LabPaths, state: LabState): Promise<void> {
  await Deno.mkdir(paths.state.slice(0, paths.state.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(`${paths.state}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  await Deno.rename(`${paths.state}.tmp`, paths.state);
}
