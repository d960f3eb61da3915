/**
 * The IOCTL fuzzer for programmatic use (the CLI's `kbridge fuzz` runs the
 * same engine): a {@linkcode Fuzzer} sends seeded, generated requests to a
 * {@linkcode FuzzTarget} (a {@linkcode DeviceTarget}: a device and its
 * driver's service), finds the codes a driver accepts, checks every answer
 * (crashes, hangs, the output canary, pointers into the driver's memory —
 * {@linkcode HostRanges} under Wine, {@linkcode KERNEL_RANGES} on Windows —
 * and stale bytes), writes a reproducer file per unique finding (crashes told
 * apart by their site: {@linkcode WineCrashSite} under Wine), restarts a
 * crashed driver and minimizes crashing and hanging inputs;
 * {@linkcode replayReproducer} sends one reproducer's requests again.
 *
 * @example
 * ```ts ignore
 * import { DeviceTarget, Fuzzer, HostRanges } from "@kbridge/kbridge/fuzz";
 *
 * const target = new DeviceTarget("\\\\.\\MyDriver", { service: "mydriver" });
 * const fuzzer = new Fuzzer(target, {
 *   seed: 1,
 *   outDir: "findings",
 *   service: "mydriver",
 *   ranges: new HostRanges("mydriver.sys"), // the kernel half when not under Wine
 *   onEvent: (event) => event.type === "finding" && !event.repeated && console.error(event.finding),
 * });
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
  type FaultSite,
  type Finding,
  Fuzzer,
  type FuzzerOptions,
  type FuzzEvent,
  type FuzzSummary,
  HANG_FLOOR_MS,
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
  type SequenceStep,
} from "./reproducer.ts";
export {
  type Comparison,
  type CoverageDelta,
  CoverageError,
  CoverageFeedback,
  coverageSectionName,
  solveComparisons,
  type SolvedCase,
} from "./coverage.ts";
export {
  type AddressRange,
  type AddressRanges,
  type HostModule,
  HostRanges,
  KERNEL_RANGES,
} from "./ranges.ts";
export { placeInModules, WineCrashSite } from "./crash_site.ts";
