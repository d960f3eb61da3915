/**
 * Lazy loading of the Windows DLLs, so that importing kbridge works on any OS
 * and only a Windows call needs Windows.
 *
 * @module
 */
import { kernel32Symbols } from "../../ffi/kernel32.ts";
import { advapi32Symbols } from "../../ffi/advapi32.ts";
import { ntdllSymbols } from "../../ffi/ntdll.ts";
import { KbridgeError, UnsupportedPlatformError } from "./errors.ts";

/** The loaded kernel32.dll symbols. */
export type Kernel32 = Deno.DynamicLibrary<typeof kernel32Symbols>["symbols"];
/** The loaded ntdll.dll symbols. */
export type Ntdll = Deno.DynamicLibrary<typeof ntdllSymbols>["symbols"];
/** The loaded advapi32.dll symbols. */
export type Advapi32 = Deno.DynamicLibrary<typeof advapi32Symbols>["symbols"];

let kernel32Library: Deno.DynamicLibrary<typeof kernel32Symbols> | undefined;
let advapi32Library: Deno.DynamicLibrary<typeof advapi32Symbols> | undefined;
let ntdllLibrary: Deno.DynamicLibrary<typeof ntdllSymbols> | undefined;

function open<S extends Deno.ForeignLibraryInterface>(
  name: string,
  symbols: S,
  call: string,
): Deno.DynamicLibrary<S> {
  if (Deno.build.os !== "windows") throw new UnsupportedPlatformError(call);
  try {
    return Deno.dlopen(name, symbols);
  } catch (cause) {
    throw new KbridgeError(`kbridge: cannot load ${name}`, { cause });
  }
}

/**
 * kernel32.dll, loaded on first use.
 *
 * @example
 * ```ts ignore
 * const pid = kernel32("GetCurrentProcessId").GetCurrentProcessId();
 * ```
 */
export function kernel32(call: string): Kernel32 {
  kernel32Library ??= open("kernel32.dll", kernel32Symbols, call);
  ntdllLibrary ??= open("ntdll.dll", ntdllSymbols, call);
  return kernel32Library.symbols;
}

/**
 * Whether this process runs under Wine (its ntdll exports `wine_get_version`).
 *
 * @example
 * ```ts ignore
 * if (underWine()) console.log("Wine");
 * ```
 */
export function underWine(): boolean {
  return ntdll("wine_get_version").wine_get_version !== null;
}

/**
 * ntdll.dll, loaded (with kernel32.dll) on first use.
 *
 * @example
 * ```ts ignore
 * const status = ntdll("RtlGetLastNtStatus").RtlGetLastNtStatus();
 * ```
 */
export function ntdll(call: string): Ntdll {
  kernel32(call);
  return ntdllLibrary!.symbols;
}

/**
 * The Win32 error Windows reports for an NTSTATUS (`RtlNtStatusToDosErrorNoTeb`).
 *
 * @example
 * ```ts ignore
 * win32ErrorOf(0xc0000023); // 122, ERROR_INSUFFICIENT_BUFFER
 * ```
 */
export function win32ErrorOf(status: number): number {
  return ntdll("RtlNtStatusToDosErrorNoTeb").RtlNtStatusToDosErrorNoTeb(status >>> 0);
}

/**
 * The last Win32 error of this thread and the NTSTATUS it came from; call it
 * right after the failing call, before any other FFI call.
 *
 * @example
 * ```ts ignore
 * if (!k32.CloseHandle(handle)) throw new Win32Error({ ...lastError(k32), call: "CloseHandle" });
 * ```
 */
export function lastError(k32: Kernel32): { code: number; ntStatus?: number } {
  const code = k32.GetLastError();
  const status = ntdllLibrary!.symbols.RtlGetLastNtStatus();
  return status === 0 ? { code } : { code, ntStatus: status };
}

/**
 * advapi32.dll, loaded on first use.
 *
 * @example
 * ```ts ignore
 * const scm = advapi32("OpenSCManagerW").OpenSCManagerW(null, null, 0xf003f);
 * ```
 */
export function advapi32(call: string): Advapi32 {
  // Errors are read with kernel32's GetLastError: load it first so that its
  // loading never runs between a failing call and that read.
  kernel32(call);
  advapi32Library ??= open("advapi32.dll", advapi32Symbols, call);
  return advapi32Library.symbols;
}

/**
 * A NUL-terminated UTF-16LE copy of `text`, for `LPCWSTR` parameters.
 *
 * @example
 * ```ts
 * import { wideString } from "./native.ts";
 * wideString("A"); // Uint8Array [0x41, 0, 0, 0]
 * ```
 */
export function wideString(text: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array((text.length + 1) * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < text.length; i++) view.setUint16(i * 2, text.charCodeAt(i), true);
  return out;
}

/**
 * The numeric value of a handle or pointer (0n for null).
 *
 * @example
 * ```ts
 * import { pointerValue } from "./native.ts";
 * pointerValue(null); // 0n
 * ```
 */
export function pointerValue(pointer: Deno.PointerValue): bigint {
  return pointer === null ? 0n : BigInt(Deno.UnsafePointer.value(pointer));
}

/** `INVALID_HANDLE_VALUE`, `(HANDLE)-1`, as an unsigned 64-bit value. */
export const INVALID_HANDLE_VALUE = 0xffff_ffff_ffff_ffffn;
