/**
 * Benchmark of coverage guidance (issue 14 item 5): iterations until the
 * fuzzer finds the kbmagic fixture's crash (tests/fixture/magic.c: exact
 * length 12 and a 32-bit magic), for seeds 1..10, with coverage feedback and
 * blind (the same engine without it, capped at a budget). Writes
 * tests/bench/fuzz_coverage.md. Run under Wine with the fixture built
 * (`kbridge lab build --coverage --name kbmagic tests/fixture/magic.c`, which
 * tools/wine.sh does):
 *
 *     kbridge lab run tests/bench/fuzz_coverage.ts [--budget 10000] [--seeds 10]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { installDriver, queryDriver, startDriver, stopDriver } from "../../mod.ts";
import { ctlCode } from "../../src/core/ctl_code.ts";
import { CoverageFeedback, coverageSectionName } from "../../src/fuzz/coverage.ts";
import { Fuzzer } from "../../src/fuzz/engine.ts";
import { readReproducer } from "../../src/fuzz/reproducer.ts";
import { DeviceTarget } from "../../src/fuzz/target.ts";

const SERVICE = "kbmagic";
const PATH = "\\\\.\\KbMagic";
const CODES = [0x800, 0x801, 0x802].map((fn) =>
  ctlCode({ deviceType: 0x8025, function: fn, method: 0, access: 0 })
);

const { values } = parseArgs({
  args: Deno.args,
  options: {
    budget: { type: "string", default: "10000" },
    seeds: { type: "string", default: "10" },
  },
});
const budget = Number(values.budget);
const seeds = Number(values.seeds);
const build = Deno.env.get("KB_BUILD") ?? `${Deno.cwd()}/build`;
const sys = `Z:${build.replaceAll("/", "\\")}\\lab\\drivers\\kbmagic.sys`;

async function load(): Promise<void> {
  if (queryDriver(SERVICE) === null) installDriver(SERVICE, sys);
  try {
    await stopDriver(SERVICE);
  } catch {
    // Not running.
  }
  try {
    startDriver(SERVICE);
  } catch (error) {
    // A stop that timed out while the host was still going down: it runs, stateless (magic.c).
    if ((error as { code?: number }).code !== ERROR_SERVICE_ALREADY_RUNNING) throw error;
  }
}

const MAGIC = 0x4b42abcd;
const ERROR_SERVICE_ALREADY_RUNNING = 1056;

/**
 * Iterations until the first crash (1-based), or undefined within the budget;
 * and requests/s. The crash must be the planted one: CHECK, the magic at offset 4.
 */
async function trial(
  seed: number,
  guided: boolean,
  codes: readonly number[] = CODES,
): Promise<{ found?: number; perSecond: number }> {
  await load();
  const target = new DeviceTarget(PATH, { service: SERVICE });
  const coverage = guided ? CoverageFeedback.open(coverageSectionName(SERVICE)) : undefined;
  const stop = new AbortController();
  const outDir = await Deno.makeTempDir({ prefix: "kbcovbench" });
  try {
    const fuzzer = new Fuzzer(target, {
      seed,
      outDir,
      service: SERVICE,
      minimizeAttempts: 0,
      ...(coverage !== undefined ? { coverage } : {}),
      onEvent: (event) => {
        if (event.type === "finding" && event.finding.kind === "crash") stop.abort();
      },
    });
    await fuzzer.run(codes, { iterations: budget, signal: stop.signal });
    const summary = fuzzer.summary();
    const crash = summary.crashes[0];
    if (crash !== undefined) {
      const { code, input } = await readReproducer(crash.reproducer!);
      const field = input.length === 12
        ? new DataView(input.buffer, input.byteOffset).getUint32(4, true)
        : 0;
      if (code !== CODES[2] || field !== MAGIC) {
        throw new Error(
          `seed ${seed}: a crash that is not the planted one: ${JSON.stringify(crash)}`,
        );
      }
    }
    return {
      ...(crash !== undefined ? { found: crash.iteration + 1 } : {}),
      perSecond: summary.perSecond,
    };
  } finally {
    coverage?.close();
    await target.close();
    await Deno.remove(outDir, { recursive: true });
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const rows: string[] = [];
const guidedFound: number[] = [];
const blindFound: number[] = [];
let blindMissed = 0;
for (let seed = 1; seed <= seeds; seed++) {
  const guided = await trial(seed, true);
  const blind = await trial(seed, false);
  // Not found: counted as the budget (a lower bound of the true figure).
  guidedFound.push(guided.found ?? budget);
  blindFound.push(blind.found ?? budget);
  if (blind.found === undefined) blindMissed++;
  const cell = (r: { found?: number }) =>
    r.found === undefined ? `not found within ${budget}` : `${r.found}`;
  rows.push(`| ${seed} | ${cell(guided)} | ${cell(blind)} |`);
  console.error(`seed ${seed}: coverage ${cell(guided)}, blind ${cell(blind)}`);
}
// The cost of the feedback: ECHO and SUM only (no crash), the same budget, with and without.
const withCoverage = await trial(1, true, CODES.slice(0, 2));
const without = await trial(1, false, CODES.slice(0, 2));
try {
  await stopDriver(SERVICE);
} catch {
  // Already stopped.
}
const blindMedian = median(blindFound);
const text = `# Coverage-guided fuzzing: iterations to find the kbmagic crash

Generated by \`tests/bench/fuzz_coverage.ts\` on ${new Date().toISOString().slice(0, 10)} under ${
  Deno.build.os === "windows" ? "Wine (deno.exe)" : Deno.build.os
}. Fixture: \`tests/fixture/magic.c\` (a NULL write only for a 12-byte input whose 32-bit field at
offset 4 is 0x4B42ABCD), built with \`-fsanitize-coverage=trace-pc,trace-cmp\` and the kit's runtime
(\`driver/kit/kbcov.c\`). Codes: its three (ECHO, SUM, CHECK); all strategies; no minimization; the
run stops at the first crash. Blind: the same engine and seed without the coverage section, capped
at ${budget} iterations.

| seed | coverage: iterations to find | blind: iterations to find |
|---:|---:|---:|
${rows.join("\n")}

- median, coverage: **${median(guidedFound)}** iterations
- median, blind: **${
  blindMissed * 2 > seeds ? `not found within ${budget}` : `${blindMedian}`
}** (${blindMissed} of ${seeds} seeds not found within ${budget}; counted as ${budget})
- ratio (blind / coverage medians, a lower bound when blind was capped): ≥ ${
  Math.floor(blindMedian / median(guidedFound))
}×
- requests/s on ECHO and SUM (no crash, ${budget} iterations, seed 1): with coverage feedback
  ${withCoverage.perSecond}, without ${without.perSecond}
`;
await Deno.writeTextFile(new URL("./fuzz_coverage.md", import.meta.url), text);
console.log(text);
