/**
 * Crash reports of driver hosts under Wine: Wine's crash lines (written to
 * the output of the process that started the prefix's services, the lab's
 * `logs/wine-start.log`), the faulting address placed as `module+offset` with
 * the load addresses seen in the hosts, and — when the driver carries DWARF
 * (`-g`) — the function and source line from `x86_64-w64-mingw32-addr2line`.
 *
 * @module
 */
import { driverPrintLine } from "./driver_print.ts";
import type { DriverHost, HostModule } from "./hosts.ts";
import { parsePe } from "./pe.ts";

/**
 * One crash line of Wine, e.g. `wine: Unhandled page fault on write access to
 * 0000000000000000 at address 00000002D54911B8 (thread 014c), starting debugger...`.
 *
 * @example
 * ```ts ignore
 * const crash: WineCrash = parseWineCrashes(log)[0];
 * crash.exception; // "Unhandled page fault on write access to 0000000000000000"
 * ```
 */
export interface WineCrash {
  /** The whole line, without `wine: ` and `, starting debugger...`. */
  readonly text: string;
  /** The exception, e.g. `Unhandled page fault on write access to 0000000000000000`. */
  readonly exception: string;
  /** The faulting instruction's address. */
  readonly address?: bigint;
  /** The Windows thread id (hex), as Wine prints it. */
  readonly thread?: string;
  /** For a call of a Wine stub: the DLL and the function. */
  readonly stub?: { readonly dll: string; readonly name: string };
  /**
   * The last driver prints (`DbgPrint`) of the crashing thread before the
   * crash, oldest first, at most {@linkcode PRINTS_BEFORE_CRASH}.
   */
  readonly prints: readonly string[];
}

/**
 * How many of the crashing thread's last prints a crash keeps.
 *
 * @example
 * ```ts
 * import { PRINTS_BEFORE_CRASH } from "./crash.ts";
 * PRINTS_BEFORE_CRASH; // 5
 * ```
 */
export const PRINTS_BEFORE_CRASH = 5;

/**
 * The environment variable with which the lab tells the Windows programs it
 * runs where Wine's crash lines go: the Windows path (`Z:\...`) of its
 * `logs/wine-start.log`. `kbridge fuzz` reads it (its `--crash-log` default).
 *
 * @example
 * ```ts
 * import { CRASH_LOG_ENV } from "./crash.ts";
 * CRASH_LOG_ENV; // "KBRIDGE_CRASH_LOG"
 * ```
 */
export const CRASH_LOG_ENV = "KBRIDGE_CRASH_LOG";

const CRASH_LINE =
  /^wine: ((.*?)(?: at address ([0-9A-Fa-f]+))? \(thread ([0-9A-Fa-f]+)\)), starting debugger/;
const STUB = /Unimplemented function (\S+)\.([^.\s]+) called/;

/**
 * The crash lines in a log text, in order (CRs removed), each with the
 * prints its thread wrote before it.
 *
 * @example
 * ```ts
 * import { parseWineCrashes } from "./crash.ts";
 * const [crash] = parseWineCrashes(
 *   "wine: Unhandled page fault on write access to 0000000000000000 at address 000000034A60110F (thread 011c), starting debugger...\n",
 * );
 * crash.address; // 0x34a60110fn
 * ```
 */
export function parseWineCrashes(log: string): WineCrash[] {
  const crashes: WineCrash[] = [];
  /** The latest prints of each thread (by id), oldest first. */
  const printsOf = new Map<number, string[]>();
  for (const raw of log.split("\n")) {
    const line = raw.replace(/\r$/, "");
    const print = driverPrintLine(line);
    if (print?.thread !== undefined) {
      const thread = parseInt(print.thread, 16);
      const prints = printsOf.get(thread) ?? [];
      prints.push(print.text);
      if (prints.length > PRINTS_BEFORE_CRASH) prints.shift();
      printsOf.set(thread, prints);
      continue;
    }
    const match = CRASH_LINE.exec(line);
    if (match === null) continue;
    const stub = STUB.exec(match[2]);
    crashes.push({
      text: match[1],
      exception: match[2],
      ...(match[3] !== undefined ? { address: BigInt(`0x${match[3]}`) } : {}),
      thread: match[4],
      ...(stub !== null ? { stub: { dll: stub[1], name: stub[2] } } : {}),
      prints: [...(printsOf.get(parseInt(match[4], 16)) ?? [])],
    });
  }
  return crashes;
}

/**
 * An address placed in a module, with the source line when known.
 *
 * @example
 * ```ts ignore
 * const where: PlacedAddress = { path: "/tmp/kbwdm.sys", module: "kbwdm.sys", offset: 0x11b8 };
 * ```
 */
export interface PlacedAddress {
  /** The module file (Linux path). */
  readonly path: string;
  /** Its file name. */
  readonly module: string;
  /** The offset from the module's load address (its RVA). */
  readonly offset: number;
  /** The function (innermost, when inlined), from DWARF. */
  readonly function?: string;
  /** `file:line`, from DWARF. */
  readonly source?: string;
}

const imageSizes = new Map<string, { size: number; imageBase: bigint; dwarf: boolean } | null>();

async function imageInfo(
  path: string,
): Promise<{ size: number; imageBase: bigint; dwarf: boolean } | null> {
  if (!imageSizes.has(path)) {
    try {
      const image = parsePe(await Deno.readFile(path));
      imageSizes.set(path, {
        size: image.sizeOfImage,
        imageBase: image.imageBase,
        dwarf: image.hasDwarf,
      });
    } catch {
      imageSizes.set(path, null);
    }
  }
  return imageSizes.get(path)!;
}

/**
 * The function and `file:line` of `rva` in the PE file at `path`, from its
 * DWARF, with `x86_64-w64-mingw32-addr2line` (or `addr2line`); undefined
 * without debug info or tool.
 *
 * @example
 * ```ts ignore
 * await sourceLine("build/fixture/kbwdm.sys", 0x11b8); // { function: "SampleLogRecord", source: "kbwdm.c:118" }
 * ```
 */
export async function sourceLine(
  path: string,
  rva: number,
): Promise<{ function: string; source: string } | undefined> {
  const info = await imageInfo(path);
  if (info === null || !info.dwarf) return undefined;
  // addr2line reads link-time addresses: the preferred base plus the RVA.
  const address = `0x${(info.imageBase + BigInt(rva)).toString(16)}`;
  for (const tool of ["x86_64-w64-mingw32-addr2line", "addr2line"]) {
    let output: Deno.CommandOutput;
    try {
      output = await new Deno.Command(tool, {
        args: ["-f", "-i", "-e", path, address],
        stdin: "null",
        stdout: "piped",
        stderr: "null",
      }).output();
    } catch {
      continue;
    }
    if (!output.success) continue;
    const [fn, location] = new TextDecoder().decode(output.stdout).split("\n");
    if (fn === undefined || location === undefined || fn === "??" || location.startsWith("??")) {
      return undefined;
    }
    const source = location.replace(/ \(discriminator \d+\)$/, "");
    return { function: fn, source: source.slice(source.lastIndexOf("/") + 1) };
  }
  return undefined;
}

/**
 * Places `address` in one of `modules` (load address + the image's size).
 *
 * @example
 * ```ts ignore
 * const where = await placeAddress(0x2d54911b8n, watcher.modules);
 * ```
 */
export async function placeAddress(
  address: bigint,
  modules: readonly HostModule[],
): Promise<PlacedAddress | undefined> {
  for (const module of modules) {
    const info = await imageInfo(module.path);
    if (info === null) continue;
    if (address < module.base || address >= module.base + BigInt(info.size)) continue;
    const offset = Number(address - module.base);
    const line = await sourceLine(module.path, offset);
    return {
      path: module.path,
      module: module.path.slice(module.path.lastIndexOf("/") + 1),
      offset,
      ...(line !== undefined ? line : {}),
    };
  }
  return undefined;
}

/**
 * A driver host that died, and why.
 *
 * @example
 * ```ts ignore
 * const reports: CrashReport[] = await crashReports(newLogText, watcher);
 * ```
 */
export interface CrashReport {
  /** The crash line. */
  readonly crash: WineCrash;
  /** Where the faulting address is, when a known module holds it. */
  readonly where?: PlacedAddress;
  /** The drivers of the host that died (when the lab saw it alive). */
  readonly drivers: readonly string[];
  /** The host's Linux pid, when seen. */
  readonly hostPid?: number;
}

/**
 * Reports for the crash lines of `log`: each placed among the modules seen,
 * and tied to a host that died (the one holding the address, else in order).
 *
 * @example
 * ```ts ignore
 * for (const report of await crashReports(text, watcher.modules, watcher.died)) {
 *   console.error(formatCrashReport(report));
 * }
 * ```
 */
export async function crashReports(
  log: string,
  modules: readonly HostModule[],
  died: readonly DriverHost[],
): Promise<CrashReport[]> {
  const reports: CrashReport[] = [];
  const unclaimed = [...died];
  for (const crash of parseWineCrashes(log)) {
    const where = crash.address === undefined
      ? undefined
      : await placeAddress(crash.address, modules);
    let index = where === undefined
      ? -1
      : unclaimed.findIndex((host) => host.drivers.includes(where.path));
    if (index < 0 && unclaimed.length > 0) index = 0;
    const host = index >= 0 ? unclaimed.splice(index, 1)[0] : undefined;
    reports.push({
      crash,
      ...(where !== undefined ? { where } : {}),
      drivers: host?.drivers.map((path) => path.slice(path.lastIndexOf("/") + 1)) ??
        (where !== undefined && /\.sys$/i.test(where.module) ? [where.module] : []),
      ...(host !== undefined ? { hostPid: host.pid } : {}),
    });
  }
  return reports;
}

/**
 * One line: which driver's host died, Wine's exception, `module+offset`, and
 * the function and line when known; then, indented, the last prints of the
 * thread that crashed, when it printed.
 *
 * @example
 * ```ts ignore
 * formatCrashReport(report);
 * // "driver host of kbwdm.sys died: Unhandled page fault on write access to 0000000000000000
 * //  at kbwdm.sys+0x11b8 in SampleLogRecord (kbwdm.c:118)
 * //   thread 0104 printed before: kbwdm: REVERSE of 5 bytes"
 * ```
 */
export function formatCrashReport(report: CrashReport): string {
  const prints = report.crash.prints.map((text) =>
    `\n  thread ${report.crash.thread} printed before: ${text}`
  );
  return crashLine(report) + prints.join("");
}

/** The report's first line: the host, the exception, where. */
function crashLine(report: CrashReport): string {
  const who = report.drivers.length > 0 ? report.drivers.join(", ") : "a driver";
  const pid = report.hostPid !== undefined ? ` (winedevice.exe, pid ${report.hostPid})` : "";
  const head = `kbridge lab: the driver host of ${who}${pid} died`;
  const stub = report.crash.stub;
  if (stub !== undefined) {
    // Wine's address is its stub's own RaiseException, not the driver's call site.
    return `${head}: the driver called ${stub.dll}!${stub.name}, a Wine stub (Wine ends the host at any call of one)`;
  }
  const where = report.where;
  let at = "";
  if (where !== undefined) {
    at = ` at ${where.module}+0x${where.offset.toString(16)}`;
    if (where.function !== undefined) at += ` in ${where.function} (${where.source})`;
  } else if (report.crash.address !== undefined) {
    at = ` at address 0x${report.crash.address.toString(16)}`;
  }
  // int 3 with no debugger attached: Wine has no kernel debugger to take it.
  const breakpoint = /exception 0x80000003\b/.test(report.crash.exception)
    ? " (STATUS_BREAKPOINT: a breakpoint such as DbgBreakPoint() and no debugger to take it)"
    : "";
  return `${head}: ${report.crash.exception}${breakpoint}${at}`;
}
