// Coverage-guided fuzzing under Wine: the test-only fixture tests/fixture/magic.c (service
// kbmagic), a plain driver, is built by `kbridge lab build --coverage` (tools/wine.sh:
// instrumented with -fsanitize-coverage=trace-pc,trace-cmp, the kit's coverage runtime
// driver/kit/kbcov.c linked in and started by its entry point), and crashes only for a
// 12-byte input whose 32-bit field at offset 4 is 0x4B42ABCD.
import assert from "node:assert/strict";
import { installDriver, queryDriver, startDriver, stopDriver } from "../../mod.ts";
import { ctlCode } from "../../src/core/ctl_code.ts";
import { hex32 } from "../../src/core/hex.ts";
import { CoverageError, CoverageFeedback, coverageSectionName } from "../../src/fuzz/coverage.ts";
import { Fuzzer, replayReproducer } from "../../src/fuzz/engine.ts";
import { readReproducer } from "../../src/fuzz/reproducer.ts";
import { DeviceTarget } from "../../src/fuzz/target.ts";

const SERVICE = "kbmagic";
const PATH = "\\\\.\\KbMagic";
const [ECHO, SUM, CHECK] = [0x800, 0x801, 0x802].map((fn) =>
  ctlCode({ deviceType: 0x8025, function: fn, method: 0, access: 0 })
);
const MAGIC = 0x4b42abcd;
/** Iterations of both runs below, with seed 1. */
const BUDGET = 3000;

function sysPath(): string {
  const build = Deno.env.get("KB_BUILD");
  assert.ok(build, "KB_BUILD is set by tools/env.sh");
  return `Z:${build.replaceAll("/", "\\")}\\lab\\drivers\\kbmagic.sys`;
}

async function loadMagic(): Promise<void> {
  if (queryDriver(SERVICE) === null) installDriver(SERVICE, sysPath());
  try {
    await stopDriver(SERVICE);
  } catch {
    // Not running, or its host is gone.
  }
  startDriver(SERVICE);
}

// The same seed and budget without coverage finds nothing: the blind engine has no way to
// the 32-bit magic but chance (the driver never outputs it), 2^-32 per try. With coverage,
// the comparison `field == 0x4B42ABCD` is recorded with both operands; the fuzzer writes the
// magic where the field's bytes were, in the 12-byte input that reached the comparison.
Deno.test("coverage mode finds the crash behind an exact length and a 4-byte magic; blind mode does not", async () => {
  await loadMagic();
  const out = await Deno.makeTempDir({ prefix: "kbcov" });
  const target = new DeviceTarget(PATH, { service: SERVICE });
  using coverage = CoverageFeedback.open(coverageSectionName(SERVICE));
  try {
    const guided = new Fuzzer(target, { seed: 1, outDir: out, service: SERVICE, coverage });
    await guided.run([ECHO, SUM, CHECK], { iterations: BUDGET });
    const summary = guided.summary();
    assert.equal(summary.crashes.length, 1, JSON.stringify(summary.crashes));
    const [crash] = summary.crashes;
    assert.equal(crash.code, CHECK);
    assert.equal(crash.inputLength, 12);
    assert.equal(crash.strategy, "cmp", "solved from the comparison, not guessed");
    assert.ok((summary.coverageEdges ?? 0) > 5, `${summary.coverageEdges} edges`);
    const reproducer = await readReproducer(crash.reproducer!);
    const field = new DataView(reproducer.input.buffer, reproducer.input.byteOffset).getUint32(
      4,
      true,
    );
    assert.equal(field, MAGIC);
    const replay = await replayReproducer(target, reproducer);
    assert.equal(replay.reproduced, true, JSON.stringify(replay));
    console.log(`coverage: crash at iteration ${crash.iteration}, ${summary.coverageEdges} edges`);

    await loadMagic();
    const blind = new Fuzzer(target, { seed: 1, service: SERVICE });
    await blind.run([ECHO, SUM, CHECK], { iterations: BUDGET });
    const blindSummary = blind.summary();
    assert.deepEqual(blindSummary.crashes, []);
    assert.ok(blindSummary.statuses[hex32(CHECK)].OK > 0, "blind mode reached CHECK with 12 bytes");
  } finally {
    await target.close();
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("a missing or corrupt coverage section is a CoverageError", () => {
  assert.throws(() => CoverageFeedback.open("Global\\KbCov-nosuchservice"), CoverageError);
  // A real section of this process with a header that is not one.
  const k32 = Deno.dlopen("kernel32.dll", {
    CreateFileMappingW: {
      parameters: ["pointer", "pointer", "u32", "u32", "u32", "buffer"],
      result: "pointer",
    },
    CloseHandle: { parameters: ["pointer"], result: "i32" },
  });
  try {
    const name = "Local\\KbCovCorrupt";
    const wide = new Uint16Array([...name].map((c) => c.charCodeAt(0)).concat(0));
    const invalid = Deno.UnsafePointer.create(0xffff_ffff_ffff_ffffn);
    const handle = k32.symbols.CreateFileMappingW(invalid, null, 0x04, 0, 65536, wide);
    assert.ok(handle !== null);
    try {
      assert.throws(() => CoverageFeedback.open(name), /magic 0x0 is not KbCv/);
    } finally {
      k32.symbols.CloseHandle(handle);
    }
  } finally {
    k32.close();
  }
});

Deno.test("afterwards the fixture is unloaded", async () => {
  try {
    await stopDriver(SERVICE);
  } catch {
    // Already stopped, or its host is gone.
  }
});
