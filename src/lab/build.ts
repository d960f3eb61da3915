/**
 * `kbridge lab build`: a `.sys` from a driver's C sources with the lab's
 * mingw-w64 toolchain — the porting header force-included, DWARF (`-g`) for
 * crash reports with function and line — and, with `coverage`, a coverage
 * build for `kbridge fuzz --coverage` without any edit of the sources: they
 * are compiled with `-fsanitize-coverage=trace-pc,trace-cmp`, the kit's
 * coverage runtime (driver/kit/kbcov.c, kbcov_entry.c, kbkit_security.c)
 * without it, and the image's entry point is the kit's `KbCovDriverEntry`,
 * which maps the section `KbCov-<service>` before the driver's own
 * `DriverEntry` and releases it after its `DriverUnload`.
 *
 * @module
 */
import { isServiceName } from "./driver.ts";
import { LabError } from "./lab_error.ts";
import type { LabPaths } from "./paths.ts";
import { shipped, writeIfChanged } from "./setup.ts";

/**
 * The compiler the lab uses (Debian's `gcc-mingw-w64-x86-64`).
 *
 * @example
 * ```ts
 * import { MINGW_GCC } from "./build.ts";
 * MINGW_GCC; // "x86_64-w64-mingw32-gcc"
 * ```
 */
export const MINGW_GCC = "x86_64-w64-mingw32-gcc";

/**
 * Where Debian's `mingw-w64-x86-64-dev` has the DDK headers.
 *
 * @example
 * ```ts
 * import { MINGW_DDK } from "./build.ts";
 * MINGW_DDK; // "/usr/x86_64-w64-mingw32/include/ddk"
 * ```
 */
export const MINGW_DDK = "/usr/x86_64-w64-mingw32/include/ddk";

/** The kit's files a coverage build compiles (the sources) and includes. */
const KIT_SOURCES = ["kbcov.c", "kbcov_entry.c", "kbkit_security.c"] as const;
const KIT_HEADERS = ["kbcov.h", "kbkit.h", "kbkit_internal.h", "kbkit_sal.h", "kbridge_ring.h"];
/** The instrumentation of the driver's own sources in a coverage build. */
const COVERAGE_FLAGS = ["-fsanitize-coverage=trace-pc,trace-cmp"];
const COMMON_FLAGS = ["-O2", "-g", "-Wall", "-fno-stack-protector"];
const LINK_FLAGS = ["-shared", "-nostdlib", "-nostartfiles", "-Wl,--subsystem,native"];
const LIBRARIES = ["-lntoskrnl", "-lhal"];
/** Lines of the compiler's output a failure shows. */
const SHOWN_LINES = 12;

/**
 * What {@linkcode buildDriver} builds.
 *
 * @example
 * ```ts
 * import type { BuildOptions } from "./build.ts";
 * const options: BuildOptions = { sources: ["mydrv.c"], defines: ["DBG=1"], coverage: true };
 * ```
 */
export interface BuildOptions {
  /** The driver's C sources (one or more). */
  readonly sources: readonly string[];
  /** The driver's name: `<name>.sys` (default: the first source's base name). */
  readonly name?: string;
  /** More include directories (`-I`), searched before the lab's and the DDK's. */
  readonly includeDirs?: readonly string[];
  /** Preprocessor definitions of the driver's sources, `NAME` or `NAME=VALUE` (`-D`). */
  readonly defines?: readonly string[];
  /** A coverage build (see the module's documentation). */
  readonly coverage?: boolean;
  /** The compiler (default {@linkcode MINGW_GCC}). */
  readonly compiler?: string;
  /** The DDK headers' directory (default {@linkcode MINGW_DDK}). */
  readonly ddkDir?: string;
}

/**
 * One program run of a build.
 *
 * @example
 * ```ts
 * import type { BuildCommand } from "./build.ts";
 * const command: BuildCommand = { program: "x86_64-w64-mingw32-gcc", args: ["-c", "x.c"], source: "x.c" };
 * ```
 */
export interface BuildCommand {
  /** The program. */
  readonly program: string;
  /** Its arguments. */
  readonly args: readonly string[];
  /** The source it compiles (none for the link). */
  readonly source?: string;
}

/**
 * The steps of a build, as {@linkcode buildPlan} lays them out.
 *
 * @example
 * ```ts ignore
 * const plan: BuildPlan = buildPlan(paths, { sources: ["x.c"] }, "/tmp/obj");
 * plan.commands.length; // 2: compile x.c, link
 * ```
 */
export interface BuildPlan {
  /** The driver's name. */
  readonly name: string;
  /** The image written, in the lab's drivers folder. */
  readonly sys: string;
  /** Compiles, then the link (which writes `sys` + `.tmp`, renamed when it succeeded). */
  readonly commands: readonly BuildCommand[];
}

/**
 * What {@linkcode buildDriver} made.
 *
 * @example
 * ```ts ignore
 * const built: BuiltDriver = await buildDriver(paths, { sources: ["x.c"], coverage: true });
 * console.log(built.sys);
 * ```
 */
export interface BuiltDriver {
  /** The driver's name (the default service name of `kbridge lab load`). */
  readonly name: string;
  /** The image. */
  readonly sys: string;
  /** Whether it is a coverage build. */
  readonly coverage: boolean;
  /** The commands that ran. */
  readonly commands: readonly BuildCommand[];
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

function checkOptions(options: BuildOptions): string {
  if (options.sources.length === 0) {
    throw new LabError("build", "kbridge lab: build needs at least one C source");
  }
  const notC = options.sources.find((source) => !/\.c$/i.test(source));
  if (notC !== undefined) {
    throw new LabError("build", `kbridge lab: ${notC} is no C source (.c)`);
  }
  const name = options.name ?? baseName(options.sources[0]).replace(/\.c$/i, "");
  if (!isServiceName(name)) {
    throw new LabError(
      "build",
      `kbridge lab: "${name}" is no driver name (letters, digits, _ . -): give --name`,
    );
  }
  const define = (options.defines ?? []).find((d) => !/^[A-Za-z_][A-Za-z0-9_]*(=.*)?$/s.test(d));
  if (define !== undefined) {
    throw new LabError("build", `kbridge lab: "${define}" is no definition (NAME or NAME=VALUE)`);
  }
  return name;
}

/**
 * The commands of a build, objects in `objectDir` (nothing is run or checked
 * on disk): each of the driver's sources compiled (instrumented in a coverage
 * build), the kit's runtime sources for a coverage build (from `paths.kit`,
 * not instrumented), and the link into `<drivers>/<name>.sys.tmp`.
 *
 * @throws {LabError} `build` when the options are wrong (no source, a name or definition that is none)
 *
 * @example
 * ```ts
 * import { buildPlan } from "./build.ts";
 * import { labPaths } from "./paths.ts";
 *
 * const plan = buildPlan(labPaths("/lab"), { sources: ["/src/x.c"], coverage: true }, "/tmp/o");
 * plan.sys; // "/lab/lab/drivers/x.sys"
 * plan.commands.at(-1)!.args.includes("-Wl,--entry,KbCovDriverEntry"); // true
 * ```
 */
export function buildPlan(paths: LabPaths, options: BuildOptions, objectDir: string): BuildPlan {
  const name = checkOptions(options);
  const compiler = options.compiler ?? MINGW_GCC;
  const ddk = options.ddkDir ?? MINGW_DDK;
  const sys = `${paths.drivers}/${name}.sys`;
  const commands: BuildCommand[] = [];
  const objects: string[] = [];
  const driverFlags = [
    ...COMMON_FLAGS,
    "-include",
    "kbport.h",
    ...(options.includeDirs ?? []).map((dir) => `-I${dir}`),
    `-I${paths.include}`,
    `-I${ddk}`,
    ...(options.defines ?? []).map((d) => `-D${d}`),
    ...(options.coverage ? COVERAGE_FLAGS : []),
  ];
  options.sources.forEach((source, i) => {
    // Numbered: two sources of one base name in different folders stay apart.
    const object = `${objectDir}/${i}-${baseName(source).replace(/\.c$/i, ".o")}`;
    commands.push({
      program: compiler,
      args: [...driverFlags, "-c", "-o", object, source],
      source,
    });
    objects.push(object);
  });
  if (options.coverage) {
    // The runtime must not be instrumented: its callbacks would call themselves.
    const kitFlags = [...COMMON_FLAGS, "-DKBCOV_ENABLED", `-I${paths.kit}`, `-I${ddk}`];
    for (const file of KIT_SOURCES) {
      const source = `${paths.kit}/${file}`;
      const object = `${objectDir}/kit-${file.replace(/\.c$/, ".o")}`;
      commands.push({ program: compiler, args: [...kitFlags, "-c", "-o", object, source], source });
      objects.push(object);
    }
  }
  const entry = options.coverage ? "KbCovDriverEntry" : "DriverEntry";
  commands.push({
    program: compiler,
    args: [...LINK_FLAGS, `-Wl,--entry,${entry}`, "-o", `${sys}.tmp`, ...objects, ...LIBRARIES],
  });
  return { name, sys, commands };
}

/** The first lines of a failed step's output, indented. */
function firstLines(text: string): string {
  const lines = text.split("\n").map((line) => line.trimEnd()).filter((line) => line !== "");
  const shown = lines.slice(0, SHOWN_LINES).map((line) => `  ${line}`);
  if (lines.length > SHOWN_LINES) shown.push(`  ... (${lines.length - SHOWN_LINES} more lines)`);
  return shown.join("\n");
}

async function runStep(command: BuildCommand, log: string): Promise<void> {
  let result: Deno.CommandOutput;
  try {
    result = await new Deno.Command(command.program, {
      args: [...command.args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new LabError(
        "build",
        `kbridge lab: the compiler ${command.program} is not installed ` +
          "(Debian package gcc-mingw-w64-x86-64; kbridge lab setup installs it)",
        { cause: error },
      );
    }
    throw error;
  }
  const output = new TextDecoder().decode(result.stdout) + new TextDecoder().decode(result.stderr);
  await Deno.writeTextFile(log, `$ ${command.program} ${command.args.join(" ")}\n${output}`, {
    append: true,
  });
  if (result.success) return;
  const what = command.source === undefined ? "linking" : `compiling ${command.source}`;
  throw new LabError(
    "build",
    `kbridge lab: ${what} failed (exit code ${result.code}; all of it in ${log}):\n${
      firstLines(output)
    }`,
  );
}

/**
 * Builds a driver from its C sources into the lab's drivers folder
 * (`<dir>/lab/drivers/<name>.sys`, replaced by a rename: a host still running
 * the old image keeps it, and repeated builds leave nothing behind). A
 * coverage build writes the kit's runtime sources into `<dir>/kit/` first.
 * The log of every step is `<dir>/logs/lab-build-<name>.log`.
 *
 * @throws {LabError} `build`: a source is missing, the compiler is not
 *   installed, or a step failed (the message shows its first lines)
 *
 * @example
 * ```ts ignore
 * import { buildDriver, labPaths, loadDriver, resolveLabDir } from "@kbridge/kbridge/lab";
 *
 * const paths = labPaths(resolveLabDir(undefined));
 * const built = await buildDriver(paths, { sources: ["mydrv.c"], coverage: true });
 * await loadDriver(paths, built.sys); // then: kbridge fuzz ... --service mydrv --coverage
 * ```
 */
export async function buildDriver(paths: LabPaths, options: BuildOptions): Promise<BuiltDriver> {
  checkOptions(options);
  for (const source of options.sources) {
    try {
      if (!(await Deno.stat(source)).isFile) throw new Deno.errors.NotFound(source);
    } catch {
      throw new LabError("build", `kbridge lab: no such source file: ${source}`);
    }
  }
  await Deno.mkdir(paths.logs, { recursive: true });
  await Deno.mkdir(paths.drivers, { recursive: true });
  await Deno.mkdir(paths.include, { recursive: true });
  await writeIfChanged(`${paths.include}/kbport.h`, await shipped("./include/kbport.h"));
  if (options.coverage) {
    await Deno.mkdir(paths.kit, { recursive: true });
    for (const file of [...KIT_SOURCES, ...KIT_HEADERS]) {
      await writeIfChanged(`${paths.kit}/${file}`, await shipped(`../../driver/kit/${file}`));
    }
  }
  const objectDir = await Deno.makeTempDir({ prefix: "kbridge-lab-build-" });
  try {
    const plan = buildPlan(paths, options, objectDir);
    const log = `${paths.logs}/lab-build-${plan.name}.log`;
    await Deno.writeTextFile(log, "");
    try {
      for (const command of plan.commands) await runStep(command, log);
    } catch (error) {
      await Deno.remove(`${plan.sys}.tmp`).catch(() => {});
      throw error;
    }
    await Deno.rename(`${plan.sys}.tmp`, plan.sys);
    return {
      name: plan.name,
      sys: plan.sys,
      coverage: options.coverage === true,
      commands: plan.commands,
    };
  } finally {
    await Deno.remove(objectDir, { recursive: true });
  }
}
