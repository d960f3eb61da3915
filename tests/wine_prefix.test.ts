// The Wine harness does not grow build/ with use: running the Windows Deno
// several times, with the lab's environment (src/lab/wine.ts), leaves no new big
// file in the prefix (Deno's node-compat shim used to leave a 97 MB copy of
// deno.exe per run), and installing the drivers again leaves its log as it was.
// Needs the lab set up in build/ (KB_BUILD), as tools/test.sh does first.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { labPaths } from "../src/lab/paths.ts";
import { wineEnv } from "../src/lab/wine.ts";

const BIG = 1024 * 1024;
const RUNS = 5;

/** Files over 1 MiB under `dir`, by path, with their size and inode. */
async function bigFiles(
  dir: string,
  found = new Map<string, string>(),
): Promise<Map<string, string>> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) await bigFiles(path, found);
    else if (entry.isFile) {
      const info = await Deno.lstat(path);
      if (info.size > BIG) found.set(path, `${info.size} bytes, inode ${info.ino}`);
    }
  }
  return found;
}

const BUILD = Deno.env.get("KB_BUILD") ?? fileURLToPath(new URL("../build", import.meta.url));

Deno.test(`${RUNS} runs of the Windows Deno leave no new file over 1 MiB in the Wine prefix`, async () => {
  const paths = labPaths(BUILD);
  const prefix = paths.prefix;
  const before = await bigFiles(`${prefix}/drive_c`);
  for (let run = 0; run < RUNS; run++) {
    const { code, stdout } = await new Deno.Command("wine", {
      args: [paths.denoExe, "eval", "console.log(Deno.pid)"],
      env: wineEnv(paths),
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    assert.equal(code, 0, `deno.exe run ${run} exited with ${code}`);
    assert.match(new TextDecoder().decode(stdout), /^\d+\r?\n$/);
  }
  const after = await bigFiles(`${prefix}/drive_c`);
  const grown = [...after].filter(([path, what]) => before.get(path) !== what);
  assert.deepEqual(grown, [], "new or changed files over 1 MiB after the runs");
});

Deno.test("installing the drivers again (tools/wine.sh) leaves driver-load.log as it was", async () => {
  const install = async () => {
    const { code, stderr } = await new Deno.Command("bash", {
      args: ["-c", "source tools/env.sh && source tools/wine.sh && kb_install_driver"],
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      env: { KB_BUILD: BUILD },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    return await Deno.readTextFile(`${labPaths(BUILD).logs}/driver-load.log`);
  };
  const first = await install();
  assert.match(first, /built .*kbmagic\.sys/);
  assert.equal(await install(), first);
});
