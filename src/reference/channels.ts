/**
 * The reference driver's channels as a {@linkcode ChannelProtocol} value:
 * the channel kit's section and inverted channels on the reference codes
 * (names generated per open, read from the `SECTION_OPEN` reply), plus its
 * GET_VERSION probe (capability bits) and its classic channel.
 *
 * @module
 */
import { type ChannelName, type ChannelProtocol, kitProtocol } from "../channels/protocol_spec.ts";
import {
  Capability,
  ClassicInfo,
  ClassicRequest,
  IOCTL,
  Protocol,
  Stats,
  VersionInfo,
} from "./protocol.ts";

/** The kit's part: SECTION_OPEN replies with KBKIT_SECTION_INFO (= KBRIDGE_SECTION_INFO). */
const kit = kitProtocol({
  name: "kbridge reference driver",
  sectionOpen: IOCTL.SECTION_OPEN,
  sectionClose: IOCTL.SECTION_CLOSE,
  invertedWait: IOCTL.INVERTED_WAIT,
  maxMessage: Protocol.MAX_MESSAGE,
});

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
  ...kit,
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
  inverted: {
    wait: IOCTL.INVERTED_WAIT,
    dropped: (device) =>
      Number(Stats.decode(device.ioctl(IOCTL.GET_STATS, null, Stats.size)).invertedOverflow),
  },
};
Object.freeze(referenceProtocol);
