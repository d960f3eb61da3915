/**
 * The reference driver's channels as a {@linkcode ChannelProtocol} value:
 * its GET_VERSION probe (capability bits), the fixed names of its section
 * channel, its classic and inverted channels.
 *
 * @module
 */
import type { ChannelName, ChannelProtocol } from "../channels/protocol_spec.ts";
import {
  Capability,
  ClassicInfo,
  ClassicRequest,
  IOCTL,
  Names,
  Protocol,
  SectionInfo,
  SectionRequest,
  Stats,
  VersionInfo,
} from "./protocol.ts";

/**
 * How `subscribe` talks to the reference driver (`driver/kbridge.h`).
 *
 * @example
 * ```ts ignore
 * import { openDevice, subscribe } from "@kbridge/kbridge";
 * import { Names, referenceProtocol } from "@kbridge/kbridge/reference";
 *
 * await using device = openDevice(Names.DEVICE_PATH);
 * await using messages = subscribe(device, { protocol: referenceProtocol, channel: "auto" });
 * ```
 */
export const referenceProtocol: ChannelProtocol = {
  name: "kbridge reference driver",
  maxMessage: Protocol.MAX_MESSAGE,
  probe: {
    code: IOCTL.GET_VERSION,
    replySize: VersionInfo.size,
    channels(output: Uint8Array): readonly ChannelName[] {
      const { capabilities } = VersionInfo.decode(output);
      const offered: ChannelName[] = [];
      if (capabilities & Capability.CLASSIC) offered.push("classic");
      if (capabilities & Capability.SECTION) offered.push("section");
      if (capabilities & Capability.INVERTED) offered.push("inverted");
      return offered;
    },
  },
  classic: {
    open: IOCTL.CLASSIC_OPEN,
    close: IOCTL.CLASSIC_CLOSE,
    replySize: ClassicInfo.size,
    request: (event, ringBytes) => ClassicRequest.encode({ eventHandle: event, ringBytes }),
    reply: (output) => ClassicInfo.decode(output),
  },
  section: {
    open: IOCTL.SECTION_OPEN,
    close: IOCTL.SECTION_CLOSE,
    replySize: SectionInfo.size,
    request: (ringBytes) => SectionRequest.encode({ ringBytes }),
    // The reference driver's names are fixed (driver/kbridge.h).
    reply: (output) => ({
      viewBytes: SectionInfo.decode(output).viewBytes,
      section: Names.SECTION,
      event: Names.EVENT,
    }),
  },
  inverted: {
    wait: IOCTL.INVERTED_WAIT,
    dropped: (device) =>
      Number(Stats.decode(device.ioctl(IOCTL.GET_STATS, null, Stats.size)).invertedOverflow),
  },
};
Object.freeze(referenceProtocol);
