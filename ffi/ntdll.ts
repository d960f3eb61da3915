/**
 * The `Deno.dlopen` symbol table of ntdll.dll: the NTSTATUS behind the last
 * Win32 error of the calling thread, the NTSTATUS → Win32 error mapping, the
 * system's handle table (for leak checks), symbolic links (the stale
 * `\DosDevices` link of a dead driver host under Wine) and Wine's version.
 *
 * @example
 * ```ts ignore
 * const { symbols } = Deno.dlopen("ntdll.dll", ntdllSymbols);
 * ```
 *
 * @module
 */

/** ntdll.dll symbols, as passed to `Deno.dlopen`. */
export const ntdllSymbols = {
  // NTSTATUS RtlGetLastNtStatus(void): the status the last Win32 error was converted from
  RtlGetLastNtStatus: { parameters: [], result: "u32" },
  // ULONG RtlNtStatusToDosError(NTSTATUS): the Win32 error Windows reports for a status
  RtlNtStatusToDosErrorNoTeb: { parameters: ["u32"], result: "u32" },
  // NTSTATUS NtQuerySystemInformation(SYSTEM_INFORMATION_CLASS, PVOID, ULONG length, PULONG returned)
  NtQuerySystemInformation: { parameters: ["u32", "buffer", "u32", "buffer"], result: "u32" },
  // NTSTATUS NtOpenSymbolicLinkObject(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES)
  NtOpenSymbolicLinkObject: { parameters: ["buffer", "u32", "buffer"], result: "u32" },
  // NTSTATUS NtMakeTemporaryObject(HANDLE): a permanent object goes with its last handle
  NtMakeTemporaryObject: { parameters: ["pointer"], result: "u32" },
  // NTSTATUS NtClose(HANDLE)
  NtClose: { parameters: ["pointer"], result: "u32" },
  // const char *wine_get_version(void): exported by Wine's ntdll only (null on Windows)
  wine_get_version: { parameters: [], result: "pointer", optional: true },
} as const satisfies Deno.ForeignLibraryInterface;
