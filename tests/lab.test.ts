// The lab's Linux-side pieces against real files: the PE reader on drivers
// built here with mingw and on Wine's own DLLs, the stub classification checked
// against an independent oracle (the `__wine_stub_*` symbols objdump lists in
// Wine's ntoskrnl.exe), set-up on a machine without the packages, and the
// parsers of Wine's crash lines, /proc maps and Deno's test summary.
import assert from "node:assert/strict";
import { checkDriver, findWineDllDir, formatCheckReport, isWineStub } from "../src/lab/check.ts";
import { formatCrashReport, parseWineCrashes, PRINTS_BEFORE_CRASH } from "../src/lab/crash.ts";
import {
  driverPrintLine,
  driverPrintOf,
  driverPrintSink,
  withDriverPrints,
} from "../src/lab/driver_print.ts";
import { whenServicesAnswer } from "../src/lab/agent.ts";
import { mappedModules } from "../src/lab/hosts.ts";
import { LabError } from "../src/lab/lab_error.ts";
import { claimLog } from "../src/lab/log_slot.ts";
import { labPaths } from "../src/lab/paths.ts";
import { parsePe } from "../src/lab/pe.ts";
import { denoTestCounts, exitNote, KILLED_AT_EXIT } from "../src/lab/run.ts";
import { aptLine, LAB_PACKAGES, patchDenoExe, setupLab } from "../src/lab/setup.ts";
import { main } from "../cli.ts";
import { Win32Error } from "../src/core/win32_error.ts";
import { ntStatusName } from "../src/core/error_names.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const FIXTURES = await Deno.makeTempDir({ prefix: "kblab-fixture-" });

async function run(command: string, args: string[]): Promise<{ code: number; out: string }> {
  const { code, stdout, stderr } = await new Deno.Command(command, { args, stdin: "null" })
    .output();
  return { code, out: new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr) };
}

// The fixture drivers, built fresh for these tests with the lab's build line.
const make = await run("make", ["-s", "-C", `${ROOT}tests/fixture`, `OUT=${FIXTURES}`]);
assert.equal(make.code, 0, make.out);
const SAMPLE = `${FIXTURES}/kbwdm.sys`;
const SAMPLE_CSQ = `${FIXTURES}/kbwdmstub.sys`;
const CRASHY = `${FIXTURES}/kbcrashy.sys`;
const WINE_DIR = await findWineDllDir();

/** What `x86_64-w64-mingw32-objdump -p` says a PE imports (an independent reader). */
async function objdumpImports(path: string): Promise<string[]> {
  const { out } = await run("x86_64-w64-mingw32-objdump", ["-p", path]);
  return [...out.matchAll(/^\s+[0-9a-f]+\s+(?:[0-9a-f]+\s+)?([A-Za-z_][A-Za-z0-9_]*)$/gm)]
    .map((m) => m[1])
    .filter((name) => !/^(?:vma|DLL|Hint)$/.test(name));
}

Deno.test("parsePe reads a mingw x64 driver: PE32+, native, its imports as objdump lists them, DWARF", async () => {
  const image = parsePe(await Deno.readFile(SAMPLE));
  assert.equal(image.machine, 0x8664);
  assert.ok(image.is64);
  assert.equal(image.subsystem, 1);
  assert.ok(image.hasDwarf, "kbwdm.sys is built with -g");
  const names = image.imports.map((i) => i.name!).sort();
  const expected = (await objdumpImports(SAMPLE)).filter((n) =>
    names.includes(n) || /^[A-Z]/.test(n)
  );
  assert.deepEqual(names, [...new Set(expected)].sort());
  assert.ok(image.imports.every((i) => i.dll.toLowerCase() === "ntoskrnl.exe"));
  assert.equal(parsePe(await Deno.readFile(CRASHY)).hasDwarf, false);
});

Deno.test("parsePe rejects what is no PE image with a LabError, also every truncation of a real one", async () => {
  const bytes = await Deno.readFile(SAMPLE);
  for (
    const bad of [
      new Uint8Array(),
      new Uint8Array(64),
      new TextEncoder().encode("MZ" + "x".repeat(100)),
    ]
  ) {
    assert.throws(
      () => parsePe(bad),
      (e: unknown) => e instanceof LabError && e.reason === "bad-image",
    );
  }
  for (let length = 0; length < 4096; length += 37) {
    try {
      parsePe(bytes.subarray(0, length));
    } catch (error) {
      assert.ok(error instanceof LabError, `length ${length}: ${error}`);
    }
  }
  // Garbage in the headers and the import table: a LabError or a result, never another exception.
  const next = (seed: number) => () => (seed = (seed * 1103515245 + 12345) >>> 0);
  const random = next(7);
  for (let round = 0; round < 300; round++) {
    const copy = bytes.slice();
    for (let i = 0; i < 8; i++) copy[random() % 2048] = random() & 0xff;
    try {
      parsePe(copy);
    } catch (error) {
      assert.ok(error instanceof LabError, `round ${round}: ${error}`);
    }
  }
});

Deno.test("the stub shape finds exactly the exports objdump names __wine_stub_* in Wine's ntoskrnl.exe", async () => {
  const path = `${WINE_DIR}/ntoskrnl.exe`;
  const image = parsePe(await Deno.readFile(path));
  const ours = image.exports.filter((e) =>
    e.forwarder === undefined && isWineStub(image, e.name, e.rva)
  )
    .map((e) => e.name).sort();
  const { out } = await run("x86_64-w64-mingw32-objdump", ["-t", path]);
  const theirs = [...new Set([...out.matchAll(/__wine_stub_([A-Za-z0-9_]+)$/gm)].map((m) => m[1]))]
    .sort();
  assert.ok(theirs.length > 100, `objdump found ${theirs.length} stubs`);
  assert.deepEqual(ours, theirs);
});

Deno.test("checkDriver: kbwdm imports nothing Wine stubs; the CSQ variant's stubs are the __wine_stub_ ones", async () => {
  const sample = await checkDriver(SAMPLE, { wineDir: WINE_DIR });
  assert.ok(sample.ok);
  assert.equal(sample.counts.stub + sample.counts.missing, 0);
  assert.ok(sample.hasDebugInfo);

  const csq = await checkDriver(SAMPLE_CSQ, { wineDir: WINE_DIR });
  assert.equal(csq.ok, false);
  const { out } = await run("x86_64-w64-mingw32-objdump", ["-t", `${WINE_DIR}/ntoskrnl.exe`]);
  for (const entry of csq.imports) {
    const stubbed = out.includes(`__wine_stub_${entry.name}\n`);
    assert.equal(entry.status === "stub", stubbed, `${entry.name}: ${entry.status}`);
  }
  assert.ok(csq.imports.some((i) => i.name === "IoCsqInsertIrp" && i.status === "stub"));
});

Deno.test("a KMDF driver (WDFLDR.SYS imports): check and load say Wine has no framework", async () => {
  const kmdf = `${FIXTURES}/kmdfshape.sys`;
  const report = await checkDriver(kmdf, { wineDir: WINE_DIR });
  assert.equal(report.ok, false);
  const bind = report.imports.find((i) => i.name === "WdfVersionBind")!;
  assert.equal(bind.status, "missing");
  assert.match(
    bind.missingReason ?? "",
    /a KMDF driver, and Wine 8 has no Kernel-Mode Driver Framework/,
  );
  assert.match(
    formatCheckReport(report),
    /WDFLDR\.SYS!WdfVersionBind +MISSING \(the driver will not load; a KMDF driver/,
  );
  // load refuses before anything runs under Wine: no lab needed.
  const dir = await Deno.makeTempDir({ prefix: "kblab-none-" });
  const load = await run(Deno.execPath(), [
    "run",
    "-A",
    `${ROOT}cli.ts`,
    "lab",
    "--dir",
    dir,
    "load",
    kmdf,
  ]);
  await Deno.remove(dir, { recursive: true });
  assert.equal(load.code, 1);
  assert.match(
    load.out,
    /kmdfshape not loaded, the driver cannot load: Wine lacks WDFLDR\.SYS — a KMDF driver, and Wine 8 has no Kernel-Mode Driver Framework .*: the lab runs WDM drivers\n$/,
  );
});

Deno.test("checkDriver: an import Wine does not export, or from a DLL Wine lacks, is missing", async () => {
  // The fixture's imports read against a directory whose ntoskrnl.exe is Wine's hal.dll.
  const dir = await Deno.makeTempDir();
  await Deno.copyFile(`${WINE_DIR}/hal.dll`, `${dir}/ntoskrnl.exe`);
  const report = await checkDriver(SAMPLE, { wineDir: dir });
  assert.equal(report.ok, false);
  assert.ok(
    report.imports.some((i) => i.name === "IoCreateSymbolicLink" && i.status === "missing"),
  );
  await assert.rejects(checkDriver(`${dir}/absent.sys`, { wineDir: dir }), LabError);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("kbridge lab check exits 0 for kbwdm.sys and 1 for the stub-importing variant", async () => {
  assert.equal(await main(["lab", "check", SAMPLE]), 0);
  assert.equal(await main(["lab", "check", SAMPLE_CSQ, "--json"]), 1);
  assert.equal(await main(["lab", "check"]), 2);
  assert.equal(await main(["lab", "check", `${FIXTURES}/none.sys`]), 1);
});

Deno.test("lab setup without the packages and without root prints the apt-get line and fails", async () => {
  const dir = await Deno.makeTempDir();
  const asked: string[] = [];
  let installed = false;
  const error = await setupLab(labPaths(dir), {
    extraPackages: ["clang"],
    host: {
      isInstalled: (name) => {
        asked.push(name);
        return Promise.resolve(false);
      },
      isRoot: () => false,
      installPackages: () => {
        installed = true;
        return Promise.resolve(0);
      },
    },
  }).then(() => undefined, (e) => e);
  assert.ok(error instanceof LabError && error.reason === "missing-packages", String(error));
  assert.ok(error.message.includes(aptLine([...LAB_PACKAGES, "clang"])), error.message);
  assert.deepEqual(asked, [...LAB_PACKAGES, "clang"]);
  assert.equal(installed, false);
  // Nothing was downloaded or created but the log directory.
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["logs", "win"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("patchDenoExe renames the one VirtualAlloc2 string and refuses zero or two", () => {
  const encode = (text: string) => new TextEncoder().encode(text);
  const patched = patchDenoExe(encode("abc\0VirtualAlloc2\0VirtualAlloc\0"));
  assert.equal(new TextDecoder().decode(patched), "abc\0VirtualAllocX\0VirtualAlloc\0");
  assert.throws(() => patchDenoExe(encode("VirtualAlloc\0")), LabError);
  assert.throws(() => patchDenoExe(encode("VirtualAlloc2\0VirtualAlloc2\0")), LabError);
});

Deno.test("Wine's crash lines: page faults, breakpoints and stub calls, with address and thread", () => {
  const log = [
    "some output\r",
    "wine: Unhandled page fault on write access to 0000000000000000 at address 000000034A60110F (thread 011c), starting debugger...\r",
    "wine: Unhandled breakpoint at address 0000000140001000 (thread 0024), starting debugger...",
    "wine: Unimplemented function ntoskrnl.exe.IoCsqInsertIrp called at address 000000031CA928A7 (thread 0030), starting debugger...",
  ].join("\n");
  const [fault, breakpoint, stub] = parseWineCrashes(log);
  assert.equal(fault.exception, "Unhandled page fault on write access to 0000000000000000");
  assert.equal(fault.address, 0x34a60110fn);
  assert.equal(fault.thread, "011c");
  assert.equal(breakpoint.exception, "Unhandled breakpoint");
  assert.deepEqual(stub.stub, { dll: "ntoskrnl.exe", name: "IoCsqInsertIrp" });
  assert.equal(parseWineCrashes(log).length, 3);
  assert.deepEqual(fault.prints, [], "no prints before it");
});

Deno.test("a crash keeps the last prints of its own thread before it, at most PRINTS_BEFORE_CRASH", () => {
  const print = (thread: string, text: string) =>
    `${thread}:warn:debugstr:vDbgPrintExWithPrefix 0000004d:00000008: ${text}`;
  const log = [
    ...Array.from({ length: 7 }, (_, i) => print("0104", `kbwdm: step ${i}`)),
    print("0108", "kbwdm: another thread"),
    `0020:${print("0104", "kbwdm: with a +pid prefix")}\r`,
    "wine: Unhandled page fault on write access to 0000000000000000 at address 000000034A60110F (thread 0104), starting debugger...",
    print("0104", "kbwdm: after the crash"),
    "wine: Unhandled breakpoint at address 0000000140001000 (thread 0024), starting debugger...",
  ].join("\n");
  const [fault, breakpoint] = parseWineCrashes(log);
  assert.equal(PRINTS_BEFORE_CRASH, 5);
  assert.deepEqual(fault.prints, [
    "kbwdm: step 3",
    "kbwdm: step 4",
    "kbwdm: step 5",
    "kbwdm: step 6",
    "kbwdm: with a +pid prefix",
  ]);
  assert.deepEqual(breakpoint.prints, [], "thread 0024 printed nothing");
  const report = formatCrashReport({ crash: fault, drivers: ["kbwdm.sys"] });
  assert.equal(
    report.split("\n").slice(1).join("\n"),
    fault.prints.map((text) => `  thread 0104 printed before: ${text}`).join("\n"),
  );
  assert.deepEqual(driverPrintLine(print("0108", "x")), { text: "x", thread: "0108" });
  assert.deepEqual(driverPrintLine("warn:debugstr:vDbgPrintExWithPrefix 0:1: bare"), {
    text: "bare",
  });
});

Deno.test("mappedModules takes each PE file's offset-0 mapping as its load address", () => {
  const maps = [
    "021a0000-021a1000 r--p 00000000 fe:00 2149120                            /p/drive_c/windows/system32/drivers/kbridge.sys",
    "31ca90000-31ca91000 r--p 00000000 fe:00 5595681                          /usr/lib/x86_64-linux-gnu/wine/x86_64-windows/ntoskrnl.exe",
    "31ca91000-31cab6000 r-xp 00001000 fe:00 5595681                          /usr/lib/x86_64-linux-gnu/wine/x86_64-windows/ntoskrnl.exe",
    "7f0000000000-7f0000001000 rw-p 00000000 00:00 0 ",
  ].join("\n");
  assert.deepEqual(mappedModules(maps), [
    { path: "/p/drive_c/windows/system32/drivers/kbridge.sys", base: 0x21a0000n },
    { path: "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows/ntoskrnl.exe", base: 0x31ca90000n },
  ]);
});

Deno.test("a Windows process Wine killed at its exit is named; other exit codes are not", () => {
  assert.equal(KILLED_AT_EXIT, 128 + 9);
  assert.match(exitNote(KILLED_AT_EXIT)!, /deno\.exe was killed \(SIGKILL, exit status 137\)/);
  assert.equal(exitNote(0), undefined);
  assert.equal(exitNote(1), undefined);
});

Deno.test("denoTestCounts reads Deno's last summary line", () => {
  assert.deepEqual(denoTestCounts("ok | 5 passed | 0 failed (1s)\n"), { passed: 5, failed: 0 });
  assert.deepEqual(
    denoTestCounts("ok | 1 passed | 0 failed\r\nFAILED | 3 passed (2 steps) | 1 failed (2s)\r\n"),
    { passed: 3, failed: 1 },
  );
  assert.equal(denoTestCounts("error: Module not found\n"), undefined);
});

Deno.test("the statuses of a dead driver host have names, and STATUS_FILE_DELETED says what it means", () => {
  assert.equal(ntStatusName(0xC0000123), "STATUS_FILE_DELETED");
  assert.equal(ntStatusName(0x80000003), "STATUS_BREAKPOINT");
  assert.equal(ntStatusName(0xC0000135), "STATUS_DLL_NOT_FOUND");
  const error = new Win32Error({ code: 5, call: "DeviceIoControl", ntStatus: 0xC0000123 });
  assert.match(
    error.message,
    /STATUS_FILE_DELETED \(0xC0000123\) - under Wine: the driver's host process died$/,
  );
});

Deno.test("kbridge lab: usage errors exit 2", async () => {
  assert.equal(await main(["lab"]), 2);
  assert.equal(await main(["lab", "frob"]), 2);
  assert.equal(await main(["lab", "--dir"]), 2);
  assert.equal(await main(["lab", "load"]), 2);
  assert.equal(await main(["lab", "setup", "--with", "bad name"]), 2);
  assert.equal(await main(["lab", "--help"]), 0);
});

Deno.test({
  name: "remove the fixture drivers built for these tests",
  fn: () => Deno.remove(FIXTURES, { recursive: true }),
});

Deno.test("claimLog: concurrent claims get their own file, a freed slot is reused, a dead holder's lock taken over", async () => {
  const logs = await Deno.makeTempDir({ prefix: "kblab-logs-" });
  try {
    const first = await claimLog(logs, "lab-run");
    const second = await claimLog(logs, "lab-run");
    assert.equal(first.path, `${logs}/lab-run.log`);
    assert.equal(second.path, `${logs}/lab-run.2.log`);
    await first[Symbol.asyncDispose]();
    const third = await claimLog(logs, "lab-run");
    assert.equal(third.path, `${logs}/lab-run.log`, "the freed first slot");
    await second[Symbol.asyncDispose]();
    await third[Symbol.asyncDispose]();
    // A lock whose process is gone (pid 2^22 + 1 exceeds Linux's pid_max limit).
    await Deno.writeTextFile(`${logs}/lab-test.log.lock`, `${2 ** 22 + 1}\n`);
    const taken = await claimLog(logs, "lab-test");
    assert.equal(taken.path, `${logs}/lab-test.log`);
    await taken[Symbol.asyncDispose]();
    // Nothing grows with use: 20 claims in turn leave no lock behind.
    for (let i = 0; i < 20; i++) await (await claimLog(logs, "lab-load-x"))[Symbol.asyncDispose]();
    const names = [...Deno.readDirSync(logs)].map((entry) => entry.name).sort();
    assert.deepEqual(names, []);
    // Every slot held by a live process: a typed error, no wait.
    const held = [];
    for (let i = 0; i < 16; i++) held.push(await claimLog(logs, "lab-run"));
    await assert.rejects(() => claimLog(logs, "lab-run"), (error: unknown) => {
      assert.ok(error instanceof LabError && error.reason === "busy", String(error));
      return true;
    });
    for (const slot of held) await slot[Symbol.asyncDispose]();
  } finally {
    await Deno.remove(logs, { recursive: true });
  }
});

Deno.test("driver prints: their channel is added last to WINEDEBUG, alone when it is empty", () => {
  assert.equal(withDriverPrints("-all"), "-all,warn+debugstr");
  assert.equal(withDriverPrints("+timestamp,-all"), "+timestamp,-all,warn+debugstr");
  assert.equal(withDriverPrints(""), "warn+debugstr", "no empty entry before it");
});

Deno.test("driver prints: Wine's debugstr lines give the text, split lines are joined, others ignored", () => {
  const line = "0104:warn:debugstr:vDbgPrintExWithPrefix 0000004d:00000008: kbwdm: ready";
  assert.equal(driverPrintOf(line), "kbwdm: ready");
  assert.equal(driverPrintOf(`0020:${line}\r\n`), "kbwdm: ready", "+pid prefix, CRLF");
  assert.equal(driverPrintOf("0104:fixme:ntoskrnl:IoCsqInitialize stub"), undefined);
  assert.equal(
    driverPrintOf("wine: Unhandled page fault on read access to 0000000000000000"),
    undefined,
  );
  const prints: string[] = [];
  const sink = driverPrintSink((text) => prints.push(text));
  const bytes = new TextEncoder().encode(`wine: other\n${line}\n${line.replace("ready", "é")}\n`);
  // Split inside the first print and inside the two bytes of "é".
  const cut = bytes.indexOf(0xc3) + 1;
  for (const chunk of [bytes.subarray(0, 30), bytes.subarray(30, cut), bytes.subarray(cut)]) {
    sink(chunk);
  }
  assert.deepEqual(prints, ["kbwdm: ready", "kbwdm: é"]);
  sink(new TextEncoder().encode(line));
  assert.equal(prints.length, 2, "a line without its end yet is kept back");
  sink(new TextEncoder().encode("\n"));
  assert.deepEqual(prints.at(-1), "kbwdm: ready");
});

Deno.test("lab agent: a service call failing with ERROR_INVALID_ADDRESS (services.exe starting) is asked again; others fail at once", async () => {
  const failing = (codes: number[]) => {
    let calls = 0;
    const call = () => {
      const code = codes[calls++];
      if (code !== undefined) throw new Win32Error({ code, call: "OpenServiceW", detail: "kbwdm" });
      return "running";
    };
    return { call, calls: () => calls };
  };
  const starting = failing([487, 487]);
  assert.equal(await whenServicesAnswer(starting.call, 5, 1), "running");
  assert.equal(starting.calls(), 3);

  const denied = failing([5, 487]);
  await assert.rejects(whenServicesAnswer(denied.call, 5, 1), (error) => {
    assert.ok(error instanceof Win32Error);
    assert.equal(error.code, 5);
    return true;
  });
  assert.equal(denied.calls(), 1);

  const never = failing([487, 487, 487, 487]);
  await assert.rejects(whenServicesAnswer(never.call, 3, 1), /ERROR_INVALID_ADDRESS \(487\)/);
  assert.equal(never.calls(), 3);
});
