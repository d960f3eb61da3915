// Drivers built from source by `kbridge lab build`, loaded and fuzzed under Wine through the
// command line, as a user runs it (the Linux Deno for `kbridge lab`, the Windows Deno for
// `kbridge fuzz` through `kbridge lab run`):
// - a coverage build of tests/fixture/magic.c (a plain driver): `kbridge fuzz --coverage`
//   finds the crash behind its 4-byte magic and writes a reproducer that replays; the same
//   run against a build without coverage is one clear error line, at once;
// - tests/fixture/stateful.c: a crash only when READ follows a SELECT of a bad index. The
//   fuzzer finds it, the reproducer holds the one SELECT it needs, and replaying it on a
//   freshly loaded driver crashes that again (the lab's report names the function); the
//   request alone does not.
// Run by tools/test.sh in the harness's lab (KB_BUILD). The drivers are unloaded at the end.
import assert from "node:assert/strict";
import { runLab } from "./_util.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const LAB = Deno.env.get("KB_BUILD") ?? "";
const DRIVERS = `${LAB}/lab/drivers`;

/** `kbridge …` with the Windows Deno under Wine (`kbridge lab run cli.ts …`). */
function windowsCli(...args: string[]) {
  return runLab("run", "cli.ts", ...args);
}

/** Builds `source` as service `name`, then loads it fresh (unloaded first if it ran). */
async function buildAndLoad(source: string, name: string, coverage: boolean): Promise<void> {
  const build = await runLab(
    "build",
    ...(coverage ? ["--coverage"] : []),
    "--name",
    name,
    `${ROOT}tests/fixture/${source}`,
  );
  assert.equal(build.code, 0, build.out + build.err);
  await runLab("unload", name);
  const load = await runLab("load", `${DRIVERS}/${name}.sys`);
  assert.equal(load.code, 0, load.out + load.err);
}

function lastJson(text: string) {
  return JSON.parse(text.trim().split("\n").at(-1)!);
}

const MAGIC_CODES = "0x80252000,0x80252004,0x80252008"; // ECHO, SUM, CHECK
const CHECK = "0x80252008";

Deno.test("kbridge lab build --coverage, lab load, kbridge fuzz --coverage: the magic crash, replayed", async () => {
  assert.ok(LAB, "KB_BUILD is not set: run this test through tools/test.sh (deno task test)");
  const out = await Deno.makeTempDir({ prefix: "kblab-cov-" });
  try {
    await buildAndLoad("magic.c", "kbmagiccov", true);
    const fuzz = await windowsCli(
      "fuzz",
      "\\\\.\\KbMagic",
      "--codes",
      MAGIC_CODES,
      "--service",
      "kbmagiccov",
      "--coverage",
      "--seed",
      "1",
      "--iterations",
      "3000",
      "--out",
      out,
      "--json",
    );
    assert.equal(fuzz.code, 1, "a crash was found: exit code 1");
    const summary = lastJson(fuzz.out);
    assert.ok(summary.coverageEdges > 5, `${summary.coverageEdges} edges`);
    const crash = summary.crashes.find((c: { code: string }) => c.code === CHECK);
    assert.ok(crash, JSON.stringify(summary.crashes));
    assert.equal(crash.strategy, "cmp", "solved from the recorded comparison");
    assert.equal(crash.inputLength, 12);
    assert.match(fuzz.err, /died: Unhandled page fault .* in MgDeviceControl \(magic\.c:\d+\)/);

    const replay = await windowsCli("fuzz", "--replay", crash.reproducer);
    assert.equal(replay.code, 1, replay.out + replay.err);
    assert.match(replay.out, /still fails: crash .*; restarted kbmagiccov/);
  } finally {
    await runLab("unload", "kbmagiccov");
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("kbridge fuzz --coverage against a build without coverage: one clear line, at once", async () => {
  assert.ok(LAB, "KB_BUILD is not set: run this test through tools/test.sh (deno task test)");
  try {
    await buildAndLoad("magic.c", "kbmagicplain", false);
    const started = performance.now();
    const fuzz = await windowsCli(
      "fuzz",
      "\\\\.\\KbMagic",
      "--codes",
      MAGIC_CODES,
      "--service",
      "kbmagicplain",
      "--coverage",
      "--seed",
      "1",
      "--iterations",
      "3000",
    );
    const seconds = (performance.now() - started) / 1000;
    assert.equal(fuzz.code, 1);
    const lines = (fuzz.out + fuzz.err).trim().split("\n");
    assert.equal(lines.length, 1, fuzz.out + fuzz.err);
    assert.match(
      lines[0],
      /^kbridge: Global\\KbCov-kbmagicplain is no coverage section: it cannot be opened \(is the driver a coverage build, kbridge lab build --coverage, and loaded\?\): .*ERROR_FILE_NOT_FOUND/,
    );
    assert.ok(seconds < 30, `${seconds.toFixed(1)} s: no fuzzing happened`);
  } finally {
    await runLab("unload", "kbmagicplain");
  }
});

const STATE_CODES = "0x80262000,0x80262004,0x80262008,0x8026200C"; // SELECT, READ, WRITE, QUERY
const SELECT = "0x80262000";
const READ = "0x80262004";

Deno.test("a state-dependent crash: found, its reproducer holds the one SELECT it needs, replayed on a fresh driver", async () => {
  assert.ok(LAB, "KB_BUILD is not set: run this test through tools/test.sh (deno task test)");
  const out = await Deno.makeTempDir({ prefix: "kblab-state-" });
  try {
    await buildAndLoad("stateful.c", "kbstate", false);
    // Seed 2: the crash's tail of earlier requests is 4 long (SELECT, then others); only
    // the SELECT is needed.
    const fuzz = await windowsCli(
      "fuzz",
      "\\\\.\\KbState",
      "--codes",
      STATE_CODES,
      "--service",
      "kbstate",
      "--seed",
      "2",
      "--iterations",
      "200",
      "--out",
      out,
      "--json",
    );
    assert.equal(fuzz.code, 1, fuzz.err);
    const summary = lastJson(fuzz.out);
    const crash = summary.crashes.find((c: { code: string }) => c.code === READ);
    assert.ok(crash, JSON.stringify(summary.crashes));
    assert.equal(crash.sequence?.length, 1, JSON.stringify(crash.sequence));
    const [step] = crash.sequence;
    assert.equal(step.code, SELECT);
    const index = parseInt(step.input.slice(0, 8).match(/../g).reverse().join(""), 16);
    assert.ok(index >= 4, `SELECT of index ${index}: out of the 4 slots`);
    assert.match(fuzz.err, /died: Unhandled page fault .* in StateReadSlot \(stateful\.c:\d+\)/);
    const reproducer = crash.minimized?.reproducer ?? crash.reproducer;
    const saved = JSON.parse(await Deno.readTextFile(reproducer));
    assert.deepEqual(saved.sequence, crash.sequence, "the file holds the same sequence");

    // A freshly loaded driver: the sequence, then READ, crashes it again.
    await runLab("unload", "kbstate");
    assert.equal((await runLab("load", `${DRIVERS}/kbstate.sys`)).code, 0);
    const replay = await windowsCli("fuzz", "--replay", reproducer);
    assert.equal(replay.code, 1, replay.out + replay.err);
    assert.match(replay.out, /still fails: crash/);
    assert.match(replay.err, /kbstate\.sys.* died: .* in StateReadSlot \(stateful\.c:\d+\)/);

    // The request alone, on a fresh driver, does not crash it: the state is what matters.
    await runLab("unload", "kbstate");
    assert.equal((await runLab("load", `${DRIVERS}/kbstate.sys`)).code, 0);
    const alone = `${out}/alone.json`;
    await Deno.writeTextFile(alone, JSON.stringify({ ...saved, sequence: undefined }));
    const single = await windowsCli("fuzz", "--replay", alone);
    assert.equal(single.code, 0, single.out + single.err);
    assert.match(single.out, /does not reproduce/);
  } finally {
    await runLab("unload", "kbstate");
    await Deno.remove(out, { recursive: true });
  }
});
