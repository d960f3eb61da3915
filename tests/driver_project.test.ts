// The two driver builds (mingw Makefile, WDK project) name the same sources:
// every .c and .h in driver/ and in the channel kit, driver/kit/.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const driverDir = fileURLToPath(new URL("../driver/", import.meta.url));

/** The files of `dir` (relative to driver/, "" or "kit/") ending in `extension`, with that prefix. */
async function driverFiles(dir: string, extension: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(`${driverDir}${dir}`)) {
    if (entry.isFile && entry.name.endsWith(extension)) names.push(`${dir}${entry.name}`);
  }
  return names.sort();
}

/** The words of a make variable's definition `NAME := ...` (with continuation lines). */
function makeList(makefile: string, name: string): string[] {
  const value = new RegExp(`^${name}\\s*[:+]?=\\s*((?:.*\\\\\\n)*.*)$`, "m").exec(makefile)?.[1] ??
    "";
  return value.replace(/\\\n/g, " ").split(/\s+/).filter((s) => s).sort();
}

Deno.test("the WDK project lists every driver and kit source and header, and nothing else", async () => {
  const project = await Deno.readTextFile(`${driverDir}kbridge.vcxproj`);
  const listed = (item: string) =>
    [...project.matchAll(new RegExp(`<${item} Include="([^"]+)"`, "g"))]
      .map((m) => m[1].replaceAll("\\", "/")).sort();
  assert.deepEqual(
    listed("ClCompile"),
    [...await driverFiles("", ".c"), ...await driverFiles("kit/", ".c")].sort(),
  );
  assert.deepEqual(
    listed("ClInclude"),
    [...await driverFiles("", ".h"), ...await driverFiles("kit/", ".h")].sort(),
  );
  assert.match(project, /<DriverType>WDM<\/DriverType>/);
  const filters = await Deno.readTextFile(`${driverDir}kbridge.vcxproj.filters`);
  for (const file of [...listed("ClCompile"), ...listed("ClInclude")]) {
    assert.ok(
      filters.includes(`Include="${file.replaceAll("/", "\\")}"`),
      `${file} in the filters`,
    );
  }
});

Deno.test("the mingw Makefile builds every driver source, and kit.mk every kit source", async () => {
  const makefile = await Deno.readTextFile(`${driverDir}Makefile`);
  assert.deepEqual(makeList(makefile, "SOURCES"), await driverFiles("", ".c"));
  assert.match(makefile, /^include \$\(KBKIT_DIR\)kit\.mk$/m);
  assert.match(makefile, /\$\(KBKIT_SOURCES:/);
  assert.match(makefile, /-Wall -Wextra -Werror/);
  const kit = await Deno.readTextFile(`${driverDir}kit/kit.mk`);
  const kitSources =
    /KBKIT_SOURCES := \$\(addprefix \$\(KBKIT_DIR\),((?:.*\\\n)*.*)\)$/m.exec(kit)?.[1] ?? "";
  assert.deepEqual(
    kitSources.replace(/\\\n/g, " ").split(/\s+/).filter((s) => s).map((s) => `kit/${s}`).sort(),
    await driverFiles("kit/", ".c"),
  );
});

Deno.test("the solution names the project and the INF names the driver file", async () => {
  const solution = await Deno.readTextFile(`${driverDir}kbridge.sln`);
  assert.match(solution, /"kbridge\.vcxproj"/);
  const inf = await Deno.readTextFile(`${driverDir}kbridge.inf`);
  assert.match(inf, /kbridge\.sys/i);
});

Deno.test("the WDK build follows the primitive-driver INF rules, runs Code Analysis, has a version resource", async () => {
  const inf = await Deno.readTextFile(`${driverDir}kbridge.inf`);
  assert.match(inf, /^Class\s*=\s*System\s*$/m);
  assert.match(inf, /^ClassGuid\s*=\s*\{4d36e97d-e325-11ce-bfc1-08002be10318\}\s*$/im);
  // Only decorated install sections, all with the same OS floor.
  const sections = [...inf.matchAll(/^\[(Default(?:Uni|I)nstall[^\]]*)\]/gm)].map((m) => m[1]);
  assert.deepEqual(sections.sort(), [
    "DefaultInstall.NTamd64.10.0...18362",
    "DefaultInstall.NTamd64.10.0...18362.Services",
    "DefaultUninstall.NTamd64.10.0...18362",
    "DefaultUninstall.NTamd64.10.0...18362.Services",
  ]);
  const project = await Deno.readTextFile(`${driverDir}kbridge.vcxproj`);
  assert.match(project, /<RunCodeAnalysis>true<\/RunCodeAnalysis>/);
  assert.match(project, /<CodeAnalysisRuleSet>[^<]*Driver[^<]*\.ruleset<\/CodeAnalysisRuleSet>/);
  assert.match(project, /<ResourceCompile Include="kbridge\.rc" \/>/);
  const rc = await Deno.readTextFile(`${driverDir}kbridge.rc`);
  assert.match(rc, /VS_VERSION_INFO VERSIONINFO/);
  assert.match(rc, /FILEVERSION\s+KB_DRIVER_MAJOR, KB_DRIVER_MINOR/);
});

/** The export data directory (RVA, size) and the DLL flag of a PE32+ image. */
function peExports(image: Uint8Array): { rva: number; size: number; dll: boolean } {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const pe = view.getUint32(0x3c, true);
  assert.equal(view.getUint32(pe, true), 0x0000_4550, "PE signature");
  const characteristics = view.getUint16(pe + 22, true);
  const optional = pe + 24;
  assert.equal(view.getUint16(optional, true), 0x20b, "PE32+ optional header");
  // PE32+: the data directories start 112 bytes into the optional header; entry 0 is exports.
  return {
    rva: view.getUint32(optional + 112, true),
    size: view.getUint32(optional + 116, true),
    dll: (characteristics & 0x2000) !== 0,
  };
}

Deno.test("both builds of both drivers export nothing and are images, not DLLs", async () => {
  const build = fileURLToPath(new URL("../build/", import.meta.url));
  const make = new Deno.Command("make", {
    args: ["-s", "-C", driverDir, "all", "seh", `OUT=${build}driver`, `SEH_OUT=${build}driver-seh`],
  });
  const { code, stderr } = await make.output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  for (const dir of ["driver", "driver-seh"]) {
    for (const name of ["kbridge.sys", "kbsample.sys"]) {
      const exports = peExports(await Deno.readFile(`${build}${dir}/${name}`));
      assert.deepEqual(exports, { rva: 0, size: 0, dll: false }, `${dir}/${name}`);
    }
  }
});
