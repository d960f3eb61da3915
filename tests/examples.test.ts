// The README's line counts of the sample-driver examples are the examples' own, and each
// is at most as long as the pywin32 program for the same job.
import assert from "node:assert/strict";

const root = new URL("..", import.meta.url);

/** Non-blank lines, without the statements that define a struct layout (`const X = struct(...)`). */
function countLines(source: string): number {
  let count = 0;
  let inLayout = false;
  for (const line of source.split("\n")) {
    if (/^const \w+ = struct\(/.test(line)) {
      inLayout = !line.trimEnd().endsWith(");");
      continue;
    }
    if (inLayout) {
      if (line.startsWith("});")) inLayout = false;
      continue;
    }
    if (line.trim() !== "") count++;
  }
  return count;
}

Deno.test("countLines leaves out blank lines and struct layouts only", () => {
  const source = [
    "// comment",
    'const A = struct({ x: "u32" });',
    "",
    "const B = struct({",
    '  y: "u64",',
    "});",
    "console.log(A.size + B.size);",
  ].join("\n");
  assert.equal(countLines(source), 2);
});

Deno.test("the README's table of example lengths matches the examples and the pywin32 limits", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", root));
  const rows = [...readme.matchAll(/^\| [^|]*\(`(sample_\w+\.ts)`\) *\| (\d+) *\| (\d+) *\|$/gm)];
  assert.deepEqual(rows.map((row) => row[1]).sort(), [
    "sample_classic.ts",
    "sample_inverted.ts",
    "sample_named.ts",
  ]);
  for (const [, file, pywin32, kbridge] of rows) {
    const lines = countLines(await Deno.readTextFile(new URL(`examples/${file}`, root)));
    assert.equal(
      lines,
      Number(kbridge),
      `${file}: the README says ${kbridge}, the file has ${lines}`,
    );
    assert.ok(lines <= Number(pywin32), `${file}: ${lines} lines, pywin32 needs ${pywin32}`);
  }
});
