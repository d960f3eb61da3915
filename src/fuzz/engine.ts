/**
 * The IOCTL fuzzer's engine: a seeded loop that sends generated requests to a
 * driver ({@linkcode FuzzTarget}), watches every answer (statuses, the output
 * canary, kernel-pointer-like output, crashes of the driver's host, hangs),
 * writes a reproducer file per finding, restarts a dead driver and goes on,
 * and minimizes crashing inputs. Also code discovery with crash handling,
 * and the replay of a reproducer.
 *
 * The pieces live in their own files: `prng.ts` (the seeded generator),
 * `mutate.ts` (mutators), `corpus.ts` (the corpus and its
 * deterministic walks), `strategy.ts` (the strategies), `canary.ts`
 * (output checks), `target.ts` (the device, deadlines, liveness and
 * restarts), `discover.ts` (code lists and discovery),
 * `reproducer.ts` (reproducer files), `minimize.ts` (minimization).
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
import { formatCtlCode } from "../core/ctl_code.ts";
import { canaryDamage, fillCanary, kernelPointers } from "./canary.ts";
import { Corpus } from "./corpus.ts";
import {
  discoverCodes,
  type DiscoverOptions,
  type DiscoverResult,
  isInvalidRequest,
} from "./discover.ts";
import { minimize, type MinimizeCase } from "./minimize.ts";
import { HUGE } from "./mutate.ts";
import { Prng } from "./prng.ts";
import { type FindingKind, type Reproducer, writeReproducer } from "./reproducer.ts";
import { type FuzzCase, generateCase, STRATEGIES, type StrategyName } from "./strategy.ts";
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
export const DEFAULT_MINIMIZE_ATTEMPTS = 48;

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
  /** Minimization attempts per new crash (default {@linkcode DEFAULT_MINIMIZE_ATTEMPTS}; 0: none). */
  readonly minimizeAttempts?: number;
  /** Told about progress, findings and restarts. */
  readonly onEvent?: (event: FuzzEvent) => void;
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
 *   kind: "crash", code: 0x80232400, control: "0x80232400 0x8023 fn 0x900 BUFFERED ANY",
 *   iteration: 175, strategy: "bitflip", status: "the driver's host died", inputLength: 32,
 *   outputSize: 64, count: 1,
 * };
 * ```
 */
export interface Finding {
  /** What was found. */
  readonly kind: FindingKind;
  /** The control code. */
  readonly code: number;
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
  /** Occurrences (the same kind and code). */
  count: number;
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
 * const exitCode = (s: FuzzSummary) => s.crashes.length + s.hangs.length + s.findings.length > 0 ? 1 : 0;
 * ```
 */
export interface FuzzSummary {
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
  /** Canary damage and kernel-pointer-like output. */
  readonly findings: Finding[];
  /** Driver restarts. */
  readonly restarts: number;
  /** Why the run stopped before its end, if it did. */
  readonly stopped?: string;
}

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

/** A coarse input-length class: 0, then powers of two. */
function lengthClass(length: number): number {
  return length === 0 ? 0 : 32 - Math.clz32(length);
}

function hex64(value: bigint): string {
  return `0x${value.toString(16).toUpperCase().padStart(16, "0")}`;
}

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
  readonly #statuses = new Map<number, Map<string, number>>();
  readonly #seenStatus = new Set<string>();
  readonly #findings = new Map<string, Finding>();
  #scratch = new Uint8Array(4096);
  #iterations = 0;
  #elapsedMs = 0;
  #restarts = 0;
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
  }

  /** Why the run stopped early (the driver could not be restarted ...), if it did. */
  get stopped(): string | undefined {
    return this.#stopped;
  }

  /** Sends one request: canary-filled output, deadline, death check. */
  async #execute(
    request: { code: number; input: Uint8Array; outputSize: number },
  ): Promise<Observation> {
    if (this.#scratch.length < request.outputSize) {
      this.#scratch = new Uint8Array(Math.max(request.outputSize, this.#scratch.length * 2));
    }
    const output = fillCanary(this.#scratch.subarray(0, request.outputSize));
    const outcome = await this.#target.call(
      request.code,
      request.input,
      output,
      this.#timeoutMs,
      this.#hangMs,
    );
    if (outcome.kind === "hang") this.#scratch = new Uint8Array(4096); // still referenced by the request
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
      this.#restarts++;
      return true;
    } catch (error) {
      this.#stopped ??= `${reason}; ${(error as Error).message}`;
      return false;
    }
  }

  async #record(
    kind: FindingKind,
    request: FuzzCase | { code: number; input: Uint8Array; outputSize: number; strategy: string },
    iteration: number,
    status: string,
    detail?: string,
  ): Promise<{ finding: Finding; first: boolean }> {
    const key = `${kind}:${request.code}`;
    const existing = this.#findings.get(key);
    if (existing !== undefined) {
      existing.count++;
      this.#options.onEvent?.({ type: "finding", finding: existing, repeated: true });
      return { finding: existing, first: false };
    }
    const finding: Finding = {
      kind,
      code: request.code,
      control: formatCtlCode(request.code),
      iteration,
      strategy: request.strategy,
      status,
      ...(detail !== undefined ? { detail } : {}),
      inputLength: request.input.length,
      outputSize: request.outputSize,
      count: 1,
    };
    this.#findings.set(key, finding);
    if (this.#options.outDir !== undefined) {
      finding.reproducer = await writeReproducer(
        this.#options.outDir,
        this.#reproducer(kind, request, iteration, status, detail),
      );
    }
    this.#options.onEvent?.({ type: "finding", finding, repeated: false });
    return { finding, first: true };
  }

  #reproducer(
    kind: FindingKind,
    request: { code: number; input: Uint8Array; outputSize: number; strategy: string },
    iteration: number,
    status: string,
    detail?: string,
  ): Reproducer {
    return {
      kind,
      device: this.#target.path,
      code: request.code,
      input: request.input,
      outputSize: request.outputSize,
      seed: this.#options.seed,
      iteration,
      strategy: request.strategy,
      ...(this.#options.service !== undefined ? { service: this.#options.service } : {}),
      status,
      ...(detail !== undefined ? { detail } : {}),
    };
  }

  /** Shrinks a new crash's input while it still crashes; writes the minimized reproducer. */
  async #minimize(
    finding: Finding,
    request: FuzzCase | { code: number; input: Uint8Array; outputSize: number; strategy: string },
  ): Promise<void> {
    const maxAttempts = this.#options.minimizeAttempts ?? DEFAULT_MINIMIZE_ATTEMPTS;
    if (maxAttempts <= 0 || !this.#target.restartable) return;
    if (request.input.length === 0 && request.outputSize === 0) return; // nothing to shrink
    const stillCrashes = async (candidate: MinimizeCase): Promise<boolean> => {
      if (this.#stopped !== undefined) return false;
      const observation = await this.#execute({ code: request.code, ...candidate });
      const crashed = observation.kind === "crash";
      const hung = observation.kind === "outcome" && observation.outcome.kind === "hang";
      if (crashed || hung) {
        await this.#restart(crashed ? "minimizing a crash" : "a hang while minimizing");
      }
      return crashed;
    };
    const result = await minimize(
      { input: request.input, outputSize: request.outputSize },
      stillCrashes,
      { maxAttempts, assumeFailing: true },
    );
    let reproducer: string | undefined;
    const shrunk = result.input.length !== request.input.length ||
      result.outputSize !== request.outputSize ||
      result.input.some((byte, i) => byte !== request.input[i]);
    if (shrunk && this.#options.outDir !== undefined) {
      reproducer = await writeReproducer(this.#options.outDir, {
        ...this.#reproducer(
          finding.kind,
          { ...request, ...result, strategy: "minimize" },
          finding.iteration,
          finding.status,
        ),
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

  /** Handles a crash: finding, reproducer, restart, minimization of a new one. */
  async #crash(
    request: FuzzCase | { code: number; input: Uint8Array; outputSize: number; strategy: string },
    iteration: number,
    status: string,
  ): Promise<void> {
    const { finding, first } = await this.#record("crash", request, iteration, status);
    if (!(await this.#restart(`a crash at iteration ${iteration}`))) return;
    if (first) await this.#minimize(finding, request);
  }

  /** Probes one code for discovery (no input, no output), handling crashes. */
  async #probe(code: number): Promise<{ accepted: boolean; status: string }> {
    const request = { code, input: new Uint8Array(), outputSize: 0, strategy: "discover" };
    const observation = await this.#execute(request);
    if (observation.kind === "crash") {
      await this.#crash(request, -1, observation.status);
      return { accepted: true, status: "CRASH" };
    }
    const { outcome } = observation;
    if (outcome.kind === "hang") {
      await this.#record(
        "hang",
        request,
        -1,
        `no completion ${this.#hangMs} ms after the cancel`,
      );
      await this.#restart("a hang during discovery");
    }
    return { accepted: !isInvalidRequest(outcome), status: statusKey(observation) };
  }

  /**
   * Finds the codes the driver accepts (see `discoverCodes`); a crash on the
   * way is recorded (and the driver restarted) like any other.
   */
  discover(options: DiscoverOptions): Promise<DiscoverResult> {
    return discoverCodes(
      (code) =>
        this.#stopped === undefined
          ? this.#probe(code)
          : Promise.resolve({ accepted: false, status: "STOPPED" }),
      {
        ...options,
        onProgress: (probed, total, accepted) => {
          options.onProgress?.(probed, total, accepted);
          this.#options.onEvent?.({ type: "discovery", probed, total, accepted });
        },
      },
    );
  }

  /** The codes of `codes` the driver accepts (one probe each), and the ones it does not. */
  async filterCodes(codes: readonly number[]): Promise<{ accepted: number[]; skipped: number[] }> {
    const accepted: number[] = [];
    const skipped: number[] = [];
    for (const code of codes) {
      if (this.#stopped !== undefined) break;
      ((await this.#probe(code)).accepted ? accepted : skipped).push(code);
    }
    return { accepted, skipped };
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
    const context = { prng, corpus, codes, maxLength: this.#maxLength };
    const iterations = options.iterations ?? (options.durationMs === undefined ? 10_000 : Infinity);
    const started = performance.now();
    const deadline = options.durationMs === undefined ? Infinity : started + options.durationMs;
    let lastReport = started;
    let lastIterations = 0;
    for (let iteration = 0; iteration < iterations; iteration++) {
      if (this.#stopped !== undefined || options.signal?.aborted) break;
      const now = performance.now();
      if (now >= deadline) break;
      if (now - lastReport >= 500) {
        this.#progress(iteration, (iteration - lastIterations) * 1000 / (now - lastReport));
        lastReport = now;
        lastIterations = iteration;
      }
      const request = generateCase(prng.pick(strategies), context);
      const { observation, status } = await this.#step(request, iteration);
      this.#iterations = iteration + 1;
      if (observation.kind !== "outcome" || observation.outcome.kind === "hang") continue;
      const { outcome, output } = observation;
      // Feedback: an input that drew a status not seen before for its code joins the corpus.
      const feedback = `${request.code}:${status}:${lengthClass(request.input.length)}`;
      if (!this.#seenStatus.has(feedback)) {
        this.#seenStatus.add(feedback);
        corpus.add(request.input, request.outputSize, "status");
      }
      // Output that is no echo of the input is often a structure the driver wants back.
      if (outcome.kind === "ok" && outcome.bytesReturned > 0 && outcome.bytesReturned <= 4096) {
        const returned = output.subarray(0, outcome.bytesReturned);
        const echo = request.input.length >= returned.length &&
          returned.every((byte, i) => byte === request.input[i]);
        if (!echo) corpus.add(returned, Math.max(64, returned.length), "output", request.code);
      }
    }
    this.#elapsedMs += performance.now() - started;
    this.#progress(this.#iterations, this.#iterations * 1000 / Math.max(1, this.#elapsedMs));
  }

  /** Sends one request and handles what it did: counts, findings, restarts. */
  async #step(
    request: FuzzCase,
    iteration: number,
  ): Promise<{ observation: Observation; status: string }> {
    const observation = await this.#execute(request);
    const status = statusKey(observation);
    this.#count(request.code, status);
    if (observation.kind === "crash") {
      await this.#crash(request, iteration, observation.status);
    } else if (observation.outcome.kind === "hang") {
      await this.#record(
        "hang",
        request,
        iteration,
        `no completion ${this.#hangMs} ms after the cancel at ${this.#timeoutMs} ms`,
      );
      // Without a service the run goes on with a new handle (the hung request is abandoned).
      if (this.#target.restartable) await this.#restart(`a hang at iteration ${iteration}`);
    } else {
      await this.#check(request, iteration, observation.outcome, observation.output);
    }
    return { observation, status };
  }

  /**
   * Sends one request as iteration 0 of a run (a replay): findings are
   * recorded and reported, a dead driver is restarted, nothing is minimized.
   * Returns the status seen (`OK`, `CRASH`, `STATUS_...`).
   */
  async replayOne(request: FuzzCase): Promise<string> {
    this.#codes = [request.code];
    const started = performance.now();
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

  /** The output checks: canary past the bytes returned, kernel pointers. */
  async #check(
    request: FuzzCase,
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
        `output byte ${damage} changed (0x${
          output[damage].toString(16).padStart(2, "0")
        }) past the ${returned} bytes returned`,
      );
    }
    if (returned >= 8) {
      const pointers = kernelPointers(output.subarray(0, returned), request.input);
      if (pointers.length > 0) {
        await this.#record(
          "kernel-pointer",
          request,
          iteration,
          "OK",
          pointers.slice(0, 4).map((p) => `${hex64(p.value)} at offset ${p.offset}`).join(", ") +
            (pointers.length > 4 ? `, and ${pointers.length - 4} more` : ""),
        );
      }
    }
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
    return {
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
  /** What happened: `crash`, `hang`, `canary`, `kernel-pointer` or `ok` (nothing found). */
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
  const observation = await fuzzer.replayOne(request);
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
