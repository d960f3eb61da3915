import assert from "node:assert/strict";
import {
  Access,
  ctlCode,
  ctlCodeExpression,
  decodeCtlCode,
  DeviceTypes,
  formatCtlCode,
  Method,
} from "../src/core/ctl_code.ts";
import { ArgumentError } from "../src/core/errors.ts";

/** mulberry32: a small seeded PRNG, so failures reproduce. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6D2B79F5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function roundTrip(code: number): void {
  const back = ctlCode(decodeCtlCode(code));
  if (back !== code) assert.fail(`0x${code.toString(16)} came back as 0x${back.toString(16)}`);
}

Deno.test("ctlCode matches CTL_CODE for real control codes of winioctl.h", () => {
  // CTL_CODE(FILE_DEVICE_UNKNOWN, 0x800, METHOD_NEITHER, FILE_ANY_ACCESS)
  assert.equal(ctlCode({ deviceType: 0x22, function: 0x800, method: 3, access: 0 }), 0x222003);
  // IOCTL_DISK_GET_DRIVE_GEOMETRY: CTL_CODE(IOCTL_DISK_BASE, 0, METHOD_BUFFERED, FILE_ANY_ACCESS)
  assert.equal(
    ctlCode({ deviceType: DeviceTypes.FILE_DEVICE_DISK, function: 0, method: 0, access: 0 }),
    0x70000,
  );
  // IOCTL_DISK_GET_LENGTH_INFO: CTL_CODE(IOCTL_DISK_BASE, 0x17, METHOD_BUFFERED, FILE_READ_ACCESS)
  assert.equal(
    ctlCode({ deviceType: "FILE_DEVICE_DISK", function: 0x17, method: "BUFFERED", access: "READ" }),
    0x7405C,
  );
  // IOCTL_STORAGE_QUERY_PROPERTY: CTL_CODE(IOCTL_STORAGE_BASE, 0x500, METHOD_BUFFERED, FILE_ANY_ACCESS)
  assert.equal(
    ctlCode({
      deviceType: "mass_storage",
      function: 0x500,
      method: Method.Buffered,
      access: Access.Any,
    }),
    0x2D1400,
  );
  // FSCTL_GET_RETRIEVAL_POINTERS: CTL_CODE(FILE_DEVICE_FILE_SYSTEM, 28, METHOD_NEITHER, FILE_ANY_ACCESS)
  assert.equal(
    ctlCode({
      deviceType: "FILE_DEVICE_FILE_SYSTEM",
      function: 28,
      method: "METHOD_NEITHER",
      access: "FILE_ANY_ACCESS",
    }),
    0x90073,
  );
  // The kbridge driver's IOCTL_KBRIDGE_OUT_DIRECT_ECHO: KBRIDGE_CTL(0x803, METHOD_OUT_DIRECT, ...)
  assert.equal(
    ctlCode({ deviceType: 0x8022, function: 0x803, method: "OUT_DIRECT", access: "ANY" }),
    0x8022200E,
  );
  // A code with every bit set is unsigned, not -1.
  assert.equal(ctlCode({ deviceType: 0xFFFF, function: 0xFFF, method: 3, access: 3 }), 0xFFFFFFFF);
});

Deno.test("ctlCode accepts every spelling of methods, accesses and device types", () => {
  const base = { deviceType: 0x22, function: 1 };
  const methods: [string, number][] = [
    ["BUFFERED", 0],
    ["buffered", 0],
    ["METHOD_BUFFERED", 0],
    ["Buffered", 0],
    ["IN_DIRECT", 1],
    ["method_in_direct", 1],
    ["InDirect", 1],
    ["OUT_DIRECT", 2],
    ["METHOD_OUT_DIRECT", 2],
    ["OutDirect", 2],
    ["NEITHER", 3],
    ["Method_Neither", 3],
  ];
  for (const [method, value] of methods) {
    assert.equal(decodeCtlCode(ctlCode({ ...base, method, access: 0 })).method, value, method);
  }
  const accesses: [string, number][] = [
    ["ANY", 0],
    ["any", 0],
    ["FILE_ANY_ACCESS", 0],
    ["FILE_SPECIAL_ACCESS", 0],
    ["READ", 1],
    ["FILE_READ_ACCESS", 1],
    ["Read", 1],
    ["WRITE", 2],
    ["file_write_access", 2],
    ["READ_WRITE", 3],
    ["ReadWrite", 3],
    ["FILE_READ_WRITE_ACCESS", 3],
  ];
  for (const [access, value] of accesses) {
    assert.equal(decodeCtlCode(ctlCode({ ...base, method: 0, access })).access, value, access);
  }
  for (const [name, type] of Object.entries(DeviceTypes)) {
    for (const spelling of [name, name.toLowerCase(), name.slice("FILE_DEVICE_".length)]) {
      const code = ctlCode({ deviceType: spelling, function: 0, method: 0, access: 0 });
      assert.equal(code >>> 16, type, spelling);
    }
  }
});

Deno.test("DeviceTypes holds the winioctl.h names", () => {
  assert.equal(DeviceTypes.FILE_DEVICE_BEEP, 0x01);
  assert.equal(DeviceTypes.FILE_DEVICE_DISK, 0x07);
  assert.equal(DeviceTypes.FILE_DEVICE_UNKNOWN, 0x22);
  assert.equal(DeviceTypes.FILE_DEVICE_MASS_STORAGE, 0x2D);
  assert.equal(DeviceTypes.FILE_DEVICE_NVDIMM, 0x5A);
  const values = Object.values(DeviceTypes);
  assert.equal(new Set(values).size, values.length, "one name per device type");
});

Deno.test("decodeCtlCode takes a code apart", () => {
  assert.deepEqual(decodeCtlCode(0x222003), {
    code: 0x222003,
    deviceType: 0x22,
    deviceTypeName: "FILE_DEVICE_UNKNOWN",
    function: 0x800,
    method: 3,
    methodName: "NEITHER",
    access: 0,
    accessName: "ANY",
    common: false,
    custom: true,
  });
  assert.deepEqual(decodeCtlCode(0x8022E005), {
    code: 0x8022E005,
    deviceType: 0x8022,
    deviceTypeName: undefined,
    function: 0x801,
    method: 1,
    methodName: "IN_DIRECT",
    access: 3,
    accessName: "READ_WRITE",
    common: true,
    custom: true,
  });
  const geometry = decodeCtlCode(0x70000);
  assert.equal(geometry.deviceTypeName, "FILE_DEVICE_DISK");
  assert.equal(geometry.common, false);
  assert.equal(geometry.custom, false);
  assert.equal(decodeCtlCode(0x7405C).accessName, "READ");
  assert.equal(decodeCtlCode(0x2D1400 | 0x8000).accessName, "WRITE");
  assert.equal(decodeCtlCode(0x8022200E).methodName, "OUT_DIRECT");
  assert.equal(decodeCtlCode(0).methodName, "BUFFERED");
});

Deno.test("decode then encode gives every device type back", () => {
  const functions = [0, 1, 0x2A, 0x7FF, 0x800, 0x801, 0xABC, 0xFFF];
  for (let deviceType = 0; deviceType <= 0xFFFF; deviceType++) {
    for (const fn of functions) {
      for (let method = 0; method < 4; method++) {
        for (let access = 0; access < 4; access++) {
          const code = ctlCode({ deviceType, function: fn, method, access });
          const info = decodeCtlCode(code);
          if (
            info.deviceType !== deviceType || info.function !== fn || info.method !== method ||
            info.access !== access || ctlCode(info) !== code
          ) {
            assert.fail(`fields ${[deviceType, fn, method, access]} give 0x${code.toString(16)}`);
          }
        }
      }
    }
  }
});

Deno.test("decode then encode gives every function back", () => {
  for (const deviceType of [0, 0x22, 0x7FFF, 0x8000, 0x8022, 0xFFFF]) {
    for (let fn = 0; fn <= 0xFFF; fn++) {
      for (let low = 0; low < 16; low++) {
        roundTrip(ctlCode({ deviceType, function: fn, method: low & 3, access: low >> 2 }));
      }
    }
  }
});

Deno.test("decode then encode is the identity on random 32-bit values", () => {
  const next = prng(0x6B62);
  for (let i = 0; i < 200_000; i++) roundTrip(next());
  for (const code of [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]) roundTrip(code);
});

Deno.test("formatCtlCode and ctlCodeExpression describe a code", () => {
  assert.equal(formatCtlCode(0x222003), "0x222003 FILE_DEVICE_UNKNOWN fn 0x800 NEITHER ANY");
  assert.equal(formatCtlCode(0x70000), "0x70000 FILE_DEVICE_DISK fn 0x0 BUFFERED ANY");
  assert.equal(formatCtlCode(0x8022E005), "0x8022E005 0x8022 fn 0x801 IN_DIRECT READ_WRITE");
  assert.equal(formatCtlCode(0xFFFFFFFF), "0xFFFFFFFF 0xFFFF fn 0xFFF NEITHER READ_WRITE");
  assert.equal(
    ctlCodeExpression(0x222003),
    "CTL_CODE(FILE_DEVICE_UNKNOWN, 0x800, METHOD_NEITHER, FILE_ANY_ACCESS)",
  );
  assert.equal(
    ctlCodeExpression(0x7405C),
    "CTL_CODE(FILE_DEVICE_DISK, 0x17, METHOD_BUFFERED, FILE_READ_ACCESS)",
  );
  assert.equal(
    ctlCodeExpression(0x8022A00A),
    "CTL_CODE(0x8022, 0x802, METHOD_OUT_DIRECT, FILE_WRITE_ACCESS)",
  );
  assert.equal(
    ctlCodeExpression(0x8022E005),
    "CTL_CODE(0x8022, 0x801, METHOD_IN_DIRECT, FILE_READ_ACCESS | FILE_WRITE_ACCESS)",
  );
});

function assertArgumentError(run: () => unknown, argument: string, message: string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ArgumentError, `expected an ArgumentError, got ${error}`);
    assert.equal(error.argument, argument);
    assert.equal(error.message, message);
    return true;
  });
}

Deno.test("ctlCode names the argument that is out of range or of the wrong type", () => {
  const valid = { deviceType: 0x22, function: 0x800, method: 0, access: 0 };
  const integer = (argument: string, range: string, got: string) =>
    `ctlCode: ${argument} must be an integer in ${range}, got ${got}`;
  const cases: [Record<string, unknown>, string, string][] = [
    [{ function: 4096 }, "function", integer("function", "0..0xFFF", "4096")],
    [{ function: -1 }, "function", integer("function", "0..0xFFF", "-1")],
    [{ function: 1.5 }, "function", integer("function", "0..0xFFF", "1.5")],
    [{ function: NaN }, "function", integer("function", "0..0xFFF", "NaN")],
    [{ function: Infinity }, "function", integer("function", "0..0xFFF", "Infinity")],
    [{ function: "1" }, "function", integer("function", "0..0xFFF", '"1"')],
    [{ function: 1n }, "function", integer("function", "0..0xFFF", "1n")],
    [{ function: undefined }, "function", integer("function", "0..0xFFF", "undefined")],
    [{ deviceType: 0x10000 }, "deviceType", integer("deviceType", "0..0xFFFF", "65536")],
    [{ deviceType: -1 }, "deviceType", integer("deviceType", "0..0xFFFF", "-1")],
    [{ deviceType: null }, "deviceType", integer("deviceType", "0..0xFFFF", "null")],
    [
      { deviceType: "FILE_DEVICE_NOPE" },
      "deviceType",
      'ctlCode: deviceType must be an integer in 0..0xFFFF or a FILE_DEVICE_* name, got "FILE_DEVICE_NOPE"',
    ],
    [{ method: 4 }, "method", integer("method", "0..3", "4")],
    [{ method: -1 }, "method", integer("method", "0..3", "-1")],
    [{ method: 0.5 }, "method", integer("method", "0..3", "0.5")],
    [
      { method: "DIRECT" },
      "method",
      'ctlCode: method must be an integer in 0..3 or one of BUFFERED, IN_DIRECT, OUT_DIRECT, NEITHER, got "DIRECT"',
    ],
    [
      { method: "FILE_ANY_ACCESS" },
      "method",
      'ctlCode: method must be an integer in 0..3 or one of BUFFERED, IN_DIRECT, OUT_DIRECT, NEITHER, got "FILE_ANY_ACCESS"',
    ],
    [{ access: 4 }, "access", integer("access", "0..3", "4")],
    [{ access: NaN }, "access", integer("access", "0..3", "NaN")],
    [
      { access: "EXECUTE" },
      "access",
      'ctlCode: access must be an integer in 0..3 or one of ANY, READ, WRITE, READ_WRITE, got "EXECUTE"',
    ],
    [
      { access: "METHOD_BUFFERED" },
      "access",
      'ctlCode: access must be an integer in 0..3 or one of ANY, READ, WRITE, READ_WRITE, got "METHOD_BUFFERED"',
    ],
  ];
  for (const [change, argument, message] of cases) {
    assertArgumentError(() => ctlCode({ ...valid, ...change } as never), argument, message);
  }
  assertArgumentError(
    () => ctlCode(null as never),
    "parts",
    "ctlCode: parts must be an object, got null",
  );
});

Deno.test("decodeCtlCode, formatCtlCode and ctlCodeExpression reject non-32-bit codes", () => {
  for (const decode of [decodeCtlCode, formatCtlCode, ctlCodeExpression]) {
    for (const [code, got] of [[-1, "-1"], [2 ** 32, "4294967296"], [1.5, "1.5"], [NaN, "NaN"]]) {
      assertArgumentError(
        () => decode(code as number),
        "code",
        `decodeCtlCode: code must be an integer in 0..0xFFFFFFFF, got ${got}`,
      );
    }
  }
});
