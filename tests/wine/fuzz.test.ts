// The IOCTL fuzzer under Wine, through the CLI: discovery of the reference
// driver's codes, the planted fault of the test-only fixture driver
// (tests/fixture/crashy.c, service kbcrashy) found from a fixed seed, its host's
// death survived, replayed and minimized, a long clean run of the reference
// driver, and the command line's errors.
import assert from "node:assert/strict";
import { runCli } from "../_util.ts";
import { installDriver, openDevice, queryDriver, startDriver, stopDriver } from "../../mod.ts";
import { IOCTL, type Stats } from "../../src/reference/mod.ts";
import { readReproducer } from "../../src/fuzz/reproducer.ts";
import { DEVICE_PATH, ensureDriverRunning, openKbridge, readStats, SERVICE } from "./_driver.ts";

/** The fixture: built by tests/fixture/Makefile, copied into the prefix by tools/wine.sh. */
const CRASHY_SERVICE = "kbcrashy";
const CRASHY_SYS = "C:\\windows\\system32\\drivers\\kbcrashy.sys";
const CRASHY_PATH = "\\\\.\\KbCrashy";
const CRASHY_GET_INFO = 0x80232000;
const CRASHY_CODES = ["0x80232000", "0x80232004", "0x8023200B", "0x80232400"];
/** The documented fixed seed and the iteration at which it finds the planted fault. */
const FIXED_SEED = "1";
const FIXED_SEED_ITERATION = 255;

/** Iterations of the long run of the reference driver (KB_FUZZ_ITERATIONS overrides). */
const LONG_RUN = Number(Deno.env.get("KB_FUZZ_ITERATIONS") ?? 100_000);

const hex = (code: number) => `0x${code.toString(16).toUpperCase().padStart(8, "0")}`;
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** (Re)loads the fixture so that the binary the harness copied runs; a dead host cannot be stopped, which is fine. */
async function loadCrashy(): Promise<void> {
  if (queryDriver(CRASHY_SERVICE) === null) installDriver(CRASHY_SERVICE, CRASHY_SYS);
  try {
    await stopDriver(CRASHY_SERVICE);
  } catch {
    // ERROR_NO_DATA from a host that died in an earlier run.
  }
  startDriver(CRASHY_SERVICE);
}

/** The fixture's GET_INFO: it answers (32 bytes starting with "KB"). */
function crashyAnswers(): boolean {
  using device = openDevice(CRASHY_PATH);
  const info = device.ioctl(CRASHY_GET_INFO, null, 32);
  return info.length === 32 && info[0] === 0x4b && info[1] === 0x42;
}

/** The resource counters of GET_STATS (not the cumulative message counters). */
function resources(stats: ReturnType<typeof Stats.decode>): Record<string, number> {
  const { messagesProduced: _, invertedOverflow: _o, ringDropped: _d, ...counters } = stats;
  return counters;
}

/** The resource counters once no other client holds anything (waits up to 30 s, then takes them as they are). */
async function quietResources(
  observer: Parameters<typeof readStats>[0],
): Promise<Record<string, number>> {
  let now = resources(readStats(observer));
  const quiet = () =>
    now.openFiles === 1 && now.pendedIrps === 0 && now.invertedIrps === 0 &&
    now.invertedQueued === 0 &&
    now.sections === 0 && now.producerRunning === 0 && now.pendTimerArmed === 0;
  for (let i = 0; i < 300 && !quiet(); i++) {
    await delay(100);
    now = resources(readStats(observer));
  }
  return now;
}

Deno.test("discover finds exactly the reference driver's IOCTL set (device type 0x8022)", async () => {
  openKbridge().close();
  const run = await runCli(
    "fuzz",
    DEVICE_PATH,
    "--codes",
    "discover",
    "--device-types",
    "0x8022",
    "--iterations",
    "0",
    "--json",
  );
  assert.equal(run.code, 0, run.stderr);
  const summary = JSON.parse(run.stdout);
  const expected = Object.values(IOCTL).sort((a, b) => a - b).map(hex);
  assert.deepEqual(summary.codes, expected);
  // The baseline (6 codes x 3 size pairs), then up to 3 probes per candidate.
  assert.ok(summary.discovery.probes > 2048 * 16 && summary.discovery.probes <= 18 + 2048 * 16 * 3);
  assert.deepEqual(summary.discovery.baseline["0/0"], ["STATUS_INVALID_DEVICE_REQUEST"]);
  assert.equal(summary.discovery.truncated, false);
  assert.deepEqual(Object.keys(summary.discovery.statuses).sort(), expected);
  assert.match(run.stderr, new RegExp(`discovered ${expected.length} codes in \\d+ probes`));
});

Deno.test("the fixture's planted fault: found from a fixed seed, reproducer, restart, replay, minimization", async (t) => {
  await loadCrashy();
  assert.ok(crashyAnswers());
  const out = await Deno.makeTempDir({ prefix: "kbfuzz" });
  try {
    let crash: Record<string, unknown> & { reproducer: string; minimized: Record<string, unknown> };
    await t.step("fuzz finds it from the fixed seed within 2,000 iterations", async () => {
      const run = await runCli(
        "fuzz",
        CRASHY_PATH,
        "--device-types",
        "0x8023",
        "--service",
        CRASHY_SERVICE,
        "--seed",
        FIXED_SEED,
        "--iterations",
        "2000",
        "--timeout",
        "1000", // the fixture never pends: no deadline may perturb the deterministic run
        "--out",
        out,
        "--json",
      );
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /^fuzz: seed 1 /);
      assert.match(run.stderr, /fuzz: restarting kbcrashy \(a crash at iteration 255\)/);
      const summary = JSON.parse(run.stdout);
      assert.deepEqual(summary.codes, CRASHY_CODES);
      assert.equal(summary.iterations, 2000, "the run went on after the crash");
      assert.equal(summary.crashes.length, 1);
      crash = summary.crashes[0];
      assert.equal(crash.code, "0x80232400");
      assert.equal(crash.iteration, FIXED_SEED_ITERATION);
      assert.equal(crash.strategy, "bitflip");
      assert.ok(summary.restarts >= 1);
      assert.deepEqual(summary.hangs, []);
      assert.deepEqual(summary.findings, []);
      console.log(
        `planted fault found at iteration ${crash.iteration} of seed ${FIXED_SEED}; ` +
          `${summary.restarts} restarts; ${summary.perSecond} iterations/s with the restarts`,
      );
    });

    await t.step("the reproducer holds the crashing request", async () => {
      const reproducer = await readReproducer(crash.reproducer);
      assert.equal(reproducer.kind, "crash");
      assert.equal(reproducer.device, CRASHY_PATH);
      assert.equal(reproducer.code, 0x80232400);
      assert.equal(reproducer.seed, 1);
      assert.equal(reproducer.iteration, FIXED_SEED_ITERATION);
      assert.equal(reproducer.strategy, "bitflip");
      assert.equal(reproducer.service, CRASHY_SERVICE);
      assert.ok(reproducer.input.length >= 16);
      assert.deepEqual([...reproducer.input.subarray(0, 3)], [0x4b, 0x42, 0xff]);
      const json = JSON.parse(await Deno.readTextFile(crash.reproducer));
      assert.equal(json.method, "BUFFERED");
      assert.match(json.input, /^4b42ff/);
    });

    await t.step("the service was restarted and answers again", () => {
      assert.equal(queryDriver(CRASHY_SERVICE)?.state, "running");
      assert.ok(crashyAnswers());
    });

    await t.step(
      "minimization shrank the input, and the minimized request still crashes",
      async () => {
        const minimized = await readReproducer(crash.minimized.reproducer as string);
        const original = await readReproducer(crash.reproducer);
        assert.ok(minimized.input.length < original.input.length, "shorter input");
        assert.deepEqual(
          minimized.input,
          new Uint8Array([0x4b, 0x42, 0xff, ...new Uint8Array(13)]),
        );
        assert.deepEqual(minimized.minimizedFrom, {
          inputLength: original.input.length,
          outputSize: original.outputSize,
        });
        const replay = await runCli("fuzz", "--replay", crash.minimized.reproducer as string);
        assert.equal(replay.code, 1, replay.stdout + replay.stderr);
        assert.match(replay.stdout, /still fails: crash/);
        assert.ok(crashyAnswers());
      },
    );

    await t.step(
      "replay reproduces it (exit 1), restarts the service; a harmless variant exits 0",
      async () => {
        const replay = await runCli("fuzz", "--replay", crash.reproducer, "--json");
        assert.equal(replay.code, 1, replay.stdout + replay.stderr);
        const result = JSON.parse(replay.stdout);
        assert.equal(result.reproduced, true);
        assert.equal(result.observed, "crash");
        assert.equal(result.restarted, true);
        assert.ok(crashyAnswers());
        const variant = JSON.parse(await Deno.readTextFile(crash.reproducer));
        variant.input = "4b4200" + variant.input.slice(6); // flags 0x00: the benign path
        const harmless = `${out}/harmless.json`;
        await Deno.writeTextFile(harmless, JSON.stringify(variant));
        const clean = await runCli("fuzz", "--replay", harmless);
        assert.equal(clean.code, 0, clean.stdout + clean.stderr);
        assert.match(clean.stdout, /does not reproduce \(ok, OK\)/);
      },
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test(`a ${LONG_RUN}-iteration fuzz run of the reference driver, all strategies: no crash, no hang, counters back`, async () => {
  using observer = openKbridge();
  // Other test files may use the driver meanwhile: start from a quiet driver when one comes.
  const before = await quietResources(observer);
  const out = await Deno.makeTempDir({ prefix: "kbfuzz" });
  try {
    const started = performance.now();
    const run = await runCli(
      "fuzz",
      DEVICE_PATH,
      "--codes",
      Object.values(IOCTL).map(hex).join(","),
      "--seed",
      "2",
      "--iterations",
      String(LONG_RUN),
      "--timeout",
      "10",
      "--out",
      out,
      "--json",
    );
    const seconds = (performance.now() - started) / 1000;
    assert.equal(run.code, 0, run.stdout.slice(0, 4000) + run.stderr);
    const summary = JSON.parse(run.stdout);
    assert.equal(summary.iterations, LONG_RUN);
    assert.deepEqual(summary.strategies, [
      "random",
      "bitflip",
      "lengths",
      "neither-pointers",
      "fields",
    ]);
    assert.deepEqual(summary.crashes, []);
    assert.deepEqual(summary.hangs, []);
    assert.deepEqual(summary.findings, []);
    assert.equal(summary.restarts, 0);
    assert.equal(Object.keys(summary.statuses).length, Object.keys(IOCTL).length);
    const pended = Object.values(summary.statuses as Record<string, Record<string, number>>)
      .reduce((n, counts) => n + (counts.PENDED ?? 0), 0);
    console.log(
      `${LONG_RUN} iterations in ${seconds.toFixed(1)} s (${summary.perSecond}/s in the loop, ` +
        `${pended} requests pended and were cancelled after 10 ms)`,
    );
    // Nothing the run held may remain: every counter back to (or, when other clients
    // were busy at the start, below) where it was.
    const settled = (now: Record<string, number>) =>
      Object.keys(before).every((k) => now[k] <= before[k]);
    let after = resources(readStats(observer));
    for (let i = 0; i < 200 && !settled(after); i++) {
      await delay(50);
      after = resources(readStats(observer));
    }
    assert.ok(settled(after), `before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("bad arguments: one-line errors with exit code 2 (usage) or 1 (failure)", async () => {
  const cases: [string[], number, RegExp][] = [
    [["fuzz", DEVICE_PATH, "--bogus"], 2, /^kbridge: Unknown option '--bogus'/],
    [["fuzz", DEVICE_PATH, "--iterations", "lots"], 2, /--iterations must be an integer/],
    [["fuzz", DEVICE_PATH, "--codes", "0x9-0x1"], 2, /--codes: 0x9-0x1: the first value is larger/],
    [["fuzz", DEVICE_PATH, "--strategy", "chaos"], 2, /unknown strategy "chaos"/],
    [
      ["fuzz", "--replay", "no-such-reproducer.json"],
      1,
      /cannot read the reproducer no-such-reproducer\.json: no such file/,
    ],
    [
      ["fuzz", "\\\\.\\NoSuchKbDevice", "--iterations", "10"],
      1,
      /CreateFileW\("\\\\.\\NoSuchKbDevice"\) failed: ERROR_FILE_NOT_FOUND \(2\)/,
    ],
  ];
  for (const [args, code, pattern] of cases) {
    const run = await runCli(...args);
    assert.equal(run.code, code, `${args.join(" ")}: ${run.stderr}`);
    const lines = run.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, `${args.join(" ")}: ${run.stderr}`);
    assert.match(lines[0], pattern);
    assert.equal(run.stdout, "");
  }
  const help = await runCli("fuzz", "--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Examples:\n {2}kbridge fuzz/);
});

Deno.test("afterwards the reference driver runs and the fixture is unloaded", async () => {
  ensureDriverRunning();
  assert.equal(queryDriver(SERVICE)?.state, "running");
  openKbridge().close();
  try {
    await stopDriver(CRASHY_SERVICE);
  } catch {
    // Already stopped, or its host is gone.
  }
});
