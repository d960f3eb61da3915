// `kbridge lab` end to end under Wine, on the lab's fixture driver
// (tests/fixture/kbwdm.c: WDK-style, NOT the reference driver, and it does
// not replace a stale \DosDevices link): check → load → run a script → test →
// the planted crash → a crash report naming the function and line → load
// again fails (stale link) → restart → load → works; the stub-importing
// variant is flagged by check and refused by load, and with --force loaded and
// its stub call reported; a crash in DriverEntry is reported by load; `kbridge fuzz --service`
// under Wine survives its crashes, restarts it and minimizes the crash.
// Run by tools/test.sh in the harness's lab (KB_BUILD); it restarts the prefix's
// wineserver, after which the harness loads the reference driver again.
import assert from "node:assert/strict";
import { runLab, runLabWith } from "./_util.ts";

const ROOT = new URL("..", import.meta.url).pathname;

const LAB = Deno.env.get("KB_BUILD") ?? "";
const FIXTURES = `${LAB}/fixture`;

/** The line of a planted crash in the fixture's source: the first line holding `statement` after `marker`. */
async function plantedLine(marker: string, statement: string): Promise<number> {
  const lines = (await Deno.readTextFile(`${ROOT}tests/fixture/kbwdm.c`)).split("\n");
  const at = lines.findIndex((line) => line.includes(marker));
  const write = lines.findIndex((line, i) => i > at && line.includes(statement));
  assert.ok(at > 0 && write > at);
  return write + 1;
}

Deno.test("kbridge lab: check, load, run, test, crash report, restart, load again", async (t) => {
  assert.ok(LAB, "KB_BUILD is not set: run this test through tools/test.sh (deno task test)");
  const make = await new Deno.Command("make", {
    args: ["-s", "-C", `${ROOT}tests/fixture`, `OUT=${FIXTURES}`],
    stdin: "null",
  }).output();
  assert.equal(make.code, 0, new TextDecoder().decode(make.stderr));
  const sys = `${FIXTURES}/kbwdm.sys`;

  await t.step(
    "restart first: no host left dead by an earlier run (its stale link would stop the load)",
    async () => {
      // A failed earlier run may have left the stub variant loaded (its unload calls a stub).
      for (const leftover of ["kbwdmstub", "kbwdmentry", "kbwdmbreak"]) {
        await runLab("unload", leftover);
      }
      const restart = await runLab("restart");
      assert.equal(restart.code, 0, restart.out + restart.err);
    },
  );

  await t.step("status: the lab is set up and its wineserver runs", async () => {
    const status = await runLab("status");
    assert.equal(status.code, 0, status.out + status.err);
    assert.match(status.out, /running persistent wineserver, pid \d+/);
  });

  await t.step("check: no stub, no missing import", async () => {
    const check = await runLab("check", sys);
    assert.equal(check.code, 0, check.out + check.err);
    assert.match(check.out, /0 stub, 0 missing/);
  });

  await t.step("the stub-importing variant: flagged by check, refused by load", async () => {
    const check = await runLab("check", `${FIXTURES}/kbwdmstub.sys`, "--json");
    assert.equal(check.code, 1);
    const report = JSON.parse(check.out);
    assert.ok(
      report.imports.some((i: { name: string; status: string }) =>
        i.name === "IoCsqInsertIrp" && i.status === "stub"
      ),
    );
    const load = await runLab("load", `${FIXTURES}/kbwdmstub.sys`, "--name", "kbwdmstub");
    assert.equal(load.code, 1);
    assert.match(load.err, /kbwdmstub not loaded: it imports Wine stubs .*IoCsqInsertIrp/);
    assert.equal(load.err.trim().split("\n").length, 1, load.err);
  });

  await t.step("a crash inside DriverEntry: load fails with the function and line", async () => {
    const load = await runLab("load", `${FIXTURES}/kbwdmentry.sys`, "--name", "kbwdmentry");
    assert.equal(load.code, 1);
    const line = await plantedLine("THE PLANTED DriverEntry CRASH", "RegistryPath->Length");
    assert.match(
      load.err,
      new RegExp(
        `the driver host of kbwdmentry\\.sys \\(winedevice\\.exe, pid \\d+\\) died: Unhandled page fault ` +
          `on write access to 0+7C at kbwdmentry\\.sys\\+0x[0-9a-f]+ in DriverEntry \\(kbwdm\\.c:${line}\\) ` +
          `\\(in DriverEntry;`,
      ),
    );
    assert.equal(load.err.trim().split("\n").length, 1, load.err);
    const unload = await runLab("unload", "kbwdmentry");
    assert.equal(unload.code, 0, unload.out + unload.err);
  });

  await t.step(
    "a breakpoint kept in DriverEntry (KBPORT_KEEP_BREAKPOINTS) is named as one",
    async () => {
      const load = await runLab("load", `${FIXTURES}/kbwdmbreak.sys`, "--name", "kbwdmbreak");
      assert.equal(load.code, 1);
      assert.match(
        load.err,
        /died: Unhandled exception 0x80000003 .*\(STATUS_BREAKPOINT: a breakpoint such as DbgBreakPoint\(\) and no debugger to take it\).*\(in DriverEntry;/,
      );
      const unload = await runLab("unload", "kbwdmbreak");
      assert.equal(unload.code, 0, unload.out + unload.err);
    },
  );

  await t.step(
    "--force loads the stub variant; its stub calls are reported, in DriverUnload and in a request",
    async () => {
      // kbwdm (loaded again by the restart when an earlier run left it) owns the same device name.
      const free = await runLab("unload", "kbwdm");
      assert.equal(free.code, 0, free.out + free.err);
      const stubSys = `${FIXTURES}/kbwdmstub.sys`;
      const load = await runLab("load", stubSys, "--name", "kbwdmstub", "--force");
      assert.equal(load.code, 0, load.out + load.err);
      // Loaded again over the running instance: that one's DriverUnload calls a stub.
      const again = await runLab("load", stubSys, "--name", "kbwdmstub", "--force");
      assert.equal(again.code, 1);
      assert.match(
        again.err,
        /died: the driver called ntoskrnl\.exe!IoCsqRemoveNextIrp, a Wine stub .*\(while the running instance stopped, in its DriverUnload;/,
      );
      // The dead host's \DosDevices\KbWdm link stays until the wineserver restarts.
      const restart = await runLab("restart");
      assert.equal(restart.code, 0, restart.out + restart.err);
      const call = await runLab("run", "tests/lab/kbwdm_stub_call.ts");
      assert.equal(call.code, 1, "a run during which a driver host died fails");
      assert.match(call.out, /QUEUE failed: .*STATUS_FILE_DELETED/);
      assert.match(
        call.err,
        /the driver host of kbwdmstub\.sys \(winedevice\.exe, pid \d+\) died: the driver called ntoskrnl\.exe!IoCsqInsertIrp, a Wine stub/,
      );
      assert.doesNotMatch(
        call.err,
        /RaiseException|kernelbase/,
        "Wine's stub site is not the driver's",
      );
      const unload = await runLab("unload", "kbwdmstub");
      assert.equal(unload.code, 0, unload.out + unload.err);
      const clean = await runLab("restart");
      assert.equal(clean.code, 0, clean.out + clean.err);
    },
  );

  await t.step(
    "load, then a script talks to the driver; what the driver prints is shown",
    async () => {
      const load = await runLab("load", sys, "--name", "kbwdm");
      assert.equal(load.code, 0, load.out + load.err);
      assert.match(load.err, /^dbgprint: kbwdm: DriverEntry, store of 4096 bytes$/m);
      const run = await runLab("run", "tests/lab/kbwdm_client.ts", "kbridge");
      assert.equal(run.code, 0, run.out + run.err);
      assert.match(run.out, /magic 0x4d53424b reversed egdirbk/);
      assert.match(run.err, /^dbgprint: kbwdm: REVERSE of 7 bytes$/m);
      assert.doesNotMatch(run.err, /DriverEntry/, "only what was printed during the run");
    },
  );

  await t.step(
    "a Wine log over its limit is emptied when a command starts; prints still come",
    async () => {
      const wineStartLog = `${LAB}/logs/wine-start.log`;
      const junk = new TextEncoder().encode(`${"x".repeat(1023)}\n`.repeat(33 * 1024));
      await Deno.writeFile(wineStartLog, junk, { append: true });
      const run = await runLab("run", "tests/lab/kbwdm_client.ts", "again");
      assert.equal(run.code, 0, run.out + run.err);
      assert.match(run.err, /^dbgprint: kbwdm: REVERSE of 5 bytes$/m);
      assert.ok((await Deno.stat(wineStartLog)).size < 1024 * 1024);
    },
  );

  await t.step("two runs at once: each prints its own output (a log slot each)", async () => {
    const [one, two] = await Promise.all([
      runLab("run", "tests/lab/kbwdm_client.ts", "first"),
      runLab("run", "tests/lab/kbwdm_client.ts", "second"),
    ]);
    assert.equal(one.code, 0, one.out + one.err);
    assert.equal(two.code, 0, two.out + two.err);
    assert.equal(one.out.trim(), "magic 0x4d53424b reversed tsrif");
    assert.equal(two.out.trim(), "magic 0x4d53424b reversed dnoces");
  });

  await t.step("run: a script Wine kills at its exit keeps its exit code", async () => {
    // The Unix side of deno.exe's process lingers 3 s after the script's end (LD_PRELOAD),
    // so Wine's server kills it: `wine`'s status reads 137, the lab still says 7.
    const dir = await Deno.makeTempDir({ prefix: "kbslow" });
    try {
      const preload = `${dir}/slow_exit.so`;
      const build = await new Deno.Command("clang", {
        args: ["-shared", "-fPIC", "-O2", "-o", preload, `${ROOT}tests/lab/slow_exit.c`],
      }).output();
      assert.equal(build.code, 0, new TextDecoder().decode(build.stderr));
      const run = await runLabWith({ LD_PRELOAD: preload }, "run", "tests/lab/exit_code.ts", "7");
      assert.equal(run.code, 7, run.out + run.err);
      assert.equal(run.out.trim(), "exiting with 7");
      assert.doesNotMatch(run.err, /killed/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("test: deno.exe test under Wine, summary line", async () => {
    const test = await runLab("test", "tests/lab/kbwdm_wine.ts");
    assert.equal(test.code, 0, test.out + test.err);
    assert.match(test.out, /\n4 passed, 0 failed\n$/);
  });

  await t.step(
    "the planted crash: a report names the driver, Wine's exception, the function and line",
    async () => {
      const crash = await runLab("run", "tests/lab/kbwdm_crash.ts");
      assert.match(
        crash.out,
        /LOG failed: .*ERROR_ACCESS_DENIED \(5\), NTSTATUS STATUS_FILE_DELETED \(0xC0000123\) - under Wine: the driver's host process died/,
      );
      assert.equal(crash.code, 1, "a run during which a driver host died fails");
      const line = await plantedLine("THE PLANTED CRASH", "sink->Records++");
      assert.match(
        crash.err,
        new RegExp(
          `the driver host of kbwdm\\.sys \\(winedevice\\.exe, pid \\d+\\) died: Unhandled page fault on ` +
            `(read|write) access to 0+ at kbwdm\\.sys\\+0x[0-9a-f]+ in SampleLogRecord \\(kbwdm\\.c:${line}\\)`,
        ),
      );
      // The crashing thread's last print came with it.
      assert.match(crash.err, /\n {2}thread [0-9a-f]+ printed before: kbwdm: REVERSE of 4 bytes\n/);
    },
  );

  await t.step(
    "load again fails on the stale \\DosDevices link and says how to recover",
    async () => {
      const load = await runLab("load", sys, "--name", "kbwdm");
      assert.equal(load.code, 1);
      assert.match(load.err, /ERROR_INVALID_HANDLE \(6\).*kbridge lab restart/);
    },
  );

  await t.step("restart: a new wineserver, the driver loaded again and working", async () => {
    // What the old server's processes wrote is kept once (`*.previous.log`), never appended to.
    const logs = [`${LAB}/logs/wineserver`, `${LAB}/logs/wine-start`];
    for (const log of logs) {
      await Deno.writeTextFile(`${log}.previous.log`, "two servers ago\n");
      await Deno.writeTextFile(`${log}.log`, "the old server\n", { append: true });
    }
    const restart = await runLab("restart");
    assert.equal(restart.code, 0, restart.out + restart.err);
    assert.match(restart.out, /restarted the wineserver \(pid \d+\); loaded .*kbwdm.* again/);
    const run = await runLab("run", "tests/lab/kbwdm_client.ts", "again");
    assert.equal(run.code, 0, run.out + run.err);
    assert.match(run.out, /reversed niaga/);
    for (const log of logs) {
      assert.doesNotMatch(await Deno.readTextFile(`${log}.log`), /the old server/);
      const previous = await Deno.readTextFile(`${log}.previous.log`);
      assert.match(previous, /the old server/);
      assert.doesNotMatch(previous, /two servers ago/);
    }
  });
});

Deno.test("kbridge fuzz --service under Wine survives crashes of a driver that keeps its stale link", async () => {
  assert.ok(LAB, "KB_BUILD is not set: run this test through tools/test.sh (deno task test)");
  const out = await Deno.makeTempDir({ prefix: "kblab-fuzz-" });
  const load = await runLab("load", `${FIXTURES}/kbwdm.sys`, "--name", "kbwdm");
  assert.equal(load.code, 0, load.out + load.err);
  const codes = "0x9C402400,0x9C402407,0x9C40240A,0x9C40240C";
  const fuzz = await runLab(
    "run",
    "cli.ts",
    "fuzz",
    "\\\\.\\KbWdm",
    "--codes",
    codes,
    "--service",
    "kbwdm",
    "--seed",
    "1",
    "--iterations",
    "300",
    "--out",
    out,
    "--json",
  );
  const summary = JSON.parse(fuzz.out.trim().split("\n").at(-1)!);
  assert.equal(summary.iterations, 300, "the run went on to the end");
  assert.equal(summary.stopped, undefined, fuzz.err);
  assert.ok(summary.restarts >= 1);
  const crash = summary.crashes.find((c: { code: string }) => c.code === "0x9C40240C");
  assert.ok(crash, JSON.stringify(summary.crashes));
  assert.ok(crash.minimized.inputLength <= crash.inputLength);
  assert.ok(crash.minimized.inputLength >= 1);
  // The lab saw the hosts die and placed the crash.
  assert.match(fuzz.err, /died: Unhandled page fault .* in SampleLogRecord/);
  await Deno.remove(out, { recursive: true });
});
