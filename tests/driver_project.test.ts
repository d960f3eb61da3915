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
