/**
 * The kbridge ring: the generic channel format any driver can use to stream
 * records to an application through shared memory (a section, or a mapping
 * the driver makes). The TypeScript mirror of the ring part of
 * `driver/kbridge.h`; a test checks it against the C compiler.
 *
 * @module
 */
import { bytes, struct, type StructType } from "../core/struct.ts";

/**
 * The shared ring's constants (see the ring comment in `driver/kbridge.h`).
 *
 * @example
 * ```ts
 * import { Ring } from "@kbridge/kbridge";
 * Ring.HEADER_SIZE; // 256
 * ```
 */
export const Ring: {
  readonly MAGIC: number;
  readonly VERSION: number;
  readonly HEADER_SIZE: number;
  readonly ALIGN: number;
  readonly MIN_BYTES: number;
  readonly MAX_BYTES: number;
  readonly RECORD_PAD: number;
} = Object.freeze({
  MAGIC: 0x474e_5242,
  VERSION: 1,
  HEADER_SIZE: 256,
  ALIGN: 8,
  MIN_BYTES: 4096,
  MAX_BYTES: 64 * 1024 * 1024,
  RECORD_PAD: 0x1,
});

/**
 * `KBRIDGE_RING_HEADER`, at offset 0 of a ring view.
 *
 * @example
 * ```ts
 * import { RingHeader } from "@kbridge/kbridge";
 * RingHeader.offsets.tail; // 128: the consumer's cache line
 * ```
 */
export const RingHeader: StructType<{
  magic: number;
  version: number;
  capacity: number;
  headerSize: number;
  reserved0: Uint8Array;
  head: number;
  dropped: number;
  producerClosed: number;
  reserved1: Uint8Array;
  tail: number;
  consumerWaiting: number;
  reserved2: Uint8Array;
  reserved3: Uint8Array;
}> = struct({
  magic: "u32",
  version: "u32",
  capacity: "u32",
  headerSize: "u32",
  reserved0: bytes(48),
  head: "u32",
  dropped: "u32",
  producerClosed: "u32",
  reserved1: bytes(52),
  tail: "u32",
  consumerWaiting: "u32",
  reserved2: bytes(56),
  reserved3: bytes(64),
});

/**
 * `KBRIDGE_RECORD_HEADER`, before each record's payload in a ring or an inverted-call output.
 *
 * @example
 * ```ts
 * import { RecordHeader } from "@kbridge/kbridge";
 * RecordHeader.size; // 24
 * ```
 */
export const RecordHeader: StructType<{
  length: number;
  flags: number;
  sequence: bigint;
  timestamp: bigint;
}> = struct({ length: "u32", flags: "u32", sequence: "u64", timestamp: "u64" });
