/**
 * Kernel driver services through the service control manager (advapi32):
 * install, start, stop, query and remove.
 *
 * @module
 */
import { ArgumentError, checkInteger } from "../core/errors.ts";
import { Win32Error } from "../core/win32_error.ts";
import { type Advapi32, advapi32, kernel32, wideString } from "../core/native.ts";

const SC_MANAGER_ALL_ACCESS = 0xf003f;
const SERVICE_ALL_ACCESS = 0xf01ff;
const SERVICE_KERNEL_DRIVER = 0x1;
const SERVICE_ERROR_NORMAL = 0x1;
const SERVICE_CONTROL_STOP = 0x1;
const SERVICE_STATUS_SIZE = 28;
const ERROR_SERVICE_NOT_ACTIVE = 1062;
const ERROR_SERVICE_DOES_NOT_EXIST = 1060;

/**
 * When Windows starts the driver.
 *
 * @example
 * ```ts ignore
 * installDriver("kbridge", "C:\\drivers\\kbridge.sys", { startType: "demand" });
 * ```
 */
export type DriverStartType = "boot" | "system" | "auto" | "demand" | "disabled";

const START_TYPES: Record<DriverStartType, number> = {
  boot: 0,
  system: 1,
  auto: 2,
  demand: 3,
  disabled: 4,
};

/**
 * The state of a service, as `QueryServiceStatus` reports it.
 *
 * @example
 * ```ts ignore
 * const state: ServiceState | undefined = queryDriver("kbridge")?.state;
 * ```
 */
export type ServiceState =
  | "stopped"
  | "start-pending"
  | "stop-pending"
  | "running"
  | "continue-pending"
  | "pause-pending"
  | "paused";

const STATES: readonly ServiceState[] = [
  "stopped",
  "start-pending",
  "stop-pending",
  "running",
  "continue-pending",
  "pause-pending",
  "paused",
];

/**
 * A driver service's status.
 *
 * @example
 * ```ts ignore
 * const status: DriverStatus | null = queryDriver("kbridge");
 * if (status?.state === "running") console.log("loaded");
 * ```
 */
export interface DriverStatus {
  /** The service name. */
  name: string;
  /** The current state. */
  state: ServiceState;
  /** The Win32 exit code the service reported (0 when none). */
  win32ExitCode: number;
}

/**
 * Options of {@linkcode installDriver}.
 *
 * @example
 * ```ts ignore
 * installDriver("kbridge", "C:\\drivers\\kbridge.sys", { displayName: "kbridge reference driver" });
 * ```
 */
export interface InstallDriverOptions {
  /** The name shown by service tools (default: the service name). */
  displayName?: string;
  /** When the driver starts (default "demand": when {@linkcode startDriver} asks). */
  startType?: DriverStartType;
}

function checkName(fn: string, name: unknown): string {
  if (typeof name !== "string" || name.length === 0 || name.length > 256 || /[\0\\/]/.test(name)) {
    throw new ArgumentError(
      fn,
      "name",
      "a service name of 1..256 characters without \\, / or NUL",
      name,
    );
  }
  return name;
}

/** Runs `body` with a handle of the service control manager, closed afterwards. */
function withManager<T>(call: string, body: (api: Advapi32, manager: Deno.PointerValue) => T): T {
  const api = advapi32(call);
  const manager = api.OpenSCManagerW(null, null, SC_MANAGER_ALL_ACCESS);
  if (manager === null) {
    throw new Win32Error({ code: kernel32(call).GetLastError(), call: "OpenSCManagerW" });
  }
  try {
    return body(api, manager);
  } finally {
    api.CloseServiceHandle(manager);
  }
}

/** Runs `body` with a handle of service `name`, closed afterwards. */
function withService<T>(
  call: string,
  name: string,
  body: (api: Advapi32, service: Deno.PointerValue) => T,
): T {
  return withManager(call, (api, manager) => {
    const service = api.OpenServiceW(manager, wideString(name), SERVICE_ALL_ACCESS);
    if (service === null) {
      throw new Win32Error({
        code: kernel32(call).GetLastError(),
        call: "OpenServiceW",
        detail: name,
      });
    }
    try {
      return body(api, service);
    } finally {
      api.CloseServiceHandle(service);
    }
  });
}

function readStatus(name: string, api: Advapi32, service: Deno.PointerValue): DriverStatus {
  const status = new Uint8Array(SERVICE_STATUS_SIZE);
  if (!api.QueryServiceStatus(service, status)) {
    throw new Win32Error({
      code: kernel32("QueryServiceStatus").GetLastError(),
      call: "QueryServiceStatus",
      detail: name,
    });
  }
  const view = new DataView(status.buffer);
  const state = view.getUint32(4, true);
  return { name, state: STATES[state - 1] ?? "stopped", win32ExitCode: view.getUint32(12, true) };
}

/**
 * Creates a kernel driver service for the `.sys` file at `binaryPath`
 * (`SERVICE_KERNEL_DRIVER`). Needs administrator rights.
 *
 * @throws {Win32Error} `ERROR_SERVICE_EXISTS (1073)` when the name is taken
 *
 * @example
 * ```ts ignore
 * installDriver("kbridge", "C:\\Windows\\System32\\drivers\\kbridge.sys");
 * startDriver("kbridge");
 * ```
 */
export function installDriver(
  name: string,
  binaryPath: string,
  options: InstallDriverOptions = {},
): void {
  checkName("installDriver", name);
  if (typeof binaryPath !== "string" || binaryPath.length === 0 || binaryPath.includes("\0")) {
    throw new ArgumentError(
      "installDriver",
      "binaryPath",
      "a non-empty path without NUL",
      binaryPath,
    );
  }
  const startType = options.startType ?? "demand";
  if (!(startType in START_TYPES)) {
    throw new ArgumentError(
      "installDriver",
      "options.startType",
      Object.keys(START_TYPES).join(" | "),
      startType,
    );
  }
  withManager("CreateServiceW", (api, manager) => {
    const service = api.CreateServiceW(
      manager,
      wideString(name),
      wideString(options.displayName ?? name),
      SERVICE_ALL_ACCESS,
      SERVICE_KERNEL_DRIVER,
      START_TYPES[startType],
      SERVICE_ERROR_NORMAL,
      wideString(binaryPath),
      null,
      null,
      null,
      null,
      null,
    );
    if (service === null) {
      throw new Win32Error({
        code: kernel32("CreateServiceW").GetLastError(),
        call: "CreateServiceW",
        detail: name,
      });
    }
    api.CloseServiceHandle(service);
  });
}

/**
 * Starts driver service `name`: the driver is loaded and its `DriverEntry`
 * has returned when this returns.
 *
 * @throws {Win32Error} e.g. `ERROR_SERVICE_ALREADY_RUNNING (1056)`
 *
 * @example
 * ```ts ignore
 * startDriver("kbridge");
 * ```
 */
export function startDriver(name: string): void {
  checkName("startDriver", name);
  withService("StartServiceW", name, (api, service) => {
    if (!api.StartServiceW(service, 0, null)) {
      throw new Win32Error({
        code: kernel32("StartServiceW").GetLastError(),
        call: "StartServiceW",
        detail: name,
      });
    }
  });
}

/**
 * Stops driver service `name` (its `DriverUnload` runs) and waits until the
 * service manager reports it stopped. Stopping a stopped driver does nothing.
 *
 * @throws {Win32Error} `ERROR_TIMEOUT (1460)` when it is still not stopped after `timeoutMs`
 *
 * @example
 * ```ts ignore
 * await stopDriver("kbridge");
 * ```
 */
export async function stopDriver(
  name: string,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  checkName("stopDriver", name);
  const timeoutMs = checkInteger(
    "stopDriver",
    "options.timeoutMs",
    options.timeoutMs ?? 10_000,
    0,
    600_000,
  );
  withService("ControlService", name, (api, service) => {
    const status = new Uint8Array(SERVICE_STATUS_SIZE);
    if (!api.ControlService(service, SERVICE_CONTROL_STOP, status)) {
      const code = kernel32("ControlService").GetLastError();
      if (code !== ERROR_SERVICE_NOT_ACTIVE) {
        throw new Win32Error({ code, call: "ControlService", detail: name });
      }
    }
  });
  const deadline = Date.now() + timeoutMs;
  while (queryDriver(name)?.state !== "stopped") {
    if (Date.now() >= deadline) {
      throw new Win32Error({ code: 1460, call: "stopDriver", detail: name });
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * The status of driver service `name`, or `null` when no such service exists.
 *
 * @example
 * ```ts ignore
 * const status = queryDriver("kbridge");
 * console.log(status?.state ?? "not installed");
 * ```
 */
export function queryDriver(name: string): DriverStatus | null {
  checkName("queryDriver", name);
  try {
    return withService(
      "QueryServiceStatus",
      name,
      (api, service) => readStatus(name, api, service),
    );
  } catch (error) {
    if (error instanceof Win32Error && error.code === ERROR_SERVICE_DOES_NOT_EXIST) return null;
    throw error;
  }
}

/**
 * Marks driver service `name` for deletion (it goes once stopped and no
 * handle to it remains).
 *
 * @example
 * ```ts ignore
 * await stopDriver("kbridge");
 * removeDriver("kbridge");
 * ```
 */
export function removeDriver(name: string): void {
  checkName("removeDriver", name);
  withService("DeleteService", name, (api, service) => {
    if (!api.DeleteService(service)) {
      throw new Win32Error({
        code: kernel32("DeleteService").GetLastError(),
        call: "DeleteService",
        detail: name,
      });
    }
  });
}
