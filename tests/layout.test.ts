// The library's layout: no import cycle in src/, the generic module free of the reference
// protocol, the device layer free of the channels built on it.
import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import * as generic from "../mod.ts";
import * as reference from "../src/reference/mod.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Every .ts file under `dir`, as paths relative to the repository root. */
async function sources(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(join(root, dir))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) files.push(...await sources(path));
    else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

/** The relative modules `file` imports or re-exports (type-only ones too), root-relative. */
function importsOf(file: string, text: string): string[] {
  const withoutComments = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const specifiers = [
    ...withoutComments.matchAll(/(?:import|export)\s[^;]*?from\s*"(\.{1,2}\/[^"]+)"/g),
    ...withoutComments.matchAll(/import\s*\(\s*"(\.{1,2}\/[^"]+)"\s*\)/g),
  ].map((m) => m[1]);
  return specifiers.map((s) => relative(root, join(root, dirname(file), s)));
}

/** The import graph of src/: file → the files it imports. */
async function graph(): Promise<Map<string, string[]>> {
  const edges = new Map<string, string[]>();
  for (const file of await sources("src")) {
    edges.set(file, importsOf(file, await Deno.readTextFile(join(root, file))));
  }
  return edges;
}

/** One import cycle of `edges` as a path that ends where it starts, or undefined. */
function findCycle(edges: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (file: string): string[] | undefined => {
    if (state.get(file) === "done") return undefined;
    if (state.get(file) === "open") return [...path.slice(path.indexOf(file)), file];
    state.set(file, "open");
    path.push(file);
    for (const next of edges.get(file) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(file, "done");
    return undefined;
  };
  for (const file of edges.keys()) {
    const cycle = visit(file);
    if (cycle) return cycle;
  }
  return undefined;
}

Deno.test("the import parser sees static, type-only, re-export and dynamic imports", () => {
  const text = [
    'import { a } from "./a.ts";',
    'import type { B } from "../core/b.ts";',
    "export {\n  c,\n} from './ignored-single-quotes.ts';",
    'export { d } from "./d.ts";',
    '// import { e } from "./commented.ts";',
    'const f = await import("./f.ts");',
    'import { g } from "node:util";',
  ].join("\n");
  assert.deepEqual(importsOf("src/io/x.ts", text), [
    "src/io/a.ts",
    "src/core/b.ts",
    "src/io/d.ts",
    "src/io/f.ts",
  ]);
});

Deno.test("the cycle search finds a cycle and accepts a DAG", () => {
  const cyclic = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]]);
  assert.deepEqual(findCycle(cyclic), ["a", "b", "c", "a"]);
  assert.equal(findCycle(new Map([["a", ["b", "c"]], ["b", ["c"]], ["c", []]])), undefined);
});

Deno.test("src/ has no import cycle", async () => {
  const edges = await graph();
  assert.ok(edges.size > 30, `${edges.size} files`);
  assert.equal(findCycle(edges)?.join(" -> "), undefined);
});

Deno.test("the device layer imports nothing from channels/ or reference/", async () => {
  const edges = await graph();
  for (const [file, imports] of edges) {
    if (!file.startsWith("src/io/") && !file.startsWith("src/core/")) continue;
    const upward = imports.filter((i) => /^src\/(channels|reference|fuzz|cli)\//.test(i));
    assert.deepEqual(upward, [], file);
  }
});

Deno.test("mod.ts exports no symbol of the reference protocol", () => {
  const shared = Object.keys(reference).filter((name) => name in generic);
  assert.deepEqual(shared, []);
  assert.ok("Ring" in generic && "RingHeader" in generic && "RecordHeader" in generic);
  assert.equal("subscribe" in generic.Device.prototype, false, "the entry is subscribe(device)");
});
