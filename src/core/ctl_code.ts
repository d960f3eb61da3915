/**
 * I/O control codes: build them like the `CTL_CODE` macro of `winioctl.h`,
 * take them apart, and print them.
 *
 * A control code packs four fields into 32 bits:
 *
 * | bits  | field       | notes                                           |
 * | ----- | ----------- | ----------------------------------------------- |
 * | 31-16 | device type | bit 31 ("common") set for vendor types >= 0x8000 |
 * | 15-14 | access      | `FILE_ANY_ACCESS`, `FILE_READ_ACCESS`, ...       |
 * | 13-2  | function    | bit 13 ("custom") set for vendor codes >= 0x800  |
 * | 1-0   | method      | `METHOD_BUFFERED`, ..., `METHOD_NEITHER`         |
 *
 * @example
 * ```ts
 * import { ctlCode, formatCtlCode } from "./ctl_code.ts";
 *
 * const IOCTL_KBRIDGE_ECHO = ctlCode({
 *   deviceType: 0x8022,
 *   function: 0x801,
 *   method: "BUFFERED",
 *   access: "ANY",
 * }); // 0x80222004
 * formatCtlCode(IOCTL_KBRIDGE_ECHO); // "0x80222004 0x8022 fn 0x801 BUFFERED ANY"
 * ```
 *
 * @module
 */
import { ArgumentError, checkInteger } from "./errors.ts";

/**
 * The transfer methods (`METHOD_*`): how the I/O manager passes the buffers
 * of a control code to the driver.
 *
 * @example
 * ```ts
 * import { ctlCode, Method } from "./ctl_code.ts";
 *
 * ctlCode({ deviceType: 0x22, function: 0x800, method: Method.Neither, access: 0 }); // 0x222003
 * ```
 */
export const Method = {
  /** `METHOD_BUFFERED`: both buffers are copied through a system buffer. */
  Buffered: 0,
  /** `METHOD_IN_DIRECT`: the output buffer is locked (MDL) for the driver to read. */
  InDirect: 1,
  /** `METHOD_OUT_DIRECT`: the output buffer is locked (MDL) for the driver to write. */
  OutDirect: 2,
  /** `METHOD_NEITHER`: the driver gets the caller's raw pointers. */
  Neither: 3,
} as const;

/**
 * A transfer method: 0 to 3, see {@link Method}.
 *
 * @example
 * ```ts
 * import { Method, type TransferMethod } from "./ctl_code.ts";
 *
 * const method: TransferMethod = Method.OutDirect;
 * ```
 */
export type TransferMethod = typeof Method[keyof typeof Method];

/**
 * The names of the transfer methods, as in {@link CtlCodeInfo.methodName}.
 *
 * @example
 * ```ts
 * import type { MethodName } from "./ctl_code.ts";
 *
 * const name: MethodName = "IN_DIRECT";
 * ```
 */
export type MethodName = "BUFFERED" | "IN_DIRECT" | "OUT_DIRECT" | "NEITHER";

/**
 * The required access rights (`FILE_*_ACCESS`): the handle must have been
 * opened with them for the I/O manager to pass the request on.
 *
 * @example
 * ```ts
 * import { Access, ctlCode } from "./ctl_code.ts";
 *
 * ctlCode({ deviceType: 7, function: 0x17, method: 0, access: Access.Read }); // 0x7405C
 * ```
 */
export const Access = {
  /** `FILE_ANY_ACCESS` (also `FILE_SPECIAL_ACCESS`). */
  Any: 0,
  /** `FILE_READ_ACCESS`. */
  Read: 1,
  /** `FILE_WRITE_ACCESS`. */
  Write: 2,
  /** `FILE_READ_ACCESS | FILE_WRITE_ACCESS`. */
  ReadWrite: 3,
} as const;

/**
 * A required access: 0 to 3, see {@link Access}.
 *
 * @example
 * ```ts
 * import { Access, type RequiredAccess } from "./ctl_code.ts";
 *
 * const access: RequiredAccess = Access.ReadWrite;
 * ```
 */
export type RequiredAccess = typeof Access[keyof typeof Access];

/**
 * The names of the required accesses, as in {@link CtlCodeInfo.accessName}.
 *
 * @example
 * ```ts
 * import type { AccessName } from "./ctl_code.ts";
 *
 * const name: AccessName = "READ_WRITE";
 * ```
 */
export type AccessName = "ANY" | "READ" | "WRITE" | "READ_WRITE";

/**
 * The device types `winioctl.h` defines (`FILE_DEVICE_*`). Types 0x8000 and
 * up are for vendors; the kbridge driver uses 0x8022.
 *
 * @example
 * ```ts
 * import { DeviceTypes } from "./ctl_code.ts";
 *
 * DeviceTypes.FILE_DEVICE_UNKNOWN; // 0x22
 * ```
 */
export const DeviceTypes = {
  FILE_DEVICE_BEEP: 0x01,
  FILE_DEVICE_CD_ROM: 0x02,
  FILE_DEVICE_CD_ROM_FILE_SYSTEM: 0x03,
  FILE_DEVICE_CONTROLLER: 0x04,
  FILE_DEVICE_DATALINK: 0x05,
  FILE_DEVICE_DFS: 0x06,
  FILE_DEVICE_DISK: 0x07,
  FILE_DEVICE_DISK_FILE_SYSTEM: 0x08,
  FILE_DEVICE_FILE_SYSTEM: 0x09,
  FILE_DEVICE_INPORT_PORT: 0x0A,
  FILE_DEVICE_KEYBOARD: 0x0B,
  FILE_DEVICE_MAILSLOT: 0x0C,
  FILE_DEVICE_MIDI_IN: 0x0D,
  FILE_DEVICE_MIDI_OUT: 0x0E,
  FILE_DEVICE_MOUSE: 0x0F,
  FILE_DEVICE_MULTI_UNC_PROVIDER: 0x10,
  FILE_DEVICE_NAMED_PIPE: 0x11,
  FILE_DEVICE_NETWORK: 0x12,
  FILE_DEVICE_NETWORK_BROWSER: 0x13,
  FILE_DEVICE_NETWORK_FILE_SYSTEM: 0x14,
  FILE_DEVICE_NULL: 0x15,
  FILE_DEVICE_PARALLEL_PORT: 0x16,
  FILE_DEVICE_PHYSICAL_NETCARD: 0x17,
  FILE_DEVICE_PRINTER: 0x18,
  FILE_DEVICE_SCANNER: 0x19,
  FILE_DEVICE_SERIAL_MOUSE_PORT: 0x1A,
  FILE_DEVICE_SERIAL_PORT: 0x1B,
  FILE_DEVICE_SCREEN: 0x1C,
  FILE_DEVICE_SOUND: 0x1D,
  FILE_DEVICE_STREAMS: 0x1E,
  FILE_DEVICE_TAPE: 0x1F,
  FILE_DEVICE_TAPE_FILE_SYSTEM: 0x20,
  FILE_DEVICE_TRANSPORT: 0x21,
  FILE_DEVICE_UNKNOWN: 0x22,
  FILE_DEVICE_VIDEO: 0x23,
  FILE_DEVICE_VIRTUAL_DISK: 0x24,
  FILE_DEVICE_WAVE_IN: 0x25,
  FILE_DEVICE_WAVE_OUT: 0x26,
  FILE_DEVICE_8042_PORT: 0x27,
  FILE_DEVICE_NETWORK_REDIRECTOR: 0x28,
  FILE_DEVICE_BATTERY: 0x29,
  FILE_DEVICE_BUS_EXTENDER: 0x2A,
  FILE_DEVICE_MODEM: 0x2B,
  FILE_DEVICE_VDM: 0x2C,
  FILE_DEVICE_MASS_STORAGE: 0x2D,
  FILE_DEVICE_SMB: 0x2E,
  FILE_DEVICE_KS: 0x2F,
  FILE_DEVICE_CHANGER: 0x30,
  FILE_DEVICE_SMARTCARD: 0x31,
  FILE_DEVICE_ACPI: 0x32,
  FILE_DEVICE_DVD: 0x33,
  FILE_DEVICE_FULLSCREEN_VIDEO: 0x34,
  FILE_DEVICE_DFS_FILE_SYSTEM: 0x35,
  FILE_DEVICE_DFS_VOLUME: 0x36,
  FILE_DEVICE_SERENUM: 0x37,
  FILE_DEVICE_TERMSRV: 0x38,
  FILE_DEVICE_KSEC: 0x39,
  FILE_DEVICE_FIPS: 0x3A,
  FILE_DEVICE_INFINIBAND: 0x3B,
  FILE_DEVICE_VMBUS: 0x3E,
  FILE_DEVICE_CRYPT_PROVIDER: 0x3F,
  FILE_DEVICE_WPD: 0x40,
  FILE_DEVICE_BLUETOOTH: 0x41,
  FILE_DEVICE_MT_COMPOSITE: 0x42,
  FILE_DEVICE_MT_TRANSPORT: 0x43,
  FILE_DEVICE_BIOMETRIC: 0x44,
  FILE_DEVICE_PMI: 0x45,
  FILE_DEVICE_EHSTOR: 0x46,
  FILE_DEVICE_DEVAPI: 0x47,
  FILE_DEVICE_GPIO: 0x48,
  FILE_DEVICE_USBEX: 0x49,
  FILE_DEVICE_CONSOLE: 0x50,
  FILE_DEVICE_NFP: 0x51,
  FILE_DEVICE_SYSENV: 0x52,
  FILE_DEVICE_VIRTUAL_BLOCK: 0x53,
  FILE_DEVICE_POINT_OF_SERVICE: 0x54,
  FILE_DEVICE_STORAGE_REPLICATION: 0x55,
  FILE_DEVICE_TRUST_ENV: 0x56,
  FILE_DEVICE_UCM: 0x57,
  FILE_DEVICE_UCMTCPCI: 0x58,
  FILE_DEVICE_PERSISTENT_MEMORY: 0x59,
  FILE_DEVICE_NVDIMM: 0x5A,
  FILE_DEVICE_HOLOGRAPHIC: 0x5B,
  FILE_DEVICE_SDFXHCI: 0x5C,
  FILE_DEVICE_UCMUCSI: 0x5D,
  FILE_DEVICE_PRM: 0x5E,
  FILE_DEVICE_EVENT_COLLECTOR: 0x5F,
  FILE_DEVICE_USB4: 0x60,
  FILE_DEVICE_SOUNDWIRE: 0x61,
} as const;

/**
 * A `FILE_DEVICE_*` name, see {@link DeviceTypes}.
 *
 * @example
 * ```ts
 * import type { DeviceTypeName } from "./ctl_code.ts";
 *
 * const name: DeviceTypeName = "FILE_DEVICE_DISK";
 * ```
 */
export type DeviceTypeName = keyof typeof DeviceTypes;

/**
 * The fields of a control code, as {@link ctlCode} takes them. `method`,
 * `access` and `deviceType` also take names, in any case:
 *
 * - method: `"BUFFERED"`, `"IN_DIRECT"`, `"OUT_DIRECT"`, `"NEITHER"`, also
 *   spelled `"METHOD_BUFFERED"`, `"InDirect"`, ...
 * - access: `"ANY"`, `"READ"`, `"WRITE"`, `"READ_WRITE"`, also spelled
 *   `"FILE_ANY_ACCESS"`, `"FILE_SPECIAL_ACCESS"`, `"ReadWrite"`, ...
 * - deviceType: a {@link DeviceTypeName} such as `"FILE_DEVICE_UNKNOWN"`,
 *   with or without the `FILE_DEVICE_` prefix.
 *
 * @example
 * ```ts
 * import type { CtlCodeParts } from "./ctl_code.ts";
 *
 * const parts: CtlCodeParts = {
 *   deviceType: "FILE_DEVICE_UNKNOWN",
 *   function: 0x800,
 *   method: "METHOD_NEITHER",
 *   access: "FILE_ANY_ACCESS",
 * };
 * ```
 */
export interface CtlCodeParts {
  /** 0 to 0xFFFF, or a `FILE_DEVICE_*` name. */
  readonly deviceType: number | string;
  /** 0 to 0xFFF; vendor functions start at 0x800. */
  readonly function: number;
  /** 0 to 3, or a method name. */
  readonly method: number | string;
  /** 0 to 3, or an access name. */
  readonly access: number | string;
}

/**
 * A control code taken apart by {@link decodeCtlCode}.
 *
 * @example
 * ```ts
 * import { decodeCtlCode } from "./ctl_code.ts";
 *
 * const info = decodeCtlCode(0x222003);
 * info.deviceTypeName; // "FILE_DEVICE_UNKNOWN"
 * info.methodName; // "NEITHER"
 * ```
 */
export interface CtlCodeInfo {
  /** The control code, an unsigned 32-bit integer. */
  readonly code: number;
  /** Bits 31-16. */
  readonly deviceType: number;
  /** The `FILE_DEVICE_*` name of the device type, if `winioctl.h` defines one. */
  readonly deviceTypeName: DeviceTypeName | undefined;
  /** Bits 13-2. */
  readonly function: number;
  /** Bits 1-0. */
  readonly method: TransferMethod;
  /** The name of {@link CtlCodeInfo.method}. */
  readonly methodName: MethodName;
  /** Bits 15-14. */
  readonly access: RequiredAccess;
  /** The name of {@link CtlCodeInfo.access}. */
  readonly accessName: AccessName;
  /** Bit 31: a vendor device type (0x8000 and up). */
  readonly common: boolean;
  /** Bit 13: a vendor function (0x800 and up). */
  readonly custom: boolean;
}

const METHOD_NAMES: readonly MethodName[] = ["BUFFERED", "IN_DIRECT", "OUT_DIRECT", "NEITHER"];
const ACCESS_NAMES: readonly AccessName[] = ["ANY", "READ", "WRITE", "READ_WRITE"];
/** C spellings of the accesses, for {@link ctlCodeExpression}. */
const ACCESS_EXPRESSIONS: readonly string[] = [
  "FILE_ANY_ACCESS",
  "FILE_READ_ACCESS",
  "FILE_WRITE_ACCESS",
  "FILE_READ_ACCESS | FILE_WRITE_ACCESS",
];

const DEVICE_TYPE_NAMES: ReadonlyMap<number, DeviceTypeName> = new Map(
  Object.entries(DeviceTypes).map(([name, type]) => [type, name as DeviceTypeName]),
);

/** Method names without `METHOD_` and underscores, upper case. */
const METHODS_BY_KEY: ReadonlyMap<string, number> = new Map([
  ["BUFFERED", Method.Buffered],
  ["INDIRECT", Method.InDirect],
  ["OUTDIRECT", Method.OutDirect],
  ["NEITHER", Method.Neither],
]);

/** Access names without `FILE_`, `_ACCESS` and underscores, upper case. */
const ACCESSES_BY_KEY: ReadonlyMap<string, number> = new Map([
  ["ANY", Access.Any],
  ["SPECIAL", Access.Any],
  ["READ", Access.Read],
  ["WRITE", Access.Write],
  ["READWRITE", Access.ReadWrite],
]);

/**
 * Builds a control code like the `CTL_CODE` macro:
 * `(deviceType << 16) | (access << 14) | (function << 2) | method`, as an
 * unsigned 32-bit integer. Throws an `ArgumentError` naming the field that is
 * out of range or not a known name.
 *
 * @example
 * ```ts
 * import { ctlCode } from "./ctl_code.ts";
 *
 * // CTL_CODE(FILE_DEVICE_UNKNOWN, 0x800, METHOD_NEITHER, FILE_ANY_ACCESS)
 * ctlCode({ deviceType: 0x22, function: 0x800, method: 3, access: 0 }); // 0x222003
 * // IOCTL_DISK_GET_LENGTH_INFO
 * ctlCode({ deviceType: "DISK", function: 0x17, method: "BUFFERED", access: "READ" }); // 0x7405C
 * ```
 */
export function ctlCode(parts: CtlCodeParts): number {
  if (typeof parts !== "object" || parts === null) {
    throw new ArgumentError("ctlCode", "parts", "an object", parts);
  }
  const deviceType = parseDeviceType(parts.deviceType);
  const fn = checkInteger("ctlCode", "function", parts.function, 0, 0xFFF);
  const method = parseName("method", parts.method, METHOD_NAMES, METHODS_BY_KEY, methodKey);
  const access = parseName("access", parts.access, ACCESS_NAMES, ACCESSES_BY_KEY, accessKey);
  return ((deviceType << 16) | (access << 14) | (fn << 2) | method) >>> 0;
}

/**
 * Takes a control code apart; the inverse of {@link ctlCode}. `code` must be
 * an integer in 0..0xFFFFFFFF; every such value decodes, and
 * `ctlCode(decodeCtlCode(code)) === code`.
 *
 * @example
 * ```ts
 * import { decodeCtlCode } from "./ctl_code.ts";
 *
 * const { deviceType, function: fn, method, access } = decodeCtlCode(0x80222004);
 * // deviceType 0x8022, fn 0x801, method 0 (BUFFERED), access 0 (ANY)
 * ```
 */
export function decodeCtlCode(code: number): CtlCodeInfo {
  checkInteger("decodeCtlCode", "code", code, 0, 0xFFFFFFFF);
  const deviceType = code >>> 16;
  const fn = (code >>> 2) & 0xFFF;
  const method = (code & 3) as TransferMethod;
  const access = ((code >>> 14) & 3) as RequiredAccess;
  return {
    code,
    deviceType,
    deviceTypeName: DEVICE_TYPE_NAMES.get(deviceType),
    function: fn,
    method,
    methodName: METHOD_NAMES[method],
    access,
    accessName: ACCESS_NAMES[access],
    common: deviceType >= 0x8000,
    custom: fn >= 0x800,
  };
}

/**
 * A one-line description of a control code: the code, the device type (name
 * or hex), the function, the method and the access.
 *
 * @example
 * ```ts
 * import { formatCtlCode } from "./ctl_code.ts";
 *
 * formatCtlCode(0x222003); // "0x222003 FILE_DEVICE_UNKNOWN fn 0x800 NEITHER ANY"
 * formatCtlCode(0x80222000); // "0x80222000 0x8022 fn 0x800 BUFFERED ANY"
 * ```
 */
export function formatCtlCode(code: number): string {
  const info = decodeCtlCode(code);
  const deviceType = info.deviceTypeName ?? hex(info.deviceType);
  return `${hex(code)} ${deviceType} fn ${
    hex(info.function)
  } ${info.methodName} ${info.accessName}`;
}

/**
 * The `CTL_CODE(...)` expression of a control code, as C source would spell it.
 *
 * @example
 * ```ts
 * import { ctlCodeExpression } from "./ctl_code.ts";
 *
 * ctlCodeExpression(0x222003);
 * // "CTL_CODE(FILE_DEVICE_UNKNOWN, 0x800, METHOD_NEITHER, FILE_ANY_ACCESS)"
 * ```
 */
export function ctlCodeExpression(code: number): string {
  const info = decodeCtlCode(code);
  const deviceType = info.deviceTypeName ?? hex(info.deviceType);
  return `CTL_CODE(${deviceType}, ${hex(info.function)}, METHOD_${info.methodName}, ${
    ACCESS_EXPRESSIONS[info.access]
  })`;
}

function parseDeviceType(value: unknown): number {
  if (typeof value !== "string") return checkInteger("ctlCode", "deviceType", value, 0, 0xFFFF);
  const upper = value.toUpperCase();
  const name = upper.startsWith("FILE_DEVICE_") ? upper : `FILE_DEVICE_${upper}`;
  if (Object.hasOwn(DeviceTypes, name)) return DeviceTypes[name as DeviceTypeName];
  throw new ArgumentError(
    "ctlCode",
    "deviceType",
    "an integer in 0..0xFFFF or a FILE_DEVICE_* name",
    value,
  );
}

/** A method or access given as a number or a name in one of its spellings. */
function parseName(
  argument: string,
  value: unknown,
  names: readonly string[],
  byKey: ReadonlyMap<string, number>,
  keyOf: (name: string) => string,
): number {
  if (typeof value !== "string") return checkInteger("ctlCode", argument, value, 0, 3);
  const found = byKey.get(keyOf(value));
  if (found !== undefined) return found;
  throw new ArgumentError(
    "ctlCode",
    argument,
    `an integer in 0..3 or one of ${names.join(", ")}`,
    value,
  );
}

/** `METHOD_IN_DIRECT`, `in_direct`, `InDirect` → `INDIRECT`. */
function methodKey(name: string): string {
  return name.toUpperCase().replace(/^METHOD_/, "").replaceAll("_", "");
}

/** `FILE_READ_ACCESS`, `read`, `ReadWrite` → `READ`, `READ`, `READWRITE`. */
function accessKey(name: string): string {
  return name.toUpperCase().replace(/^FILE_(.+)_ACCESS$/, "$1").replaceAll("_", "");
}

function hex(value: number): string {
  return `0x${value.toString(16).toUpperCase()}`;
}
