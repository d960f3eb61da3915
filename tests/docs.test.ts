// Release readiness: every export of each entry point (deno.json "exports") has JSDoc with an @example.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

interface DocSymbol {
  name: string;
  declarations: { jsDoc?: { tags?: { kind: string }[] } }[];
}

const { exports } = JSON.parse(await Deno.readTextFile(`${root}deno.json`));
const entries = Object.values(exports as Record<string, string>);

Deno.test("deno.json exports the generic module, the reference protocol, the fuzzer, the lab and the CLI", () => {
  assert.deepEqual(Object.keys(exports), [".", "./reference", "./fuzz", "./lab", "./cli"]);
});

for (const entry of entries) {
  Deno.test(`every export of ${entry} has JSDoc with an @example`, async () => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["doc", "--json", entry],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(output.success, new TextDecoder().decode(output.stderr));
    const doc = JSON.parse(new TextDecoder().decode(output.stdout));
    const symbols: DocSymbol[] = Object.values(
      doc.nodes as Record<string, { symbols: DocSymbol[] }>,
    )
      .flatMap((node) => node.symbols);
    assert.ok(symbols.length > 0);
    const missing = symbols
      .filter((s) => !s.declarations.some((d) => d.jsDoc?.tags?.some((t) => t.kind === "example")))
      .map((s) => s.name);
    assert.deepEqual(missing, []);
  });
}
