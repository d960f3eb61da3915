/**
 * `kbridge lab check`: a driver's imports against the installed Wine.
 *
 * Each import is looked up in the Wine DLL of the same name (Wine's PE
 * builtins, e.g. `/usr/lib/x86_64-linux-gnu/wine/x86_64-windows/ntoskrnl.exe`)
 * and classified:
 *
 * - `implemented`: exported with code of its own (or forwarded);
 * - `stub`: exported, but the export is the stub Wine's `winebuild` generates
 *   for a `@ stub` line of the DLL's `.spec`: on x64 exactly
 *   `sub rsp,0x28; lea rcx,[module name]; lea rdx,[function name]; call
 *   __wine_spec_unimplemented_stub`. The import resolves at load time and the
 *   call raises an exception that kills the driver host;
 * - `missing`: not exported (the driver does not load), or the DLL is not there.
 *
 * The stub test reads the code at the export's address and checks that the
 * second `lea` points at the export's own name: no list of names is kept.
 *
 * @example
 * ```ts ignore
 * import { checkDriver } from "./check.ts";
 * const report = await checkDriver("build/fixture/kbwdmstub.sys");
 * console.log(report.ok, report.imports.filter((i) => i.status === "stub"));
 * ```
 *
 * @module
 */
import { LabError } from "./lab_error.ts";
import { parsePe, type PeImage } from "./pe.ts";

/**
 * How Wine provides one import.
 *
 * @example
 * ```ts
 * import type { ImportStatus } from "./check.ts";
 * const status: ImportStatus = "stub";
 * ```
 */
export type ImportStatus = "implemented" | "stub" | "missing";

/**
 * One import of a driver and how Wine provides it.
 *
 * @example
 * ```ts ignore
 * const entry: CheckedImport = { dll: "ntoskrnl.exe", name: "IoCsqInsertIrp", status: "stub" };
 * ```
 */
export interface CheckedImport {
  /** The DLL the driver imports from. */
  readonly dll: string;
  /** The function (or `#<ordinal>`). */
  readonly name: string;
  /** How Wine provides it. */
  readonly status: ImportStatus;
  /** `DLL.Name` when Wine forwards it. */
  readonly forwarder?: string;
  /** What is known to go wrong with it under Wine 8 although it is implemented. */
  readonly caveat?: string;
  /** For a missing import, when known: why Wine lacks it and what to do. */
  readonly missingReason?: string;
}

/**
 * The result of {@linkcode checkDriver}.
 *
 * @example
 * ```ts ignore
 * const report: CheckReport = await checkDriver("x.sys");
 * if (!report.ok) Deno.exit(1);
 * ```
 */
export interface CheckReport {
  /** The driver file. */
  readonly driver: string;
  /** Where Wine's DLLs were read. */
  readonly wineDir: string;
  /** Every import, in the driver's order. */
  readonly imports: readonly CheckedImport[];
  /** Counts per status. */
  readonly counts: Readonly<Record<ImportStatus, number>>;
  /** No stub and no missing import. */
  readonly ok: boolean;
  /** Whether the driver carries DWARF line information (crash reports name lines). */
  readonly hasDebugInfo: boolean;
}

/**
 * Where Debian, Fedora and WineHQ's packages put Wine's 64-bit PE DLLs.
 *
 * @example
 * ```ts
 * import { WINE_DLL_DIRS } from "./check.ts";
 * WINE_DLL_DIRS[0]; // "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows"
 * ```
 */
export const WINE_DLL_DIRS: readonly string[] = [
  "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows",
  "/usr/lib64/wine/x86_64-windows",
  "/usr/lib/wine/x86_64-windows",
  "/opt/wine-stable/lib64/wine/x86_64-windows",
  "/opt/wine-devel/lib64/wine/x86_64-windows",
  "/opt/wine-staging/lib64/wine/x86_64-windows",
];

/**
 * Behaviours of implemented functions measured under Wine 8.0 (the README's
 * gap table): shown next to the import, never counted as a failure.
 */
/** Kernel DLLs Wine 8 does not ship, by what a driver that imports them is. */
const ABSENT_DLLS: ReadonlyMap<string, string> = new Map([
  [
    "wdfldr.sys",
    "a KMDF driver, and Wine 8 has no Kernel-Mode Driver Framework (WdfLdr.sys, Wdf01000.sys): " +
    "the lab runs WDM drivers",
  ],
  ["storport.sys", "a Storport miniport: Wine 8 has no Storport"],
]);

/** Functions newer than Wine 8's ntoskrnl that drivers commonly import. */
const MISSING_FUNCTIONS: ReadonlyMap<string, string> = new Map([
  [
    "ExAllocatePool2",
    "Windows 10 2004's allocator; a build from source through kbport.h maps it to " +
    "ExAllocatePoolWithTag with its zeroing",
  ],
  ["ExAllocatePool3", "Windows 10 2004's allocator, not in Wine 8"],
  ["ExFreePool2", "Windows 10 2004's allocator, not in Wine 8"],
  ["IoCsqInitializeEx", "Wine 8 has no IoCsq*Ex and stubs the other IoCsq* calls"],
  ["IoCsqInsertIrpEx", "Wine 8 has no IoCsq*Ex and stubs the other IoCsq* calls"],
]);

const WINE8_CAVEATS: ReadonlyMap<string, string> = new Map([
  ["MmMapLockedPagesSpecifyCache", "returns NULL for a driver-built MDL and for UserMode"],
  ["MmProbeAndLockPages", "a FIXME stub: locks nothing"],
  ["ObReferenceObjectByHandle", "UserMode handles of the app: STATUS_NOT_IMPLEMENTED"],
  ["ProbeForRead", "a no-op"],
  ["ProbeForWrite", "a no-op"],
  ["KeInitializeDpc", "a semi-stub"],
  ["IoCsqInitialize", "a FIXME stub (the other IoCsq* calls are stubs)"],
  ["DbgBreakPoint", "an unhandled breakpoint: kills the driver host"],
  ["KeQueryInterruptTime", "counts in milliseconds"],
]);

/**
 * The first directory of {@linkcode WINE_DLL_DIRS} holding `ntoskrnl.exe`.
 *
 * @throws {LabError} `not-set-up` when none does (Wine is not installed)
 *
 * @example
 * ```ts ignore
 * const dir = await findWineDllDir(); // "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows"
 * ```
 */
export async function findWineDllDir(
  candidates: readonly string[] = WINE_DLL_DIRS,
): Promise<string> {
  for (const dir of candidates) {
    try {
      await Deno.stat(`${dir}/ntoskrnl.exe`);
      return dir;
    } catch {
      // Not this one.
    }
  }
  throw new LabError(
    "not-set-up",
    `kbridge lab: Wine's 64-bit DLLs (ntoskrnl.exe) are in none of ${candidates.join(", ")}; ` +
      "install wine (kbridge lab setup) or pass --wine-dir",
  );
}

/** x64 `sub rsp,0x28`, then `lea rcx,[rip+d]`, `lea rdx,[rip+d]`, `call rel32`. */
const STUB_PREFIX = [0x48, 0x83, 0xec, 0x28, 0x48, 0x8d, 0x0d];
const STUB_LEA_RDX = [0x48, 0x8d, 0x15];
const STUB_LENGTH = 24;

function matches(bytes: Uint8Array, offset: number, pattern: readonly number[]): boolean {
  return pattern.every((byte, i) => bytes[offset + i] === byte);
}

function rel32(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset + offset, 4).getInt32(0, true);
}

/**
 * Whether the export `name` at `rva` of Wine DLL `image` is a winebuild stub
 * (see the module's documentation).
 *
 * @example
 * ```ts ignore
 * isWineStub(ntoskrnl, "IoCsqInsertIrp", rvaOf("IoCsqInsertIrp")); // true under Wine 8
 * ```
 */
export function isWineStub(image: PeImage, name: string, rva: number): boolean {
  const code = image.bytesAt(rva, STUB_LENGTH);
  if (code === undefined || !matches(code, 0, STUB_PREFIX) || !matches(code, 11, STUB_LEA_RDX)) {
    return false;
  }
  if (code[18] !== 0xe8) return false;
  // lea rdx ends at +18: its target is the stub's function name.
  const nameRva = rva + 18 + rel32(code, 14);
  return image.stringAt(nameRva) === name;
}

/** Exports of one Wine DLL, classified lazily. */
class WineDll {
  readonly #image: PeImage;
  readonly #exports: Map<string, { rva: number; forwarder?: string }>;
  constructor(image: PeImage) {
    this.#image = image;
    this.#exports = new Map(image.exports.map((e) => [e.name, e]));
  }
  classify(name: string): { status: ImportStatus; forwarder?: string } {
    const entry = this.#exports.get(name);
    if (entry === undefined) return { status: "missing" };
    if (entry.forwarder !== undefined) return { status: "implemented", forwarder: entry.forwarder };
    return { status: isWineStub(this.#image, name, entry.rva) ? "stub" : "implemented" };
  }
}

/**
 * Options of {@linkcode checkDriver}.
 *
 * @example
 * ```ts
 * import type { CheckOptions } from "./check.ts";
 * const options: CheckOptions = { wineDir: "/usr/lib/wine/x86_64-windows" };
 * ```
 */
export interface CheckOptions {
  /** The directory of Wine's 64-bit PE DLLs (default: found with {@linkcode findWineDllDir}). */
  wineDir?: string;
}

async function readFile(path: string, what: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (cause) {
    throw new LabError(
      "bad-image",
      `kbridge lab: cannot read ${what} ${path}: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
}

/**
 * Classifies every import of the driver at `driverPath` against the Wine DLLs.
 *
 * @throws {LabError} `bad-image` when the driver (or a Wine DLL) is no PE image
 *
 * @example
 * ```ts ignore
 * import { checkDriver } from "./check.ts";
 * const report = await checkDriver("build/fixture/kbwdm.sys");
 * console.log(report.counts); // { implemented: 17, stub: 0, missing: 0 }
 * ```
 */
export async function checkDriver(
  driverPath: string,
  options: CheckOptions = {},
): Promise<CheckReport> {
  const wineDir = options.wineDir ?? await findWineDllDir();
  let image: PeImage;
  try {
    image = parsePe(await readFile(driverPath, "driver"));
  } catch (error) {
    if (error instanceof LabError) {
      throw new LabError(error.reason, `${driverPath}: ${error.message}`);
    }
    throw error;
  }
  const dlls = new Map<string, WineDll | null>();
  const dllFor = async (dll: string): Promise<WineDll | null> => {
    const key = dll.toLowerCase();
    if (!dlls.has(key)) {
      let bytes: Uint8Array | undefined;
      try {
        bytes = await Deno.readFile(`${wineDir}/${key}`);
      } catch {
        bytes = undefined;
      }
      dlls.set(key, bytes === undefined ? null : new WineDll(parsePe(bytes)));
    }
    return dlls.get(key)!;
  };
  const imports: CheckedImport[] = [];
  const counts: Record<ImportStatus, number> = { implemented: 0, stub: 0, missing: 0 };
  for (const entry of image.imports) {
    const name = entry.name ?? `#${entry.ordinal}`;
    const dll = await dllFor(entry.dll);
    // Wine exports nothing by ordinal alone that a driver could rely on.
    const result = dll === null || entry.name === undefined
      ? { status: "missing" as const }
      : dll.classify(entry.name);
    const caveat = WINE8_CAVEATS.get(name);
    const missingReason = dll === null
      ? ABSENT_DLLS.get(entry.dll.toLowerCase()) ?? "Wine 8 does not have this DLL"
      : result.status === "missing"
      ? MISSING_FUNCTIONS.get(name)
      : undefined;
    imports.push({
      dll: entry.dll,
      name,
      ...result,
      ...(caveat !== undefined && result.status === "implemented" ? { caveat } : {}),
      ...(missingReason !== undefined ? { missingReason } : {}),
    });
    counts[result.status]++;
  }
  return {
    driver: driverPath,
    wineDir,
    imports,
    counts,
    ok: counts.stub === 0 && counts.missing === 0,
    hasDebugInfo: image.hasDwarf,
  };
}

/**
 * The report as text: one line per stub, missing or caveat import, then a summary.
 *
 * @example
 * ```ts ignore
 * console.log(formatCheckReport(await checkDriver("x.sys")));
 * ```
 */
export function formatCheckReport(report: CheckReport, options: { all?: boolean } = {}): string {
  const lines: string[] = [];
  for (const entry of report.imports) {
    if (!options.all && entry.status === "implemented" && entry.caveat === undefined) continue;
    const what = entry.status === "stub"
      ? "STUB (calling it kills the driver host)"
      : entry.status === "missing"
      ? `MISSING (the driver will not load${entry.missingReason ? `; ${entry.missingReason}` : ""})`
      : `implemented${entry.forwarder ? ` (-> ${entry.forwarder})` : ""}`;
    lines.push(
      `  ${`${entry.dll}!${entry.name}`.padEnd(48)} ${what}${
        entry.caveat ? `; under Wine 8: ${entry.caveat}` : ""
      }`,
    );
  }
  const { implemented, stub, missing } = report.counts;
  lines.push(
    `${report.driver}: ${report.imports.length} imports: ${implemented} implemented, ${stub} stub, ` +
      `${missing} missing` +
      (report.hasDebugInfo ? "" : " (no debug info: build with -g for source lines)"),
  );
  return lines.join("\n");
}
