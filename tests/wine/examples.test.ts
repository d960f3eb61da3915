// Every file in examples/ runs against its driver (the reference driver, or the kit's
// sample driver for sample_*.ts) and succeeds.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { queryDriver, startDriver } from "../../mod.ts";
import { ensureDriverRunning } from "./_driver.ts";

const examplesDir = new URL("../../examples/", import.meta.url);
/** What each example must print (besides exiting with 0). */
const EXPECTED: Record<string, RegExp> = {
  "demo.ts": /done: 2000 messages .* all in order and byte-exact/,
  "transfer_methods.ts": /BUFFERED +ok[\s\S]*IN_DIRECT +ok[\s\S]*OUT_DIRECT +ok[\s\S]*NEITHER +ok/,
  "cancel.ts": /released:[\s\S]*aborted:[\s\S]*timed out:/,
  "sample_classic.ts": /refuses the classic pattern here: .*ERROR_NOT_SUPPORTED \(50\)/,
  "sample_named.ts": /tick 1: counter 1, value 3\n[\s\S]*tick 5: counter 5, value 15\n/,
  "sample_inverted.ts": /tick 1 \([\s\S]*tick 5 \(/,
};
const ARGS: Record<string, string[]> = { "demo.ts": ["--count", "2000"] };

const examples = [...Deno.readDirSync(examplesDir)].filter((e) => e.name.endsWith(".ts")).map((e) =>
  e.name
).sort();

Deno.test("every example has an expectation", () => {
  assert.deepEqual(examples, Object.keys(EXPECTED).sort());
});

for (const name of examples) {
  Deno.test(`examples/${name} runs against its driver`, async () => {
    if (name.startsWith("sample_")) {
      if (queryDriver("kbsample")?.state !== "running") startDriver("kbsample");
    } else {
      ensureDriverRunning();
    }
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", fileURLToPath(new URL(name, examplesDir)), ...(ARGS[name] ?? [])],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, text);
    assert.match(text.replaceAll("\r", ""), EXPECTED[name]);
  });
}
