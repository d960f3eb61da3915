// The benchmark's results files: each machine's latest run kept side by side, the README's table
// generated from them.
import assert from "node:assert/strict";
import {
  type MachineReport,
  mergeRun,
  readmeBlock,
  renderResults,
  type ResultsFile,
} from "./bench/report.ts";

function assertIncludes(text: string, part: string): void {
  assert.ok(text.includes(part), `expected ${JSON.stringify(part)} in:\n${text}`);
}

const committed: ResultsFile = JSON.parse(
  await Deno.readTextFile(new URL("./bench/results.json", import.meta.url)),
);

/** A run of another CPU model: the committed machine's run with the figures changed. */
function otherMachine(): MachineReport {
  const [first] = Object.values(committed.machines);
  return {
    ...first,
    date: "2099-01-01T00:00:00.000Z",
    machine: { ...first.machine, cpu: "Test CPU (2 CPUs)" },
    rows: first.rows.map((row) => ({
      ...row,
      ratio: { median: 0.123, min: 0.1, max: 0.2 },
      met: row.target === null ? null : false,
    })),
    markdown: "## Test CPU (2 CPUs)\n\nits table\n",
  };
}

Deno.test("bench results: a run of another machine keeps the first machine's table beside it", () => {
  const merged = mergeRun(committed, otherMachine());
  assert.equal(Object.keys(merged.machines).length, Object.keys(committed.machines).length + 1);
  const markdown = renderResults(merged);
  for (const report of Object.values(committed.machines)) {
    assertIncludes(markdown, report.markdown.trimEnd());
    assertIncludes(markdown, `Deno ÷ C, ${report.machine.cpu}`);
  }
  assertIncludes(markdown, "## Test CPU (2 CPUs)");
  // The newest machine's column comes first; each row carries both machines' ratios.
  const row = markdown.split("\n").find((line) => line.startsWith("| sync ECHO 64 B, per call "));
  assert(row !== undefined);
  assertIncludes(row, "0.12 (0.10 … 0.20) ✗ |");
  assert(readmeBlock(merged).indexOf("Test CPU") < readmeBlock(merged).indexOf("AMD"));
});

Deno.test("bench results: a machine's new run replaces only its own", () => {
  const again = mergeRun(mergeRun(committed, otherMachine()), {
    ...otherMachine(),
    markdown: "## Test CPU (2 CPUs)\n\nits second table\n",
  });
  const markdown = renderResults(again);
  assertIncludes(markdown, "its second table");
  assert(!markdown.includes("its table\n"));
});

Deno.test("bench results: README.md and results.md are generated from results.json", async () => {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../tools/bench_readme.ts", import.meta.url).pathname, "--check"],
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
});
