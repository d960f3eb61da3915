/**
 * The IOCTL fuzzer's engine: a seeded loop that sends generated requests to a
 * driver ({@linkcode FuzzTarget}), watches every answer (statuses, the output
 * canary, output that points into the driver's memory, stale bytes inside the
 * returned length, crashes of the driver's host, hangs), writes a reproducer
 * file per unique finding, restarts a dead driver and goes on, and minimizes
 * crashing and hanging inputs. Known faults do not eat the budget: findings
 * are de-duplicated by site (when a {@linkcode FaultSite} is given) or code,
 * and input shape; a code whose finding repeats is tried less and less, and
 * repeats of known crashes and hangs get at most a tenth of the run's time; a
 * hang already known is cut short by a limit learnt from the code's latency.
 * Also code discovery with crash handling, and the replay of a reproducer.
 *
 * The pieces live in their own files: `prng.ts` (the seeded generator),
 * `mutate.ts` (mutators), `corpus.ts` (the corpus and its
 * deterministic walks), `strategy.ts` (the strategies), `canary.ts`
 * (output checks), `target.ts` (the device, deadlines, liveness and
 * restarts), `discover.ts` (code lists and discovery),
 * `reproducer.ts` (reproducer files), `minimize.ts` (minimization),
 * `ranges.ts` (the driver's address ranges, for the pointer oracle).
 *
 * @example
 * ```ts ignore
 * import { DeviceTarget, Fuzzer } from "@kbridge/kbridge/fuzz";
 *
 * const target = new DeviceTarget("\\\\.\\KbCrashy", { service: "kbcrashy" });
 * const fuzzer = new Fuzzer(target, { seed: 1, outDir: "fuzz-out", service: "kbcrashy" });
 * const { codes } = await fuzzer.discover({ deviceTypes: [0x8023] });
 * await fuzzer.run(codes, { iterations: 2000 });
 * console.log(fuzzer.summary().crashes);
 * await target.close();
 * ```
 *
 * @module
 */
import { decodeCtlCode, formatCtlCode } from "../core/ctl_code.ts";
import { canaryDamage, fillCanary, INVERSE_CANARY, pointerValues, staleBytes } from "./canary.ts";
import { Corpus, inputKey } from "./corpus.ts";
import { type CoverageFeedback, solveComparisons } from "./coverage.ts";
import {
  discoverCodes,
  type DiscoverOptions,
  type DiscoverResult,
  discoveryOrder,
  type ProbeAnswer,
} from "./discover.ts";
import { minimize, type MinimizeCase, shortenSequence } from "./minimize.ts";
import { HUGE } from "./mutate.ts";
import { Prng } from "./prng.ts";
import {
  type FindingKind,
  type Reproducer,
  type SequenceStep,
  writeReproducer,
} from "./reproducer.ts";
import { type AddressRange, type AddressRanges, KERNEL_RANGES } from "./ranges.ts";
import {
  Dictionary,
  type FuzzCase,
  generateCase,
  STRATEGIES,
  type StrategyName,
} from "./strategy.ts";
import { type CallOutcome, type FuzzTarget, looksDead } from "./target.ts";
import { hex32 } from "../core/hex.ts";

/**
 * Default request deadline (ms): a request still pending then is cancelled.
 *
 * @example
 * ```ts
 * import { DEFAULT_TIMEOUT_MS } from "./engine.ts";
 * DEFAULT_TIMEOUT_MS; // 25
 * ```
 */
export const DEFAULT_TIMEOUT_MS = 25;
/**
 * Default hang limit (ms): a cancelled request not completed this much later is a hang.
 *
 * @example
 * ```ts
 * import { DEFAULT_HANG_MS } from "./engine.ts";
 * DEFAULT_HANG_MS; // 5000
 * ```
 */
export const DEFAULT_HANG_MS = 5000;
/**
 * Default largest input or output: 16 MiB + 1.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_LENGTH } from "./engine.ts";
 * DEFAULT_MAX_LENGTH; // 16777217
 * ```
 */
export const DEFAULT_MAX_LENGTH: number = HUGE + 1;
/**
 * Default bound of minimization attempts per crash.
 *
 * @example
 * ```ts
 * import { DEFAULT_MINIMIZE_ATTEMPTS } from "./engine.ts";
 * DEFAULT_MINIMIZE_ATTEMPTS; // 48
 * ```
 */
export const DEFAULT_MINIMIZE_ATTEMPTS = 64;

/**
 * The shortest hang limit (ms after the cancel) a known hang is cut at; the
 * limit is 8 times the slowest completion seen for the code, at least this,
 * at most the configured hang limit.
 *
 * @example
 * ```ts
 * import { HANG_FLOOR_MS } from "./engine.ts";
 * HANG_FLOOR_MS; // 250
 * ```
 */
export const HANG_FLOOR_MS = 250;

/**
 * Where a crash happened, for de-duplication: e.g. the lab's crash report
 * (module+offset or function); under Wine, `WineCrashSite`. Asked right after
 * a crash is seen, and told each time the fuzzer restarted the driver.
 *
 * @example
 * ```ts
 * import type { FaultSite } from "./engine.ts";
 * const site: FaultSite = { lastCrashSite: () => Promise.resolve("kbcrashy.sys+0x1234") };
 * ```
 */
export interface FaultSite {
  /** The site of the crash just seen, or `undefined` when unknown. */
  lastCrashSite(): Promise<string | undefined>;
  /**
   * The driver's last prints (`DbgPrint`) before the crash `lastCrashSite`
   * just read, oldest first (under Wine: the crashing thread's, at most 5).
   */
  lastCrashPrints?(): readonly string[];
  /** The driver was started again (a new host under Wine, with new load addresses). */
  started?(): void | Promise<void>;
}

/**
 * How a {@linkcode Fuzzer} works.
 *
 * @example
 * ```ts
 * import type { FuzzerOptions } from "./engine.ts";
 * const options: FuzzerOptions = { seed: 1, outDir: "fuzz-out", service: "kbcrashy", timeoutMs: 10 };
 * ```
 */
export interface FuzzerOptions {
  /** The seed of the run (see `Prng`). */
  readonly seed: number;
  /** Where reproducer files go; none are written when omitted. */
  readonly outDir?: string;
  /** The driver's service name, recorded in reproducers. */
  readonly service?: string;
  /** Request deadline in ms (default {@linkcode DEFAULT_TIMEOUT_MS}). */
  readonly timeoutMs?: number;
  /** Hang limit in ms after the cancel (default {@linkcode DEFAULT_HANG_MS}). */
  readonly hangMs?: number;
  /** Largest input or output size (default {@linkcode DEFAULT_MAX_LENGTH}). */
  readonly maxLength?: number;
  /** Minimization attempts per new crash or hang (default {@linkcode DEFAULT_MINIMIZE_ATTEMPTS}; 0: none). */
  readonly minimizeAttempts?: number;
  /**
   * The driver's address ranges, for the pointer oracle (default
   * {@linkcode KERNEL_RANGES}; under Wine a `HostRanges` of the driver's file).
   */
  readonly ranges?: AddressRanges;
  /** Where crashes happen, to tell two bugs of one code apart (default: the code alone). */
  readonly faultSite?: FaultSite;
  /**
   * Whether known faults are budgeted (default `true`): a code whose finding
   * keeps repeating is tried less, repeats of known crashes and hangs get at
   * most a tenth of the run's time, and a known hang is cut short. `false`
   * treats every repeat like a new fault, for comparisons (the benchmark's
   * "budget off" figure).
   */
  readonly knownFaultBudget?: boolean;
  /**
   * A coverage build's feedback (see `CoverageFeedback`): inputs that reach
   * new edges join the corpus first in line, and comparison operands are
   * solved into the inputs (the "cmp" strategy) and kept in the dictionary.
   * The caller opens and closes it; the fuzzer reopens it after a restart.
   */
  readonly coverage?: CoverageFeedback;
  /** Told about progress, findings and restarts. */
  readonly onEvent?: (event: FuzzEvent) => void;
  /**
   * Told about every request right before it is sent, in order: the run's
   * iterations and the oracles', reproduction's and minimization's own
   * requests alike (not the liveness probes of the target), e.g. to record a
   * run and replay it elsewhere. `input` is the fuzzer's own buffer: copy it
   * to keep it.
   */
  readonly onRequest?: (request: SequenceStep) => void;
}

/**
 * Limits of {@linkcode Fuzzer.run}.
 *
 * @example
 * ```ts
 * import type { RunOptions } from "./engine.ts";
 * const options: RunOptions = { iterations: 100_000, strategies: ["bitflip", "lengths"] };
 * ```
 */
export interface RunOptions {
  /** Iterations to run (default 10,000 unless `durationMs` is given). */
  readonly iterations?: number;
  /** Time to run, in ms. */
  readonly durationMs?: number;
  /** Strategies to draw from (default all). */
  readonly strategies?: readonly StrategyName[];
  /** Stops the run early. */
  readonly signal?: AbortSignal;
}

/**
 * Something the fuzzer found, with how often it happened.
 *
 * @example
 * ```ts
 * import type { Finding } from "./engine.ts";
 * const f: Finding = {
 *   kind: "crash", key: "crash 0x80232400 in+ out+", code: 0x80232400,
 *   control: "0x80232400 0x8023 fn 0x900 BUFFERED ANY", iteration: 175, strategy: "bitflip",
 *   status: "the driver's host died", inputLength: 32, outputSize: 64, count: 1,
 *   time: "2026-12-01T20:00:00.000Z", atMs: 212,
 * };
 * ```
 */
export interface Finding {
  /** What was found. */
  readonly kind: FindingKind;
  /** What makes it one bug: kind, site (or code) and input shape. */
  readonly key: string;
  /** The control code. */
  readonly code: number;
  /** Where it happened, when a {@linkcode FaultSite} said. */
  readonly site?: string;
  /** What the driver printed just before the crash, when a {@linkcode FaultSite} said. */
  readonly prints?: readonly string[];
  /** When it was first seen (ISO 8601). */
  readonly time: string;
  /** When it was first seen, in ms since the fuzzer was created. */
  readonly atMs: number;
  /** The decoded control code. */
  readonly control: string;
  /** The first iteration that found it (-1: during discovery). */
  readonly iteration: number;
  /** The strategy of that iteration. */
  readonly strategy: string;
  /** What was observed. */
  readonly status: string;
  /** Details (canary offset, pointer values ...). */
  readonly detail?: string;
  /** The input length of the first occurrence. */
  readonly inputLength: number;
  /** The output size of the first occurrence. */
  readonly outputSize: number;
  /** Occurrences (the same key). */
  count: number;
  /** Requests that must come first (state-dependent findings), see the reproducer. */
  sequence?: readonly SequenceStep[];
  /** The reproducer file of the first occurrence. */
  reproducer?: string;
  /** The minimized request, for crashes. */
  minimized?: {
    readonly inputLength: number;
    readonly outputSize: number;
    readonly attempts: number;
    readonly reproducer?: string;
  };
}

/**
 * What the fuzzer reports while it runs.
 *
 * @example
 * ```ts
 * import type { FuzzEvent } from "./engine.ts";
 * const onEvent = (event: FuzzEvent) => {
 *   if (event.type === "finding") console.error(`found a ${event.finding.kind}`);
 * };
 * ```
 */
export type FuzzEvent =
  | {
    readonly type: "progress";
    readonly iterations: number;
    readonly perSecond: number;
    readonly codes: number;
    readonly statuses: number;
    readonly crashes: number;
    readonly hangs: number;
    readonly findings: number;
  }
  | { readonly type: "finding"; readonly finding: Finding; readonly repeated: boolean }
  | { readonly type: "deprioritized"; readonly code: number; readonly weight: number }
  | { readonly type: "restart"; readonly reason: string }
  | { readonly type: "minimized"; readonly finding: Finding }
  | {
    readonly type: "discovery";
    readonly probed: number;
    readonly total: number;
    readonly accepted: number;
  };

/**
 * The result of a run.
 *
 * @example
 * ```ts
 * import type { FuzzSummary } from "./engine.ts";
 * const exitCode = (s: FuzzSummary) => s.uniqueBugs > 0 ? 1 : 0;
 * ```
 */
export interface FuzzSummary {
  /** Distinct findings (crashes, hangs, leaks): the headline. */
  readonly uniqueBugs: number;
  /** The device path. */
  readonly device: string;
  /** The seed. */
  readonly seed: number;
  /** Iterations run. */
  readonly iterations: number;
  /** Time spent fuzzing (ms), without discovery. */
  readonly elapsedMs: number;
  /** Iterations per second. */
  readonly perSecond: number;
  /** The control codes fuzzed (hex). */
  readonly codes: string[];
  /** The strategies used. */
  readonly strategies: string[];
  /** Per control code (hex): how often each status came back. */
  readonly statuses: Record<string, Record<string, number>>;
  /** Crashes of the driver. */
  readonly crashes: Finding[];
  /** Requests that did not complete even after their cancel. */
  readonly hangs: Finding[];
  /** Canary damage, pointers into the driver's memory, stale bytes. */
  readonly findings: Finding[];
  /** Driver restarts. */
  readonly restarts: number;
  /** Requests the oracles, reproduction and minimization sent besides the iterations. */
  readonly extraRequests: number;
  /**
   * Per control code (hex): outputs whose pointer-like values were not
   * reported because they are input-derived (they changed with a perturbed
   * input, or a recent input held them).
   */
  readonly suppressed: Record<string, number>;
  /** Per de-prioritized control code (hex): the share of its requests still sent. */
  readonly deprioritized: Record<string, number>;
  /** Edges the coverage build reported (with the `coverage` option). */
  readonly coverageEdges?: number;
  /** Why the run stopped before its end, if it did. */
  readonly stopped?: string;
}

/** Solved requests waiting, at most. */
const MAX_SOLVED = 256;
/** Inputs solved and sizes solved to, at most (bytes). */
const MAX_SOLVED_LENGTH = 4096;
/** Solved requests queued per request sent, at most. */
const SOLVED_PER_REQUEST = 8;
/** Solved requests remembered (not queued twice), at most. */
const MAX_SOLVED_KEYS = 65_536;

/** What one request did, as the engine sees it. */
type Observation =
  | { readonly kind: "crash"; readonly status: string }
  | { readonly kind: "outcome"; readonly outcome: CallOutcome; readonly output: Uint8Array };

/**
 * The status name of an observation for the histograms: `OK`, `PENDED`,
 * `HANG`, `CRASH` or the failure's name.
 */
function statusKey(observation: Observation): string {
  if (observation.kind === "crash") return "CRASH";
  const { outcome } = observation;
  switch (outcome.kind) {
    case "ok":
      return "OK";
    case "pended":
      return "PENDED";
    case "hang":
      return "HANG";
    case "error":
      return outcome.status;
  }
}

/** Whether `bytes` are the first bytes of `data`. */
function isPrefix(bytes: Uint8Array, data: Uint8Array): boolean {
  if (data.length < bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== data[i]) return false;
  return true;
}

/** A coarse input-length class: 0, then powers of two. */
function lengthClass(length: number): number {
  return length === 0 ? 0 : 32 - Math.clz32(length);
}

function hex64(value: bigint): string {
  return `0x${value.toString(16).toUpperCase().padStart(16, "0")}`;
}

/** A request as the engine sends it. */
type Request = FuzzCase | {
  readonly code: number;
  readonly input: Uint8Array;
  readonly outputSize: number;
  readonly strategy: string;
};

/** The input shape of a finding's key: empty or not, input and output. */
function shapeOf(request: { input: Uint8Array; outputSize: number }): string {
  return `in${request.input.length === 0 ? "0" : "+"} out${request.outputSize === 0 ? "0" : "+"}`;
}

/** Occurrences of one finding after which its code is tried less (halved per further one). */
const DEPRIORITIZE_AFTER = 3;
/** The lowest share of a de-prioritized code's requests that is still sent. */
const LOWEST_WEIGHT = 1 / 64;
/**
 * The share of a run's time that repeats of known crashes and hangs may take
 * at most; for a code de-prioritized by a crash or hang, the time requests
 * that hung have stayed held by the driver counts too (see
 * `FuzzTarget.lingeringMs`: it slows every other request down).
 */
const KNOWN_FAULT_SHARE = 0.1;
/** Earlier inputs a pointer-like output is checked against (a value stored, then read back). */
const INPUT_HISTORY = 64;
/** Requests kept to replay before a state-dependent finding. */
const SEQUENCE_LENGTH = 8;
/** Minimization attempts per new hang at most. */
const HANG_MINIMIZE_ATTEMPTS = 8;
/** Stale-bytes checks per control code (each costs a few requests). */
const STALE_CHECKS_PER_CODE = 16;
/** Other codes sent between the two runs of a stale-bytes check. */
const STALE_HISTORY_CODES = 3;

/**
 * The fuzzer: discovery, the fuzz loop, findings and the summary of one run
 * against one target. Deterministic for a seed, as long as the driver answers
 * the same requests the same way.
 *
 * @example
 * ```ts ignore
 * const fuzzer = new Fuzzer(target, { seed: 1, outDir: "fuzz-out", service: "kbcrashy" });
 * await fuzzer.run([0x80232000, 0x80232004, 0x8023200B, 0x80232400], { iterations: 2000 });
 * const summary = fuzzer.summary();
 * ```
 */
export class Fuzzer {
  readonly #target: FuzzTarget;
  readonly #options: FuzzerOptions;
  readonly #timeoutMs: number;
  readonly #hangMs: number;
  readonly #maxLength: number;
  /** Whether known faults are budgeted (see {@linkcode FuzzerOptions.knownFaultBudget}). */
  readonly #budget: boolean;
  readonly #created = performance.now();
  readonly #statuses = new Map<number, Map<string, number>>();
  readonly #seenStatus = new Set<string>();
  readonly #findings = new Map<string, Finding>();
  /** Per code: the slowest completion seen (ms). */
  readonly #slowest = new Map<number, number>();
  /** Per code: the share of its generated requests that are sent (1 unless de-prioritized). */
  readonly #weights = new Map<number, number>();
  readonly #suppressed = new Map<number, number>();
  readonly #staleChecks = new Map<number, number>();
  /** Codes with a hang finding. */
  readonly #hangCodes = new Set<number>();
  /** The latest requests, oldest first. */
  readonly #history: SequenceStep[] = [];
  #ranges: readonly AddressRange[] | undefined;
  /** Time spent on requests that repeated a known crash or hang (ms). */
  #knownFaultMs = 0;
  /** Codes de-prioritized because a crash or hang of theirs repeated. */
  readonly #faultCodes = new Set<number>();
  /** Whether the last recorded crash or hang was a repeat. */
  #repeated = false;
  #scratch = new Uint8Array(4096);
  #iterations = 0;
  #elapsedMs = 0;
  #restarts = 0;
  /** Requests the oracles, reproduction and minimization sent besides the iterations. */
  #extraRequests = 0;
  #codes: number[] = [];
  #strategies: StrategyName[] = [...STRATEGIES];
  #stopped: string | undefined;

  /** Creates a fuzzer for `target`. */
  constructor(target: FuzzTarget, options: FuzzerOptions) {
    this.#target = target;
    this.#options = options;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#hangMs = options.hangMs ?? DEFAULT_HANG_MS;
    this.#maxLength = options.maxLength ?? DEFAULT_MAX_LENGTH;
    this.#budget = options.knownFaultBudget ?? true;
  }

  /** Why the run stopped early (the driver could not be restarted ...), if it did. */
  get stopped(): string | undefined {
    return this.#stopped;
  }

  /**
   * The hang limit of a request: the configured one, unless the same hang is
   * known already; then 8 times the code's slowest completion (at least
   * {@linkcode HANG_FLOOR_MS}): a known hang costs little, a new one (or a
   * slow but correct code) is always given the full limit.
   */
  #hangLimit(request: { code: number; input: Uint8Array; outputSize: number }): number {
    // Asked for every request: the cheap test first.
    if (!this.#budget || !this.#hangCodes.has(request.code)) return this.#hangMs;
    if (!this.#findings.has(this.#key("hang", request.code, request))) return this.#hangMs;
    const slowest = this.#slowest.get(request.code) ?? this.#hangMs;
    return Math.min(this.#hangMs, Math.max(HANG_FLOOR_MS, 8 * slowest));
  }

  /** Sends one request: pre-filled output, deadline, death check, latency. */
  async #execute(
    request: { code: number; input: Uint8Array; outputSize: number },
    prefill?: readonly number[],
  ): Promise<Observation> {
    if (this.#scratch.length < request.outputSize) {
      this.#scratch = new Uint8Array(Math.max(request.outputSize, this.#scratch.length * 2));
    }
    const output = fillCanary(this.#scratch.subarray(0, request.outputSize), prefill);
    this.#options.onRequest?.(request);
    const started = performance.now();
    const outcome = await this.#target.call(
      request.code,
      request.input,
      output,
      this.#timeoutMs,
      this.#hangLimit(request),
    );
    const took = performance.now() - started;
    if (outcome.kind === "hang") this.#scratch = new Uint8Array(4096); // still referenced by the request
    else if (outcome.kind !== "pended" && took > (this.#slowest.get(request.code) ?? 0)) {
      this.#slowest.set(request.code, took);
    }
    this.#history.push({
      code: request.code,
      input: request.input,
      outputSize: request.outputSize,
    });
    if (this.#history.length > INPUT_HISTORY) this.#history.shift();
    if (looksDead(outcome) && !(await this.#target.alive())) {
      return {
        kind: "crash",
        status: `the driver stopped answering: ${(outcome as { status: string }).status}`,
      };
    }
    return { kind: "outcome", outcome, output };
  }

  /** Restarts the driver; records why the run must stop when it cannot. */
  async #restart(reason: string): Promise<boolean> {
    if (!this.#target.restartable) {
      this.#stopped ??= `${reason}; no service to restart it (--service)`;
      return false;
    }
    this.#options.onEvent?.({ type: "restart", reason });
    try {
      await this.#target.restart();
      this.#options.coverage?.reopen(); // the new host's section may be a new one
      await this.#options.faultSite?.started?.();
      this.#restarts++;
      this.#ranges = undefined; // a new host: new addresses
      this.#history.length = 0; // its state starts over
      return true;
    } catch (error) {
      this.#stopped ??= `${reason}; ${(error as Error).message}`;
      return false;
    }
  }

  #key(
    kind: FindingKind,
    code: number,
    request: { input: Uint8Array; outputSize: number },
    site?: string,
  ): string {
    return `${kind} ${site ?? hex32(code)} ${shapeOf(request)}`;
  }

  /** Lowers the weight of a code whose finding keeps repeating. */
  #deprioritize(finding: Finding): void {
    if (!this.#budget || finding.count < DEPRIORITIZE_AFTER) return;
    const weight = Math.max(LOWEST_WEIGHT, 2 ** (DEPRIORITIZE_AFTER - 1 - finding.count));
    if (finding.kind === "crash" || finding.kind === "hang") this.#faultCodes.add(finding.code);
    if (weight < (this.#weights.get(finding.code) ?? 1)) {
      this.#weights.set(finding.code, weight);
      this.#options.onEvent?.({ type: "deprioritized", code: finding.code, weight });
    }
  }

  /**
   * Counts a finding (a new one, or another case of a known one) and writes
   * a new one's reproducer. `found` adds what the kind knows: a detail, the
   * crash site and the driver's last prints.
   */
  async #record(
    kind: FindingKind,
    request: Request,
    iteration: number,
    status: string,
    found: { detail?: string; site?: string; prints?: readonly string[] } = {},
  ): Promise<{ finding: Finding; first: boolean }> {
    const { detail, site, prints } = found;
    const key = this.#key(kind, request.code, request, site);
    const existing = this.#findings.get(key);
    if (existing !== undefined) {
      existing.count++;
      if (kind === "crash" || kind === "hang") this.#repeated = true;
      this.#deprioritize(existing);
      this.#options.onEvent?.({ type: "finding", finding: existing, repeated: true });
      return { finding: existing, first: false };
    }
    const finding: Finding = {
      kind,
      key,
      code: request.code,
      control: formatCtlCode(request.code),
      ...(site !== undefined ? { site } : {}),
      ...(prints !== undefined && prints.length > 0 ? { prints } : {}),
      time: new Date().toISOString(),
      atMs: Math.round(performance.now() - this.#created),
      iteration,
      strategy: request.strategy,
      status,
      ...(detail !== undefined ? { detail } : {}),
      inputLength: request.input.length,
      outputSize: request.outputSize,
      count: 1,
    };
    this.#findings.set(key, finding);
    if (kind === "hang") this.#hangCodes.add(request.code);
    if (this.#options.outDir !== undefined) {
      finding.reproducer = await writeReproducer(
        this.#options.outDir,
        this.#reproducer(finding, request),
      );
    }
    this.#options.onEvent?.({ type: "finding", finding, repeated: false });
    return { finding, first: true };
  }

  #reproducer(finding: Finding, request: Request): Reproducer {
    return {
      kind: finding.kind,
      device: this.#target.path,
      code: request.code,
      input: request.input,
      outputSize: request.outputSize,
      seed: this.#options.seed,
      iteration: finding.iteration,
      strategy: request.strategy,
      ...(this.#options.service !== undefined ? { service: this.#options.service } : {}),
      status: finding.status,
      ...(finding.detail !== undefined ? { detail: finding.detail } : {}),
      ...(finding.sequence !== undefined ? { sequence: finding.sequence } : {}),
      ...(finding.site !== undefined ? { site: finding.site } : {}),
      ...(finding.prints !== undefined ? { prints: finding.prints } : {}),
      time: finding.time,
    };
  }

  /**
   * Sends `steps`, then `request`; whether it fails the way `kind` says
   * (a crash, or a hang). Restarts a driver that died or hung.
   */
  async #fails(
    kind: "crash" | "hang",
    steps: readonly SequenceStep[],
    request: MinimizeCase & { code: number },
  ): Promise<boolean> {
    for (const step of [...steps, request]) {
      if (this.#stopped !== undefined) return false;
      const observation = await this.#execute(step);
      this.#extraRequests++;
      const crashed = observation.kind === "crash";
      const hung = observation.kind === "outcome" && observation.outcome.kind === "hang";
      if (crashed) await this.#restart("reproducing a crash");
      else if (hung && !(await this.#target.alive())) await this.#restart("reproducing a hang");
      if (crashed || hung) return step === request && (kind === "crash" ? crashed : hung);
    }
    return false;
  }

  /**
   * After a new crash or hang: whether the request alone reproduces it
   * (after a restart); if not, the shortest tail (1, 2, 4 or 8) of the
   * requests before it that does (for a crash: without the steps it does not need), kept as
   * the finding's sequence. Then minimization, with that sequence sent before
   * every attempt.
   */
  async #follow(
    finding: Finding,
    request: Request,
    before: readonly SequenceStep[],
  ): Promise<void> {
    const maxAttempts = this.#options.minimizeAttempts ?? DEFAULT_MINIMIZE_ATTEMPTS;
    if (maxAttempts <= 0 || !this.#target.restartable) return;
    const kind = finding.kind === "crash" ? "crash" : "hang";
    let steps: readonly SequenceStep[] = [];
    if (!(await this.#fails(kind, [], request))) {
      let found: readonly SequenceStep[] | undefined;
      for (let length = 1; length <= before.length && found === undefined; length *= 2) {
        const tail = before.slice(-length);
        if (await this.#fails(kind, tail, request)) found = tail;
      }
      if (found === undefined) return; // does not reproduce: nothing to minimize
      // The tail may hold requests whose state the crash does not need: drop them. Not for
      // hangs: each removal that keeps one costs a hang limit.
      steps = found.length === 1 || kind === "hang"
        ? found
        : (await shortenSequence(found, (tail) => this.#fails(kind, tail, request))).steps;
      finding.sequence = steps;
      if (finding.reproducer !== undefined && this.#options.outDir !== undefined) {
        finding.reproducer = await writeReproducer(
          this.#options.outDir,
          this.#reproducer(finding, request),
        );
      }
    }
    if (request.input.length === 0 && request.outputSize === 0) return; // nothing to shrink
    const result = await minimize(
      { input: request.input, outputSize: request.outputSize },
      (candidate) => this.#fails(kind, steps, { code: request.code, ...candidate }),
      // Each attempt that hangs costs a hang limit: fewer of them.
      {
        maxAttempts: kind === "hang" ? Math.min(maxAttempts, HANG_MINIMIZE_ATTEMPTS) : maxAttempts,
        assumeFailing: true,
      },
    );
    let reproducer: string | undefined;
    const shrunk = result.input.length !== request.input.length ||
      result.outputSize !== request.outputSize ||
      result.input.some((byte, i) => byte !== request.input[i]);
    if (shrunk && this.#options.outDir !== undefined) {
      reproducer = await writeReproducer(this.#options.outDir, {
        ...this.#reproducer(finding, { ...request, ...result, strategy: "minimize" }),
        minimizedFrom: { inputLength: request.input.length, outputSize: request.outputSize },
      });
    }
    finding.minimized = {
      inputLength: result.input.length,
      outputSize: result.outputSize,
      attempts: result.attempts,
      ...(reproducer !== undefined ? { reproducer } : {}),
    };
    this.#options.onEvent?.({ type: "minimized", finding });
  }

  /** Handles a crash: site, finding, reproducer, restart, follow-up of a new one. */
  async #crash(request: Request, iteration: number, status: string): Promise<void> {
    const before = this.#history.slice(-SEQUENCE_LENGTH - 1, -1);
    const faultSite = this.#options.faultSite;
    const site = await faultSite?.lastCrashSite();
    const { finding, first } = await this.#record("crash", request, iteration, status, {
      site,
      prints: faultSite?.lastCrashPrints?.(),
    });
    if (!(await this.#restart(`a crash at iteration ${iteration}`))) return;
    if (first) await this.#follow(finding, request, before);
  }

  /** Handles a hang: finding, a restart only when the driver no longer answers, follow-up of a new one. */
  async #hang(request: Request, iteration: number, limitMs: number): Promise<void> {
    const before = this.#history.slice(-SEQUENCE_LENGTH - 1, -1);
    const { finding, first } = await this.#record(
      "hang",
      request,
      iteration,
      `no completion ${limitMs} ms after the cancel at ${this.#timeoutMs} ms`,
    );
    if (
      !(await this.#target.alive()) && !(await this.#restart(`a hang at iteration ${iteration}`))
    ) {
      return;
    }
    if (first) await this.#follow(finding, request, before);
  }

  /** Probes one code for discovery (zero input bytes, an output buffer), handling crashes and hangs. */
  async #probe(code: number, inputLength: number, outputSize: number): Promise<ProbeAnswer> {
    const request = {
      code,
      input: new Uint8Array(inputLength),
      outputSize,
      strategy: "discover",
    };
    const limit = this.#hangLimit(request);
    const observation = await this.#execute(request);
    if (observation.kind === "crash") {
      await this.#crash(request, -1, observation.status);
      return { signature: "CRASH", always: true };
    }
    const { outcome } = observation;
    if (outcome.kind === "hang") await this.#hang(request, -1, limit);
    const signature = statusKey(observation) +
      (outcome.kind === "ok" ? ` ${outcome.bytesReturned}` : "");
    return { signature, always: outcome.kind === "pended" || outcome.kind === "hang" };
  }

  #guardedProbe(code: number, input: number, output: number): Promise<ProbeAnswer> {
    return this.#stopped === undefined
      ? this.#probe(code, input, output)
      : Promise.resolve({ signature: "STOPPED", always: false });
  }

  /**
   * Finds the codes the driver accepts (see `discoverCodes`); a crash on the
   * way is recorded (and the driver restarted) like any other.
   */
  discover(options: DiscoverOptions): Promise<DiscoverResult> {
    const functions = options.functions ?? { first: 0x800, last: 0xfff };
    return discoverCodes(
      (code, input, output) => this.#guardedProbe(code, input, output),
      discoveryOrder(options.deviceTypes, functions),
      {
        total: options.deviceTypes.length * (functions.last - functions.first + 1) * 16,
        budget: options.budget,
        onProgress: (probed, total, accepted) => {
          options.onProgress?.(probed, total, accepted);
          this.#options.onEvent?.({ type: "discovery", probed, total, accepted });
        },
      },
    );
  }

  /** The codes of `codes` the driver accepts (probed like discovery), and the ones it does not. */
  async filterCodes(codes: readonly number[]): Promise<{ accepted: number[]; skipped: number[] }> {
    const result = await discoverCodes(
      (code, input, output) => this.#guardedProbe(code, input, output),
      codes,
      { total: codes.length, budget: Infinity },
    );
    const accepted = codes.filter((code) => result.codes.includes(code));
    return { accepted, skipped: codes.filter((code) => !accepted.includes(code)) };
  }

  /** Runs the fuzz loop over `codes` (not empty). */
  async run(codes: readonly number[], options: RunOptions = {}): Promise<void> {
    if (codes.length === 0) throw new RangeError("Fuzzer.run: no control codes to fuzz");
    this.#codes = [...codes];
    const strategies = options.strategies && options.strategies.length > 0
      ? [...options.strategies]
      : [...STRATEGIES];
    this.#strategies = strategies;
    const prng = new Prng(this.#options.seed);
    const corpus = new Corpus(codes);
    const dictionary = new Dictionary();
    const context = { prng, corpus, codes, maxLength: this.#maxLength, dictionary };
    const iterations = options.iterations ?? (options.durationMs === undefined ? 10_000 : Infinity);
    const started = performance.now();
    const deadline = options.durationMs === undefined ? Infinity : started + options.durationMs;
    let lastReport = started;
    let lastIterations = 0;
    let iteration = 0;
    const coverage = this.#options.coverage;
    /** Requests the comparisons asked for, sent before generated ones. */
    const solved: Request[] = [];
    const tried = new Set<string>();
    coverage?.collect(); // what discovery reached is known already
    const lingeringAtStart = this.#target.lingeringMs ?? 0;
    while (iteration < iterations) {
      if (this.#stopped !== undefined || options.signal?.aborted) break;
      const now = performance.now();
      if (now >= deadline) break;
      if (now - lastReport >= 500) {
        this.#progress(iteration, (iteration - lastIterations) * 1000 / (now - lastReport));
        lastReport = now;
        lastIterations = iteration;
      }
      // Solved requests take every other turn at most: generated ones still explore.
      const request = (solved.length > 0 && prng.chance(0.5) ? solved.shift() : undefined) ??
        generateCase(prng.pick(strategies), context);
      // A code whose finding keeps repeating is sent only now and then, and never while
      // repeats of known faults took more than their share of the time (for a code that
      // crashes or hangs, with the time its hung requests stayed held).
      const weight = this.#weights.get(request.code);
      if (weight !== undefined) {
        const held = this.#faultCodes.has(request.code)
          ? (this.#target.lingeringMs ?? 0) - lingeringAtStart
          : 0;
        const known = this.#knownFaultMs + held;
        if (known > KNOWN_FAULT_SHARE * (now - started) || !prng.chance(weight)) continue;
      }
      this.#repeated = false;
      const { observation, status } = await this.#step(request, iteration);
      if (this.#repeated) this.#knownFaultMs += performance.now() - now;
      iteration++;
      this.#iterations = iteration;
      if (coverage !== undefined) this.#learn(coverage, request, context, solved, tried);
      if (observation.kind !== "outcome" || observation.outcome.kind === "hang") continue;
      const { outcome, output } = observation;
      // Feedback: an input that drew a status not seen before for its code joins the corpus.
      const feedback = `${request.code}:${status}:${lengthClass(request.input.length)}`;
      if (!this.#seenStatus.has(feedback)) {
        this.#seenStatus.add(feedback);
        corpus.add(request.input, request.outputSize, "status");
      }
      if (outcome.kind === "ok") dictionary.addSize(request.input.length, request.outputSize);
      // Output that is no echo of the input is often a structure the driver wants back.
      if (outcome.kind === "ok" && outcome.bytesReturned > 0 && outcome.bytesReturned <= 4096) {
        const returned = output.subarray(0, outcome.bytesReturned);
        const echo = isPrefix(returned, request.input);
        if (!echo) {
          corpus.add(returned, Math.max(64, returned.length), "output", request.code);
          dictionary.addWords(returned);
        }
      }
    }
    this.#elapsedMs += performance.now() - started;
    this.#progress(this.#iterations, this.#iterations * 1000 / Math.max(1, this.#elapsedMs));
  }

  /**
   * Coverage feedback of the request just sent: a new edge puts its input in
   * the corpus; comparison operands go to the dictionary, and the requests
   * that put one operand in place of the other are queued (once each).
   */
  #learn(
    coverage: CoverageFeedback,
    request: Request,
    context: { corpus: Corpus; dictionary: Dictionary },
    solved: Request[],
    tried: Set<string>,
  ): void {
    const { newCoverage, comparisons } = coverage.collect();
    if (newCoverage) context.corpus.add(request.input, request.outputSize, "coverage");
    for (const { arg1, arg2 } of comparisons) {
      context.dictionary.add(arg1);
      context.dictionary.add(arg2);
    }
    // A loop compares its counter with a length once per pass: a few answers per request,
    // the oldest queued ones making room.
    // Requests of up to MAX_SOLVED_LENGTH bytes only: the queue holds copies of them.
    if (request.input.length > MAX_SOLVED_LENGTH) return;
    const maxLength = Math.min(this.#maxLength, MAX_SOLVED_LENGTH);
    let queued = 0;
    for (
      const next of solveComparisons(request.input, request.outputSize, comparisons, maxLength)
    ) {
      if (queued >= SOLVED_PER_REQUEST) break;
      const key = `${request.code} ${next.outputSize} ${inputKey(next.input)}`;
      if (tried.has(key)) continue;
      if (tried.size >= MAX_SOLVED_KEYS) tried.clear();
      tried.add(key);
      if (solved.length >= MAX_SOLVED) solved.shift();
      solved.push({ code: request.code, ...next, strategy: "cmp" });
      queued++;
    }
  }

  /** Sends one request and handles what it did: counts, findings, restarts. */
  async #step(
    request: Request,
    iteration: number,
  ): Promise<{ observation: Observation; status: string }> {
    const limit = this.#hangLimit(request);
    const observation = await this.#execute(request);
    const status = statusKey(observation);
    this.#count(request.code, status);
    if (observation.kind === "crash") {
      await this.#crash(request, iteration, observation.status);
    } else if (observation.outcome.kind === "hang") {
      await this.#hang(request, iteration, limit);
    } else {
      await this.#check(request, iteration, observation.outcome, observation.output);
    }
    return { observation, status };
  }

  /**
   * Sends a reproducer's requests as iteration 0 of a run (a replay): its
   * sequence first, then the request; findings are recorded and reported, a
   * dead driver is restarted, nothing is minimized. Returns the status seen
   * (`OK`, `CRASH`, `STATUS_...`).
   */
  async replayOne(request: FuzzCase, sequence: readonly SequenceStep[] = []): Promise<string> {
    this.#codes = [request.code];
    const started = performance.now();
    for (const step of sequence) await this.#execute(step);
    const { status } = await this.#step(request, 0);
    this.#iterations = 1;
    this.#elapsedMs += performance.now() - started;
    return status;
  }

  #progress(iterations: number, perSecond: number): void {
    const findings = [...this.#findings.values()];
    this.#options.onEvent?.({
      type: "progress",
      iterations,
      perSecond,
      codes: this.#codes.length,
      statuses: new Set([...this.#statuses.values()].flatMap((m) => [...m.keys()])).size,
      crashes: findings.filter((f) => f.kind === "crash").reduce((n, f) => n + f.count, 0),
      hangs: findings.filter((f) => f.kind === "hang").reduce((n, f) => n + f.count, 0),
      findings: findings.filter((f) => f.kind !== "crash" && f.kind !== "hang").length,
    });
  }

  #count(code: number, status: string): void {
    let counts = this.#statuses.get(code);
    if (counts === undefined) this.#statuses.set(code, counts = new Map());
    counts.set(status, (counts.get(status) ?? 0) + 1);
  }

  /** Sends a request of an oracle's own (not counted as an iteration); `undefined` unless it completed. */
  async #sideRequest(
    request: Request,
    iteration: number,
    prefill?: readonly number[],
  ): Promise<{ outcome: CallOutcome; output: Uint8Array } | undefined> {
    const limit = this.#hangLimit(request);
    const observation = await this.#execute(request, prefill);
    this.#extraRequests++;
    if (observation.kind === "crash") {
      await this.#crash(request, iteration, observation.status);
      return undefined;
    }
    if (observation.outcome.kind === "hang") {
      await this.#hang(request, iteration, limit);
      return undefined;
    }
    return { outcome: observation.outcome, output: observation.output.slice() };
  }

  /** The output checks: canary past the bytes returned, pointers, stale bytes. */
  async #check(
    request: Request,
    iteration: number,
    outcome: CallOutcome,
    output: Uint8Array,
  ): Promise<void> {
    let returned = -1;
    if (outcome.kind === "ok") returned = outcome.bytesReturned;
    // A failure (NT_ERROR) returns no bytes; a warning's byte count is unknown here.
    else if (
      outcome.kind === "error" && outcome.ntStatus !== undefined && outcome.ntStatus >= 0xc000_0000
    ) returned = 0;
    if (returned < 0) return;
    const damage = canaryDamage(output, returned);
    if (damage >= 0) {
      await this.#record(
        "canary",
        request,
        iteration,
        outcome.kind === "ok" ? "OK" : (outcome as { status: string }).status,
        {
          detail: `output byte ${damage} changed (0x${
            output[damage].toString(16).padStart(2, "0")
          }) past the ${returned} bytes returned`,
        },
      );
    }
    if (returned < 8) return;
    // A view of the scratch buffer, which side requests overwrite: the pointer check reads it
    // before it sends any; the stale check, due a few times per code, gets a copy.
    const first = output.subarray(0, returned);
    const staleDue = (this.#staleChecks.get(request.code) ?? 0) < STALE_CHECKS_PER_CODE;
    const copy = staleDue ? first.slice() : first;
    await this.#checkPointers(request, iteration, first);
    if (staleDue) await this.#checkStale(request, iteration, copy);
  }

  /**
   * Pointer oracle: values of the output inside the driver's ranges that no
   * recent input held, and that stay the same when the request is sent again
   * with every input byte's low bit flipped (values that change with the
   * input are derived from it: suppressed).
   */
  async #checkPointers(request: Request, iteration: number, returned: Uint8Array): Promise<void> {
    this.#ranges ??= await (this.#options.ranges ?? KERNEL_RANGES).ranges();
    if (pointerValues(returned, this.#ranges, []).length === 0) return;
    const inputs = this.#history.map((step) => step.input);
    const hits = pointerValues(returned, this.#ranges, inputs);
    if (hits.length === 0) {
      this.#suppressed.set(request.code, (this.#suppressed.get(request.code) ?? 0) + 1);
      return;
    }
    let stable = hits;
    if (request.input.length > 0) {
      const perturbed = request.input.map((byte) => byte ^ 1);
      const again = await this.#sideRequest({ ...request, input: perturbed }, iteration);
      if (again !== undefined && again.outcome.kind === "ok") {
        const view = new DataView(
          again.output.buffer,
          again.output.byteOffset,
          again.output.byteLength,
        );
        const bytes = again.outcome.bytesReturned;
        stable = hits.filter((hit) =>
          hit.offset + 8 <= bytes && view.getBigUint64(hit.offset, true) === hit.value
        );
      }
    }
    if (stable.length < hits.length) {
      this.#suppressed.set(request.code, (this.#suppressed.get(request.code) ?? 0) + 1);
    }
    if (stable.length === 0) return;
    await this.#record(
      "pointer",
      request,
      iteration,
      "OK",
      {
        detail:
          stable.slice(0, 4).map((p) => `${hex64(p.value)} at offset ${p.offset} (${p.label})`)
            .join(", ") + (stable.length > 4 ? `, and ${stable.length - 4} more` : ""),
      },
    );
  }

  /**
   * Stale-bytes oracle (a few times per code): the same request again at once
   * (what differs there is the driver's varying output), then again after
   * other codes were sent with other bytes (another allocation history) and
   * with the other pre-fill; bytes inside the returned length that differ
   * only the second time (see `staleBytes`) are a finding.
   */
  async #checkStale(request: Request, iteration: number, returned: Uint8Array): Promise<void> {
    const checks = this.#staleChecks.get(request.code) ?? 0;
    if (checks >= STALE_CHECKS_PER_CODE) return;
    this.#staleChecks.set(request.code, checks + 1);
    // Codes known to crash or hang would make the check costly: not those.
    const faulty = new Set(
      [...this.#findings.values()].filter((f) => f.kind === "crash" || f.kind === "hang")
        .map((f) => f.code),
    );
    const repeat = await this.#sideRequest(request, iteration);
    if (repeat === undefined || repeat.outcome.kind !== "ok") return;
    if (repeat.outcome.bytesReturned !== returned.length) return; // another answer: not comparable
    const others = this.#codes.filter((code) => code !== request.code && !faulty.has(code));
    for (let i = 0; i < Math.min(STALE_HISTORY_CODES, others.length); i++) {
      const code = others[(checks + i) % others.length];
      const input = new Uint8Array(Math.min(request.outputSize, 4096));
      for (let k = 0; k < input.length; k++) input[k] = (k * 29 + checks * 7 + i + 0x11) & 0xff;
      if (
        (await this.#sideRequest(
          { code, input, outputSize: input.length, strategy: "stale-check" },
          iteration,
        )) === undefined
      ) {
        return;
      }
    }
    const again = await this.#sideRequest(request, iteration, INVERSE_CANARY);
    if (again === undefined || again.outcome.kind !== "ok") return;
    if (again.outcome.bytesReturned !== returned.length) return; // another answer: not comparable
    const stale = staleBytes(returned, again.output.subarray(0, returned.length), {
      repeat: repeat.output.subarray(0, returned.length),
      countPrefill: decodeCtlCode(request.code).methodName === "BUFFERED",
    });
    if (stale === undefined) return;
    await this.#record(
      "stale",
      request,
      iteration,
      "OK",
      {
        detail:
          `${stale.differing} of the ${returned.length} bytes returned differ between two runs of ` +
          `the same request (offsets ${stale.first}..${stale.last})` +
          (stale.prefill > 0 ? `; ${stale.prefill} of them are the output's pre-fill` : ""),
      },
    );
  }

  /** The summary of everything so far. */
  summary(): FuzzSummary {
    const statuses: Record<string, Record<string, number>> = {};
    for (const [code, counts] of [...this.#statuses.entries()].sort((a, b) => a[0] - b[0])) {
      statuses[hex32(code)] = Object.fromEntries(
        [...counts.entries()].sort((a, b) => b[1] - a[1]),
      );
    }
    const findings = [...this.#findings.values()];
    const byCode = (map: Map<number, number>) =>
      Object.fromEntries([...map].sort((a, b) => a[0] - b[0]).map(([c, n]) => [hex32(c), n]));
    return {
      uniqueBugs: findings.length,
      device: this.#target.path,
      seed: this.#options.seed,
      iterations: this.#iterations,
      elapsedMs: Math.round(this.#elapsedMs),
      perSecond: Math.round(this.#iterations * 1000 / Math.max(1, this.#elapsedMs)),
      codes: this.#codes.map(hex32),
      strategies: [...this.#strategies],
      statuses,
      crashes: findings.filter((f) => f.kind === "crash"),
      hangs: findings.filter((f) => f.kind === "hang"),
      findings: findings.filter((f) => f.kind !== "crash" && f.kind !== "hang"),
      restarts: this.#restarts,
      extraRequests: this.#extraRequests,
      suppressed: byCode(this.#suppressed),
      deprioritized: byCode(this.#weights),
      ...(this.#options.coverage !== undefined
        ? { coverageEdges: this.#options.coverage.edges }
        : {}),
      ...(this.#stopped !== undefined ? { stopped: this.#stopped } : {}),
    };
  }
}

/**
 * What a replay observed.
 *
 * @example
 * ```ts
 * import type { ReplayResult } from "./engine.ts";
 * const r: ReplayResult = { reproduced: true, observed: "crash", status: "the driver stopped answering" };
 * ```
 */
export interface ReplayResult {
  /** Whether the request still fails (crash, hang, or the reproducer's output finding). */
  readonly reproduced: boolean;
  /** What happened: `crash`, `hang`, `canary`, `pointer`, `stale` or `ok` (nothing found). */
  readonly observed: FindingKind | "ok";
  /** The status seen. */
  readonly status: string;
  /** Details of an output finding. */
  readonly detail?: string;
  /** Whether the driver was restarted after a reproduced crash or hang. */
  readonly restarted?: boolean;
}

/**
 * Sends a reproducer's request once and says whether it still fails; a crash
 * or hang is followed by a restart when the target can restart.
 *
 * @example
 * ```ts ignore
 * const reproducer = await readReproducer("fuzz-out/crash-80232400-000175.json");
 * const target = new DeviceTarget(reproducer.device, { service: reproducer.service });
 * const result = await replayReproducer(target, reproducer);
 * Deno.exit(result.reproduced ? 1 : 0);
 * ```
 */
export async function replayReproducer(
  target: FuzzTarget,
  reproducer: Reproducer,
  options: { timeoutMs?: number; hangMs?: number } = {},
): Promise<ReplayResult> {
  let found: { kind: FindingKind; status: string; detail?: string } | undefined;
  const fuzzer = new Fuzzer(target, {
    seed: reproducer.seed,
    service: reproducer.service,
    timeoutMs: options.timeoutMs,
    hangMs: options.hangMs,
    maxLength: 0xffff_ffff,
    minimizeAttempts: 0,
    onEvent: (event) => {
      if (event.type === "finding") {
        found ??= {
          kind: event.finding.kind,
          status: event.finding.status,
          detail: event.finding.detail,
        };
      }
    },
  });
  const request: FuzzCase = {
    code: reproducer.code,
    input: reproducer.input,
    outputSize: reproducer.outputSize,
    strategy: "random",
  };
  const observation = await fuzzer.replayOne(request, reproducer.sequence);
  const restarted = fuzzer.summary().restarts > 0;
  if (found === undefined) {
    return { reproduced: false, observed: "ok", status: observation };
  }
  const stillFails = found.kind === "crash" || found.kind === "hang" ||
    found.kind === reproducer.kind;
  return {
    reproduced: stillFails,
    observed: found.kind,
    status: found.status,
    ...(found.detail !== undefined ? { detail: found.detail } : {}),
    restarted,
  };
}
