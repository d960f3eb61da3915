/**
 * Log files of lab commands that may run at the same time: each command
 * claims a slot (`lab-run.log`, then `lab-run.2.log`, …) with a lock file
 * that names its process, so two concurrent `kbridge lab run`s never write
 * into one file, and the number of files stays bounded by how many ran at once.
 *
 * @example
 * ```ts ignore
 * await using slot = await claimLog("/tmp/lab/logs", "lab-run");
 * console.log(slot.path); // "/tmp/lab/logs/lab-run.log" when no other run holds it
 * ```
 *
 * @module
 */
import { LabError } from "./lab_error.ts";

/** More concurrent commands of one kind than this is a runaway, not a lab. */
const MAX_SLOTS = 16;

/**
 * A claimed log file; disposing of it frees the slot (the log stays).
 *
 * @example
 * ```ts ignore
 * const slot: LogSlot = await claimLog("/tmp/lab/logs", "lab-test");
 * await slot[Symbol.asyncDispose]();
 * ```
 */
export interface LogSlot extends AsyncDisposable {
  /** The log file's path. */
  readonly path: string;
}

function slotPath(logsDir: string, base: string, slot: number): string {
  return slot === 1 ? `${logsDir}/${base}.log` : `${logsDir}/${base}.${slot}.log`;
}

/** Whether the process that wrote a lock file still runs (Linux: its /proc entry). */
async function lockHolderRuns(lock: string): Promise<boolean> {
  let pid: number;
  try {
    pid = Number((await Deno.readTextFile(lock)).trim());
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    await Deno.stat(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Claims the first log slot of `base` in `logsDir` that no running process
 * holds; a lock left by a process that is gone is taken over.
 *
 * @throws {LabError} `busy` when {@linkcode MAX_SLOTS} commands of the kind hold slots
 *
 * @example
 * ```ts ignore
 * await using slot = await claimLog(paths.logs, `lab-load-${name}`);
 * await runToFile("wine", args, { out: slot.path });
 * ```
 */
export async function claimLog(logsDir: string, base: string): Promise<LogSlot> {
  await Deno.mkdir(logsDir, { recursive: true });
  for (let slot = 1; slot <= MAX_SLOTS; slot++) {
    const path = slotPath(logsDir, base, slot);
    const lock = `${path}.lock`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await Deno.writeTextFile(lock, `${Deno.pid}\n`, { createNew: true });
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        if (await lockHolderRuns(lock)) break;
        // Its holder is gone: remove the stale lock and try once more (another claimer may win).
        await Deno.remove(lock).catch(() => {});
        continue;
      }
      return {
        path,
        [Symbol.asyncDispose]: () => Deno.remove(lock).catch(() => {}),
      };
    }
  }
  throw new LabError(
    "busy",
    `kbridge lab: ${MAX_SLOTS} commands hold the ${base} logs in ${logsDir} (remove stale *.lock files)`,
  );
}
