// The Wine harness does not grow its prefix with use: running the Windows Deno
// several times leaves no new big file behind (Deno's node-compat shim used to leave
// a 97 MB copy of deno.exe per run). Run by tools/test.sh, which sets the
// harness's environment (WINEPREFIX, KB_DENO_EXE, DENO_DISABLE_NODE_SHIM, …).
import assert from "node:assert/strict";

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

function harness(name: string): string {
  const value = Deno.env.get(name);
  assert.ok(value, `${name} is not set: run this test through tools/test.sh (deno task test)`);
  return value;
}

Deno.test(`${RUNS} runs of the Windows Deno leave no new file over 1 MiB in the Wine prefix`, async () => {
  const prefix = harness("WINEPREFIX");
  const denoExe = harness("KB_DENO_EXE");
  const before = await bigFiles(`${prefix}/drive_c`);
  for (let run = 0; run < RUNS; run++) {
    const { code, stdout } = await new Deno.Command("wine", {
      args: [denoExe, "eval", "console.log(Deno.pid)"],
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
