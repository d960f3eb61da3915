/**
 * The reference driver's protocol (`driver/kbridge.h`): its control codes,
 * capability and channel bits, limits, object names, request and response
 * layouts, and the helpers its tests use (the test pattern, FNV-1a). The
 * generic library (`@kbridge/kbridge`) works with any driver; this module is
 * what talking to the reference driver adds.
 *
 * @example
 * ```ts ignore
 * import { openDevice } from "@kbridge/kbridge";
 * import { IOCTL, Names, VersionInfo } from "@kbridge/kbridge/reference";
 *
 * using device = openDevice(Names.DEVICE_PATH);
 * const version = VersionInfo.decode(device.ioctl(IOCTL.GET_VERSION, null, VersionInfo.size));
 * console.log(version.protocolVersion, version.capabilities.toString(16));
 * ```
 *
 * @module
 */
export {
  Capability,
  Channel,
  ChecksumRequest,
  ClassicInfo,
  ClassicRequest,
  FillRequest,
  fnv1a,
  InjectHeader,
  IOCTL,
  KBRIDGE_DEVICE_TYPE,
  layouts,
  Names,
  pattern,
  patternByte,
  PendRequest,
  PendResult,
  ProducerRequest,
  Protocol,
  ReleaseRequest,
  SectionInfo,
  SectionRequest,
  Stats,
  VersionInfo,
} from "./protocol.ts";
export { referenceProtocol } from "./channels.ts";
