/**
 * A small codec for C structs with the x64 Windows layout (LLP64, as MSVC
 * and MinGW lay them out without `#pragma pack`): every field sits at a
 * multiple of its natural alignment, and the size of a struct is a multiple
 * of its largest field alignment. All values are little-endian.
 *
 * | field type                     | C type                   | size | JS value     |
 * | ------------------------------ | ------------------------ | ---- | ------------ |
 * | `"u8"`, `"i8"`                 | `UINT8`, `INT8`          | 1    | `number`     |
 * | `"u16"`, `"i16"`               | `UINT16`, `INT16`        | 2    | `number`     |
 * | `"u32"`, `"i32"`               | `UINT32`/`ULONG`, `INT32`| 4    | `number`     |
 * | `"u64"`, `"i64"`               | `UINT64`, `INT64`        | 8    | `bigint`     |
 * | `"usize"`, `"ptr"`, `"handle"` | `SIZE_T`, `PVOID`, `HANDLE` | 8 | `bigint`     |
 * | `"f32"`, `"f64"`               | `float`, `double`        | 4, 8 | `number`     |
 * | `"bool8"`                      | `BOOLEAN`                | 1    | `boolean`    |
 * | `wchar(n)`                     | `WCHAR[n]`               | 2n   | `string`     |
 * | `bytes(n)`                     | `UINT8[n]`               | n    | `Uint8Array` |
 * | `array(type, n)`               | `type[n]`                | n × size | array    |
 * | `struct({...})`                | a nested struct          |      | object       |
 *
 * Unsigned 64-bit fields also encode a {@link HandleSource}: a `KernelEvent`
 * (its handle value) or a Deno pointer.
 *
 * @example
 * ```ts
 * import { struct, wchar } from "./struct.ts";
 *
 * const Entry = struct({ id: "u32", flags: "u16", name: wchar(8), size: "u64" });
 * Entry.size; // 32
 * Entry.offsets; // { id: 0, flags: 4, name: 6, size: 24 }
 * const bytes = Entry.encode({ id: 7, name: "hello" }); // flags and size are 0
 * Entry.decode(bytes); // { id: 7, flags: 0, name: "hello", size: 0n }
 * ```
 *
 * @module
 */
import { ArgumentError, checkBufferSource, checkInteger } from "./errors.ts";

/**
 * The scalar field types and the JS type of their values.
 *
 * @example
 * ```ts
 * import type { ScalarTypes } from "./struct.ts";
 *
 * const handle: ScalarTypes["handle"] = 0x1F4n;
 * ```
 */
export interface ScalarTypes {
  /** `UINT8`. */
  u8: number;
  /** `INT8`. */
  i8: number;
  /** `UINT16`, `USHORT`. */
  u16: number;
  /** `INT16`, `SHORT`. */
  i16: number;
  /** `UINT32`, `ULONG`, `DWORD`. */
  u32: number;
  /** `INT32`, `LONG`, `NTSTATUS`. */
  i32: number;
  /** `UINT64`, `ULONGLONG`. */
  u64: bigint;
  /** `INT64`, `LONGLONG`, `LARGE_INTEGER`. */
  i64: bigint;
  /** `SIZE_T`, `ULONG_PTR`: 8 bytes on x64. */
  usize: bigint;
  /** Any pointer: 8 bytes on x64. */
  ptr: bigint;
  /** `HANDLE`: 8 bytes on x64. */
  handle: bigint;
  /** `float`. */
  f32: number;
  /** `double`. */
  f64: number;
  /** `BOOLEAN` (one byte): decodes any non-zero byte as `true`. */
  bool8: boolean;
}

/**
 * The name of a scalar field type, e.g. `"u32"`.
 *
 * @example
 * ```ts
 * import type { ScalarTypeName } from "./struct.ts";
 *
 * const type: ScalarTypeName = "u64";
 * ```
 */
export type ScalarTypeName = keyof ScalarTypes;

/**
 * A field type: its size, alignment and how to read and write its values.
 * {@link wchar}, {@link bytes}, {@link array} and {@link struct} make them;
 * scalar types are given by name. `read` and `write` are the building blocks
 * of {@link StructType.encode} and {@link StructType.decode}.
 *
 * @example
 * ```ts
 * import { wchar } from "./struct.ts";
 *
 * const name = wchar(32);
 * name.size; // 64
 * name.align; // 2
 * name.name; // "wchar[32]"
 * ```
 */
export interface FieldType<T> {
  /** A short description, e.g. `u32`, `wchar[32]`, `u8[4]` or a struct's name. */
  readonly name: string;
  /** Size in bytes, a multiple of {@link FieldType.align}. */
  readonly size: number;
  /** Alignment in bytes. */
  readonly align: number;
  /**
   * Writes `value` to `size` bytes of `view` at `offset`; `undefined` writes
   * zeros. Throws an `ArgumentError` naming `caller` and the field `path`
   * when the value does not fit the type.
   */
  write(view: DataView, offset: number, value: unknown, path: string, caller: string): void;
  /** Reads a value from `size` bytes of `view` at `offset`. */
  read(view: DataView, offset: number): T;
}

/**
 * A field of a struct: a scalar type name or a {@link FieldType}.
 *
 * @example
 * ```ts
 * import { type FieldSpec, wchar } from "./struct.ts";
 *
 * const fields: FieldSpec[] = ["u32", wchar(16)];
 * ```
 */
export type FieldSpec = ScalarTypeName | FieldType<unknown>;

/**
 * The JS type of the values of a field.
 *
 * @example
 * ```ts
 * import type { Infer } from "./struct.ts";
 *
 * const count: Infer<"u64"> = 3n;
 * ```
 */
export type Infer<F> = F extends ScalarTypeName ? ScalarTypes[F]
  : F extends FieldType<infer T> ? T
  : never;

/**
 * The JS type of a struct's values: one property per field.
 *
 * @example
 * ```ts
 * import type { InferFields } from "./struct.ts";
 *
 * const value: InferFields<{ id: "u32"; size: "u64" }> = { id: 1, size: 2n };
 * ```
 */
export type InferFields<S> = { -readonly [K in keyof S]: Infer<S[K]> };

/**
 * What an unsigned 64-bit field (`u64`, `usize`, `ptr`, `handle`) takes
 * besides a bigint: an object with a `handleValue` (a `KernelEvent`), or a
 * Deno pointer (`null` encodes 0). Signed `i64` fields take bigints only.
 *
 * @example
 * ```ts ignore
 * const SetEvent = struct({ eventHandle: "u64" });
 * using event = createEvent();
 * const source: HandleSource = event;
 * SetEvent.encode({ eventHandle: source });
 * ```
 */
export type HandleSource = { readonly handleValue: bigint } | Deno.PointerValue;

/**
 * What {@link StructType.encode} takes: the struct's value with any field
 * left out (at any depth); fields left out are zero. Byte arrays take any
 * buffer or view.
 *
 * @example
 * ```ts
 * import type { EncodeInput } from "./struct.ts";
 *
 * const input: EncodeInput<{ id: number; header: { size: bigint } }> = { header: {} };
 * ```
 */
export type EncodeInput<T> = T extends Uint8Array ? ArrayBuffer | ArrayBufferView
  : T extends bigint ? bigint | HandleSource
  : T extends string | number | boolean ? T
  : T extends readonly (infer E)[] ? readonly EncodeInput<E>[]
  : { readonly [K in keyof T]?: EncodeInput<T[K]> };

/**
 * A struct type made by {@link struct}: its layout, and how to encode values
 * to bytes and decode them back.
 *
 * @example
 * ```ts
 * import { struct } from "./struct.ts";
 *
 * const Pair = struct({ tag: "u8", value: "u64" });
 * Pair.offsets.value; // 8
 * Pair.size; // 16
 * Pair.decode(Pair.encode({ tag: 1, value: 2n })); // { tag: 1, value: 2n }
 * ```
 */
export interface StructType<T> extends FieldType<T> {
  /** The field types, in declaration order. */
  readonly fields: { readonly [K in keyof T]: FieldType<T[K]> };
  /** The byte offset of each field from the start of the struct. */
  readonly offsets: { readonly [K in keyof T]: number };
  /**
   * Encodes `value` (fields left out are zero, padding is zero). Without
   * `target`, returns a new `Uint8Array` of {@link FieldType.size} bytes;
   * with `target`, writes at `offset` in it and returns the view of the
   * bytes written. Throws an `ArgumentError` naming the field for a value
   * that does not fit, and for a field the struct does not have.
   */
  encode(value: EncodeInput<T>, target?: Uint8Array, offset?: number): Uint8Array;
  /**
   * Decodes a value from the bytes at `offset` (default 0). Throws an
   * `ArgumentError` when fewer than {@link FieldType.size} bytes follow.
   */
  decode(bytes: ArrayBuffer | ArrayBufferView, offset?: number): T;
}

/**
 * Options of {@link struct}.
 *
 * @example
 * ```ts
 * import { struct } from "./struct.ts";
 *
 * const Info = struct({ major: "u32", minor: "u32" }, { name: "VERSION_INFO" });
 * ```
 */
export interface StructOptions {
  /** The struct's name, for error messages (`VERSION_INFO.encode: ...`); default `struct`. */
  name?: string;
}

/** The largest size of a type: 2 GiB - 1 bytes. */
const MAX_SIZE = 0x7FFF_FFFF;
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/**
 * Defines a struct with the given fields, in order, laid out as on x64
 * Windows: each field at the next multiple of its alignment, the size rounded
 * up to the largest alignment. Field names must be identifiers.
 *
 * @example
 * ```ts
 * import { array, struct } from "./struct.ts";
 *
 * const Header = struct({ length: "u32", flags: "u32", sequence: "u64" });
 * const Packet = struct({ header: Header, tag: "u8", samples: array("i16", 3) });
 * Packet.offsets; // { header: 0, tag: 16, samples: 18 }
 * Packet.size; // 24 (aligned to Header's 8)
 * ```
 */
export function struct<const S extends Record<string, FieldSpec>>(
  fields: S,
  options: StructOptions = {},
): StructType<InferFields<S>> {
  type Struct = StructType<InferFields<S>>;
  const name = options.name ?? "struct";
  if (typeof fields !== "object" || fields === null || Object.keys(fields).length === 0) {
    throw new ArgumentError("struct", "fields", "an object with at least one field", fields);
  }
  const layout: { key: string; type: FieldType<unknown>; offset: number }[] = [];
  let end = 0;
  let align = 1;
  for (const [key, spec] of Object.entries(fields)) {
    if (!IDENTIFIER.test(key) || key === "__proto__") {
      throw new ArgumentError("struct", "field name", "an identifier", key);
    }
    const type = resolveFieldType(spec, "struct", key);
    const offset = alignUp(end, type.align);
    layout.push({ key, type, offset });
    end = offset + type.size;
    align = Math.max(align, type.align);
  }
  const size = alignUp(end, align);
  if (size > MAX_SIZE) {
    throw new ArgumentError("struct", "fields", `at most ${MAX_SIZE} bytes in all`, size);
  }
  const fieldNames = layout.map((field) => field.key).join(", ");

  const write = (
    view: DataView,
    offset: number,
    value: unknown,
    path: string,
    caller: string,
  ): void => {
    if (value === undefined) return zero(view, offset, size);
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new ArgumentError(caller, path || "value", `an object with fields of ${name}`, value);
    }
    for (const key of Object.keys(value)) {
      if (!Object.hasOwn(fields, key)) {
        throw new ArgumentError(
          caller,
          join(path, key),
          `absent: ${name} has no such field (its fields: ${fieldNames})`,
          (value as Record<string, unknown>)[key],
        );
      }
    }
    let written = offset;
    for (const field of layout) {
      const start = offset + field.offset;
      zero(view, written, start - written);
      const fieldValue = Object.hasOwn(value, field.key)
        ? (value as Record<string, unknown>)[field.key]
        : undefined;
      field.type.write(view, start, fieldValue, join(path, field.key), caller);
      written = start + field.type.size;
    }
    zero(view, written, offset + size - written);
  };

  const read = (view: DataView, offset: number): InferFields<S> => {
    const result: Record<string, unknown> = {};
    for (const field of layout) result[field.key] = field.type.read(view, offset + field.offset);
    return result as InferFields<S>;
  };

  const fieldTypes = Object.fromEntries(layout.map((field) => [field.key, field.type]));
  const offsets = Object.fromEntries(layout.map((field) => [field.key, field.offset]));
  return {
    name,
    size,
    align,
    fields: fieldTypes as Struct["fields"],
    offsets: offsets as Struct["offsets"],
    write,
    read,
    encode(value, target, offset = 0): Uint8Array {
      const caller = `${name}.encode`;
      const bytes = target === undefined
        ? new Uint8Array(size)
        : checkBufferSource(caller, "target", target);
      if (bytes.length < size) {
        throw new ArgumentError(caller, "target", `at least ${size} bytes long`, target);
      }
      checkInteger(caller, "offset", offset, 0, bytes.length - size);
      write(
        new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        offset,
        value,
        "",
        caller,
      );
      return bytes.subarray(offset, offset + size);
    },
    decode(source, offset = 0): InferFields<S> {
      const caller = `${name}.decode`;
      const bytes = checkBufferSource(caller, "bytes", source);
      checkInteger(caller, "offset", offset, 0, bytes.length);
      if (bytes.length - offset < size) {
        const expected = offset === 0
          ? `at least ${size} bytes long`
          : `at least ${offset + size} bytes long (${size} from offset ${offset})`;
        throw new ArgumentError(caller, "bytes", expected, source);
      }
      return read(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset);
    },
  };
}

/**
 * A fixed array of `length` elements of a type (`type[length]` in C); its
 * values are JS arrays. Encoding a shorter array leaves the rest zero.
 *
 * @example
 * ```ts
 * import { array, struct } from "./struct.ts";
 *
 * const Sample = struct({ count: "u8", values: array("u32", 4) });
 * Sample.offsets.values; // 4
 * Sample.decode(Sample.encode({ values: [1, 2] })).values; // [1, 2, 0, 0]
 * ```
 */
export function array<F extends FieldSpec>(element: F, length: number): FieldType<Infer<F>[]> {
  const type = resolveFieldType(element, "array", "element");
  checkInteger("array", "length", length, 1, Math.floor(MAX_SIZE / type.size));
  const size = type.size * length;
  return {
    name: `${type.name}[${length}]`,
    size,
    align: type.align,
    write(view, offset, value, path, caller): void {
      if (value === undefined) return zero(view, offset, size);
      if (!Array.isArray(value) || value.length > length) {
        throw new ArgumentError(caller, path, `an array of at most ${length} elements`, value);
      }
      for (let i = 0; i < length; i++) {
        type.write(view, offset + i * type.size, value[i], `${path}[${i}]`, caller);
      }
    },
    read(view, offset): Infer<F>[] {
      return Array.from({ length }, (_, i) => type.read(view, offset + i * type.size) as Infer<F>);
    },
  };
}

/**
 * A fixed `WCHAR[length]` string: UTF-16LE, NUL-terminated and NUL-padded.
 * Encoding takes a string of at most `length - 1` UTF-16 code units (room for
 * the NUL) without NUL characters; decoding stops at the first NUL.
 *
 * @example
 * ```ts
 * import { struct, wchar } from "./struct.ts";
 *
 * const Named = struct({ name: wchar(16) });
 * Named.decode(Named.encode({ name: "Grüße" })).name; // "Grüße"
 * ```
 */
export function wchar(length: number): FieldType<string> {
  checkInteger("wchar", "length", length, 1, Math.floor(MAX_SIZE / 2));
  const size = length * 2;
  return {
    name: `wchar[${length}]`,
    size,
    align: 2,
    write(view, offset, value, path, caller): void {
      if (value === undefined) return zero(view, offset, size);
      if (typeof value !== "string" || value.length >= length || value.includes("\0")) {
        throw new ArgumentError(
          caller,
          path,
          `a string of at most ${length - 1} UTF-16 code units without NUL (wchar[${length}])`,
          value,
        );
      }
      for (let i = 0; i < value.length; i++) {
        view.setUint16(offset + i * 2, value.charCodeAt(i), true);
      }
      zero(view, offset + value.length * 2, size - value.length * 2);
    },
    read(view, offset): string {
      const units: number[] = [];
      for (let i = 0; i < length; i++) {
        const unit = view.getUint16(offset + i * 2, true);
        if (unit === 0) break;
        units.push(unit);
      }
      return fromCharCodes(units);
    },
  };
}

/**
 * A fixed `UINT8[length]` byte array; its values are `Uint8Array`s (decoding
 * copies). Encoding takes any buffer of at most `length` bytes and leaves the
 * rest zero.
 *
 * @example
 * ```ts
 * import { bytes, struct } from "./struct.ts";
 *
 * const Block = struct({ id: "u16", data: bytes(6) });
 * Block.decode(Block.encode({ id: 1, data: new Uint8Array([9, 8]) })).data;
 * // Uint8Array [9, 8, 0, 0, 0, 0]
 * ```
 */
export function bytes(length: number): FieldType<Uint8Array> {
  checkInteger("bytes", "length", length, 1, MAX_SIZE);
  return {
    name: `u8[${length}]`,
    size: length,
    align: 1,
    write(view, offset, value, path, caller): void {
      if (value === undefined) return zero(view, offset, length);
      const source = checkBufferSource(caller, path, value);
      if (source.length > length) {
        throw new ArgumentError(caller, path, `at most ${length} bytes long`, value);
      }
      const target = new Uint8Array(view.buffer, view.byteOffset + offset, length);
      target.set(source);
      target.fill(0, source.length);
    },
    read(view, offset): Uint8Array {
      return new Uint8Array(view.buffer, view.byteOffset + offset, length).slice();
    },
  };
}

function integerType(
  name: string,
  size: number,
  min: number,
  max: number,
  set: (view: DataView, offset: number, value: number) => void,
  get: (view: DataView, offset: number) => number,
): FieldType<number> {
  return {
    name,
    size,
    align: size,
    write(view, offset, value, path, caller): void {
      set(view, offset, value === undefined ? 0 : checkInteger(caller, path, value, min, max));
    },
    read: get,
  };
}

/**
 * The value of what an unsigned 64-bit field takes besides a bigint: an
 * object with a `handleValue` (a `KernelEvent`), or a Deno pointer (`null` is 0).
 */
function handleOrPointerValue(value: unknown): bigint | undefined {
  if (value === null) return 0n;
  if (typeof value !== "object") return undefined;
  if ("handleValue" in value) {
    const handle = (value as { handleValue: unknown }).handleValue;
    return typeof handle === "bigint" ? handle : undefined;
  }
  try {
    return BigInt(Deno.UnsafePointer.value(value as Deno.PointerObject));
  } catch {
    return undefined; // not a pointer object
  }
}

function bigintType(name: string, signed: boolean): FieldType<bigint> {
  const min = signed ? -(1n << 63n) : 0n;
  const max = signed ? (1n << 63n) - 1n : (1n << 64n) - 1n;
  const expected = signed
    ? `a bigint in ${min}..${max}`
    : "a bigint in 0..0xFFFFFFFFFFFFFFFF, a KernelEvent or a pointer";
  return {
    name,
    size: 8,
    align: 8,
    write(view, offset, value, path, caller): void {
      if (value === undefined) return view.setBigUint64(offset, 0n, true);
      if (!signed && typeof value !== "bigint") value = handleOrPointerValue(value) ?? value;
      if (typeof value !== "bigint" || value < min || value > max) {
        throw new ArgumentError(caller, path, expected, value);
      }
      view.setBigUint64(offset, BigInt.asUintN(64, value), true);
    },
    read: signed
      ? (view, offset) => view.getBigInt64(offset, true)
      : (view, offset) => view.getBigUint64(offset, true),
  };
}

const f32: FieldType<number> = {
  name: "f32",
  size: 4,
  align: 4,
  write(view, offset, value, path, caller): void {
    if (value === undefined) return view.setFloat32(offset, 0, true);
    // Finite numbers beyond the f32 range would silently become Infinity.
    if (
      typeof value !== "number" || (Number.isFinite(value) && !Number.isFinite(Math.fround(value)))
    ) {
      throw new ArgumentError(caller, path, "a number within the f32 range", value);
    }
    view.setFloat32(offset, value, true);
  },
  read: (view, offset) => view.getFloat32(offset, true),
};

const f64: FieldType<number> = {
  name: "f64",
  size: 8,
  align: 8,
  write(view, offset, value, path, caller): void {
    if (value === undefined) return view.setFloat64(offset, 0, true);
    if (typeof value !== "number") throw new ArgumentError(caller, path, "a number", value);
    view.setFloat64(offset, value, true);
  },
  read: (view, offset) => view.getFloat64(offset, true),
};

const bool8: FieldType<boolean> = {
  name: "bool8",
  size: 1,
  align: 1,
  write(view, offset, value, path, caller): void {
    if (value !== undefined && typeof value !== "boolean") {
      throw new ArgumentError(caller, path, "a boolean", value);
    }
    view.setUint8(offset, value ? 1 : 0);
  },
  read: (view, offset) => view.getUint8(offset) !== 0,
};

const SCALAR_TYPES: { readonly [K in ScalarTypeName]: FieldType<ScalarTypes[K]> } = {
  u8: integerType("u8", 1, 0, 0xFF, (v, o, x) => v.setUint8(o, x), (v, o) => v.getUint8(o)),
  i8: integerType("i8", 1, -0x80, 0x7F, (v, o, x) => v.setInt8(o, x), (v, o) => v.getInt8(o)),
  u16: integerType(
    "u16",
    2,
    0,
    0xFFFF,
    (v, o, x) => v.setUint16(o, x, true),
    (v, o) => v.getUint16(o, true),
  ),
  i16: integerType(
    "i16",
    2,
    -0x8000,
    0x7FFF,
    (v, o, x) => v.setInt16(o, x, true),
    (v, o) => v.getInt16(o, true),
  ),
  u32: integerType(
    "u32",
    4,
    0,
    0xFFFF_FFFF,
    (v, o, x) => v.setUint32(o, x, true),
    (v, o) => v.getUint32(o, true),
  ),
  i32: integerType(
    "i32",
    4,
    -0x8000_0000,
    0x7FFF_FFFF,
    (v, o, x) => v.setInt32(o, x, true),
    (v, o) => v.getInt32(o, true),
  ),
  u64: bigintType("u64", false),
  i64: bigintType("i64", true),
  usize: bigintType("usize", false),
  ptr: bigintType("ptr", false),
  handle: bigintType("handle", false),
  f32,
  f64,
  bool8,
};

function resolveFieldType(spec: unknown, caller: string, path: string): FieldType<unknown> {
  if (typeof spec === "string" && Object.hasOwn(SCALAR_TYPES, spec)) {
    return SCALAR_TYPES[spec as ScalarTypeName];
  }
  if (
    typeof spec === "object" && spec !== null && "size" in spec && "align" in spec &&
    "read" in spec && "write" in spec
  ) {
    return spec as FieldType<unknown>;
  }
  throw new ArgumentError(
    caller,
    path,
    `a field type (${Object.keys(SCALAR_TYPES).join(", ")}, wchar(n), bytes(n), array(), struct())`,
    spec,
  );
}

function alignUp(offset: number, align: number): number {
  return Math.ceil(offset / align) * align;
}

function zero(view: DataView, offset: number, length: number): void {
  new Uint8Array(view.buffer, view.byteOffset + offset, length).fill(0);
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

/** `String.fromCharCode` in chunks, to stay below the engine's argument limit. */
function fromCharCodes(units: number[]): string {
  const CHUNK = 0x2000;
  let text = "";
  for (let i = 0; i < units.length; i += CHUNK) {
    text += String.fromCharCode(...units.slice(i, i + CHUNK));
  }
  return text;
}
