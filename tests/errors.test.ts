import assert from "node:assert/strict";
import {
  ArgumentError,
  ChannelUnavailableError,
  checkBufferSource,
  checkInteger,
  ClosedError,
  CorruptRingError,
  KbridgeError,
  NonblockingCallError,
  UnsupportedPlatformError,
} from "../src/core/errors.ts";
import {
  AbortError,
  TimeoutError,
  WarningStatusError,
  Win32Error,
} from "../src/core/win32_error.ts";
import {
  formatNtStatus,
  NTSTATUS_NAMES,
  ntStatusName,
  WIN32_ERROR_NAMES,
  win32ErrorName,
} from "../src/core/error_names.ts";

Deno.test("Win32Error describes the call, control code, error and NTSTATUS", () => {
  const error = new Win32Error({
    code: 122,
    call: "DeviceIoControl",
    controlCode: 0x222003,
    ntStatus: 0xC0000023,
  });
  assert.equal(
    error.message,
    "DeviceIoControl(0x222003 FILE_DEVICE_UNKNOWN fn 0x800 NEITHER ANY) failed: " +
      "ERROR_INSUFFICIENT_BUFFER (122), NTSTATUS STATUS_BUFFER_TOO_SMALL (0xC0000023)",
  );
  assert.equal(error.name, "Win32Error");
  assert.equal(error.code, 122);
  assert.equal(error.errorName, "ERROR_INSUFFICIENT_BUFFER");
  assert.equal(error.call, "DeviceIoControl");
  assert.equal(error.ntStatus, 0xC0000023);
  assert.equal(error.controlCode?.function, 0x800);
  assert.equal(error.controlCode?.methodName, "NEITHER");
  assert.ok(String(error).startsWith("Win32Error: DeviceIoControl(0x222003"));
});

Deno.test("Win32Error without a control code, with a detail, with unknown codes", () => {
  const notFound = new Win32Error({ code: 2, call: "CreateFileW" });
  assert.equal(notFound.message, "CreateFileW failed: ERROR_FILE_NOT_FOUND (2)");
  assert.equal(notFound.controlCode, undefined);
  assert.ok(!("controlCode" in notFound) && !("ntStatus" in notFound) && !("detail" in notFound));

  const path = new Win32Error({ code: 2, call: "CreateFileW", detail: "\\\\.\\Nope" });
  assert.equal(path.message, 'CreateFileW("\\\\.\\Nope") failed: ERROR_FILE_NOT_FOUND (2)');
  assert.equal(path.detail, "\\\\.\\Nope");

  const both = new Win32Error({
    code: 5,
    call: "DeviceIoControl",
    controlCode: 0x70000,
    detail: "x",
  });
  assert.equal(
    both.message,
    'DeviceIoControl(0x70000 FILE_DEVICE_DISK fn 0x0 BUFFERED ANY, "x") failed: ' +
      "ERROR_ACCESS_DENIED (5)",
  );

  const unknown = new Win32Error({ code: 12345, call: "Foo", ntStatus: 0xC0001234 });
  assert.equal(unknown.message, "Foo failed: Win32 error 12345, NTSTATUS 0xC0001234");
  assert.equal(unknown.errorName, "Win32 error 12345");

  const signed = new Win32Error({ code: 995, call: "GetOverlappedResult", ntStatus: -1073741536 });
  assert.equal(
    signed.message,
    "GetOverlappedResult failed: ERROR_OPERATION_ABORTED (995), " +
      "NTSTATUS STATUS_CANCELLED (0xC0000120)",
  );

  const cause = new Error("inner");
  assert.equal(new Win32Error({ code: 1, call: "X", cause }).cause, cause);
});

Deno.test("AbortError carries the signal's reason and code 995", () => {
  const controller = new AbortController();
  controller.abort(new Error("shutting down"));
  const error = new AbortError({
    call: "DeviceIoControl",
    controlCode: 0x222003,
    reason: controller.signal.reason,
  });
  assert.equal(error.name, "AbortError");
  assert.equal(error.code, 995);
  assert.equal(error.errorName, "ERROR_OPERATION_ABORTED");
  assert.equal(error.cause, controller.signal.reason);
  assert.equal(
    error.message,
    "DeviceIoControl(0x222003 FILE_DEVICE_UNKNOWN fn 0x800 NEITHER ANY) aborted: shutting down",
  );
  assert.ok(String(error.stack).startsWith("AbortError: DeviceIoControl("));
  assert.equal(
    new AbortError({ call: "ReadFile", reason: "stop" }).message,
    "ReadFile aborted: stop",
  );
  assert.equal(new AbortError({ call: "ReadFile" }).message, "ReadFile aborted: no reason given");
});

Deno.test("TimeoutError gives the timeout and code 995", () => {
  const error = new TimeoutError({
    call: "DeviceIoControl",
    controlCode: 0x80222040,
    timeoutMs: 500,
  });
  assert.equal(error.name, "TimeoutError");
  assert.equal(error.code, 995);
  assert.equal(error.timeoutMs, 500);
  assert.equal(
    error.message,
    "DeviceIoControl(0x80222040 0x8022 fn 0x810 BUFFERED ANY) timed out after 500 ms",
  );
});

Deno.test("the other errors read well", () => {
  const closed = new ClosedError("device \\\\.\\Kbridge");
  assert.equal(closed.message, "kbridge: device \\\\.\\Kbridge is closed");
  assert.equal(closed.name, "ClosedError");
  assert.equal(closed.resource, "device \\\\.\\Kbridge");

  const cause = new Error("busy");
  const channel = new ChannelUnavailableError("section", "another subscriber holds it", {
    cause,
  });
  assert.equal(
    channel.message,
    "kbridge: the section channel is unavailable: another subscriber holds it",
  );
  assert.equal(channel.name, "ChannelUnavailableError");
  assert.equal(channel.channel, "section");
  assert.equal(channel.reason, "another subscriber holds it");
  assert.equal(channel.cause, cause);

  const platform = new UnsupportedPlatformError("DeviceIoControl");
  assert.equal(
    platform.message,
    `kbridge: DeviceIoControl needs Windows (Deno.build.os is ${Deno.build.os})`,
  );
  assert.equal(platform.name, "UnsupportedPlatformError");
  assert.equal(platform.os, Deno.build.os);
  assert.equal(
    new UnsupportedPlatformError("CreateFileW", "darwin").message,
    "kbridge: CreateFileW needs Windows (Deno.build.os is darwin)",
  );

  const base = new KbridgeError("kbridge: plain", { cause });
  assert.equal(base.name, "KbridgeError");
  assert.equal(base.cause, cause);
});

// deno-lint-ignore no-explicit-any
type ErrorClass = new (...args: any[]) => Error;

Deno.test("every error is a KbridgeError and an Error", () => {
  const errors: [Error, string, ErrorClass[]][] = [
    [new KbridgeError("x"), "KbridgeError", []],
    [new Win32Error({ code: 1, call: "X" }), "Win32Error", [Win32Error]],
    [new AbortError({ call: "X" }), "AbortError", [Win32Error, AbortError]],
    [new TimeoutError({ call: "X", timeoutMs: 1 }), "TimeoutError", [Win32Error, TimeoutError]],
    [new ClosedError("x"), "ClosedError", [ClosedError]],
    [new ArgumentError("f", "a", "b", 1), "ArgumentError", [ArgumentError]],
    [new ChannelUnavailableError("c", "r"), "ChannelUnavailableError", [ChannelUnavailableError]],
    [new UnsupportedPlatformError("X"), "UnsupportedPlatformError", [UnsupportedPlatformError]],
    [new CorruptRingError("r"), "CorruptRingError", [CorruptRingError]],
    [new NonblockingCallError("X", "R"), "NonblockingCallError", [NonblockingCallError]],
    [
      new WarningStatusError({
        code: 234,
        call: "X",
        ntStatus: 0x8000_0005,
        data: new Uint8Array(),
      }),
      "WarningStatusError",
      [Win32Error, WarningStatusError],
    ],
  ];
  const all: ErrorClass[] = [
    Win32Error,
    AbortError,
    TimeoutError,
    ClosedError,
    ArgumentError,
    ChannelUnavailableError,
    UnsupportedPlatformError,
    CorruptRingError,
    NonblockingCallError,
    WarningStatusError,
  ];
  for (const [error, name, classes] of errors) {
    assert.ok(error instanceof Error);
    assert.ok(error instanceof KbridgeError);
    assert.equal(error.name, name);
    for (const type of all) assert.equal(error instanceof type, classes.includes(type), name);
  }
});

Deno.test("ArgumentError names the function and the argument and describes the value", () => {
  const error = new ArgumentError("open", "path", "a non-empty string", "");
  assert.equal(error.message, 'open: path must be a non-empty string, got ""');
  assert.equal(error.functionName, "open");
  assert.equal(error.argument, "path");

  const detached = new ArrayBuffer(8);
  const overDetached = new Uint8Array(detached);
  structuredClone(detached, { transfer: [detached] });
  const got = (value: unknown) =>
    new ArgumentError("f", "a", "b", value).message.slice("f: a must be b, got ".length);
  assert.equal(new ArgumentError("f", "a", "b", 1).message, "f: a must be b, got 1");
  assert.equal(got("x".repeat(41)), "a string of length 41");
  assert.equal(got(5n), "5n");
  assert.equal(got(null), "null");
  assert.equal(got(undefined), "undefined");
  assert.equal(got(Symbol("s")), "Symbol(s)");
  assert.equal(got(() => 1), "a function");
  assert.equal(got([1, 2]), "an array of length 2");
  assert.equal(got({}), "an object");
  assert.equal(got(new Map()), "a Map");
  assert.equal(got(new Error("e")), "an Error");
  assert.equal(got(new ArrayBuffer(3)), "an ArrayBuffer of 3 bytes");
  assert.equal(got(new Uint16Array(3)), "a Uint16Array of 6 bytes");
  assert.equal(got(new Int32Array(1)), "an Int32Array of 4 bytes");
  assert.equal(got(detached), "a detached ArrayBuffer");
  assert.equal(got(overDetached), "a Uint8Array over a detached ArrayBuffer");
});

Deno.test("checkInteger accepts integers in range and names the argument otherwise", () => {
  assert.equal(checkInteger("f", "n", 0, 0, 3), 0);
  assert.equal(checkInteger("f", "n", 3, 0, 3), 3);
  assert.equal(checkInteger("f", "n", -5, -5, 5), -5);
  const cases: [unknown, number, number, string][] = [
    [4, 0, 3, "f: n must be an integer in 0..3, got 4"],
    [-1, 0, 0xFFF, "f: n must be an integer in 0..0xFFF, got -1"],
    [2 ** 32, 0, 0xFFFFFFFF, "f: n must be an integer in 0..0xFFFFFFFF, got 4294967296"],
    [1000, 0, 999, "f: n must be an integer in 0..999, got 1000"],
    [-129, -128, 127, "f: n must be an integer in -128..127, got -129"],
    [0.5, 0, 1, "f: n must be an integer in 0..1, got 0.5"],
    [NaN, 0, 1, "f: n must be an integer in 0..1, got NaN"],
    ["1", 0, 1, 'f: n must be an integer in 0..1, got "1"'],
  ];
  for (const [value, min, max, message] of cases) {
    assert.throws(() => checkInteger("f", "n", value, min, max), {
      name: "ArgumentError",
      message,
    });
  }
});

Deno.test("checkBufferSource returns a view of the same memory and rejects the rest", () => {
  const buffer = new ArrayBuffer(16);
  const fromBuffer = checkBufferSource("f", "b", buffer);
  assert.equal(fromBuffer.buffer, buffer);
  assert.equal(fromBuffer.length, 16);

  const words = new Uint32Array(buffer, 4, 2);
  const fromView = checkBufferSource("f", "b", words);
  assert.equal(fromView.buffer, buffer);
  assert.equal(fromView.byteOffset, 4);
  assert.equal(fromView.length, 8);
  fromView[0] = 0xFF;
  assert.equal(words[0], 0xFF);

  const fromDataView = checkBufferSource("f", "b", new DataView(buffer, 2, 3));
  assert.deepEqual([fromDataView.byteOffset, fromDataView.length], [2, 3]);
  assert.equal(checkBufferSource("f", "b", new SharedArrayBuffer(4)).length, 4);
  assert.equal(checkBufferSource("f", "b", new ArrayBuffer(0)).length, 0);

  const detached = new ArrayBuffer(8);
  const view = new Uint8Array(detached);
  structuredClone(detached, { transfer: [detached] });
  const expected = "f: b must be an ArrayBuffer or ArrayBufferView whose memory is not detached";
  for (
    const [value, got] of [
      [detached, "a detached ArrayBuffer"],
      [view, "a Uint8Array over a detached ArrayBuffer"],
      ["bytes", '"bytes"'],
      [[1, 2], "an array of length 2"],
      [null, "null"],
      [undefined, "undefined"],
    ] as const
  ) {
    assert.throws(() => checkBufferSource("f", "b", value), {
      name: "ArgumentError",
      message: `${expected}, got ${got}`,
    });
  }
});

Deno.test("win32ErrorName and ntStatusName", () => {
  assert.equal(win32ErrorName(0), "ERROR_SUCCESS");
  assert.equal(win32ErrorName(5), "ERROR_ACCESS_DENIED");
  assert.equal(win32ErrorName(258), "WAIT_TIMEOUT");
  assert.equal(win32ErrorName(997), "ERROR_IO_PENDING");
  assert.equal(win32ErrorName(1275), "ERROR_DRIVER_BLOCKED");
  assert.equal(win32ErrorName(1784), "ERROR_INVALID_USER_BUFFER");
  assert.equal(win32ErrorName(12345), "Win32 error 12345");
  assert.equal(ntStatusName(0), "STATUS_SUCCESS");
  assert.equal(ntStatusName(0x103), "STATUS_PENDING");
  assert.equal(ntStatusName(0x80000011), "STATUS_DEVICE_BUSY");
  assert.equal(ntStatusName(0xC0000010), "STATUS_INVALID_DEVICE_REQUEST");
  assert.equal(ntStatusName(-1073741808), "STATUS_INVALID_DEVICE_REQUEST");
  assert.equal(ntStatusName(0xC0001234), "NTSTATUS 0xC0001234");
  assert.equal(ntStatusName(0x42), "NTSTATUS 0x00000042");
  assert.equal(ntStatusName(NaN), "NTSTATUS NaN");
  assert.equal(ntStatusName(2 ** 32), "NTSTATUS 4294967296");
  assert.equal(formatNtStatus(-1), "0xFFFFFFFF");
  const names = [...WIN32_ERROR_NAMES.values(), ...NTSTATUS_NAMES.values()];
  assert.equal(new Set(names).size, names.length, "no name twice");
});

const MINGW = "/usr/x86_64-w64-mingw32/include";

function canRead(path: string): boolean {
  if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") return false;
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** `#define NAME <value>` lines of a header, as name → value. */
function defines(path: string, value: RegExp): Map<string, number> {
  const found = new Map<string, number>();
  const line = new RegExp(`^#define\\s+(\\w+)\\s+${value.source}`, "gm");
  for (const match of Deno.readTextFileSync(path).matchAll(line)) {
    found.set(match[1], Number(match[2]));
  }
  return found;
}

Deno.test({
  name: "the Win32 error names are those of mingw's winerror.h",
  ignore: !canRead(`${MINGW}/winerror.h`),
  fn() {
    const header = defines(`${MINGW}/winerror.h`, /__MSABI_LONG\((\d+)\)/);
    for (const [code, name] of WIN32_ERROR_NAMES) assert.equal(header.get(name), code, name);
  },
});

Deno.test({
  name: "the NTSTATUS names are those of mingw's ntstatus.h",
  ignore: !canRead(`${MINGW}/ntstatus.h`),
  fn() {
    const header = defines(`${MINGW}/ntstatus.h`, /\(\(NTSTATUS\)(0x[0-9A-Fa-f]+)L?\)/);
    for (const [status, name] of NTSTATUS_NAMES) assert.equal(header.get(name), status, name);
  },
});

Deno.test("WarningStatusError carries the bytes and says the request completed", () => {
  const output = new Uint8Array([1, 2, 3, 4, 5]);
  const error = new WarningStatusError({
    code: 234,
    call: "DeviceIoControl",
    controlCode: 0x8022_201c,
    ntStatus: 0x8000_0005,
    data: output.subarray(0, 3),
  });
  assert.equal(error.code, 234);
  assert.equal(error.errorName, "ERROR_MORE_DATA");
  assert.equal(error.ntStatus, 0x8000_0005);
  assert.equal(error.bytesReturned, 3);
  assert.deepEqual(error.data, new Uint8Array([1, 2, 3]));
  assert.equal(error.data.buffer, output.buffer);
  assert.equal(
    error.message,
    "DeviceIoControl(0x8022201C 0x8022 fn 0x807 BUFFERED ANY) completed with a warning: " +
      "ERROR_MORE_DATA (234), NTSTATUS STATUS_BUFFER_OVERFLOW (0x80000005), 3 bytes returned",
  );
});

Deno.test("NonblockingCallError names the call and its result, and has no code", () => {
  const error = new NonblockingCallError("WaitForMultipleObjects", "WAIT_FAILED");
  assert.equal(error.call, "WaitForMultipleObjects");
  assert.equal(error.result, "WAIT_FAILED");
  assert.ok(!("code" in error));
  assert.equal(
    error.message,
    "kbridge: WaitForMultipleObjects returned WAIT_FAILED on a worker thread " +
      "(its error code stays on that thread)",
  );
});
