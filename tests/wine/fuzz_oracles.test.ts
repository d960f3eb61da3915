// The fuzzer against a driver it has never seen, under Wine: the test-only fixture
// tests/fixture/quirky.c (service kbquirky) rejects empty requests before its switch,
// leaks a pointer into its image and unzeroed heap bytes, transforms input with a heap
// address, stores and reads back values, answers slowly on one code and holds requests
// of another forever (until a release 10 s later), and crashes at two sites in one code.
// One test per behaviour.
import assert from "node:assert/strict";
import { runCli } from "../_util.ts";
import { installDriver, openDevice, queryDriver, startDriver, stopDriver } from "../../mod.ts";
import { ctlCode } from "../../src/core/ctl_code.ts";
import { Fuzzer } from "../../src/fuzz/engine.ts";
import { HostRanges } from "../../src/fuzz/ranges.ts";
import { DeviceTarget } from "../../src/fuzz/target.ts";

const SERVICE = "kbquirky";
const IMAGE = "kbquirky.sys";
const PATH = "\\\\.\\KbQuirky";
const DEVICE_TYPE = 0x8024;
/** The fixture's codes, by function (see quirky.c). */
const Q = Object.fromEntries(
  ["INFO", "XOR", "STORE", "LOAD", "STALE", "SCRATCH", "SLOW", "HANG", "FAULT"].map((name, i) => [
    name,
    ctlCode({ deviceType: DEVICE_TYPE, function: 0x800 + i, method: 0, access: 0 }),
  ]),
) as Record<
  "INFO" | "XOR" | "STORE" | "LOAD" | "STALE" | "SCRATCH" | "SLOW" | "HANG" | "FAULT",
  number
>;
/** METHOD_IN_DIRECT: the output buffer is data for the driver, returned unwritten (as sioctl does). */
const PEEK = ctlCode({ deviceType: DEVICE_TYPE, function: 0x810, method: 1, access: 0 });
const hex = (code: number) => `0x${code.toString(16).toUpperCase().padStart(8, "0")}`;

/** The fixture's file, built by tests/fixture/Makefile into KB_BUILD, loaded through drive Z:. */
function sysPath(): string {
  const build = Deno.env.get("KB_BUILD");
  assert.ok(build, "KB_BUILD is set by tools/env.sh");
  return `Z:${build.replaceAll("/", "\\")}\\fixture\\${IMAGE}`;
}

/** (Re)loads the fixture: a fresh host, its state at the start. */
async function loadQuirky(): Promise<void> {
  if (queryDriver(SERVICE) === null) installDriver(SERVICE, sysPath());
  try {
    await stopDriver(SERVICE);
  } catch {
    // Not running, or its host is gone.
  }
  startDriver(SERVICE);
}

function word(bytes: Uint8Array, offset: number): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(offset, true);
}

Deno.test("discovery on a driver that checks lengths before its switch finds exactly its codes", async () => {
  await loadQuirky();
  // The trap: an empty request to a code that cannot exist fails like one to a real code.
  {
    using device = openDevice(PATH);
    assert.throws(() => device.ioctl(Q.INFO, null, 0), /STATUS_INVALID_PARAMETER/);
    assert.throws(() => device.ioctl(0x00000e1e, null, 0), /STATUS_INVALID_PARAMETER/);
  }
  // Discovery hits the hanging code: its reproducer goes to a folder of the test's own.
  const out = await Deno.makeTempDir({ prefix: "kbfuzz" });
  const run = await runCli(
    "fuzz",
    PATH,
    "--device-types",
    "0x8024",
    "--service",
    SERVICE,
    "--hang-timeout",
    "1000",
    "--iterations",
    "0",
    "--out",
    out,
    "--json",
  ).finally(() => Deno.remove(out, { recursive: true }));
  const summary = JSON.parse(run.stdout);
  assert.deepEqual(summary.codes, [...Object.values(Q), PEEK].map(hex));
  assert.equal(summary.discovery.warning, undefined);
  assert.deepEqual(summary.discovery.baseline["0/0"], ["STATUS_INVALID_PARAMETER"]);
  assert.deepEqual(summary.discovery.baseline["64/64"], ["STATUS_INVALID_DEVICE_REQUEST"]);
  // HANG holds 64-byte probes: a hang, found during discovery, and the code is accepted.
  assert.deepEqual(summary.hangs.map((h: { code: string }) => h.code), [hex(Q.HANG)]);
  assert.equal(summary.restarts, 0, "the driver still answered after the hang");
  assert.equal(run.code, 1, run.stderr);
  console.log(`discovery: ${summary.codes.length} codes in ${summary.discovery.probes} probes`);
});

Deno.test("oracles under Wine: a pointer into the driver and stale heap bytes are found; input-derived values, a slow code and direct I/O's own bytes are not reported", async () => {
  await loadQuirky();
  const out = await Deno.makeTempDir({ prefix: "kbfuzz" });
  try {
    const codes = [Q.INFO, Q.XOR, Q.STORE, Q.LOAD, Q.STALE, Q.SCRATCH, Q.SLOW, PEEK];
    const run = await runCli(
      "fuzz",
      PATH,
      "--codes",
      codes.map(hex).join(","),
      "--service",
      SERVICE,
      "--seed",
      "1",
      "--iterations",
      "600",
      "--out",
      out,
      "--json",
    );
    const summary = JSON.parse(run.stdout);
    type Row = { kind: string; code: string; detail: string; time: string };
    const findings: Row[] = summary.findings;
    // STALE's stale bytes hold the heap's own free-list pointers: a pointer finding too.
    const got = new Set(findings.map((f) => `${f.kind} ${f.code}`));
    assert.ok(got.has(`pointer ${hex(Q.INFO)}`) && got.has(`stale ${hex(Q.STALE)}`), run.stdout);
    got.delete(`pointer ${hex(Q.STALE)}`);
    assert.equal(got.size, 2, run.stdout);
    const pointer = findings.find((f) => f.kind === "pointer" && f.code === hex(Q.INFO))!;
    assert.match(pointer.detail, /at offset 0 \(kbquirky\.sys\)/);
    assert.ok(!Number.isNaN(Date.parse(pointer.time)));
    // XOR's output for zero words is a heap address: seen, and suppressed as input-derived.
    assert.ok(summary.suppressed[hex(Q.XOR)] > 0, JSON.stringify(summary.suppressed));
    assert.deepEqual(summary.crashes, []);
    assert.deepEqual(summary.hangs, [], "SLOW answers after 150 ms: never a hang");
    assert.ok(summary.statuses[hex(Q.SLOW)].OK > 0);
    // PEEK returns the caller's own bytes unwritten: tried, never a stale finding.
    assert.ok(summary.statuses[hex(PEEK)].OK > 0, JSON.stringify(summary.statuses[hex(PEEK)]));
    assert.equal(summary.uniqueBugs, findings.length);
    assert.equal(run.code, 1);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("store-then-read: a driver pointer stored by one request and read back by the next is not reported", async () => {
  await loadQuirky();
  const { image } = await (async () => {
    const ranges = await new HostRanges(IMAGE).ranges();
    return { image: ranges.find((r) => r.label === IMAGE)! };
  })();
  let leaked: bigint;
  {
    using device = openDevice(PATH);
    leaked = word(device.ioctl(Q.INFO, new Uint8Array(1), 16), 0);
  }
  assert.ok(leaked >= image.start && leaked < image.end, "INFO's value points into the image");
  const stored = new Uint8Array(8);
  new DataView(stored.buffer).setBigUint64(0, leaked, true);
  const target = new DeviceTarget(PATH, { service: SERVICE });
  try {
    const fuzzer = new Fuzzer(target, { seed: 1, ranges: new HostRanges(IMAGE) });
    const status = await fuzzer.replayOne(
      { code: Q.LOAD, input: new Uint8Array(1), outputSize: 8, strategy: "random" },
      [{ code: Q.STORE, input: stored, outputSize: 1 }],
    );
    assert.equal(status, "OK");
    const summary = fuzzer.summary();
    assert.deepEqual(summary.findings, []);
    assert.equal(summary.suppressed[hex(Q.LOAD)], 1, "the value was seen and held by an input");
    // The same LOAD on a fresh fuzzer that did not send the STORE: the value is a leak to it.
    const fresh = new Fuzzer(target, { seed: 1, ranges: new HostRanges(IMAGE) });
    await fresh.replayOne({
      code: Q.LOAD,
      input: new Uint8Array(1),
      outputSize: 8,
      strategy: "random",
    });
    assert.deepEqual(fresh.summary().findings.map((f) => f.kind), ["pointer"]);
  } finally {
    await target.close();
  }
});

Deno.test("a known hang does not dominate: requests/s within 2x of the same run without it", async () => {
  await loadQuirky();
  const base = [Q.INFO, Q.XOR, Q.STORE, Q.LOAD, Q.SCRATCH];
  const rate = async (codes: number[]) => {
    const out = await Deno.makeTempDir({ prefix: "kbfuzz" });
    try {
      const run = await runCli(
        "fuzz",
        PATH,
        "--codes",
        codes.map(hex).join(","),
        "--service",
        SERVICE,
        "--seed",
        "3",
        "--duration",
        "30",
        "--hang-timeout",
        "1000",
        "--out",
        out,
        "--json",
      );
      return JSON.parse(run.stdout);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  };
  const without = await rate(base);
  const withHang = await rate([...base, Q.HANG]);
  assert.deepEqual(without.hangs, []);
  assert.equal(withHang.hangs.length, 1, JSON.stringify(withHang.hangs));
  const hang = withHang.hangs[0];
  assert.equal(hang.code, hex(Q.HANG));
  // Its third occurrence de-prioritizes it; later repeats wait while its held requests count
  // against the known-fault share of the time.
  assert.ok(hang.count >= 3, `the hang repeated (${hang.count})`);
  assert.ok(withHang.deprioritized[hex(Q.HANG)] < 1, "the hanging code is tried less");
  assert.equal(withHang.restarts, 0, "the driver answered after each hang: no restart");
  assert.ok(hang.minimized.inputLength === 8, `minimized to ${hang.minimized.inputLength} bytes`);
  console.log(
    `requests/s without the hang ${without.perSecond}, with it ${withHang.perSecond} ` +
      `(${hang.count} hangs, HANG tried at ${withHang.deprioritized[hex(Q.HANG)]} of its share)`,
  );
  assert.ok(
    withHang.perSecond * 2 >= without.perSecond,
    `${withHang.perSecond}/s with the hang, ${without.perSecond}/s without`,
  );
});

Deno.test("crash sites: two bugs of one code are two findings at two module+offset sites; without the crash log they merge", async () => {
  assert.ok(Deno.env.get("KBRIDGE_CRASH_LOG"), "the lab passes the crash log (wineEnv)");
  const fuzz = async (...extra: string[]) => {
    await loadQuirky();
    const out = await Deno.makeTempDir({ prefix: "kbfuzz" });
    try {
      // SCRATCH beside FAULT keeps the run going while FAULT is tried less.
      const run = await runCli(
        "fuzz",
        PATH,
        "--codes",
        [Q.FAULT, Q.SCRATCH].map(hex).join(","),
        "--service",
        SERVICE,
        "--seed",
        "1",
        "--iterations",
        "150",
        "--minimize-attempts",
        "0",
        "--out",
        out,
        "--json",
        ...extra,
      );
      assert.equal(run.code, 1, run.stderr);
      return JSON.parse(run.stdout);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  };
  const sited = await fuzz();
  type Crash = { code: string; site?: string; count: number; prints?: string[] };
  const crashes: Crash[] = sited.crashes;
  assert.equal(crashes.length, 2, JSON.stringify(crashes));
  assert.ok(crashes.every((c) => c.code === hex(Q.FAULT)));
  for (const crash of crashes) assert.match(crash.site ?? "", /^kbquirky\.sys\+0x[0-9a-f]+$/);
  assert.notEqual(crashes[0].site, crashes[1].site);
  // Each finding ends with the print its request made just before the bug: an odd
  // byte 0 for the read through the NULL table, an even one for the write.
  const parities = crashes.map((crash) => {
    const last = crash.prints?.at(-1) ?? "";
    const byte = last.match(/^kbquirky: FAULT with byte 0 = (\d+)$/);
    assert.ok(
      byte,
      `the last print before the crash at ${crash.site}: ${JSON.stringify(crash.prints)}`,
    );
    return Number(byte[1]) & 1;
  });
  assert.deepEqual(parities.toSorted(), [0, 1]);
  assert.equal(sited.uniqueBugs, 2);
  // The same run without the provider: the crashes are keyed by code and input shape alone.
  const plain = await fuzz("--crash-log", "");
  assert.equal(plain.crashes.length, 1, JSON.stringify(plain.crashes));
  assert.equal(plain.crashes[0].site, undefined);
  console.log(
    `sites ${crashes.map((c) => `${c.site} x${c.count}`).join(", ")}; ` +
      `without them one finding x${plain.crashes[0].count}`,
  );
});

Deno.test("afterwards the fixture is unloaded", async () => {
  try {
    await stopDriver(SERVICE);
  } catch {
    // Already stopped, or its host is gone.
  }
});
