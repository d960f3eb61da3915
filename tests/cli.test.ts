// The CLI's commands that need no Windows, run as a user would (a subprocess),
// and its usage errors: one line, exit code 2.
import assert from "node:assert/strict";
import { runCli } from "./_util.ts";

Deno.test("ctl decode prints the fields and the CTL_CODE expression", async () => {
  const { code, stdout } = await runCli("ctl", "decode", "0x222003");
  assert.equal(code, 0);
  assert.match(stdout, /device type {2}0x22 FILE_DEVICE_UNKNOWN/);
  assert.match(stdout, /function {5}0x800 \(2048\)/);
  assert.match(stdout, /method {7}NEITHER/);
  assert.match(stdout, /CTL_CODE\(FILE_DEVICE_UNKNOWN, 0x800, METHOD_NEITHER, FILE_ANY_ACCESS\)/);
});

Deno.test("ctl encode gives the code in hex and decimal, and JSON on request", async () => {
  const text = await runCli("ctl", "encode", "--device-type", "0x8022", "--function", "0x801");
  assert.match(text.stdout, /code {9}0x80222004 \(2149720068\)/);
  const json = await runCli(
    "ctl",
    "encode",
    "--device-type",
    "FILE_DEVICE_DISK",
    "--function",
    "0",
    "--json",
  );
  assert.equal(JSON.parse(json.stdout).code, 0x70000);
});

Deno.test("usage errors: one line on stderr, exit code 2", async () => {
  for (
    const args of [
      ["frobnicate"],
      ["ctl", "decode", "0xZZ"],
      ["ctl", "encode", "--function", "1"],
      ["ctl", "decode", "1", "--bogus"],
      ["ioctl", "\\\\.\\Kbridge", "1", "--in", "abc"],
      ["watch", "\\\\.\\Kbridge", "--channel", "carrier-pigeon"],
      ["service", "start"],
      ["read"],
      ["write", "\\\\.\\Kbridge"],
      ["write", "\\\\.\\Kbridge", "zz"],
      ["read", "\\\\.\\Kbridge", "--timeout", "5"],
      ["write", "\\\\.\\Kbridge", "00", "--raw", "out.bin"],
    ]
  ) {
    const { code, stderr, stdout } = await runCli(...args);
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    assert.equal(stderr.trim().split("\n").length, 1, `${args.join(" ")}: ${stderr}`);
    assert.equal(stdout, "");
    assert.doesNotMatch(stderr, /\bat .*\.ts:\d+/, "no stack trace");
  }
});

Deno.test("every command has --help with examples, exit 0", async () => {
  for (
    const command of ["ctl", "ioctl", "read", "write", "service", "watch", "bench", "fuzz", "lab"]
  ) {
    const { code, stdout } = await runCli(command, "--help");
    assert.equal(code, 0, command);
    assert.match(stdout, /Usage:[\s\S]*Examples:/, command);
  }
});

Deno.test("a Windows-only command on Linux fails with exit 1 and says why", async () => {
  const { code, stderr } = await runCli("ioctl", "\\\\.\\Kbridge", "0x80222004");
  assert.equal(code, 1);
  assert.match(stderr, /needs Windows/);
});
