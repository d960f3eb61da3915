// `kbridge lab build` on Linux: the command lines it lays out, and real builds with the
// lab's mingw-w64 gcc (a plain and a coverage build of tests/fixture/magic.c, whose images
// are read back), compile errors, a missing compiler and bad options. Loading such a build
// under Wine and fuzzing it: tests/lab_build_wine.test.ts.
import assert from "node:assert/strict";
import { buildDriver, buildPlan, MINGW_DDK, MINGW_GCC } from "../src/lab/build.ts";
import { LabError } from "../src/lab/lab_error.ts";
import { labPaths } from "../src/lab/paths.ts";
import { parsePe } from "../src/lab/pe.ts";
import { main } from "../cli.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MAGIC = `${ROOT}tests/fixture/magic.c`;

/** The RVA of the image's entry point (PE optional header, AddressOfEntryPoint). */
function entryPoint(image: Uint8Array): number {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const header = view.getUint32(0x3c, true);
  return view.getUint32(header + 24 + 16, true);
}

Deno.test("the plan of a plain build: porting header, -g, the lab's include path, DriverEntry", () => {
  const paths = labPaths("/lab");
  const plan = buildPlan(paths, {
    sources: ["/src/a.c", "/other/a.c"],
    includeDirs: ["/src/inc"],
    defines: ["DBG=1", "NAMED"],
  }, "/tmp/o");
  assert.equal(plan.name, "a");
  assert.equal(plan.sys, "/lab/lab/drivers/a.sys");
  assert.equal(plan.commands.length, 3);
  const [first, second, link] = plan.commands;
  assert.deepEqual(first.args, [
    "-O2",
    "-g",
    "-Wall",
    "-fno-stack-protector",
    "-include",
    "kbport.h",
    "-I/src/inc",
    "-I/lab/include",
    `-I${MINGW_DDK}`,
    "-DDBG=1",
    "-DNAMED",
    "-c",
    "-o",
    "/tmp/o/0-a.o",
    "/src/a.c",
  ]);
  assert.equal(first.program, MINGW_GCC);
  assert.equal(second.args.at(-2), "/tmp/o/1-a.o", "two sources of one base name stay apart");
  assert.deepEqual(link.args, [
    "-shared",
    "-nostdlib",
    "-nostartfiles",
    "-Wl,--subsystem,native",
    "-Wl,--entry,DriverEntry",
    "-o",
    "/lab/lab/drivers/a.sys.tmp",
    "/tmp/o/0-a.o",
    "/tmp/o/1-a.o",
    "-lntoskrnl",
    "-lhal",
  ]);
  assert.equal(link.source, undefined);
  assert.ok(plan.commands.every((c) => !c.args.some((a) => a.startsWith("-fsanitize"))));
});

Deno.test("the plan of a coverage build: only the driver's sources instrumented, the kit's entry", () => {
  const plan = buildPlan(
    labPaths("/lab"),
    { sources: ["/src/drv.c"], name: "mydrv", defines: ["X"], coverage: true },
    "/tmp/o",
  );
  assert.equal(plan.sys, "/lab/lab/drivers/mydrv.sys");
  const [driver, ...rest] = plan.commands;
  const link = rest.pop()!;
  assert.ok(driver.args.includes("-fsanitize-coverage=trace-pc,trace-cmp"));
  assert.ok(!driver.args.includes("-DKBCOV_ENABLED"), "the driver's sources know nothing of it");
  assert.deepEqual(rest.map((c) => c.source), [
    "/lab/kit/kbcov.c",
    "/lab/kit/kbcov_entry.c",
    "/lab/kit/kbkit_security.c",
  ]);
  for (const kit of rest) {
    assert.ok(!kit.args.some((a) => a.startsWith("-fsanitize")), kit.source);
    assert.ok(kit.args.includes("-DKBCOV_ENABLED") && kit.args.includes("-I/lab/kit"));
    assert.ok(!kit.args.includes("-DX") && !kit.args.includes("kbport.h"), kit.source);
  }
  assert.ok(link.args.includes("-Wl,--entry,KbCovDriverEntry"));
  assert.deepEqual(link.args.filter((a) => a.endsWith(".o")), [
    "/tmp/o/0-drv.o",
    "/tmp/o/kit-kbcov.o",
    "/tmp/o/kit-kbcov_entry.o",
    "/tmp/o/kit-kbkit_security.o",
  ]);
});

Deno.test("bad options are LabErrors (build), before anything runs", () => {
  const paths = labPaths("/lab");
  const cases: [Parameters<typeof buildPlan>[1], RegExp][] = [
    [{ sources: [] }, /at least one C source/],
    [{ sources: ["x.h"] }, /x\.h is no C source/],
    [{ sources: ["x.c"], name: "../x" }, /"\.\.\/x" is no driver name/],
    [{ sources: ["x.c"], defines: ["1X"] }, /"1X" is no definition/],
  ];
  for (const [options, message] of cases) {
    assert.throws(
      () => buildPlan(paths, options, "/tmp/o"),
      (e: unknown) => e instanceof LabError && e.reason === "build" && message.test(e.message),
    );
  }
});

Deno.test("real builds of magic.c: plain and coverage images; rebuilding replaces the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kblab-build-" });
  const paths = labPaths(dir);
  try {
    const plain = await buildDriver(paths, { sources: [MAGIC], name: "plain" });
    assert.equal(plain.sys, `${dir}/lab/drivers/plain.sys`);
    const plainImage = parsePe(await Deno.readFile(plain.sys));
    assert.ok(plainImage.hasDwarf, "built with -g: crash reports name the function and line");
    const exports = (image: typeof plainImage) => image.exports.map((e) => e.name);
    assert.ok(!exports(plainImage).includes("__sanitizer_cov_trace_pc"));
    assert.equal(
      entryPoint(await Deno.readFile(plain.sys)),
      plainImage.exports.find((e) => e.name === "DriverEntry")!.rva,
    );

    const covered = await buildDriver(paths, { sources: [MAGIC], name: "covered", coverage: true });
    const bytes = await Deno.readFile(covered.sys);
    const image = parsePe(bytes);
    for (const name of ["__sanitizer_cov_trace_pc", "__sanitizer_cov_trace_cmp4", "DriverEntry"]) {
      assert.ok(exports(image).includes(name), name);
    }
    assert.equal(
      entryPoint(bytes),
      image.exports.find((e) => e.name === "KbCovDriverEntry")!.rva,
      "the image starts in the kit's entry wrapper",
    );
    // The kit's runtime came from the package into the lab directory.
    assert.ok((await Deno.stat(`${dir}/kit/kbcov_entry.c`)).isFile);

    const listing = () => [...Deno.readDirSync(`${dir}/lab/drivers`)].map((e) => e.name).sort();
    const before = listing();
    await buildDriver(paths, { sources: [MAGIC], name: "covered", coverage: true });
    assert.deepEqual(listing(), before, "nothing grows with repeated builds");
    assert.deepEqual(before, ["covered.sys", "plain.sys"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a compile error shows its first lines and exits 1; a missing compiler or source says so", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kblab-build-" });
  const paths = labPaths(dir);
  try {
    const broken = `${dir}/broken.c`;
    await Deno.writeTextFile(
      broken,
      "NTSTATUS DriverEntry(PDRIVER_OBJECT d, PUNICODE_STRING r) { return undeclared_thing; }\n",
    );
    const errors: string[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => errors.push(args.join(" "));
    let code: number;
    try {
      code = await main(["lab", "--dir", dir, "build", broken]);
    } finally {
      console.error = original;
    }
    assert.equal(code, 1);
    const text = errors.join("\n");
    assert.match(text, new RegExp(`compiling ${broken} failed \\(exit code 1; all of it in `));
    assert.match(text, /broken\.c:1:\d+: error: .undeclared_thing. undeclared/);
    assert.ok(text.split("\n").length <= 2 + 13, text);
    await assert.rejects(
      () => Deno.stat(`${dir}/lab/drivers/broken.sys.tmp`),
      Deno.errors.NotFound,
    );

    await assert.rejects(
      () => buildDriver(paths, { sources: [MAGIC], compiler: "x86_64-no-such-gcc" }),
      (e: unknown) =>
        e instanceof LabError && e.reason === "build" &&
        /the compiler x86_64-no-such-gcc is not installed \(Debian package gcc-mingw-w64-x86-64/
          .test(e.message),
    );
    await assert.rejects(
      () => buildDriver(paths, { sources: [`${dir}/nothere.c`] }),
      /no such source file: .*nothere\.c/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kbridge lab build: -I, -D and --name reach the compiler; no source is a usage error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kblab-build-" });
  try {
    await Deno.mkdir(`${dir}/inc`);
    await Deno.writeTextFile(`${dir}/inc/mine.h`, "#define MINE_STATUS STATUS_SUCCESS\n");
    // Compiles only with the include directory and the definition given.
    await Deno.writeTextFile(
      `${dir}/drv.c`,
      [
        '#include "mine.h"',
        "#if WANTED != 7",
        '#error "WANTED is not 7"',
        "#endif",
        "NTSTATUS DriverEntry(PDRIVER_OBJECT d, PUNICODE_STRING r)",
        "{",
        "    UNREFERENCED_PARAMETER(d);",
        "    UNREFERENCED_PARAMETER(r);",
        "    return MINE_STATUS;",
        "}",
      ].join("\n"),
    );
    const quiet = async (args: string[]) => {
      const original = [console.log, console.error];
      console.log = console.error = () => {};
      try {
        return await main(["lab", "--dir", dir, "build", ...args]);
      } finally {
        [console.log, console.error] = original;
      }
    };
    assert.equal(await quiet([`${dir}/drv.c`]), 1, "without -I and -D it does not compile");
    assert.equal(
      await quiet([`${dir}/drv.c`, "-I", `${dir}/inc`, "-DWANTED=7", "--name", "mine"]),
      0,
    );
    assert.ok(parsePe(await Deno.readFile(`${dir}/lab/drivers/mine.sys`)).hasDwarf);
    assert.equal(await quiet([]), 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
