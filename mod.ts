/**
 * kbridge: talk to Windows kernel drivers from Deno.
 *
 * Open a device, send I/O control requests (synchronous or overlapped, in all
 * four transfer methods), manage driver services, and decode control codes.
 * Importing works on any OS; the calls that need Windows load their DLLs on
 * first use.
 *
 * @example
 * ```ts ignore
 * import { IOCTL, openDevice } from "@kbridge/kbridge";
 *
 * using device = openDevice("\\\\.\\Kbridge");
 * const reply = device.ioctl(IOCTL.ECHO, new TextEncoder().encode("hello"), 5);
 * console.log(new TextDecoder().decode(reply));
 * ```
 *
 * @module
 */
export {
  Access,
  type AccessName,
  ctlCode,
  ctlCodeExpression,
  type CtlCodeInfo,
  type CtlCodeParts,
  decodeCtlCode,
  type DeviceTypeName,
  DeviceTypes,
  formatCtlCode,
  Method,
  type MethodName,
  type RequiredAccess,
  type TransferMethod,
} from "./src/ctl_code.ts";
export {
  AbortError,
  ArgumentError,
  ChannelUnavailableError,
  ClosedError,
  CorruptRingError,
  KbridgeError,
  NonblockingCallError,
  TimeoutError,
  UnsupportedPlatformError,
  WarningStatusError,
  Win32Error,
} from "./src/errors.ts";
export { ntStatusName, win32ErrorName } from "./src/win32_errors.ts";
export { Device, openDevice, type OpenDeviceOptions, type OutputArgument } from "./src/device.ts";
export type { IoctlAsyncOptions } from "./src/overlapped.ts";
export {
  type DriverStartType,
  type DriverStatus,
  installDriver,
  type InstallDriverOptions,
  queryDriver,
  removeDriver,
  type ServiceState,
  startDriver,
  stopDriver,
} from "./src/service.ts";
export {
  array,
  bytes,
  type EncodeInput,
  type FieldSpec,
  type FieldType,
  type Infer,
  type InferFields,
  type ScalarTypeName,
  type ScalarTypes,
  struct,
  type StructOptions,
  type StructType,
  wchar,
} from "./src/struct.ts";
export * from "./src/protocol.ts";
export { type ProcessResources, processResources } from "./src/diagnostics.ts";
export {
  type ChannelName,
  type Message,
  subscribe,
  type SubscribeOptions,
  Subscription,
} from "./src/subscribe.ts";
export type { MessageCallback } from "./src/ring.ts";
