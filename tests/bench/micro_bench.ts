// Linux-side microbenchmarks (`deno bench`, run by tools/bench.sh): the control-code
// helpers and the struct codec, each next to a hand-written DataView baseline.
import { ctlCode, decodeCtlCode, formatCtlCode, RecordHeader } from "../../mod.ts";
import { IOCTL, ProducerRequest, Stats } from "../../src/reference/mod.ts";

/** Every result is stored here (exported, so observable) so that no call is optimised away. */
export let sink: unknown;

const producerRequest = {
  channels: 1,
  count: 1_000_000,
  minSize: 64,
  maxSize: 64,
  intervalUs: 0,
  seed: 7,
  flags: 1,
};
const producerTarget = new Uint8Array(ProducerRequest.size);
const recordBytes = RecordHeader.encode({
  length: 64,
  flags: 0,
  sequence: 123_456n,
  timestamp: 987_654_321n,
});
const statsBytes = new Uint8Array(Stats.size).fill(1);

Deno.bench("CTL_CODE by hand (baseline)", { group: "ctl_code", baseline: true }, () => {
  sink = ((0x8022 << 16) | (0 << 14) | (0x801 << 2) | 0) >>> 0;
});

Deno.bench("ctlCode, numeric parts", { group: "ctl_code" }, () => {
  sink = ctlCode({ deviceType: 0x8022, function: 0x801, method: 0, access: 0 });
});

Deno.bench("ctlCode, named parts", { group: "ctl_code" }, () => {
  sink = ctlCode({ deviceType: "UNKNOWN", function: 0x801, method: "BUFFERED", access: "ANY" });
});

Deno.bench("decodeCtlCode", { group: "ctl_code" }, () => {
  sink = decodeCtlCode(IOCTL.ECHO);
});

Deno.bench("formatCtlCode", { group: "ctl_code" }, () => {
  sink = formatCtlCode(IOCTL.ECHO);
});

Deno.bench("PRODUCER_REQUEST by hand (baseline)", { group: "encode", baseline: true }, () => {
  const view = new DataView(producerTarget.buffer);
  view.setUint32(0, producerRequest.channels, true);
  view.setUint32(4, producerRequest.count, true);
  view.setUint32(8, producerRequest.minSize, true);
  view.setUint32(12, producerRequest.maxSize, true);
  view.setUint32(16, producerRequest.intervalUs, true);
  view.setUint32(20, producerRequest.seed, true);
  view.setUint32(24, producerRequest.flags, true);
  sink = producerTarget;
});

Deno.bench("ProducerRequest.encode, new buffer", { group: "encode" }, () => {
  sink = ProducerRequest.encode(producerRequest);
});

Deno.bench("ProducerRequest.encode, into a target", { group: "encode" }, () => {
  sink = ProducerRequest.encode(producerRequest, producerTarget);
});

Deno.bench("RECORD_HEADER by hand (baseline)", { group: "decode", baseline: true }, () => {
  const view = new DataView(recordBytes.buffer);
  sink = {
    length: view.getUint32(0, true),
    flags: view.getUint32(4, true),
    sequence: view.getBigUint64(8, true),
    timestamp: view.getBigUint64(16, true),
  };
});

Deno.bench("RecordHeader.decode", { group: "decode" }, () => {
  sink = RecordHeader.decode(recordBytes);
});

Deno.bench("Stats.decode (13 fields)", { group: "decode" }, () => {
  sink = Stats.decode(statsBytes);
});
