/**
 * The `Deno.dlopen` symbol table of advapi32.dll: the service control manager
 * calls kbridge uses to install, start, stop, query and delete a kernel driver.
 *
 * @example
 * ```ts ignore
 * const { symbols } = Deno.dlopen("advapi32.dll", advapi32Symbols);
 * ```
 *
 * @module
 */

/** advapi32.dll symbols, as passed to `Deno.dlopen`. */
export const advapi32Symbols = {
  OpenSCManagerW: { parameters: ["buffer", "buffer", "u32"], result: "pointer" }, // machine, db, access
  CreateServiceW: {
    // SC_HANDLE, LPCWSTR name, LPCWSTR display, DWORD access, DWORD type, DWORD start,
    // DWORD errorControl, LPCWSTR binaryPath, LPCWSTR group, LPDWORD tag, LPCWSTR deps,
    // LPCWSTR account, LPCWSTR password
    parameters: [
      "pointer",
      "buffer",
      "buffer",
      "u32",
      "u32",
      "u32",
      "u32",
      "buffer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "pointer",
  },
  OpenServiceW: { parameters: ["pointer", "buffer", "u32"], result: "pointer" }, // SC_HANDLE, name, access
  StartServiceW: { parameters: ["pointer", "u32", "pointer"], result: "i32" }, // SC_HANDLE, argc, argv
  ControlService: { parameters: ["pointer", "u32", "buffer"], result: "i32" }, // SC_HANDLE, control, SERVICE_STATUS*
  QueryServiceStatus: { parameters: ["pointer", "buffer"], result: "i32" }, // SC_HANDLE, SERVICE_STATUS*
  DeleteService: { parameters: ["pointer"], result: "i32" },
  CloseServiceHandle: { parameters: ["pointer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;
