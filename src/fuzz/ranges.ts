/**
 * Where a driver's own memory is, for the pointer oracle: a value in a
 * driver's output that points into its image, its pool (heap) or its stacks
 * is a leak. On Windows that is the kernel half ({@linkcode KERNEL_RANGES});
 * under Wine a driver runs in its own user-mode host process
 * (`winedevice.exe`), so its addresses are the host's
 * ({@linkcode HostRanges}: the host is the `winedevice.exe` that loaded the
 * driver's file; every committed image and private region of it counts, read
 * with `VirtualQueryEx`, the driver's own image named after its file).
 *
 * @module
 */
import { kernel32 } from "../core/native.ts";
import { KbridgeError } from "../core/errors.ts";

/**
 * A range of addresses, `start` inclusive, `end` exclusive.
 *
 * @example
 * ```ts
 * import type { AddressRange } from "./ranges.ts";
 * const range: AddressRange = { start: 0x21a0000n, end: 0x21a8000n, label: "image 0x21A0000" };
 * ```
 */
export interface AddressRange {
  /** The first address. */
  readonly start: bigint;
  /** One past the last address. */
  readonly end: bigint;
  /** What it is (`kernel`, `image 0x…`, `private`). */
  readonly label: string;
}

/**
 * A source of the driver's address ranges, asked when a run starts and after
 * every restart of the driver (a new host has new addresses).
 *
 * @example
 * ```ts
 * import type { AddressRanges } from "./ranges.ts";
 * const fixed: AddressRanges = { ranges: () => Promise.resolve([{ start: 0x1000_0000n, end: 0x1001_0000n, label: "test" }]) };
 * ```
 */
export interface AddressRanges {
  /** The current ranges. */
  ranges(): Promise<readonly AddressRange[]>;
}

/**
 * The kernel half of a 64-bit Windows address space
 * (0xFFFF8000_00000000 and up): where a driver's addresses are on Windows.
 *
 * @example
 * ```ts
 * import { KERNEL_RANGES } from "./ranges.ts";
 * const [kernel] = await KERNEL_RANGES.ranges(); // { start: 0xffff800000000000n, end: 2n ** 64n, label: "kernel" }
 * ```
 */
export const KERNEL_RANGES: AddressRanges = {
  ranges: () =>
    Promise.resolve([{ start: 0xffff_8000_0000_0000n, end: 1n << 64n, label: "kernel" }]),
};

const PROCESS_QUERY_INFORMATION = 0x0400;
const MEM_COMMIT = 0x1000;
const MEM_PRIVATE = 0x2_0000;
const MEM_IMAGE = 0x100_0000;
/** sizeof(MEMORY_BASIC_INFORMATION) on x64. */
const MBI_SIZE = 48;
/** The end of the user half on x64 (128 TiB). */
const USER_END = 0x7fff_ffff_0000n;

/**
 * Merges touching ranges of the same label and sorts them.
 *
 * @example
 * ```ts
 * import { mergeRanges } from "./ranges.ts";
 * mergeRanges([{ start: 16n, end: 32n, label: "p" }, { start: 0n, end: 16n, label: "p" }]);
 * // [{ start: 0n, end: 32n, label: "p" }]
 * ```
 */
export function mergeRanges(ranges: readonly AddressRange[]): AddressRange[] {
  const sorted = [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: AddressRange[] = [];
  for (const range of sorted) {
    const last = out.at(-1);
    if (last !== undefined && last.end === range.start && last.label === range.label) {
      out[out.length - 1] = { ...last, end: range.end };
    } else {
      out.push(range);
    }
  }
  return out;
}

/**
 * The committed image and private regions of process `pid` (its modules,
 * heaps and stacks), read with `OpenProcess` + `VirtualQueryEx`.
 *
 * @throws {KbridgeError} when the process cannot be opened
 *
 * @example
 * ```ts ignore
 * const ranges = processRanges(312); // [{ start: 0x10000n, end: 0x20000n, label: "private" }, …]
 * ```
 */
export function processRanges(pid: number): AddressRange[] {
  const k32 = kernel32("OpenProcess");
  const process = k32.OpenProcess(PROCESS_QUERY_INFORMATION, 0, pid);
  if (process === null) {
    throw new KbridgeError(
      `kbridge: cannot open process ${pid} to read its address ranges (error ${k32.GetLastError()})`,
    );
  }
  const info = new Uint8Array(MBI_SIZE);
  const view = new DataView(info.buffer);
  const ranges: AddressRange[] = [];
  try {
    let address = 0n;
    while (address < USER_END) {
      if (k32.VirtualQueryEx(process, address, info, BigInt(MBI_SIZE)) === 0n) break;
      const base = view.getBigUint64(0, true);
      const allocationBase = view.getBigUint64(8, true);
      const size = view.getBigUint64(24, true);
      const state = view.getUint32(32, true);
      const type = view.getUint32(40, true);
      if (size === 0n) break;
      if (state === MEM_COMMIT && (type === MEM_IMAGE || type === MEM_PRIVATE)) {
        const label = type === MEM_IMAGE
          ? `image 0x${allocationBase.toString(16).toUpperCase()}`
          : "private";
        ranges.push({ start: base, end: base + size, label });
      }
      address = base + size;
    }
  } finally {
    k32.CloseHandle(process);
  }
  return mergeRanges(ranges);
}

const TH32CS_SNAPPROCESS = 0x2;
const TH32CS_SNAPMODULE = 0x8;
/** sizeof(PROCESSENTRY32W) on x64, and the offsets of th32ProcessID and szExeFile. */
const PROCESS_ENTRY_SIZE = 568;
const PROCESS_ID_AT = 8;
const EXE_FILE_AT = 44;
/** sizeof(MODULEENTRY32W) on x64, and the offsets of modBaseAddr, modBaseSize and szModule. */
const MODULE_ENTRY_SIZE = 1080;
const MODULE_BASE_AT = 24;
const MODULE_SIZE_AT = 32;
const MODULE_NAME_AT = 48;

function wideAt(bytes: Uint8Array, offset: number, chars: number): string {
  const units = new Uint16Array(bytes.buffer, bytes.byteOffset + offset, chars);
  const end = units.indexOf(0);
  return String.fromCharCode(...units.subarray(0, end < 0 ? chars : end));
}

/** Calls `body` for each entry of a Toolhelp snapshot; stops when it returns a value. */
function walkSnapshot<T>(
  flags: number,
  pid: number,
  size: number,
  first: "Process32FirstW" | "Module32FirstW",
  next: "Process32NextW" | "Module32NextW",
  body: (entry: Uint8Array) => T | undefined,
): T | undefined {
  const k32 = kernel32("CreateToolhelp32Snapshot");
  const snapshot = k32.CreateToolhelp32Snapshot(flags, pid);
  // INVALID_HANDLE_VALUE: the process is gone (or not ours to look at).
  if (snapshot === null || Deno.UnsafePointer.value(snapshot) === 0xffff_ffff_ffff_ffffn) {
    return undefined;
  }
  try {
    const entry = new Uint8Array(size);
    new DataView(entry.buffer).setUint32(0, size, true);
    for (let ok = k32[first](snapshot, entry); ok; ok = k32[next](snapshot, entry)) {
      const result = body(entry);
      if (result !== undefined) return result;
    }
    return undefined;
  } finally {
    k32.CloseHandle(snapshot);
  }
}

/**
 * One module of a process, from a Toolhelp snapshot.
 *
 * @example
 * ```ts
 * import type { HostModule } from "./ranges.ts";
 * const module: HostModule = { name: "kbquirky.sys", start: 0x21a0000n, end: 0x21a8000n };
 * ```
 */
export interface HostModule {
  /** The module's file name, e.g. `kbquirky.sys`. */
  readonly name: string;
  /** Its load address. */
  readonly start: bigint;
  /** One past its last byte. */
  readonly end: bigint;
}

/**
 * The modules process `pid` has loaded (Toolhelp), in load order; empty when
 * the process is gone.
 *
 * @example
 * ```ts ignore
 * const modules = processModules(312); // [{ name: "winedevice.exe", … }, { name: "ntdll.dll", … }, …]
 * ```
 */
export function processModules(pid: number): HostModule[] {
  const modules: HostModule[] = [];
  walkSnapshot(
    TH32CS_SNAPMODULE,
    pid,
    MODULE_ENTRY_SIZE,
    "Module32FirstW",
    "Module32NextW",
    (module) => {
      const view = new DataView(module.buffer);
      const start = view.getBigUint64(MODULE_BASE_AT, true);
      const end = start + BigInt(view.getUint32(MODULE_SIZE_AT, true));
      modules.push({ name: wideAt(module, MODULE_NAME_AT, 256), start, end });
      return undefined;
    },
  );
  return modules;
}

/**
 * The driver host that loaded the driver file `sysName` (e.g. `kbquirky.sys`):
 * its process id, the driver's image and every module of the host, or
 * `undefined` when no process has it (on Windows, where drivers are loaded by
 * the kernel).
 *
 * @example
 * ```ts ignore
 * const host = findDriverHost("kbquirky.sys"); // { pid: 312, image: { start: 0x21a0000n, … }, modules: […] }
 * ```
 */
export function findDriverHost(
  sysName: string,
): { pid: number; image: AddressRange; modules: HostModule[] } | undefined {
  const wanted = sysName.toLowerCase();
  return walkSnapshot(
    TH32CS_SNAPPROCESS,
    0,
    PROCESS_ENTRY_SIZE,
    "Process32FirstW",
    "Process32NextW",
    (process) => {
      if (wideAt(process, EXE_FILE_AT, 260).toLowerCase() !== "winedevice.exe") return undefined;
      const pid = new DataView(process.buffer).getUint32(PROCESS_ID_AT, true);
      const modules = processModules(pid);
      const driver = modules.find((module) => module.name.toLowerCase() === wanted);
      return driver === undefined
        ? undefined
        : { pid, image: { start: driver.start, end: driver.end, label: driver.name }, modules };
    },
  );
}

/**
 * The address ranges of a driver under Wine: its image (labelled with its
 * file name) and every other committed image and private region of its host
 * (see {@linkcode processRanges}, {@linkcode findDriverHost}); on Windows,
 * where no process holds the driver, the kernel half.
 *
 * @example
 * ```ts ignore
 * const fuzzer = new Fuzzer(target, { seed: 1, ranges: new HostRanges("kbquirky.sys") });
 * ```
 */
export class HostRanges implements AddressRanges {
  readonly #sysName: string;

  /** Ranges of the host that loaded the driver file `sysName` (e.g. `kbquirky.sys`). */
  constructor(sysName: string) {
    this.#sysName = sysName;
  }

  ranges(): Promise<readonly AddressRange[]> {
    const host = findDriverHost(this.#sysName);
    if (host === undefined) return KERNEL_RANGES.ranges();
    const { image } = host;
    const others = processRanges(host.pid).flatMap((range): AddressRange[] => {
      // Cut the driver's own image out of the host's ranges: it is labelled apart.
      if (range.end <= image.start || range.start >= image.end) return [range];
      const parts: AddressRange[] = [];
      if (range.start < image.start) parts.push({ ...range, end: image.start });
      if (range.end > image.end) parts.push({ ...range, start: image.end });
      return parts;
    });
    return Promise.resolve(mergeRanges([image, ...others]));
  }
}
