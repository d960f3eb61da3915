/**
 * The IOCTL fuzzer for programmatic use (the CLI's `kbridge fuzz` runs the
 * same engine): a {@linkcode Fuzzer} sends seeded, generated requests to a
 * {@linkcode FuzzTarget} (a {@linkcode DeviceTarget}: a device and its
 * driver's service), finds the codes a driver accepts, checks every answer,
 * writes a reproducer file per finding, restarts a crashed driver and
 * minimizes crashing inputs; {@linkcode replayReproducer} sends one
 * reproducer's request again.
 *
 * @example
 * ```ts ignore
 * import { DeviceTarget, Fuzzer } from "@kbridge/kbridge/fuzz";
 *
 * const target = new DeviceTarget("\\\\.\\MyDriver", { service: "mydriver" });
 * const fuzzer = new Fuzzer(target, { seed: 1, outDir: "findings", service: "mydriver" });
 * const { codes } = await fuzzer.discover({ deviceTypes: [0x8023] });
 * await fuzzer.run(codes, { iterations: 10_000 });
 * console.log(fuzzer.summary());
 * await target.close();
 * ```
 *
 * @module
 */
export {
  DEFAULT_HANG_MS,
  DEFAULT_MAX_LENGTH,
  DEFAULT_MINIMIZE_ATTEMPTS,
  DEFAULT_TIMEOUT_MS,
  type Finding,
  Fuzzer,
  type FuzzerOptions,
  type FuzzEvent,
  type FuzzSummary,
  replayReproducer,
  type ReplayResult,
  type RunOptions,
} from "./engine.ts";
export {
  type CallOutcome,
  DeviceTarget,
  type DeviceTargetOptions,
  type FuzzTarget,
} from "./target.ts";
export { type DiscoverOptions, type DiscoverResult } from "./discover.ts";
export { type FuzzCase, STRATEGIES, type StrategyName } from "./strategy.ts";
export {
  type FindingKind,
  readReproducer,
  type Reproducer,
  ReproducerError,
} from "./reproducer.ts";
