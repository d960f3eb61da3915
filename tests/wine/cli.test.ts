// The CLI end to end against the reference driver under Wine.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { runCli } from "../_util.ts";
import {
  Channel,
  ChecksumRequest,
  fnv1a,
  IOCTL,
  ProducerRequest,
  Protocol,
} from "../../src/reference/mod.ts";
import { ctlCode, openDevice, queryDriver, startDriver } from "../../mod.ts";
import { DEVICE_PATH, openKbridge, readStats, SERVICE } from "./_driver.ts";
import { toHex } from "../../src/core/hex.ts";

const hex = (code: number) => `0x${code.toString(16)}`;

Deno.test("ioctl: echo with a hex dump, JSON output, and a decoded error", async () => {
  openKbridge().close();
  const dump = await runCli(
    "ioctl",
    DEVICE_PATH,
    hex(IOCTL.ECHO),
    "--in",
    "68 69 21",
    "--out-size",
    "3",
  );
  assert.equal(dump.code, 0, dump.stderr);
  assert.match(dump.stdout, /3 bytes returned/);
  assert.match(dump.stdout, /00000000 {2}68 69 21 +\|hi!\|/);
  const json = await runCli(
    "ioctl",
    DEVICE_PATH,
    hex(IOCTL.ECHO),
    "--in",
    "0102",
    "--out-size",
    "2",
    "--json",
  );
  assert.deepEqual(JSON.parse(json.stdout), {
    code: IOCTL.ECHO,
    control: "0x80222004 0x8022 fn 0x801 BUFFERED ANY",
    bytesReturned: 2,
    output: "0102",
    error: null,
  });
  const small = await runCli(
    "ioctl",
    DEVICE_PATH,
    hex(IOCTL.ECHO),
    "--in",
    "010203",
    "--out-size",
    "1",
  );
  assert.equal(small.code, 1);
  assert.match(small.stderr, /ERROR_INSUFFICIENT_BUFFER \(122\)/);
});

Deno.test("ioctl --method-aware: METHOD_IN_DIRECT data goes in the --direct buffer", async () => {
  const data = new Uint8Array([1, 2, 3, 4, 5]);
  const request = toHex(ChecksumRequest.encode({ length: data.length, fnv1a: fnv1a(data) }));
  const code = hex(IOCTL.IN_DIRECT_VERIFY);
  const ok = await runCli(
    "ioctl",
    DEVICE_PATH,
    code,
    "--in",
    request,
    "--direct",
    toHex(data),
    "--method-aware",
  );
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(
    ok.stderr,
    /IN_DIRECT ANY: input is copied to a system buffer; the second buffer is locked/,
  );
  assert.match(ok.stdout, /0 bytes returned/);
  const corrupt = await runCli(
    "ioctl",
    DEVICE_PATH,
    code,
    "--in",
    request,
    "--direct",
    "0102030406",
  );
  assert.equal(corrupt.code, 1);
  assert.match(corrupt.stderr, /ERROR_CRC \(23\)/);
  const missing = await runCli("ioctl", DEVICE_PATH, code, "--in", request, "--method-aware");
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--direct/);
});

Deno.test("ioctl: --overlapped --timeout cancels a request the driver keeps pending", async () => {
  const { code, stderr } = await runCli(
    "ioctl",
    DEVICE_PATH,
    hex(IOCTL.PEND),
    "--in",
    "0100000000000000",
    "--out-size",
    "8",
    "--overlapped",
    "--timeout",
    "100",
  );
  assert.equal(code, 1);
  assert.match(stderr, /timed out after 100 ms/);
});

Deno.test("ioctl: a device that does not exist and a missing input file exit 1 with one line", async () => {
  const missing = await runCli("ioctl", "\\\\.\\KbridgeNope", "0x1");
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /ERROR_FILE_NOT_FOUND \(2\)/);
  const noFile = await runCli("ioctl", DEVICE_PATH, "0x1", "--in", "@Z:\\no\\such\\file.bin");
  assert.equal(noFile.code, 2);
  assert.equal(noFile.stderr.trim().split("\n").length, 1);
});

Deno.test("watch: streams the driver's messages as JSON lines", async () => {
  using device = openKbridge();
  const watcher = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      fileURLToPath(new URL("../../cli.ts", import.meta.url)),
      "watch",
      DEVICE_PATH,
      "--channel",
      "inverted",
      "--count",
      "20",
      "--json",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Start producing once the watcher has its inverted requests pending.
  for (let i = 0; i < 500; i++) {
    if (readStats(device).invertedIrps > 0) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  device.ioctl(
    IOCTL.PRODUCER_START,
    ProducerRequest.encode({
      channels: Channel.INVERTED,
      count: 20,
      minSize: 4,
      maxSize: 4,
      intervalUs: 0,
      seed: 1,
      flags: Protocol.PRODUCER_WAIT_FOR_SPACE,
    }),
  );
  const output = await watcher.output();
  const lines = new TextDecoder().decode(output.stdout).replaceAll("\r", "").trim().split("\n");
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  assert.equal(lines.length, 20);
  lines.forEach((line, i) => {
    const message = JSON.parse(line);
    assert.equal(message.sequence, i);
    assert.equal(message.length, 4);
  });
});

Deno.test("service status, and bench --json", async () => {
  const status = await runCli("service", "status", SERVICE, "--json");
  assert.equal(status.code, 0);
  assert.equal(JSON.parse(status.stdout).state, "running");
  const absent = await runCli("service", "status", "kbridgeNoSuchService");
  assert.equal(absent.code, 1);
  assert.match(absent.stdout, /not installed/);
  const bench = await runCli(
    "bench",
    "--iterations",
    "200",
    "--depths",
    "1,8",
    "--size",
    "64",
    "--json",
  );
  assert.equal(bench.code, 0, bench.stderr);
  const report = JSON.parse(bench.stdout);
  assert.equal(report.rows.length, 3);
  for (const row of report.rows) assert.ok(row.requestsPerSecond > 0);
});

/** The sample driver (driver/sample), a kit driver with its own codes. */
const sampleCode = (fn: number, access: "ANY" | "WRITE") =>
  ctlCode({ deviceType: 0x9000, function: fn, method: "BUFFERED", access });
const SAMPLE_START = sampleCode(0x902, "WRITE");

/**
 * Runs `kbridge watch <args>` and, once it says it is watching, starts the
 * sample's ticks (every 20 ms, 100 of them); returns its output.
 */
async function watchSample(args: string[]): Promise<{ code: number; out: string; err: string }> {
  if (queryDriver("kbsample")?.state !== "running") startDriver("kbsample");
  using sample = openDevice("\\\\.\\KbSample");
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", fileURLToPath(new URL("../../cli.ts", import.meta.url)), "watch", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000), // a watcher that never gets its messages is killed
  }).spawn();
  const out = new Response(child.stdout).text();
  let err = "";
  const decoder = new TextDecoder();
  let started = false;
  for await (const chunk of child.stderr) {
    err += decoder.decode(chunk, { stream: true });
    if (!started && err.includes("watching")) {
      started = true;
      sample.ioctl(SAMPLE_START, new Uint8Array([20, 0, 0, 0, 100, 0, 0, 0]));
    }
  }
  const { code } = await child.status;
  return { code, out: (await out).replaceAll("\r", ""), err };
}

Deno.test("watch: a kit driver by its own codes, and --stream of any pended code (the sample driver)", async () => {
  const section = await watchSample([
    "\\\\.\\KbSample",
    "--section-open",
    hex(sampleCode(0x910, "WRITE")),
    "--section-close",
    hex(sampleCode(0x911, "WRITE")),
    "--channel",
    "section",
    "--count",
    "3",
  ]);
  assert.equal(section.code, 0, section.err);
  assert.match(section.err, /watching \\\\\.\\KbSample on the section channel/);
  // Each tick: 64 bytes starting with the sample's magic "SMPL".
  assert.match(section.out, /^(#\d+ 64 B {2}53 4d 50 4c .*\n){3}$/);

  const stream = await watchSample([
    "\\\\.\\KbSample",
    "--stream",
    hex(sampleCode(0x904, "ANY")),
    "--out-size",
    "64",
    "--pending",
    "1",
    "--count",
    "3",
    "--json",
  ]);
  assert.equal(stream.code, 0, stream.err);
  const outputs = stream.out.trim().split("\n").map((line) => JSON.parse(line));
  assert.equal(outputs.length, 3);
  const counters = outputs.map((o: { length: number; data: string }) => {
    assert.equal(o.length, 64);
    assert.ok(o.data.startsWith("534d504c"), o.data);
    return Number.parseInt(
      o.data.slice(14, 16) + o.data.slice(12, 14) + o.data.slice(10, 12) + o.data.slice(8, 10),
      16,
    );
  });
  assert.ok(counters[0] < counters[1] && counters[1] < counters[2], `${counters}`);

  const misuse = await runCli("watch", "\\\\.\\KbSample", "--stream", "0x90002410");
  assert.equal(misuse.code, 2);
  assert.match(misuse.stderr, /--stream needs --out-size/);
  const half = await runCli("watch", "\\\\.\\KbSample", "--section-open", "0x9000A440");
  assert.equal(half.code, 2);
  assert.match(half.stderr, /needs both --section-open and --section-close/);
});

Deno.test("read and write: a file's bytes at an offset, JSON, and a driver without a read routine", async () => {
  const path = await Deno.makeTempFile({ prefix: "kbridge-cli-rw-" });
  try {
    await Deno.writeFile(path, new TextEncoder().encode("hello world"));
    const written = await runCli("write", path, "58 59", "--offset", "6", "--json");
    assert.equal(written.code, 0, written.stderr);
    assert.deepEqual(JSON.parse(written.stdout), { call: "WriteFile", bytes: 2, error: null });
    const dump = await runCli("read", path, "--size", "5", "--offset", "6");
    assert.equal(dump.code, 0, dump.stderr);
    assert.match(dump.stdout, /ReadFile: 5 bytes read/);
    assert.match(dump.stdout, /\|XYrld\|/);
    const json = await runCli("read", path, "--overlapped", "--timeout", "1000", "--json");
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), {
      call: "ReadFile",
      bytes: 11,
      data: toHex(new TextEncoder().encode("hello XYrld")),
      error: null,
    });
  } finally {
    await Deno.remove(path);
  }
  openKbridge().close();
  const refused = await runCli("read", DEVICE_PATH, "--size", "8");
  assert.equal(refused.code, 1);
  assert.ok(
    refused.stderr.startsWith(`ReadFile("${DEVICE_PATH}") failed: ERROR_INVALID_FUNCTION (1)`),
    refused.stderr,
  );
});
