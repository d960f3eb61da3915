import assert from "node:assert/strict";
import { ArgumentError } from "../src/core/errors.ts";
import {
  array,
  bytes,
  type FieldSpec,
  type FieldType,
  type ScalarTypeName,
  struct,
  type StructType,
  wchar,
} from "../src/core/struct.ts";

/** mulberry32: a small seeded PRNG, so failures reproduce. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6D2B79F5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function assertArgumentError(run: () => unknown, argument: string, message?: string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ArgumentError, `expected an ArgumentError, got ${error}`);
    assert.equal(error.argument, argument, error.message);
    if (message !== undefined) assert.equal(error.message, message);
    return true;
  });
}

Deno.test("fields are aligned to their natural alignment, the size to the largest", () => {
  const cases: [StructType<unknown>, Record<string, number>, number, number][] = [
    [struct({ a: "u8", b: "u64" }), { a: 0, b: 8 }, 16, 8],
    [struct({ a: "u64", b: "u8" }), { a: 0, b: 8 }, 16, 8],
    [struct({ a: "u16", b: "u8" }), { a: 0, b: 2 }, 4, 2],
    [struct({ a: "u8", b: "u16", c: "u8" }), { a: 0, b: 2, c: 4 }, 6, 2],
    [struct({ a: "u8", b: "i8", c: "bool8" }), { a: 0, b: 1, c: 2 }, 3, 1],
    [struct({ a: "u8", b: "f32", c: "f64" }), { a: 0, b: 4, c: 8 }, 16, 8],
    [struct({ a: "u32", b: "ptr", c: "handle", d: "usize" }), { a: 0, b: 8, c: 16, d: 24 }, 32, 8],
    [struct({ a: "u8", b: array("u32", 3), c: "u8" }), { a: 0, b: 4, c: 16 }, 20, 4],
    [struct({ a: "u8", b: wchar(3) }), { a: 0, b: 2 }, 8, 2],
    [struct({ a: "u8", b: bytes(3), c: "u16" }), { a: 0, b: 1, c: 4 }, 6, 2],
    [struct({ a: "u8", b: struct({ x: "u8", y: "u32" }) }), { a: 0, b: 4 }, 12, 4],
    [struct({ a: "u8", b: struct({ x: "u8", y: "i64" }), c: "u8" }), { a: 0, b: 8, c: 24 }, 32, 8],
    [struct({ a: "u16", b: array(struct({ x: "u8", y: "u16" }), 2) }), { a: 0, b: 2 }, 10, 2],
    [struct({ a: "u8", b: array(array("u16", 2), 2), c: "u8" }), { a: 0, b: 2, c: 10 }, 12, 2],
  ];
  for (const [type, offsets, size, align] of cases) {
    assert.deepEqual(type.offsets, offsets);
    assert.equal(type.size, size, JSON.stringify(offsets));
    assert.equal(type.align, align, JSON.stringify(offsets));
  }
});

Deno.test("the kbridge driver's structs have the layout of kbridge.h", () => {
  const stats = struct({
    OpenFiles: "u32",
    PoolAllocations: "u32",
    PendedIrps: "u32",
    InvertedIrps: "u32",
    InvertedQueued: "u32",
    Sections: "u32",
    ClassicMappings: "u32",
    EventReferences: "u32",
    ProducerRunning: "u32",
    Reserved: "u32",
    MessagesProduced: "u64",
    InvertedOverflow: "u64",
    RingDropped: "u64",
  });
  assert.equal(stats.size, 64);
  assert.equal(stats.offsets.MessagesProduced, 40);
  const ring = struct({
    Magic: "u32",
    Version: "u32",
    Capacity: "u32",
    HeaderSize: "u32",
    Reserved0: bytes(48),
    Head: "u32",
    Dropped: "u32",
    ProducerClosed: "u32",
    Reserved1: bytes(52),
    Tail: "u32",
    ConsumerWaiting: "u32",
    Reserved2: bytes(56),
    Reserved3: bytes(64),
  });
  assert.equal(ring.size, 256);
  assert.equal(ring.offsets.Head, 64);
  assert.equal(ring.offsets.Tail, 128);
  const record = struct({ Length: "u32", Flags: "u32", Sequence: "u64", Timestamp: "u64" });
  assert.equal(record.size, 24);
  const classic = struct({ EventHandle: "handle", RingBytes: "u32", Reserved: "u32" });
  assert.deepEqual([classic.size, classic.offsets.RingBytes], [16, 8]);
});

Deno.test("encode and decode scalars little-endian, missing fields as zero", () => {
  const S = struct({
    a: "u8",
    b: "i16",
    c: "u32",
    d: "i32",
    e: "u64",
    f: "i64",
    g: "f32",
    h: "f64",
    i: "bool8",
    j: "handle",
  });
  const encoded = S.encode({ b: -2, c: 0x11223344, f: -1n, g: 1.5, i: true });
  assert.equal(encoded.length, S.size);
  const view = new DataView(encoded.buffer);
  assert.equal(view.getInt16(S.offsets.b, true), -2);
  assert.deepEqual([...encoded.subarray(S.offsets.c, S.offsets.c + 4)], [0x44, 0x33, 0x22, 0x11]);
  assert.equal(view.getBigInt64(S.offsets.f, true), -1n);
  assert.equal(view.getFloat32(S.offsets.g, true), 1.5);
  assert.equal(encoded[S.offsets.i], 1);
  const decoded: {
    a: number;
    b: number;
    c: number;
    d: number;
    e: bigint;
    f: bigint;
    g: number;
    h: number;
    i: boolean;
    j: bigint;
  } = S.decode(encoded);
  assert.deepEqual(decoded, {
    a: 0,
    b: -2,
    c: 0x11223344,
    d: 0,
    e: 0n,
    f: -1n,
    g: 1.5,
    h: 0,
    i: true,
    j: 0n,
  });
  encoded[S.offsets.i] = 7;
  assert.equal(S.decode(encoded).i, true);
});

Deno.test("wchar strings round-trip, non-ASCII included, and must fit with their NUL", () => {
  const S = struct({ tag: "u8", name: wchar(4) });
  for (const name of ["", "a", "abc", "äöü", "日本語", "a😀", "\uD800x"]) {
    const encoded = S.encode({ name });
    assert.equal(S.decode(encoded).name, name);
    assert.equal(new DataView(encoded.buffer).getUint16(2 + name.length * 2, true), 0);
  }
  const units = S.encode({ name: "Aé" }).subarray(2, 8);
  assert.deepEqual([...units], [0x41, 0, 0xE9, 0, 0, 0]);
  const expected = "a string of at most 3 UTF-16 code units without NUL (wchar[4])";
  for (const [name, got] of [["abcd", '"abcd"'], ["😀😀", '"😀😀"'], ["a\0b", '"a\\u0000b"']]) {
    assertArgumentError(
      () => S.encode({ name }),
      "name",
      `struct.encode: name must be ${expected}, got ${got}`,
    );
  }
  assertArgumentError(() => S.encode({ name: 5 as never }), "name");
  const full = new Uint8Array(S.size);
  full.set([0x41, 0, 0x42, 0, 0x43, 0, 0x44, 0], 2);
  assert.equal(S.decode(full).name, "ABCD", "a full array without NUL decodes whole");
  full.set([0, 0], 4);
  assert.equal(S.decode(full).name, "A", "decoding stops at the first NUL");
  const long = struct({ text: wchar(50_000) });
  const text = "x".repeat(49_999);
  assert.equal(long.decode(long.encode({ text })).text, text);
});

Deno.test("arrays and bytes round-trip; shorter values leave zeros", () => {
  const Point = struct({ x: "i32", y: "i32" });
  const S = struct({
    points: array(Point, 3),
    grid: array(array("u8", 2), 2),
    data: bytes(4),
    names: array(wchar(3), 2),
  });
  const value = {
    points: [{ x: 1, y: -1 }, { x: 2, y: -2 }, { x: 3, y: -3 }],
    grid: [[1, 2], [3, 4]],
    data: new Uint8Array([9, 8, 7, 6]),
    names: ["ab", "c"],
  };
  const decoded = S.decode(S.encode(value));
  assert.deepEqual(decoded, value);
  const points: { x: number; y: number }[] = decoded.points;
  assert.equal(points.length, 3);
  assert.deepEqual(S.decode(S.encode({ points: [{ x: 5 }], data: new Uint8Array([1]) })), {
    points: [{ x: 5, y: 0 }, { x: 0, y: 0 }, { x: 0, y: 0 }],
    grid: [[0, 0], [0, 0]],
    data: new Uint8Array([1, 0, 0, 0]),
    names: ["", ""],
  });
  assert.deepEqual(
    S.decode(S.encode({ data: new Uint16Array([0x0201]) })).data,
    new Uint8Array([1, 2, 0, 0]),
  );
  const encoded = S.encode(value);
  const data = S.decode(encoded).data;
  encoded.fill(0);
  assert.deepEqual(data, new Uint8Array([9, 8, 7, 6]), "decoded bytes are a copy");
  assertArgumentError(
    () => S.encode({ grid: [[1, 2], [3, 4], [5, 6]] }),
    "grid",
    "struct.encode: grid must be an array of at most 2 elements, got an array of length 3",
  );
  assertArgumentError(() => S.encode({ grid: [[1, 2], [3, 256]] }), "grid[1][1]");
  assertArgumentError(() => S.encode({ points: [{}, { y: 2 ** 31 }] }), "points[1].y");
  assertArgumentError(() => S.encode({ names: ["abc"] }), "names[0]");
  assertArgumentError(
    () => S.encode({ data: new Uint8Array(5) }),
    "data",
    "struct.encode: data must be at most 4 bytes long, got a Uint8Array of 5 bytes",
  );
  assertArgumentError(() => S.encode({ data: [1, 2] as never }), "data");
  assertArgumentError(() => S.encode({ points: "xy" as never }), "points");
});

Deno.test("encode writes into a target at an offset and zeroes padding there", () => {
  const S = struct({ a: "u8", b: "u32", c: "u16" });
  const target = new Uint8Array(32).fill(0xAA);
  const written = S.encode({ a: 1, c: 3 }, target, 4);
  assert.equal(written.buffer, target.buffer);
  assert.equal(written.byteOffset, 4);
  assert.equal(written.length, S.size);
  assert.deepEqual([...target.subarray(0, 4)], [0xAA, 0xAA, 0xAA, 0xAA]);
  assert.deepEqual([...written], [...S.encode({ a: 1, c: 3 })]);
  assert.ok(target.subarray(4 + S.size).every((byte) => byte === 0xAA));
  assert.deepEqual(S.decode(target, 4), { a: 1, b: 0, c: 3 });
  assert.deepEqual(S.decode(target.buffer, 4), { a: 1, b: 0, c: 3 });
  assert.deepEqual(S.decode(new DataView(target.buffer, 4)), { a: 1, b: 0, c: 3 });
  assert.deepEqual(S.decode(target.subarray(4)), { a: 1, b: 0, c: 3 });

  assertArgumentError(
    () => S.encode({}, target, 21),
    "offset",
    "struct.encode: offset must be an integer in 0..20, got 21",
  );
  assertArgumentError(() => S.encode({}, target, -1), "offset");
  assertArgumentError(
    () => S.encode({}, new Uint8Array(8)),
    "target",
    "struct.encode: target must be at least 12 bytes long, got a Uint8Array of 8 bytes",
  );
});

Deno.test("decode checks the length and the offset", () => {
  const S = struct({ a: "u64", b: "u32" }, { name: "PAIR" });
  assertArgumentError(
    () => S.decode(new Uint8Array(15)),
    "bytes",
    "PAIR.decode: bytes must be at least 16 bytes long, got a Uint8Array of 15 bytes",
  );
  assertArgumentError(
    () => S.decode(new ArrayBuffer(20), 8),
    "bytes",
    "PAIR.decode: bytes must be at least 24 bytes long (16 from offset 8), got an ArrayBuffer of 20 bytes",
  );
  assertArgumentError(() => S.decode(new Uint8Array(16), 1.5), "offset");
  assertArgumentError(() => S.decode(new Uint8Array(16), 17), "offset");
  assertArgumentError(() => S.decode("bytes" as never), "bytes");
  const detached = new ArrayBuffer(16);
  structuredClone(detached, { transfer: [detached] });
  assertArgumentError(() => S.decode(detached), "bytes");
});

Deno.test("encode rejects values that are not objects and fields the struct lacks", () => {
  const S = struct({ id: "u32", inner: struct({ x: "u8" }) }, { name: "OUTER" });
  assertArgumentError(
    () => S.encode({ id: 1, idd: 2 } as never),
    "idd",
    "OUTER.encode: idd must be absent: OUTER has no such field (its fields: id, inner), got 2",
  );
  assertArgumentError(
    () => S.encode({ inner: { x: 1, y: 2 } } as never),
    "inner.y",
    "OUTER.encode: inner.y must be absent: struct has no such field (its fields: x), got 2",
  );
  assertArgumentError(
    () => S.encode(5 as never),
    "value",
    "OUTER.encode: value must be an object with fields of OUTER, got 5",
  );
  assertArgumentError(() => S.encode({ inner: [] as never }), "inner");
  assertArgumentError(() => S.encode({ inner: null as never }), "inner");
  assert.deepEqual(S.decode(S.encode(Object.create({ id: 5 }))), { id: 0, inner: { x: 0 } });
  const toStringField = struct({ toString: "u8" });
  assert.deepEqual(toStringField.decode(toStringField.encode({})), { toString: 0 });
});

Deno.test("scalar range checks name the field", () => {
  const S = struct({
    u8: "u8",
    i8: "i8",
    u16: "u16",
    i16: "i16",
    u32: "u32",
    i32: "i32",
    u64: "u64",
    i64: "i64",
    ptr: "ptr",
    f32: "f32",
    f64: "f64",
    flag: "bool8",
  });
  const bad: [string, unknown, string][] = [
    ["u8", 256, "an integer in 0..0xFF, got 256"],
    ["u8", -1, "an integer in 0..0xFF, got -1"],
    ["i8", 128, "an integer in -128..127, got 128"],
    ["i8", -129, "an integer in -128..127, got -129"],
    ["u16", 65536, "an integer in 0..0xFFFF, got 65536"],
    ["u16", 1.5, "an integer in 0..0xFFFF, got 1.5"],
    ["i16", -32769, "an integer in -32768..32767, got -32769"],
    ["u32", 2 ** 32, "an integer in 0..0xFFFFFFFF, got 4294967296"],
    ["u32", NaN, "an integer in 0..0xFFFFFFFF, got NaN"],
    ["u32", 1n, "an integer in 0..0xFFFFFFFF, got 1n"],
    ["i32", 2 ** 31, "an integer in -2147483648..2147483647, got 2147483648"],
    ["u64", -1n, "a bigint in 0..0xFFFFFFFFFFFFFFFF, a KernelEvent or a pointer, got -1n"],
    [
      "u64",
      2n ** 64n,
      "a bigint in 0..0xFFFFFFFFFFFFFFFF, a KernelEvent or a pointer, got 18446744073709551616n",
    ],
    ["u64", 1, "a bigint in 0..0xFFFFFFFFFFFFFFFF, a KernelEvent or a pointer, got 1"],
    [
      "u64",
      { handleValue: 1 },
      "a bigint in 0..0xFFFFFFFFFFFFFFFF, a KernelEvent or a pointer, got an object",
    ],
    ["u64", {}, "a bigint in 0..0xFFFFFFFFFFFFFFFF, a KernelEvent or a pointer, got an object"],
    ["i64", null, "a bigint in -9223372036854775808..9223372036854775807, got null"],
    [
      "i64",
      2n ** 63n,
      "a bigint in -9223372036854775808..9223372036854775807, got 9223372036854775808n",
    ],
    ["ptr", -1n, "a bigint in 0..0xFFFFFFFFFFFFFFFF, a KernelEvent or a pointer, got -1n"],
    ["f32", 1e39, "a number within the f32 range, got 1e+39"],
    ["f32", "1", 'a number within the f32 range, got "1"'],
    ["f64", 1n, "a number, got 1n"],
    ["flag", 1, "a boolean, got 1"],
  ];
  for (const [field, value, expected] of bad) {
    assertArgumentError(
      () => S.encode({ [field]: value }),
      field,
      `struct.encode: ${field} must be ${expected}`,
    );
  }
  const edges = {
    u8: 255,
    i8: -128,
    u16: 65535,
    i16: -32768,
    u32: 0xFFFFFFFF,
    i32: -(2 ** 31),
    u64: 2n ** 64n - 1n,
    i64: -(2n ** 63n),
    ptr: 2n ** 64n - 1n,
    f32: Infinity,
    f64: -0,
    flag: true,
  };
  assert.deepEqual(S.decode(S.encode(edges)), edges);
  assert.ok(Number.isNaN(S.decode(S.encode({ f32: NaN, f64: NaN })).f32));
});

Deno.test("struct, array, wchar and bytes reject bad definitions", () => {
  assertArgumentError(() => struct({}), "fields");
  assertArgumentError(() => struct(null as never), "fields");
  assertArgumentError(() => struct({ a: "u128" as never }), "a");
  assertArgumentError(() => struct({ a: { size: 1 } as never }), "a");
  assertArgumentError(() => struct({ "1": "u8" }), "field name");
  assertArgumentError(() => struct({ "a-b": "u8" }), "field name");
  assertArgumentError(
    () => array("u8", 0),
    "length",
    "array: length must be an integer in 1..0x7FFFFFFF, got 0",
  );
  assertArgumentError(() => array("u64", 2 ** 28), "length");
  assertArgumentError(() => array("nope" as never, 2), "element");
  assertArgumentError(() => wchar(0), "length");
  assertArgumentError(() => wchar(1.5), "length");
  assertArgumentError(() => bytes(-1), "length");
  assertArgumentError(() => struct({ a: array(bytes(2 ** 30), 1), b: bytes(2 ** 30) }), "fields");
});

// --- Property tests on random struct definitions ------------------------------------------

type Random = () => number;

/** A random field type with what the tests need to know about it. */
interface Model {
  spec: FieldSpec;
  type: FieldType<unknown>;
  /** A random value that fits. */
  value(random: Random): unknown;
  /** A value that does not fit. */
  bad(random: Random): unknown;
  /** Struct fields or array elements, to reach nested values. */
  children?: Map<string | number, Model>;
}

const SCALARS: ScalarTypeName[] = [
  "u8",
  "i8",
  "u16",
  "i16",
  "u32",
  "i32",
  "u64",
  "i64",
  "usize",
  "ptr",
  "handle",
  "f32",
  "f64",
  "bool8",
];

function int(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)];
}

function randomBits64(random: Random): bigint {
  return (BigInt(int(random, 0, 0xFFFFFFFF)) << 32n) | BigInt(int(random, 0, 0xFFFFFFFF));
}

function scalarModel(name: ScalarTypeName): Model {
  const integer = (bits: number, signed: boolean): Model => {
    const min = signed ? -(2 ** (bits - 1)) : 0;
    const max = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
    return {
      spec: name,
      type: struct({ x: name }).fields.x,
      value: (random) => random() < 0.2 ? pick(random, [min, max, 0]) : int(random, min, max),
      bad: (random) => pick(random, [min - 1, max + 1, 0.5, "1", 1n]),
    };
  };
  const big = (signed: boolean): Model => ({
    spec: name,
    type: struct({ x: name }).fields.x,
    value: (random) => {
      const bits = randomBits64(random);
      return signed ? BigInt.asIntN(64, bits) : bits;
    },
    bad: (random) => pick(random, signed ? [2n ** 63n, -(2n ** 63n) - 1n, 1] : [-1n, 2n ** 64n, 1]),
  });
  const float = (f32: boolean): Model => ({
    spec: name,
    type: struct({ x: name }).fields.x,
    value: (random) => {
      const x = (random() - 0.5) * 10 ** int(random, -30, 30);
      return f32 ? Math.fround(x) : x;
    },
    bad: (random) => f32 ? pick(random, [1e39, "1", 1n]) : pick(random, ["1", 1n, null]),
  });
  switch (name) {
    case "u8":
      return integer(8, false);
    case "i8":
      return integer(8, true);
    case "u16":
      return integer(16, false);
    case "i16":
      return integer(16, true);
    case "u32":
      return integer(32, false);
    case "i32":
      return integer(32, true);
    case "i64":
      return big(true);
    case "u64":
    case "usize":
    case "ptr":
    case "handle":
      return big(false);
    case "f32":
      return float(true);
    case "f64":
      return float(false);
    case "bool8":
      return {
        spec: name,
        type: struct({ x: name }).fields.x,
        value: (random) => random() < 0.5,
        bad: (random) => pick(random, [0, 1, "true"]),
      };
  }
}

function randomModel(random: Random, depth: number): Model {
  const kind = depth >= 3 ? int(random, 0, 2) : int(random, 0, 4);
  if (kind === 0 || (kind === 1 && random() < 0.5)) return scalarModel(pick(random, SCALARS));
  if (kind === 1) {
    const length = int(random, 1, 12);
    const spec = wchar(length);
    return {
      spec,
      type: spec,
      value: (random) =>
        String.fromCharCode(
          ...Array.from({ length: int(random, 0, length - 1) }, () => int(random, 1, 0xFFFF)),
        ),
      bad: (random) => random() < 0.5 ? "x".repeat(length) : "\0",
    };
  }
  if (kind === 2) {
    const length = int(random, 1, 12);
    const spec = bytes(length);
    return {
      spec,
      type: spec,
      value: (random) => Uint8Array.from({ length }, () => int(random, 0, 255)),
      bad: () => new Uint8Array(length + 1),
    };
  }
  if (kind === 3) {
    const length = int(random, 1, 4);
    const element = randomModel(random, depth + 1);
    const spec = array(element.spec, length);
    return {
      spec,
      type: spec,
      value: (random) => Array.from({ length }, () => element.value(random)),
      bad: (random) => Array.from({ length: length + 1 }, () => element.value(random)),
      children: new Map(Array.from({ length }, (_, i) => [i, element])),
    };
  }
  return randomStructModel(random, depth + 1);
}

function randomStructModel(random: Random, depth: number): Model {
  const children = new Map<string, Model>();
  const count = int(random, 1, 6);
  for (let i = 0; i < count; i++) children.set(`f${i}`, randomModel(random, depth));
  const spec = struct(Object.fromEntries([...children].map(([key, model]) => [key, model.spec])));
  return {
    spec,
    type: spec,
    value: (random) =>
      Object.fromEntries([...children].map(([key, model]) => [key, model.value(random)])),
    bad: () => ({ unknown: 1 }),
    children,
  };
}

/** Checks the layout rules of every struct in the model, nested ones included. */
function checkLayout(model: Model): void {
  const type = model.type as StructType<Record<string, unknown>>;
  if (model.children !== undefined && "offsets" in type) {
    let end = 0;
    let align = 1;
    for (const [key, child] of model.children) {
      const offset = type.offsets[key as string];
      assert.equal(offset % child.type.align, 0, `${key} is aligned`);
      assert.ok(offset >= end, `${key} does not overlap the field before`);
      assert.ok(offset - end < child.type.align, `${key} has no more padding than needed`);
      end = offset + child.type.size;
      align = Math.max(align, child.type.align);
    }
    assert.equal(type.align, align);
    assert.equal(type.size % type.align, 0, "the size is a multiple of the alignment");
    assert.ok(type.size >= end && type.size - end < align, "tail padding only to the alignment");
  }
  for (const child of model.children?.values() ?? []) checkLayout(child);
}

Deno.test("random structs: layout rules hold and encode then decode is the identity", () => {
  const random = prng(0x5EED);
  for (let round = 0; round < 500; round++) {
    const model = randomStructModel(random, 1);
    const type = model.type as StructType<unknown>;
    checkLayout(model);
    for (let i = 0; i < 4; i++) {
      const value = model.value(random);
      const encoded = type.encode(value as never);
      assert.equal(encoded.length, type.size);
      assert.deepEqual(type.decode(encoded), value);

      // Into a dirty buffer at an offset: the same bytes, and nothing outside them.
      const offset = int(random, 0, 16);
      const target = new Uint8Array(offset + type.size + 8).fill(0xCD);
      type.encode(value as never, target, offset);
      assert.deepEqual(target.subarray(offset, offset + type.size), encoded);
      assert.ok(target.subarray(0, offset).every((byte) => byte === 0xCD));
      assert.ok(target.subarray(offset + type.size).every((byte) => byte === 0xCD));
      assert.deepEqual(type.decode(target, offset), value);
    }
  }
});

Deno.test("random structs: a value that does not fit throws an ArgumentError naming its path", () => {
  const random = prng(0xBAD);
  for (let round = 0; round < 1000; round++) {
    const model = randomStructModel(random, 1);
    const value = model.value(random);
    // Walk down to a random field or element and spoil it.
    let parent = value as Record<string | number, unknown>;
    let node = model;
    let path = "";
    for (;;) {
      const keys = [...node.children!.keys()];
      const key = pick(random, keys);
      path += typeof key === "number" ? `[${key}]` : path === "" ? key : `.${key}`;
      const child = node.children!.get(key)!;
      if (child.children === undefined || random() < 0.3) {
        const bad = child.bad(random);
        parent[key] = bad;
        const isUnknownField = child.children !== undefined && !Array.isArray(bad);
        if (isUnknownField) path += ".unknown";
        break;
      }
      parent = parent[key] as Record<string | number, unknown>;
      node = child;
    }
    assertArgumentError(() => (model.type as StructType<unknown>).encode(value as never), path);
  }
});

Deno.test("unsigned 64-bit fields take a KernelEvent (its handleValue) or a Deno pointer", () => {
  const Request = struct({ eventHandle: "u64", buffer: "ptr", process: "handle", size: "usize" });
  const event = { handleValue: 0x2a4n }; // what a KernelEvent exposes
  const pointer = Deno.UnsafePointer.create(0x7ff6_1234_5000n);
  const bytes = Request.encode({ eventHandle: event, buffer: pointer, process: null, size: 8n });
  assert.deepEqual(Request.decode(bytes), {
    eventHandle: 0x2a4n,
    buffer: 0x7ff6_1234_5000n,
    process: 0n,
    size: 8n,
  });
  assertArgumentError(
    () => Request.encode({ eventHandle: { handleValue: -1n } }),
    "eventHandle",
    "struct.encode: eventHandle must be a bigint in 0..0xFFFFFFFFFFFFFFFF, a KernelEvent or a pointer, got -1n",
  );
});
