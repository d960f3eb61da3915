/**
 * `kbridge fuzz`: fuzz a driver's IOCTLs, or replay a reproducer.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { formatCtlCode } from "../core/ctl_code.ts";
import {
  DEFAULT_HANG_MS,
  DEFAULT_MAX_LENGTH,
  DEFAULT_MINIMIZE_ATTEMPTS,
  DEFAULT_TIMEOUT_MS,
  type Finding,
  Fuzzer,
  type FuzzEvent,
  type FuzzSummary,
  replayReproducer,
} from "../fuzz/engine.ts";
import {
  codesOf,
  DEFAULT_DISCOVER_BUDGET,
  parseCodeSpec,
  parseList,
  parseRange,
  summarizeCodes,
} from "../fuzz/discover.ts";
import { HostRanges } from "../fuzz/ranges.ts";
import { WineCrashSite } from "../fuzz/crash_site.ts";
import { CRASH_LOG_ENV } from "../lab/crash.ts";
import { randomSeed } from "../fuzz/prng.ts";
import { parseUnsigned } from "../core/numbers.ts";
import { readReproducer } from "../fuzz/reproducer.ts";
import { parseStrategies, STRATEGIES } from "../fuzz/strategy.ts";
import { DeviceTarget } from "../fuzz/target.ts";
import { CoverageFeedback, coverageSectionName } from "../fuzz/coverage.ts";
import { parseInteger, UsageError } from "./usage.ts";
import { hex32, toHex } from "../core/hex.ts";

const HELP = `Usage:
  kbridge fuzz <device> [--codes discover|<list>|<range>] [--device-types <list>]
               [--functions <range>] [--strategy <list>] [--iterations <n> | --duration <s>]
               [--seed <n>] [--out <dir>] [--service <name>] [--timeout <ms>]
               [--hang-timeout <ms>] [--max-length <n>] [--minimize-attempts <n>]
               [--discover-budget <n>] [--image <file.sys>] [--coverage[=<section>]]
               [--crash-log <file>] [--json]
  kbridge fuzz --replay <file> [<device>] [--service <name>] [--timeout <ms>] [--json]

  Sends generated I/O control requests to <device> and watches the driver: the status of
  every answer, output bytes changed past the bytes returned (the output buffer is filled
  with a canary first), output that points into the driver's memory, bytes inside the
  returned length that differ between two runs of the same request (stale memory),
  crashes of the driver (its host process) and hangs. Each unique finding is written to
  --out as a JSON reproducer; a dead driver is restarted through --service and the run
  goes on; crashing and hanging inputs are minimized; a code whose finding keeps repeating
  is tried less. The run is reproducible from its seed, printed at the start.

  --codes        discover (default): probe every function of --device-types with each
                 method, access ANY first, with empty, 64- and 1024-byte buffers, and keep
                 the codes that answer unlike codes that cannot exist; or a list
                 (0x80222000,0x80222004) or a range (0x80222000-0x80222FFF) of codes, of
                 which those that answer like codes that cannot exist are skipped
  --device-types device types to discover (default 0x22,0x8022)
  --functions    function range to discover (default 0x800-0xFFF; 0-0xFFF for all)
  --strategy     ${STRATEGIES.join(",")} (default all)
  --iterations   requests to send (default 10000; 0: discover or filter the codes only)
  --duration     seconds to run instead (whichever limit comes first)
  --seed         the generator's seed (default random)
  --out          directory of the reproducer files (default fuzz-out)
  --service      the driver's service, to restart it after a crash or hang
  --timeout      cancel a request still pending after this many ms (default ${DEFAULT_TIMEOUT_MS})
  --hang-timeout a cancelled request not completed this many ms later is a hang
                 (default ${DEFAULT_HANG_MS})
  --max-length   largest input or output size in bytes (default ${DEFAULT_MAX_LENGTH})
  --minimize-attempts  requests spent shrinking each new crash (default
                 ${DEFAULT_MINIMIZE_ATTEMPTS}; 0: no minimization)
  --discover-budget    probes at most (default ${DEFAULT_DISCOVER_BUDGET})
  --image        the driver's file, whose host's memory the pointer check knows under
                 Wine (default <service>.sys); on Windows the kernel half counts
  --crash-log    under Wine: the log Wine writes crash lines to (the output of the process
                 that started the prefix's services; default $${CRASH_LOG_ENV}, which
                 \`kbridge lab run\` and \`lab test\` set to the lab's logs/wine-start.log):
                 each crash is placed as module+offset in the host of --image, and two
                 crashes of one code at different sites are two findings
  --coverage     coverage guidance from a driver built with the kit's coverage runtime
                 (driver/kit/kbcov.h; under Wine): map its section (default
                 Global\\KbCov-<service>), keep inputs that reach new edges and solve the
                 driver's comparisons into the inputs
  --json         print the summary (or the replay result) as one JSON object, with every
                 code listed in full
  --replay       send the request of a reproducer file again: exit 1 if it still fails

  Exit codes: 0 nothing found, 1 a crash, hang or other finding (or an error), 2 usage error.

Examples:
  kbridge fuzz '\\\\.\\Kbridge' --codes discover --device-types 0x8022 --iterations 0
  kbridge fuzz '\\\\.\\KbCrashy' --device-types 0x8023 --service kbcrashy --seed 1 --iterations 2000
  kbridge fuzz '\\\\.\\Kbridge' --codes 0x80222000-0x80222100 --strategy lengths --duration 60 --json
  kbridge fuzz --replay fuzz-out/crash-80232400-000175.json`;

const encoder = new TextEncoder();

function positiveInteger(
  text: string | undefined,
  what: string,
  max: number,
  fallback: number,
): number {
  return text === undefined ? fallback : parseInteger(text, what, max);
}

function describeFinding(finding: Finding): string[] {
  const where = finding.iteration < 0
    ? "during discovery"
    : `at iteration ${finding.iteration} (${finding.strategy})`;
  const lines = [
    `  ${finding.control}  x${finding.count}, first ${where} at ${finding.time}: ${finding.status}`,
  ];
  if (finding.site !== undefined) lines.push(`    at ${finding.site}`);
  for (const text of finding.prints ?? []) lines.push(`    printed before: ${text}`);
  if (finding.detail !== undefined) lines.push(`    ${finding.detail}`);
  if (finding.sequence !== undefined) {
    lines.push(`    after ${finding.sequence.length} earlier requests (state-dependent)`);
  }
  lines.push(`    input ${finding.inputLength} bytes, output size ${finding.outputSize}`);
  if (finding.reproducer !== undefined) lines.push(`    reproducer ${finding.reproducer}`);
  const minimized = finding.minimized;
  if (minimized !== undefined) {
    lines.push(
      `    minimized to ${minimized.inputLength} bytes, output size ${minimized.outputSize} ` +
        `(${minimized.attempts} attempts)${
          minimized.reproducer ? `: ${minimized.reproducer}` : ""
        }`,
    );
  }
  return lines;
}

function summaryText(summary: FuzzSummary, skipped: number[]): string {
  const seconds = summary.elapsedMs / 1000;
  const kinds = (list: Finding[]) => list.length;
  const lines = [
    `unique bugs ${summary.uniqueBugs} (${kinds(summary.crashes)} crashes, ${
      kinds(summary.hangs)
    } hangs, ${kinds(summary.findings)} output findings)`,
    `device      ${summary.device}`,
    `seed        ${summary.seed}`,
    `iterations  ${summary.iterations} in ${seconds.toFixed(1)} s (${summary.perSecond}/s)`,
    `strategies  ${summary.strategies.join(", ")}`,
    `codes       ${summary.codes.length}${
      summary.codes.length > 0
        ? ` (${summarizeCodes(summary.codes.map((code) => parseInt(code, 16)))})`
        : ""
    }`,
  ];
  if (skipped.length > 0) lines.push(`skipped     ${skipped.length} codes the driver rejects`);
  lines.push(`restarts    ${summary.restarts}`);
  const slowed = Object.entries(summary.deprioritized);
  if (slowed.length > 0) {
    lines.push(
      `tried less  ${
        slowed.map(([code, weight]) => `${code} (1 in ${Math.round(1 / weight)})`).join(", ")
      }: their findings kept repeating`,
    );
  }
  const codes = Object.keys(summary.statuses);
  if (codes.length > 0) {
    lines.push("statuses:");
    for (const code of codes) {
      const counts = Object.entries(summary.statuses[code]).map(([name, n]) => `${name} ${n}`);
      lines.push(`  ${formatCtlCode(parseInt(code, 16)).padEnd(42)} ${counts.join(", ")}`);
    }
  }
  for (
    const [title, list] of [["crashes", summary.crashes], ["hangs", summary.hangs], [
      "findings",
      summary.findings,
    ]] as const
  ) {
    lines.push(`${title}: ${list.reduce((n, f) => n + f.count, 0)}`);
    for (const finding of list) lines.push(...describeFinding(finding));
  }
  if (summary.stopped !== undefined) lines.push(`stopped early: ${summary.stopped}`);
  return lines.join("\n");
}

/** Reports events on standard error: findings and restarts always, progress on a terminal. */
function reporter(
  terminal: boolean,
  service: string | undefined,
): { onEvent: (event: FuzzEvent) => void; end: () => void } {
  let statusShown = false;
  const write = (text: string) => Deno.stderr.writeSync(encoder.encode(text));
  let columns = 80;
  try {
    columns = Deno.consoleSize().columns || 80;
  } catch {
    // Not a console: keep 80.
  }
  /** A status line, cut to the terminal's width so that it never wraps. */
  const status = (text: string) => {
    write(`\r\x1b[K${text.slice(0, Math.max(20, columns - 1))}`);
    statusShown = true;
  };
  const line = (text: string) => {
    if (statusShown) write("\r\x1b[K");
    statusShown = false;
    write(`${text}\n`);
  };
  return {
    onEvent: (event) => {
      switch (event.type) {
        case "progress":
          if (!terminal) return;
          status(
            `${event.iterations} it | ${Math.round(event.perSecond)}/s | ${event.codes} codes | ` +
              `${event.statuses} statuses | crashes ${event.crashes} | hangs ${event.hangs} | ` +
              `findings ${event.findings}`,
          );
          return;
        case "discovery":
          if (!terminal) return;
          status(`discovering: ${event.probed}/${event.total} probed, ${event.accepted} accepted`);
          return;
        case "finding":
          if (event.repeated) return;
          line(
            `fuzz: ${event.finding.kind.toUpperCase()} ${event.finding.control}: ${event.finding.status}` +
              (event.finding.reproducer ? ` -> ${event.finding.reproducer}` : ""),
          );
          return;
        case "restart":
          line(`fuzz: restarting ${service} (${event.reason})`);
          return;
        case "minimized":
          if (event.finding.minimized !== undefined) {
            const m = event.finding.minimized;
            line(
              `fuzz: minimized to ${m.inputLength} bytes in ${m.attempts} attempts` +
                (m.reproducer ? ` -> ${m.reproducer}` : ""),
            );
          }
          return;
      }
    },
    end: () => {
      if (statusShown) write("\n");
      statusShown = false;
    },
  };
}

async function replay(
  file: string,
  device: string | undefined,
  values: { service?: string; timeout?: string; "hang-timeout"?: string; json: boolean },
): Promise<number> {
  const reproducer = await readReproducer(file);
  const service = values.service ?? reproducer.service;
  const target = new DeviceTarget(device ?? reproducer.device, { service });
  try {
    const result = await replayReproducer(target, reproducer, {
      timeoutMs: positiveInteger(values.timeout, "--timeout", 0x7fff_ffff, DEFAULT_TIMEOUT_MS),
      hangMs: positiveInteger(
        values["hang-timeout"],
        "--hang-timeout",
        0x7fff_ffff,
        DEFAULT_HANG_MS,
      ),
    });
    if (values.json) {
      console.log(
        JSON.stringify({ file, device: target.path, code: hex32(reproducer.code), ...result }),
      );
    } else if (result.reproduced) {
      console.log(
        `${file}: still fails: ${result.observed} (${result.status})${
          result.detail ? `: ${result.detail}` : ""
        }` +
          (result.restarted ? `; restarted ${service}` : ""),
      );
    } else {
      console.log(`${file}: does not reproduce (${result.observed}, ${result.status})`);
    }
    return result.reproduced ? 1 : 0;
  } finally {
    await target.close();
  }
}

function parseOptions(args: string[]) {
  try {
    return parseArgs({
      // A bare --coverage takes the default section: --coverage= for parseArgs.
      args: args.map((arg) => arg === "--coverage" ? "--coverage=" : arg),
      allowPositionals: true,
      options: {
        codes: { type: "string", default: "discover" },
        "device-types": { type: "string" },
        functions: { type: "string", default: "0x800-0xFFF" },
        strategy: { type: "string", default: "all" },
        iterations: { type: "string" },
        duration: { type: "string" },
        seed: { type: "string" },
        out: { type: "string", default: "fuzz-out" },
        service: { type: "string" },
        timeout: { type: "string" },
        "hang-timeout": { type: "string" },
        "max-length": { type: "string" },
        "minimize-attempts": { type: "string" },
        "discover-budget": { type: "string" },
        image: { type: "string" },
        "crash-log": { type: "string" },
        coverage: { type: "string" },
        replay: { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    // node:util's messages run over several lines: keep the first.
    const code = (error as { code?: unknown })?.code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS")) {
      throw new UsageError((error as Error).message.split("\n")[0]);
    }
    throw error;
  }
}

/**
 * Runs `kbridge fuzz ...` and returns the exit code.
 *
 * @example
 * ```ts ignore
 * await fuzzCommand(["\\\\.\\KbCrashy", "--device-types", "0x8023", "--service", "kbcrashy", "--seed", "1"]);
 * ```
 */
export async function fuzzCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args);
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const [device, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (values.service !== undefined && !/^[^\\/\0]{1,256}$/.test(values.service)) {
    throw new UsageError(`--service: "${values.service}" is no service name`);
  }
  if (values.replay !== undefined) return await replay(values.replay, device, values);
  if (device === undefined) throw new UsageError("fuzz needs <device> (or --replay <file>)");

  const spec = parseCodeSpec(values.codes);
  if (typeof spec === "string") throw new UsageError(`--codes: ${spec}`);
  const deviceTypes = values["device-types"] === undefined
    ? [0x22, 0x8022]
    : parseList(values["device-types"], 0xffff);
  if (typeof deviceTypes === "string") throw new UsageError(`--device-types: ${deviceTypes}`);
  const functions = parseRange(values.functions, 0xfff);
  if (typeof functions === "string") throw new UsageError(`--functions: ${functions}`);
  const strategies = parseStrategies(values.strategy);
  if (!Array.isArray(strategies)) {
    throw new UsageError(
      `--strategy: unknown strategy "${strategies.unknown}" (${STRATEGIES.join(", ")})`,
    );
  }
  const durationMs = values.duration === undefined
    ? undefined
    : parseInteger(values.duration, "--duration", 31_536_000) * 1000;
  const iterations = values.iterations === undefined
    ? (durationMs === undefined ? 10_000 : undefined)
    : parseInteger(values.iterations, "--iterations", Number.MAX_SAFE_INTEGER);
  let seed = randomSeed();
  if (values.seed !== undefined) {
    const parsed = parseUnsigned(values.seed);
    if (parsed === undefined) {
      throw new UsageError(`--seed must be an integer in 0..2^53-1, got "${values.seed}"`);
    }
    seed = parsed;
  }
  const timeoutMs = positiveInteger(values.timeout, "--timeout", 0x7fff_ffff, DEFAULT_TIMEOUT_MS);
  const hangMs = positiveInteger(
    values["hang-timeout"],
    "--hang-timeout",
    0x7fff_ffff,
    DEFAULT_HANG_MS,
  );
  const maxLength = positiveInteger(
    values["max-length"],
    "--max-length",
    0x4000_0000,
    DEFAULT_MAX_LENGTH,
  );
  const minimizeAttempts = positiveInteger(
    values["minimize-attempts"],
    "--minimize-attempts",
    100_000,
    DEFAULT_MINIMIZE_ATTEMPTS,
  );
  const budget = positiveInteger(
    values["discover-budget"],
    "--discover-budget",
    0x1000_0000,
    DEFAULT_DISCOVER_BUDGET,
  );

  const image = values.image ??
    (values.service !== undefined ? `${values.service}.sys` : undefined);
  let coverageName: string | undefined;
  if (values.coverage !== undefined) {
    coverageName = values.coverage !== ""
      ? values.coverage
      : values.service !== undefined
      ? coverageSectionName(values.service)
      : undefined;
    if (coverageName === undefined) {
      throw new UsageError("--coverage needs --service (or --coverage=<section>)");
    }
  }
  const coverage = coverageName === undefined ? undefined : CoverageFeedback.open(coverageName);
  const target = new DeviceTarget(device, { service: values.service });
  const crashLog = values["crash-log"] ?? Deno.env.get(CRASH_LOG_ENV);
  const faultSite = crashLog !== undefined && crashLog !== "" && image !== undefined
    ? new WineCrashSite(crashLog, image)
    : undefined;
  console.error(`fuzz: seed ${seed} (repeat this run with --seed ${seed})`);
  const terminal = Deno.stderr.isTerminal();
  const report = reporter(terminal, values.service);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  try {
    Deno.addSignalListener("SIGINT", onSignal);
  } catch {
    // No signal support here: Ctrl+C ends the process instead.
  }
  try {
    const fuzzer = new Fuzzer(target, {
      seed,
      outDir: values.out,
      service: values.service,
      timeoutMs,
      hangMs,
      maxLength,
      minimizeAttempts,
      ...(image !== undefined ? { ranges: new HostRanges(image) } : {}),
      ...(coverage !== undefined ? { coverage } : {}),
      ...(faultSite !== undefined ? { faultSite } : {}),
      onEvent: report.onEvent,
    });
    let codes: number[];
    let skipped: number[] = [];
    let discovery: Record<string, unknown> | undefined;
    if (spec.kind === "discover") {
      const found = await fuzzer.discover({ deviceTypes, functions, budget });
      codes = found.codes;
      discovery = {
        probes: found.probes,
        truncated: found.truncated,
        statuses: found.statuses,
        baseline: found.baseline,
        ...(found.warning !== undefined ? { warning: found.warning } : {}),
      };
      report.end();
      console.error(
        `fuzz: discovered ${codes.length} codes in ${found.probes} probes` +
          (found.truncated ? " (the budget ran out)" : "") +
          (codes.length > 0 && !values.json ? `: ${summarizeCodes(codes)}` : ""),
      );
      if (found.warning !== undefined) console.error(`fuzz: warning: ${found.warning}`);
    } else {
      const filtered = await fuzzer.filterCodes(codesOf(spec));
      codes = filtered.accepted;
      skipped = filtered.skipped;
    }
    if (codes.length === 0 && fuzzer.stopped === undefined) {
      console.error(`fuzz: ${device} accepts none of the control codes tried`);
    } else if ((iterations === undefined || iterations > 0) && fuzzer.stopped === undefined) {
      await fuzzer.run(codes, { iterations, durationMs, strategies, signal: stop.signal });
    }
    report.end();
    const summary = fuzzer.summary();
    const codeList = codes.map(hex32);
    if (values.json) {
      // Codes and bytes as the reproducer files write them (a Uint8Array would be an object).
      const hexFindings = (list: Finding[]) =>
        list.map((f) => ({
          ...f,
          code: hex32(f.code),
          ...(f.sequence !== undefined
            ? {
              sequence: f.sequence.map((step) => ({
                code: hex32(step.code),
                input: toHex(step.input),
                outputSize: step.outputSize,
              })),
            }
            : {}),
        }));
      console.log(JSON.stringify({
        ...summary,
        codes: codeList,
        skipped: skipped.map(hex32),
        ...(discovery !== undefined ? { discovery } : {}),
        crashes: hexFindings(summary.crashes),
        hangs: hexFindings(summary.hangs),
        findings: hexFindings(summary.findings),
      }));
    } else {
      console.log(summaryText({ ...summary, codes: codeList }, skipped));
    }
    const failed = summary.uniqueBugs > 0 ||
      summary.stopped !== undefined || codes.length === 0;
    return failed ? 1 : 0;
  } finally {
    try {
      Deno.removeSignalListener("SIGINT", onSignal);
    } catch {
      // Never added.
    }
    await target.close();
    coverage?.close();
  }
}
