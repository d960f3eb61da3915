/**
 * kbridge: talk to Windows kernel drivers from Deno.
 *
 * Open a device, send I/O control requests (synchronous or overlapped, in all
 * four transfer methods), manage driver services, decode control codes, lay
 * out C structs, and stream a driver's messages (the kbridge ring). Importing works on any OS; the
 * calls that need Windows load their DLLs on first use. The reference
 * driver's protocol is the `./reference` export, the fuzzer `./fuzz`.
 *
 * @example
 * ```ts ignore
 * import { ctlCode, openDevice } from "@kbridge/kbridge";
 *
 * const ECHO = ctlCode({ deviceType: 0x8022, function: 0x801, method: "BUFFERED", access: "ANY" });
 * using device = openDevice("\\\\.\\Kbridge");
 * const reply = device.ioctl(ECHO, new TextEncoder().encode("hello"), 5);
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
  CorruptRingError,
  KbridgeError,
  NonblockingCallError,
  UnsupportedPlatformError,
} from "./src/core/errors.ts";
export {
  AbortError,
  TimeoutError,
  WarningStatusError,
  Win32Error,
} from "./src/core/win32_error.ts";
export { ntStatusName, win32ErrorName } from "./src/core/error_names.ts";
export {
  Device,
  type DeviceDependent,
  openDevice,
  type OpenDeviceOptions,
  type OutputArgument,
  type ReadWriteOptions,
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
  type HandleSource,
  type Infer,
  type InferFields,
  type ScalarTypeName,
  type ScalarTypes,
  struct,
  type StructOptions,
  type StructType,
  wchar,
} from "./src/core/struct.ts";
export { type ProcessResources, processResources } from "./src/core/diagnostics.ts";
export {
  createEvent,
  type CreateEventOptions,
  KernelEvent,
  openEvent,
  type WaitOptions,
} from "./src/io/kernel_event.ts";
export {
  mapUserAddress,
  openSharedMemory,
  SharedMemory,
  type SharedMemoryOptions,
} from "./src/io/shared_memory.ts";
export { DeviceStream, type OverlappedTarget, type StreamOptions } from "./src/io/stream.ts";
export {
  ringSubscription,
  subscribe,
  type SubscribeOptions,
  Subscription,
} from "./src/channels/subscribe.ts";
export { type Message, MessageBatch } from "./src/channels/batch.ts";
export {
  type ChannelName,
  type ChannelProbe,
  type ChannelProtocol,
  type ClassicChannelSpec,
  type InvertedChannelSpec,
  kitProtocol,
  type KitProtocolCodes,
  KitSectionInfo,
  KitSectionRequest,
  type SectionChannelSpec,
  type SectionReply,
} from "./src/channels/protocol_spec.ts";
export type { MessageCallback } from "./src/channels/ring.ts";
export { RecordHeader, Ring, RingHeader } from "./src/channels/ring_layout.ts";
