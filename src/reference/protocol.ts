/**
 * The reference driver's protocol: the TypeScript mirror of `driver/kbridge.h`
 * (its control codes, capabilities, names and request/response layouts; the
 * generic ring layout it uses is `../channels/ring_layout.ts`). A test
 * compiles a probe against the header and checks every value and layout here
 * against what the C compiler computes.
 *
 * @module
 */
import { ctlCode, type TransferMethod } from "../core/ctl_code.ts";
import { struct, type StructType, wchar } from "../core/struct.ts";
import { RecordHeader, RingHeader } from "../channels/ring_layout.ts";

/**
 * Device type of the reference driver's control codes (vendor range).
 *
 * @example
 * ```ts
 * import { decodeCtlCode } from "@kbridge/kbridge";
 * import { IOCTL, KBRIDGE_DEVICE_TYPE } from "@kbridge/kbridge/reference";
 * decodeCtlCode(IOCTL.ECHO).deviceType === KBRIDGE_DEVICE_TYPE; // true
 * ```
 */
export const KBRIDGE_DEVICE_TYPE = 0x8022;

/** `KBRIDGE_ACCESS_CONTROL`: FILE_READ_ACCESS | FILE_WRITE_ACCESS (see Protocol.ACCESS_CONTROL). */
const ACCESS_CONTROL = 3;

function code(fn: number, method: TransferMethod, access: 0 | typeof ACCESS_CONTROL = 0): number {
  return ctlCode({ deviceType: KBRIDGE_DEVICE_TYPE, function: fn, method, access });
}

/**
 * The reference driver's control codes. `RELEASE`, `SECTION_OPEN`,
 * `CLASSIC_OPEN`, `PRODUCER_START`, `PRODUCER_STOP` and `INJECT` need a
 * handle with read and write access (`Protocol.ACCESS_CONTROL`); the others
 * any handle: a handle opened without write access gets `ERROR_ACCESS_DENIED`.
 *
 * @example
 * ```ts
 * import { decodeCtlCode } from "@kbridge/kbridge";
 * import { IOCTL } from "@kbridge/kbridge/reference";
 * decodeCtlCode(IOCTL.ECHO).methodName; // "BUFFERED"
 * ```
 */
export const IOCTL: {
  readonly GET_VERSION: number;
  readonly ECHO: number;
  readonly IN_DIRECT_VERIFY: number;
  readonly OUT_DIRECT_ECHO: number;
  readonly OUT_DIRECT_FILL: number;
  readonly NEITHER_ECHO: number;
  readonly CHECKSUM: number;
  readonly OVERFLOW: number;
  readonly PEND: number;
  readonly RELEASE: number;
  readonly GET_STATS: number;
  readonly SECTION_OPEN: number;
  readonly SECTION_CLOSE: number;
  readonly INVERTED_WAIT: number;
  readonly CLASSIC_OPEN: number;
  readonly CLASSIC_CLOSE: number;
  readonly PRODUCER_START: number;
  readonly PRODUCER_STOP: number;
  readonly INJECT: number;
} = Object.freeze({
  GET_VERSION: code(0x800, 0),
  ECHO: code(0x801, 0),
  IN_DIRECT_VERIFY: code(0x802, 1),
  OUT_DIRECT_ECHO: code(0x803, 2),
  OUT_DIRECT_FILL: code(0x804, 2),
  NEITHER_ECHO: code(0x805, 3),
  CHECKSUM: code(0x806, 0),
  OVERFLOW: code(0x807, 0),
  PEND: code(0x810, 0),
  RELEASE: code(0x811, 0, ACCESS_CONTROL),
  GET_STATS: code(0x820, 0),
  SECTION_OPEN: code(0x830, 0, ACCESS_CONTROL),
  SECTION_CLOSE: code(0x831, 0),
  INVERTED_WAIT: code(0x832, 0),
  CLASSIC_OPEN: code(0x833, 0, ACCESS_CONTROL),
  CLASSIC_CLOSE: code(0x834, 0),
  PRODUCER_START: code(0x840, 0, ACCESS_CONTROL),
  PRODUCER_STOP: code(0x841, 0, ACCESS_CONTROL),
  INJECT: code(0x842, 0, ACCESS_CONTROL),
});

/**
 * Capability bits of `GET_VERSION`.
 *
 * @example
 * ```ts ignore
 * const info = VersionInfo.decode(device.ioctl(IOCTL.GET_VERSION, null, VersionInfo.size));
 * const hasSection = (info.capabilities & Capability.SECTION) !== 0;
 * ```
 */
export const Capability: {
  readonly ECHO: number;
  readonly DIRECT: number;
  readonly NEITHER: number;
  readonly NEITHER_SEH: number;
  readonly PEND: number;
  readonly SECTION: number;
  readonly INVERTED: number;
  readonly CLASSIC: number;
  readonly PRODUCER: number;
} = Object.freeze({
  ECHO: 0x1,
  DIRECT: 0x2,
  NEITHER: 0x4,
  NEITHER_SEH: 0x8,
  PEND: 0x10,
  SECTION: 0x20,
  INVERTED: 0x40,
  CLASSIC: 0x80,
  PRODUCER: 0x100,
});

/**
 * Channel bits of the producer and inject requests.
 *
 * @example
 * ```ts
 * import { Channel } from "@kbridge/kbridge/reference";
 * const both = Channel.SECTION | Channel.INVERTED;
 * ```
 */
export const Channel: {
  readonly SECTION: number;
  readonly INVERTED: number;
  readonly CLASSIC: number;
} = Object.freeze({ SECTION: 0x1, INVERTED: 0x2, CLASSIC: 0x4 });

/**
 * Numeric limits and values of the protocol.
 *
 * @example
 * ```ts
 * import { Protocol } from "@kbridge/kbridge/reference";
 * Protocol.MAX_MESSAGE; // 4096
 * ```
 */
export const Protocol: {
  readonly VERSION: number;
  readonly ACCESS_CONTROL: number;
  readonly MAX_MESSAGE: number;
  readonly MAX_TRANSFER: number;
  readonly INVERTED_QUEUE_LIMIT: number;
  readonly PEND_LIMIT: number;
  readonly PEND_DEVICE_LIMIT: number;
  readonly PEND_MAX_OUTPUT: number;
  readonly INVERTED_WAIT_LIMIT: number;
  readonly MAX_SECTIONS: number;
  readonly NAME_CHARS: number;
  readonly PEND_TIMED_OUT: number;
  readonly PEND_RELEASED: number;
  readonly RELEASE_ALL: number;
  readonly FNV_OFFSET: number;
  readonly FNV_PRIME: number;
  readonly PRODUCER_WAIT_FOR_SPACE: number;
} = Object.freeze({
  VERSION: 2,
  ACCESS_CONTROL,
  MAX_MESSAGE: 4096,
  MAX_TRANSFER: 16 * 1024 * 1024,
  INVERTED_QUEUE_LIMIT: 1024,
  PEND_LIMIT: 256,
  PEND_DEVICE_LIMIT: 1024,
  PEND_MAX_OUTPUT: 64,
  INVERTED_WAIT_LIMIT: 256,
  MAX_SECTIONS: 8,
  NAME_CHARS: 64,
  PEND_TIMED_OUT: 1,
  PEND_RELEASED: 2,
  RELEASE_ALL: 0xffff_ffff,
  FNV_OFFSET: 0x811c_9dc5,
  FNV_PRIME: 0x0100_0193,
  PRODUCER_WAIT_FOR_SPACE: 0x1,
});

/**
 * Names of the reference driver's objects: the device as user mode opens it,
 * and the prefix of the section channel's object names, which the driver
 * generates per open (`Global\\Kbridge-<16 hex digits>-Ring` / `-Event`) and
 * returns in {@linkcode SectionInfo}.
 *
 * @example
 * ```ts ignore
 * using device = openDevice(Names.DEVICE_PATH);
 * ```
 */
export const Names: {
  readonly DEVICE_PATH: string;
  readonly OBJECT_NAME_PREFIX: string;
} = Object.freeze({
  DEVICE_PATH: "\\\\.\\Kbridge",
  OBJECT_NAME_PREFIX: "Kbridge",
});

/**
 * `KBRIDGE_VERSION_INFO`.
 *
 * @example
 * ```ts
 * import { VersionInfo } from "@kbridge/kbridge/reference";
 * VersionInfo.decode(new Uint8Array(16)).protocolVersion; // 0
 * ```
 */
export const VersionInfo: StructType<{
  protocolVersion: number;
  capabilities: number;
  driverMajor: number;
  driverMinor: number;
}> = struct({
  protocolVersion: "u32",
  capabilities: "u32",
  driverMajor: "u32",
  driverMinor: "u32",
});

/**
 * `KBRIDGE_CHECKSUM_REQUEST`.
 *
 * @example
 * ```ts
 * import { ChecksumRequest, fnv1a } from "@kbridge/kbridge/reference";
 * const data = new Uint8Array([1, 2, 3]);
 * ChecksumRequest.encode({ length: data.length, fnv1a: fnv1a(data) });
 * ```
 */
export const ChecksumRequest: StructType<{ length: number; fnv1a: number }> = struct({
  length: "u32",
  fnv1a: "u32",
});

/**
 * `KBRIDGE_FILL_REQUEST`.
 *
 * @example
 * ```ts
 * import { FillRequest } from "@kbridge/kbridge/reference";
 * FillRequest.encode({ seed: 7, reserved: 0 }).length; // 8
 * ```
 */
export const FillRequest: StructType<{ seed: number; reserved: number }> = struct({
  seed: "u32",
  reserved: "u32",
});

/**
 * `KBRIDGE_PEND_REQUEST`.
 *
 * @example
 * ```ts
 * import { PendRequest } from "@kbridge/kbridge/reference";
 * PendRequest.encode({ tag: 1, timeoutMs: 500 });
 * ```
 */
export const PendRequest: StructType<{ tag: number; timeoutMs: number }> = struct({
  tag: "u32",
  timeoutMs: "u32",
});

/**
 * `KBRIDGE_PEND_RESULT`.
 *
 * @example
 * ```ts
 * import { PendResult } from "@kbridge/kbridge/reference";
 * PendResult.decode(new Uint8Array(8)); // { tag: 0, how: 0 }
 * ```
 */
export const PendResult: StructType<{ tag: number; how: number }> = struct({
  tag: "u32",
  how: "u32",
});

/**
 * `KBRIDGE_RELEASE_REQUEST`.
 *
 * @example
 * ```ts
 * import { Protocol, ReleaseRequest } from "@kbridge/kbridge/reference";
 * ReleaseRequest.encode({ tag: Protocol.RELEASE_ALL, reserved: 0 });
 * ```
 */
export const ReleaseRequest: StructType<{ tag: number; reserved: number }> = struct({
  tag: "u32",
  reserved: "u32",
});

/**
 * `KBRIDGE_STATS`, the driver's resource counters.
 *
 * @example
 * ```ts ignore
 * const stats = Stats.decode(device.ioctl(IOCTL.GET_STATS, null, Stats.size));
 * console.log(stats.pendedIrps, stats.poolAllocations);
 * ```
 */
export const Stats: StructType<{
  openFiles: number;
  poolAllocations: number;
  pendedIrps: number;
  invertedIrps: number;
  invertedQueued: number;
  sections: number;
  classicMappings: number;
  eventReferences: number;
  producerRunning: number;
  pendTimerArmed: number;
  messagesProduced: bigint;
  invertedOverflow: bigint;
  ringDropped: bigint;
}> = struct({
  openFiles: "u32",
  poolAllocations: "u32",
  pendedIrps: "u32",
  invertedIrps: "u32",
  invertedQueued: "u32",
  sections: "u32",
  classicMappings: "u32",
  eventReferences: "u32",
  producerRunning: "u32",
  pendTimerArmed: "u32",
  messagesProduced: "u64",
  invertedOverflow: "u64",
  ringDropped: "u64",
});

/**
 * `KBRIDGE_SECTION_REQUEST`.
 *
 * @example
 * ```ts
 * import { SectionRequest } from "@kbridge/kbridge/reference";
 * SectionRequest.encode({ ringBytes: 1 << 20, reserved: 0 });
 * ```
 */
export const SectionRequest: StructType<{ ringBytes: number; reserved: number }> = struct({
  ringBytes: "u32",
  reserved: "u32",
});

/**
 * `KBRIDGE_SECTION_INFO`: the sizes and the user-mode names of the calling
 * file's section and event, unique per open (the kit's `KBKIT_SECTION_INFO`).
 *
 * @example
 * ```ts
 * import { SectionInfo } from "@kbridge/kbridge/reference";
 * SectionInfo.size; // 264
 * ```
 */
export const SectionInfo: StructType<
  { viewBytes: number; ringBytes: number; sectionName: string; eventName: string }
> = struct({
  viewBytes: "u32",
  ringBytes: "u32",
  sectionName: wchar(64),
  eventName: wchar(64),
});

/**
 * `KBRIDGE_CLASSIC_REQUEST`.
 *
 * @example
 * ```ts
 * import { ClassicRequest } from "@kbridge/kbridge/reference";
 * ClassicRequest.encode({ eventHandle: 0x1234n, ringBytes: 65536, reserved: 0 });
 * ```
 */
export const ClassicRequest: StructType<
  { eventHandle: bigint; ringBytes: number; reserved: number }
> = struct({ eventHandle: "u64", ringBytes: "u32", reserved: "u32" });

/**
 * `KBRIDGE_CLASSIC_INFO`.
 *
 * @example
 * ```ts
 * import { ClassicInfo } from "@kbridge/kbridge/reference";
 * ClassicInfo.offsets.viewBytes; // 8
 * ```
 */
export const ClassicInfo: StructType<
  { userAddress: bigint; viewBytes: number; ringBytes: number }
> = struct({ userAddress: "u64", viewBytes: "u32", ringBytes: "u32" });

/**
 * `KBRIDGE_PRODUCER_REQUEST`.
 *
 * @example
 * ```ts
 * import { Channel, ProducerRequest } from "@kbridge/kbridge/reference";
 * ProducerRequest.encode({
 *   channels: Channel.SECTION,
 *   count: 1000,
 *   minSize: 1,
 *   maxSize: 4096,
 *   intervalUs: 0,
 *   seed: 1,
 *   flags: 0,
 * });
 * ```
 */
export const ProducerRequest: StructType<{
  channels: number;
  count: number;
  minSize: number;
  maxSize: number;
  intervalUs: number;
  seed: number;
  flags: number;
}> = struct({
  channels: "u32",
  count: "u32",
  minSize: "u32",
  maxSize: "u32",
  intervalUs: "u32",
  seed: "u32",
  flags: "u32",
});

/**
 * `KBRIDGE_INJECT_HEADER`, followed by the payload.
 *
 * @example
 * ```ts
 * import { Channel, InjectHeader } from "@kbridge/kbridge/reference";
 * const payload = new TextEncoder().encode("hi");
 * const input = new Uint8Array([...InjectHeader.encode({ channels: Channel.INVERTED, length: 2 }), ...payload]);
 * ```
 */
export const InjectHeader: StructType<{ channels: number; length: number }> = struct({
  channels: "u32",
  length: "u32",
});

/**
 * The layouts above by their C name, for the test that compares them with the compiler.
 *
 * @example
 * ```ts
 * import { layouts } from "@kbridge/kbridge/reference";
 * layouts.KBRIDGE_STATS.size; // 64
 * ```
 */
export const layouts: Readonly<Record<string, StructType<Record<string, unknown>>>> = Object.freeze(
  {
    KBRIDGE_VERSION_INFO: VersionInfo,
    KBRIDGE_CHECKSUM_REQUEST: ChecksumRequest,
    KBRIDGE_FILL_REQUEST: FillRequest,
    KBRIDGE_PEND_REQUEST: PendRequest,
    KBRIDGE_PEND_RESULT: PendResult,
    KBRIDGE_RELEASE_REQUEST: ReleaseRequest,
    KBRIDGE_STATS: Stats,
    KBRIDGE_SECTION_REQUEST: SectionRequest,
    KBRIDGE_SECTION_INFO: SectionInfo,
    KBRIDGE_CLASSIC_REQUEST: ClassicRequest,
    KBRIDGE_CLASSIC_INFO: ClassicInfo,
    KBRIDGE_PRODUCER_REQUEST: ProducerRequest,
    KBRIDGE_INJECT_HEADER: InjectHeader,
    KBRIDGE_RING_HEADER: RingHeader,
    KBRIDGE_RECORD_HEADER: RecordHeader,
  } as Record<string, StructType<Record<string, unknown>>>,
);

/**
 * Byte `i` of the driver's test pattern for `seed` (`KbridgePatternByte`).
 *
 * @example
 * ```ts
 * import { patternByte } from "@kbridge/kbridge/reference";
 * const expected = Uint8Array.from({ length: 16 }, (_, i) => patternByte(7, i));
 * ```
 */
export function patternByte(seed: number, i: number): number {
  let x = (Math.imul(seed, 0x9e37_79b1) + Math.imul(i, 0x85eb_ca77)) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x2c1b_3c6d) >>> 0;
  x ^= x >>> 12;
  return x & 0xff;
}

/**
 * `length` bytes of the driver's test pattern for `seed`.
 *
 * @example
 * ```ts
 * import { pattern } from "@kbridge/kbridge/reference";
 * pattern(7, 4).length; // 4
 * ```
 */
export function pattern(seed: number, length: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = patternByte(seed, i);
  return out;
}

/**
 * The FNV-1a 32-bit hash the checksum IOCTLs use.
 *
 * @example
 * ```ts
 * import { fnv1a } from "@kbridge/kbridge/reference";
 * fnv1a(new Uint8Array()); // 0x811c9dc5
 * ```
 */
export function fnv1a(data: Uint8Array): number {
  let hash = Protocol.FNV_OFFSET;
  for (let i = 0; i < data.length; i++) hash = Math.imul(hash ^ data[i], Protocol.FNV_PRIME) >>> 0;
  return hash >>> 0;
}
