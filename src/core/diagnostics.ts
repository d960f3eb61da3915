/**
 * Counts of this process's OS resources, for leak checks and for bounding
 * the threads overlapped I/O uses.
 *
 * @module
 */
import { Win32Error } from "./win32_error.ts";
import { INVALID_HANDLE_VALUE, kernel32, ntdll, pointerValue, win32ErrorOf } from "./native.ts";

const TH32CS_SNAPTHREAD = 0x4;
const THREADENTRY32_SIZE = 28;
const SYSTEM_EXTENDED_HANDLE_INFORMATION = 64;
const STATUS_INFO_LENGTH_MISMATCH = 0xc000_0004;
/** SYSTEM_HANDLE_INFORMATION_EX: NumberOfHandles, Reserved, then the entries. */
const HANDLE_TABLE_HEADER = 16;
/** SYSTEM_HANDLE_TABLE_ENTRY_INFO_EX: Object, UniqueProcessId, HandleValue, access, … */
const HANDLE_ENTRY_SIZE = 40;
const HANDLE_ENTRY_PROCESS_ID = 8;

/**
 * This process's thread and handle counts.
 *
 * @example
 * ```ts ignore
 * const { threads, handles }: ProcessResources = processResources();
 * ```
 */
export interface ProcessResources {
  /** Threads of this process (toolhelp snapshot). */
  threads: number;
  /**
   * Open handles of this process, counted in the system's handle table
   * (`NtQuerySystemInformation`; Wine's `GetProcessHandleCount` always says 0).
   */
  handles: number;
}

/**
 * Counts this process's threads and handles.
 *
 * @example
 * ```ts ignore
 * const before = processResources();
 * // ... open, use and close devices ...
 * console.log(processResources().handles - before.handles); // 0 when nothing leaked
 * ```
 */
export function processResources(): ProcessResources {
  const k32 = kernel32("CreateToolhelp32Snapshot");
  const pid = k32.GetCurrentProcessId();
  const snapshot = k32.CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
  if (snapshot === null || pointerValue(snapshot) === INVALID_HANDLE_VALUE) {
    throw new Win32Error({ code: k32.GetLastError(), call: "CreateToolhelp32Snapshot" });
  }
  let threads = 0;
  try {
    const entry = new Uint8Array(THREADENTRY32_SIZE);
    const view = new DataView(entry.buffer);
    view.setUint32(0, THREADENTRY32_SIZE, true);
    for (let ok = k32.Thread32First(snapshot, entry); ok; ok = k32.Thread32Next(snapshot, entry)) {
      if (view.getUint32(12, true) === pid) threads++;
      view.setUint32(0, THREADENTRY32_SIZE, true);
    }
  } finally {
    k32.CloseHandle(snapshot);
  }
  return { threads, handles: countHandles(pid) };
}

/** This process's entries in the system's handle table. */
function countHandles(pid: number): number {
  const query = ntdll("NtQuerySystemInformation").NtQuerySystemInformation;
  const needed = new Uint32Array(1);
  let size = 1 << 18;
  for (;;) {
    const table = new Uint8Array(size);
    const status = query(SYSTEM_EXTENDED_HANDLE_INFORMATION, table, size, needed);
    if (status === STATUS_INFO_LENGTH_MISMATCH) {
      size = Math.max(size * 2, needed[0] + (1 << 16));
      continue;
    }
    if (status !== 0) {
      throw new Win32Error({
        code: win32ErrorOf(status),
        ntStatus: status,
        call: "NtQuerySystemInformation",
      });
    }
    const view = new DataView(table.buffer);
    const entries = Number(view.getBigUint64(0, true));
    const own = BigInt(pid);
    let count = 0;
    for (let i = 0; i < entries; i++) {
      const at = HANDLE_TABLE_HEADER + i * HANDLE_ENTRY_SIZE + HANDLE_ENTRY_PROCESS_ID;
      if (view.getBigUint64(at, true) === own) count++;
    }
    return count;
  }
}
