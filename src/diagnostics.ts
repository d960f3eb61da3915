/**
 * Counts of this process's OS resources, for leak checks and for bounding
 * the threads overlapped I/O uses.
 *
 * @module
 */
import { Win32Error } from "./errors.ts";
import { INVALID_HANDLE_VALUE, kernel32, pointerValue } from "./native.ts";

const TH32CS_SNAPTHREAD = 0x4;
const THREADENTRY32_SIZE = 28;

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
  /** Open handles of this process (`GetProcessHandleCount`). */
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
  const count = new Uint32Array(1);
  if (!k32.GetProcessHandleCount(k32.GetCurrentProcess(), count)) {
    throw new Win32Error({ code: k32.GetLastError(), call: "GetProcessHandleCount" });
  }
  return { threads, handles: count[0] };
}
