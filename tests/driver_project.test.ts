// The two driver builds (mingw Makefile, WDK project) name the same sources:
// every .c and .h in driver/.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const driverDir = fileURLToPath(new URL("../driver/", import.meta.url));

async function driverFiles(extension: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(driverDir)) {
    if (entry.isFile && entry.name.endsWith(extension)) names.push(entry.name);
  }
  return names.sort();
}

Deno.test("the WDK project lists every driver source and header, and nothing else", async () => {
  const project = await Deno.readTextFile(`${driverDir}kbridge.vcxproj`);
  const compiled = [...project.matchAll(/<ClCompile Include="([^"]+)"/g)].map((m) => m[1]).sort();
  const included = [...project.matchAll(/<ClInclude Include="([^"]+)"/g)].map((m) => m[1]).sort();
  assert.deepEqual(compiled, await driverFiles(".c"));
  assert.deepEqual(included, await driverFiles(".h"));
  assert.match(project, /<DriverType>WDM<\/DriverType>/);
});

Deno.test("the mingw Makefile builds every driver source", async () => {
  const makefile = await Deno.readTextFile(`${driverDir}Makefile`);
  const sources = (/^SOURCES\s*[:+]?=\s*((?:.*\\\n)*.*)$/m.exec(makefile)?.[1] ?? "")
    .replace(/\\\n/g, " ").split(/\s+/).filter((s) => s).sort();
  assert.deepEqual(sources, await driverFiles(".c"));
  assert.match(makefile, /-Wall -Wextra -Werror/);
});

Deno.test("the solution names the project and the INF names the driver file", async () => {
  const solution = await Deno.readTextFile(`${driverDir}kbridge.sln`);
  assert.match(solution, /"kbridge\.vcxproj"/);
  const inf = await Deno.readTextFile(`${driverDir}kbridge.inf`);
  assert.match(inf, /kbridge\.sys/i);
});
