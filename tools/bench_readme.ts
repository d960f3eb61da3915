/**
 * Regenerates tests/bench/results.md and the README's benchmark table from
 * tests/bench/results.json (the latest run of each machine, see tests/bench/report.ts);
 * tools/bench.sh runs it after every bench run. `--check` only reports (exit 1) when either
 * file is out of date, for the test suite.
 *
 *     deno run --allow-read --allow-write --allow-run tools/bench_readme.ts [--check]
 *
 * @module
 */
import {
  readmeBlock,
  renderResults,
  replaceReadmeBlock,
  type ResultsFile,
} from "../tests/bench/report.ts";

const root = new URL("../", import.meta.url);
const readmeUrl = new URL("README.md", root);
const resultsMdUrl = new URL("tests/bench/results.md", root);

/** Formats markdown as `deno fmt` would in this repository (its line width). */
async function formatMarkdown(text: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext", "md", "--config", new URL("deno.json", root).pathname, "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { success, stdout } = await child.output();
  if (!success) throw new Error("deno fmt failed on the generated markdown");
  return new TextDecoder().decode(stdout);
}

const results: ResultsFile = JSON.parse(
  await Deno.readTextFile(new URL("tests/bench/results.json", root)),
);
const readme = await Deno.readTextFile(readmeUrl);
const wanted = [
  { url: readmeUrl, text: await formatMarkdown(replaceReadmeBlock(readme, readmeBlock(results))) },
  { url: resultsMdUrl, text: await formatMarkdown(renderResults(results)) },
];
let stale = false;
for (const { url, text } of wanted) {
  if ((await Deno.readTextFile(url)) === text) continue;
  if (Deno.args.includes("--check")) {
    console.error(`${url.pathname} is out of date: run tools/bench_readme.ts`);
    stale = true;
  } else {
    await Deno.writeTextFile(url, text);
  }
}
if (stale) Deno.exit(1);
