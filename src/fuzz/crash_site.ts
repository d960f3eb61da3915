/**
 * Where a driver crashed, under Wine, for the fuzzer's de-duplication
 * ({@linkcode FaultSite}): {@linkcode WineCrashSite} notes the modules of the
 * driver's host while it runs (a dead host can no longer be asked), and after
 * a crash reads Wine's crash line from the log the prefix's services write to
 * (the lab's `logs/wine-start.log`, reached as `Z:\...`), placing its faulting
 * address as `module+offset` — stable across restarts, which relocate the
 * driver.
 *
 * @module
 */
import { parseWineCrashes } from "../lab/crash.ts";
import { readFrom } from "../lab/run.ts";
import type { FaultSite } from "./engine.ts";
import { findDriverHost, type HostModule } from "./ranges.ts";

/** How long a crash line may take to reach the log after the host is seen dead (ms). */
const LINE_WAIT_MS = 500;
const LINE_POLL_MS = 50;

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `address` as `module+0xoffset` in `modules`, or `undefined` when no module holds it.
 *
 * @example
 * ```ts
 * import { placeInModules } from "./crash_site.ts";
 * placeInModules(0x21a11b8n, [{ name: "kbquirky.sys", start: 0x21a0000n, end: 0x21a8000n }]);
 * // "kbquirky.sys+0x11b8"
 * ```
 */
export function placeInModules(
  address: bigint,
  modules: readonly HostModule[],
): string | undefined {
  const module = modules.find((m) => address >= m.start && address < m.end);
  return module === undefined
    ? undefined
    : `${module.name}+0x${(address - module.start).toString(16)}`;
}

/**
 * A {@linkcode FaultSite} under Wine: the crash line Wine writes to `log`
 * (the output of the process that started the prefix's services) placed in
 * the modules of the host of the driver file `sysName`, noted when the
 * provider is made and each time the driver started again. A call of a Wine
 * stub reads `dll!function (a Wine stub)`; a crash line without an address,
 * or an address in no module, gives no site (the fuzzer then keys the crash
 * by its code).
 *
 * @example
 * ```ts ignore
 * const site = new WineCrashSite("Z:\\work\\build\\logs\\wine-start.log", "kbquirky.sys");
 * const fuzzer = new Fuzzer(target, { seed: 1, service: "kbquirky", faultSite: site });
 * ```
 */
export class WineCrashSite implements FaultSite {
  readonly #log: string;
  readonly #sysName: string;
  #modules: HostModule[] = [];
  /** The log's length when the driver last started: later crash lines are its. */
  #offset = 0;
  /** The prints of the crashing thread before the crash `lastCrashSite` last read. */
  #prints: readonly string[] = [];

  /** Notes the modules of the host of `sysName` and where `log` ends now. */
  constructor(log: string, sysName: string) {
    this.#log = log;
    this.#sysName = sysName;
    this.#note();
  }

  /** The modules noted (empty when no host holds the driver). */
  get modules(): readonly HostModule[] {
    return this.#modules;
  }

  #note(): void {
    this.#modules = findDriverHost(this.#sysName)?.modules ?? [];
    try {
      this.#offset = Deno.statSync(this.#log).size;
    } catch {
      this.#offset = 0; // no log yet: every line will be new
    }
  }

  /** The driver started again (a new host, new load addresses): notes them. */
  started(): void {
    this.#note();
  }

  async lastCrashSite(): Promise<string | undefined> {
    this.#prints = [];
    for (let waited = 0;; waited += LINE_POLL_MS) {
      const crash = (await this.#crashLines()).at(-1);
      if (crash !== undefined) {
        this.#prints = crash.prints;
        if (crash.stub !== undefined) return `${crash.stub.dll}!${crash.stub.name} (a Wine stub)`;
        return crash.address === undefined
          ? undefined
          : placeInModules(crash.address, this.#modules);
      }
      if (waited >= LINE_WAIT_MS) return undefined;
      await delay(LINE_POLL_MS);
    }
  }

  /** The driver's prints before the crash `lastCrashSite` last read (its thread's, at most 5). */
  lastCrashPrints(): readonly string[] {
    return this.#prints;
  }

  /** The crash lines written since the driver last started. */
  async #crashLines(): Promise<ReturnType<typeof parseWineCrashes>> {
    return parseWineCrashes(await readFrom(this.#log, this.#offset));
  }
}
