/**
 * How a driver offers kernel → application channels, as a value that
 * {@linkcode subscribe} reads: the driver's own control codes, its request
 * and reply layouts, and where the names of its shared objects come from
 * (fixed, or in the open reply). {@linkcode kitProtocol} makes the value for
 * a driver built on the kbridge channel kit (`driver/kit/`).
 *
 * @module
 */
import { ArgumentError, checkInteger } from "../core/errors.ts";
import { struct, type StructType, wchar } from "../core/struct.ts";
import type { Device } from "../io/device.ts";
import type { KernelEvent } from "../io/kernel_event.ts";

/**
 * A kernel → application channel.
 *
 * - `classic`: the app's event handle goes in, the driver maps a ring into the app and returns its address;
 * - `section`: the driver's named section (the ring) and named event, opened by name;
 * - `inverted`: overlapped IOCTLs kept pending, completed one per message.
 *
 * @example
 * ```ts ignore
 * const channel: ChannelName = subscription.channel; // what "auto" chose
 * ```
 */
export type ChannelName = "section" | "inverted" | "classic";

/**
 * What a section channel's open reply tells: the view size and the user-mode
 * names (`Global\...`) of the section and the event.
 *
 * @example
 * ```ts ignore
 * const reply: SectionReply = { viewBytes: 4096 + 256, section: "Global\\Ring", event: "Global\\RingEvent" };
 * ```
 */
export interface SectionReply {
  /** Bytes to map: the ring header and data. */
  viewBytes: number;
  /** The section's name, as `OpenFileMappingW` takes it. */
  section: string;
  /** The event's name, as `OpenEventW` takes it. */
  event: string;
}

/**
 * The section channel of a driver: a control code creates the named section
 * and event, the app opens both by name, another code releases them.
 *
 * @example
 * ```ts ignore
 * const section: SectionChannelSpec = {
 *   open: OPEN, close: CLOSE, replySize: Info.size,
 *   request: (ringBytes) => Request.encode({ ringBytes }),
 *   reply: (output) => ({ viewBytes: Info.decode(output).viewBytes, section: "Global\\R", event: "Global\\E" }),
 * };
 * ```
 */
export interface SectionChannelSpec {
  /** The control code that creates the section and event. */
  readonly open: number;
  /** The control code that releases them (the handle's close does too). */
  readonly close: number;
  /** Output bytes of the open reply. */
  readonly replySize: number;
  /** The open request for a ring of `ringBytes` data bytes. */
  request(ringBytes: number): Uint8Array;
  /** Decodes the open reply. */
  reply(output: Uint8Array): SectionReply;
}

/**
 * The classic channel of a driver: the app's event handle in, the user-mode
 * address of a ring the driver mapped into the app out.
 *
 * @example
 * ```ts ignore
 * const classic: ClassicChannelSpec = {
 *   open: OPEN, close: CLOSE, replySize: Info.size,
 *   request: (event, ringBytes) => Request.encode({ eventHandle: event, ringBytes }),
 *   reply: (output) => Info.decode(output),
 * };
 * ```
 */
export interface ClassicChannelSpec {
  /** The control code that takes the event and maps the ring. */
  readonly open: number;
  /** The control code that unmaps it (the handle's close does too). */
  readonly close: number;
  /** Output bytes of the open reply. */
  readonly replySize: number;
  /** The open request: the event the driver sets, and the ring size. */
  request(event: KernelEvent, ringBytes: number): Uint8Array;
  /** Decodes the open reply: the ring's address in this process and its size. */
  reply(output: Uint8Array): { userAddress: bigint; viewBytes: number };
}

/**
 * The inverted channel of a driver: a pended control code, completed with one
 * record (`KBRIDGE_RECORD_HEADER` + payload) per message.
 *
 * @example
 * ```ts ignore
 * const inverted: InvertedChannelSpec = { wait: WAIT };
 * ```
 */
export interface InvertedChannelSpec {
  /** The pended control code. */
  readonly wait: number;
  /** Messages the driver dropped for this device so far, when it can tell. */
  dropped?(device: Device): number;
}

/**
 * A driver's optional probe: one control code whose reply says which
 * channels the driver offers (e.g. a version reply with capability bits).
 *
 * @example
 * ```ts ignore
 * const probe: ChannelProbe = {
 *   code: GET_VERSION, replySize: 16,
 *   channels: (output) => (new DataView(output.buffer).getUint32(4, true) & 0x20) ? ["section"] : [],
 * };
 * ```
 */
export interface ChannelProbe {
  /** The control code (no input). */
  readonly code: number;
  /** Output bytes of its reply. */
  readonly replySize: number;
  /** The channels the reply announces. */
  channels(output: Uint8Array): readonly ChannelName[];
}

/**
 * How a driver offers its channels; what {@linkcode subscribe} needs to talk
 * to it. Leave out the channels the driver does not have.
 *
 * @example
 * ```ts ignore
 * const protocol: ChannelProtocol = kitProtocol({
 *   name: "kbsample", sectionOpen: RING_OPEN, sectionClose: RING_CLOSE, invertedWait: RING_WAIT,
 * });
 * await using messages = subscribe(device, { protocol, channel: "auto" });
 * ```
 */
export interface ChannelProtocol {
  /** The protocol's name, for error messages. */
  readonly name: string;
  /** The largest payload the driver writes (an inverted request's output holds a record header and this). */
  readonly maxMessage: number;
  /** Asked first, when present: which channels the driver offers. */
  readonly probe?: ChannelProbe;
  /** The classic channel, when the driver has one. */
  readonly classic?: ClassicChannelSpec;
  /** The section channel, when the driver has one. */
  readonly section?: SectionChannelSpec;
  /** The inverted channel, when the driver has one. */
  readonly inverted?: InvertedChannelSpec;
}

/**
 * The kit's section open request (`KBKIT_SECTION_REQUEST` of `driver/kit/kbkit.h`).
 *
 * @example
 * ```ts ignore
 * const request = KitSectionRequest.encode({ ringBytes: 1 << 16 });
 * ```
 */
export const KitSectionRequest: StructType<{ ringBytes: number; flags: number }> = struct(
  { ringBytes: "u32", flags: "u32" },
  { name: "KBKIT_SECTION_REQUEST" },
);

/**
 * The kit's section open reply (`KBKIT_SECTION_INFO`): the view size, the
 * ring size, and the user-mode names of the section and event, unique per open.
 *
 * @example
 * ```ts ignore
 * const info = KitSectionInfo.decode(device.ioctl(RING_OPEN, request, KitSectionInfo.size));
 * console.log(info.sectionName, info.eventName);
 * ```
 */
export const KitSectionInfo: StructType<
  { viewBytes: number; ringBytes: number; sectionName: string; eventName: string }
> = struct(
  { viewBytes: "u32", ringBytes: "u32", sectionName: wchar(64), eventName: wchar(64) },
  { name: "KBKIT_SECTION_INFO" },
);

/**
 * The control codes of a driver built on the channel kit, for {@linkcode kitProtocol}.
 *
 * @example
 * ```ts ignore
 * const codes: KitProtocolCodes = { name: "kbsample", sectionOpen: 0x9c402440, sectionClose: 0x9c402444, invertedWait: 0x9c402448 };
 * ```
 */
export interface KitProtocolCodes {
  /** For error messages, e.g. the driver's name. */
  name: string;
  /** The code the kit's section open is configured with. */
  sectionOpen?: number;
  /** The code the kit's section close is configured with. */
  sectionClose?: number;
  /** The kit's inverted wait code. */
  invertedWait?: number;
  /** The largest payload the driver writes (default 4096). */
  maxMessage?: number;
}

/**
 * The {@linkcode ChannelProtocol} of a driver built on the kbridge channel
 * kit: its section open/close take `KBKIT_SECTION_REQUEST` and reply with
 * `KBKIT_SECTION_INFO` (names unique per open), its inverted wait completes
 * with a record. Give the driver's own control codes.
 *
 * @example
 * ```ts ignore
 * const protocol = kitProtocol({
 *   name: "kbsample",
 *   sectionOpen: ctlCode({ deviceType: 0x9000, function: 0x910 }),
 *   sectionClose: ctlCode({ deviceType: 0x9000, function: 0x911 }),
 *   invertedWait: ctlCode({ deviceType: 0x9000, function: 0x912 }),
 * });
 * await using messages = subscribe(device, { protocol });
 * ```
 */
export function kitProtocol(codes: KitProtocolCodes): ChannelProtocol {
  const fn = "kitProtocol";
  if (typeof codes !== "object" || codes === null || typeof codes.name !== "string") {
    throw new ArgumentError(fn, "codes", "an object with a name", codes);
  }
  const code = (key: "sectionOpen" | "sectionClose" | "invertedWait") =>
    checkInteger(fn, `codes.${key}`, codes[key], 0, 0xffff_ffff);
  const hasSection = codes.sectionOpen !== undefined || codes.sectionClose !== undefined;
  const section: SectionChannelSpec | undefined = hasSection
    ? {
      open: code("sectionOpen"),
      close: code("sectionClose"),
      replySize: KitSectionInfo.size,
      request: (ringBytes) => KitSectionRequest.encode({ ringBytes }),
      reply: (output) => {
        const info = KitSectionInfo.decode(output);
        return { viewBytes: info.viewBytes, section: info.sectionName, event: info.eventName };
      },
    }
    : undefined;
  const inverted: InvertedChannelSpec | undefined = codes.invertedWait === undefined
    ? undefined
    : { wait: code("invertedWait") };
  const maxMessage = checkInteger(fn, "codes.maxMessage", codes.maxMessage ?? 4096, 1, 1 << 24);
  return Object.freeze({ name: codes.name, maxMessage, section, inverted });
}
