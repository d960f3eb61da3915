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
} from "./src/core/ctl_code.ts";
export {
  ArgumentError,
  ChannelUnavailableError,
  ClosedError,
  KbridgeError,
  UnsupportedPlatformError,
} from "./src/core/errors.ts";
export { AbortError, TimeoutError, Win32Error } from "./src/core/win32_error.ts";
export { ntStatusName, win32ErrorName } from "./src/core/error_names.ts";
export {
  Device,
  openDevice,
  type OpenDeviceOptions,
  type OutputArgument,
} from "./src/io/device.ts";
export type { IoctlAsyncOptions } from "./src/io/overlapped.ts";
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
} from "./src/io/service.ts";
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
} from "./src/core/struct.ts";
export * from "./src/reference/protocol.ts";
export { type ProcessResources, processResources } from "./src/core/diagnostics.ts";
export {
  type ChannelName,
  type Message,
  subscribe,
  type SubscribeOptions,
  Subscription,
} from "./src/channels/subscribe.ts";
export type { MessageCallback } from "./src/channels/ring.ts";
