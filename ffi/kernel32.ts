/**
 * The `Deno.dlopen` symbol table of kernel32.dll: the calls kbridge makes for
 * files, I/O control, overlapped I/O, events, mappings and diagnostics.
 * The C type of each parameter follows as a comment.
 *
 * @example
 * ```ts ignore
 * const { symbols } = Deno.dlopen("kernel32.dll", kernel32Symbols);
 * ```
 *
 * @module
 */

/** kernel32.dll symbols, as passed to `Deno.dlopen`. */
export const kernel32Symbols = {
  CreateFileW: {
    // LPCWSTR name, DWORD access, DWORD share, LPSECURITY_ATTRIBUTES, DWORD disposition,
    // DWORD flags, HANDLE template
    parameters: ["buffer", "u32", "u32", "pointer", "u32", "u32", "pointer"],
    result: "pointer", // HANDLE
  },
  CloseHandle: { parameters: ["pointer"], result: "i32" }, // HANDLE -> BOOL
  DeviceIoControl: {
    // HANDLE, DWORD code, LPVOID in, DWORD inSize, LPVOID out, DWORD outSize,
    // LPDWORD returned, LPOVERLAPPED
    parameters: ["pointer", "u32", "buffer", "u32", "buffer", "u32", "buffer", "buffer"],
    result: "i32",
  },
  ReadFile: {
    // HANDLE, LPVOID buffer, DWORD toRead, LPDWORD read, LPOVERLAPPED
    parameters: ["pointer", "buffer", "u32", "buffer", "buffer"],
    result: "i32",
  },
  WriteFile: {
    // HANDLE, LPCVOID buffer, DWORD toWrite, LPDWORD written, LPOVERLAPPED
    parameters: ["pointer", "buffer", "u32", "buffer", "buffer"],
    result: "i32",
  },
  GetLastError: { parameters: [], result: "u32" },
  CancelIoEx: { parameters: ["pointer", "buffer"], result: "i32" }, // HANDLE, LPOVERLAPPED
  GetOverlappedResult: {
    parameters: ["pointer", "buffer", "buffer", "i32"], // HANDLE, LPOVERLAPPED, LPDWORD, BOOL wait
    result: "i32",
  },
  CreateIoCompletionPort: {
    // HANDLE file, HANDLE existingPort, ULONG_PTR key, DWORD threads
    parameters: ["pointer", "pointer", "usize", "u32"],
    result: "pointer",
  },
  GetQueuedCompletionStatusEx: {
    // HANDLE port, LPOVERLAPPED_ENTRY entries, ULONG count, PULONG removed, DWORD ms, BOOL alertable
    parameters: ["pointer", "buffer", "u32", "buffer", "u32", "i32"],
    result: "i32",
  },
  GetQueuedCompletionStatusExAsync: {
    name: "GetQueuedCompletionStatusEx",
    parameters: ["pointer", "buffer", "u32", "buffer", "u32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  PostQueuedCompletionStatus: {
    // HANDLE port, DWORD bytes, ULONG_PTR key, LPOVERLAPPED
    parameters: ["pointer", "u32", "usize", "pointer"],
    result: "i32",
  },
  SetFileCompletionNotificationModes: {
    // HANDLE file, UCHAR flags
    parameters: ["pointer", "u8"],
    result: "i32",
  },
  CreateEventW: {
    // LPSECURITY_ATTRIBUTES, BOOL manualReset, BOOL initialState, LPCWSTR name
    parameters: ["pointer", "i32", "i32", "buffer"],
    result: "pointer",
  },
  OpenEventW: { parameters: ["u32", "i32", "buffer"], result: "pointer" }, // access, inherit, name
  SetEvent: { parameters: ["pointer"], result: "i32" },
  ResetEvent: { parameters: ["pointer"], result: "i32" },
  WaitForSingleObject: { parameters: ["pointer", "u32"], result: "u32" }, // HANDLE, DWORD ms
  WaitForMultipleObjects: {
    // DWORD count, const HANDLE* handles, BOOL waitAll, DWORD ms
    parameters: ["u32", "buffer", "i32", "u32"],
    result: "u32",
  },
  WaitForMultipleObjectsAsync: {
    name: "WaitForMultipleObjects",
    // DWORD count, const HANDLE* handles, BOOL waitAll, DWORD ms
    parameters: ["u32", "buffer", "i32", "u32"],
    result: "u32",
    nonblocking: true,
  },
  OpenFileMappingW: { parameters: ["u32", "i32", "buffer"], result: "pointer" }, // access, inherit, name
  MapViewOfFile: {
    // HANDLE mapping, DWORD access, DWORD offsetHigh, DWORD offsetLow, SIZE_T bytes
    parameters: ["pointer", "u32", "u32", "u32", "usize"],
    result: "pointer",
  },
  UnmapViewOfFile: { parameters: ["pointer"], result: "i32" },
  VirtualQuery: {
    // LPCVOID address, PMEMORY_BASIC_INFORMATION info, SIZE_T length -> SIZE_T
    parameters: ["pointer", "buffer", "usize"],
    result: "usize",
  },
  GetCurrentProcessId: { parameters: [], result: "u32" },
  SwitchToThread: { parameters: [], result: "i32" }, // -> BOOL: another thread ran
  QueryPerformanceCounter: { parameters: ["buffer"], result: "i32" }, // LARGE_INTEGER*
  QueryPerformanceFrequency: { parameters: ["buffer"], result: "i32" },
  CreateToolhelp32Snapshot: { parameters: ["u32", "u32"], result: "pointer" }, // flags, pid
  Thread32First: { parameters: ["pointer", "buffer"], result: "i32" }, // HANDLE, LPTHREADENTRY32
  Thread32Next: { parameters: ["pointer", "buffer"], result: "i32" },
  Process32FirstW: { parameters: ["pointer", "buffer"], result: "i32" }, // HANDLE, LPPROCESSENTRY32W
  Process32NextW: { parameters: ["pointer", "buffer"], result: "i32" },
  Module32FirstW: { parameters: ["pointer", "buffer"], result: "i32" }, // HANDLE, LPMODULEENTRY32W
  Module32NextW: { parameters: ["pointer", "buffer"], result: "i32" },
  OpenProcess: { parameters: ["u32", "i32", "u32"], result: "pointer" }, // access, inherit, pid
  VirtualQueryEx: {
    // HANDLE process, LPCVOID address, PMEMORY_BASIC_INFORMATION, SIZE_T length -> SIZE_T
    parameters: ["pointer", "u64", "buffer", "usize"],
    result: "usize",
  },
} as const satisfies Deno.ForeignLibraryInterface;
