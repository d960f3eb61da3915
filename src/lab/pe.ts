/**
 * A reader of PE images (`.sys`, `.dll`, `.exe`): headers, sections (long
 * COFF names included, as mingw writes its DWARF sections), the import table
 * and the export table. PE32 and PE32+ (x64 drivers). Every offset is checked:
 * a truncated or malformed file is a {@linkcode LabError} (`bad-image`), never
 * a crash.
 *
 * @example
 * ```ts ignore
 * import { parsePe } from "./pe.ts";
 * const image = parsePe(await Deno.readFile("build/fixture/kbwdm.sys"));
 * console.log(image.imports.map((i) => `${i.dll}!${i.name}`));
 * ```
 *
 * @module
 */
import { LabError } from "./lab_error.ts";

/**
 * A section of a PE image.
 *
 * @example
 * ```ts ignore
 * const text: PeSection | undefined = parsePe(bytes).sections.find((s) => s.name === ".text");
 * ```
 */
export interface PeSection {
  /** Its name, e.g. `.text` or `.debug_info`. */
  readonly name: string;
  /** Where it is mapped, relative to the image base. */
  readonly virtualAddress: number;
  /** Its size in memory. */
  readonly virtualSize: number;
  /** Where its bytes are in the file. */
  readonly rawOffset: number;
  /** How many bytes the file holds. */
  readonly rawSize: number;
}

/**
 * One imported function: by name, or by ordinal when `name` is undefined.
 *
 * @example
 * ```ts ignore
 * const first: PeImport = parsePe(bytes).imports[0]; // { dll: "ntoskrnl.exe", name: "IoCreateDevice" }
 * ```
 */
export interface PeImport {
  /** The DLL, as the image names it (e.g. `ntoskrnl.exe`). */
  readonly dll: string;
  /** The function's name. */
  readonly name?: string;
  /** The ordinal, for an import by ordinal. */
  readonly ordinal?: number;
}

/**
 * One exported symbol.
 *
 * @example
 * ```ts ignore
 * const create: PeExport | undefined = parsePe(bytes).exports.find((e) => e.name === "IoCreateDevice");
 * ```
 */
export interface PeExport {
  /** Its name. */
  readonly name: string;
  /** Its address relative to the image base. */
  readonly rva: number;
  /** `DLL.Name` when the export forwards to another DLL. */
  readonly forwarder?: string;
}

/**
 * A parsed PE image.
 *
 * @example
 * ```ts ignore
 * const image: PeImage = parsePe(bytes);
 * image.is64; // true for an x64 driver
 * ```
 */
export interface PeImage {
  /** `IMAGE_FILE_HEADER.Machine` (0x8664 for x64). */
  readonly machine: number;
  /** PE32+ (64-bit optional header). */
  readonly is64: boolean;
  /** The preferred load address. */
  readonly imageBase: bigint;
  /** The size of the mapped image. */
  readonly sizeOfImage: number;
  /** `IMAGE_OPTIONAL_HEADER.Subsystem` (1: native, as drivers are). */
  readonly subsystem: number;
  /** The sections. */
  readonly sections: readonly PeSection[];
  /** Every imported function. */
  readonly imports: readonly PeImport[];
  /** Every exported name. */
  readonly exports: readonly PeExport[];
  /** Whether the image carries DWARF line information (`-g` with mingw). */
  readonly hasDwarf: boolean;
  /** `length` bytes at `rva` (zeros where the file holds none), or undefined outside the image. */
  bytesAt(rva: number, length: number): Uint8Array | undefined;
  /** The NUL-terminated ASCII string at `rva`, or undefined. */
  stringAt(rva: number): string | undefined;
}

const PE32 = 0x10b;
const PE32_PLUS = 0x20b;
const SECTION_HEADER_SIZE = 40;
const COFF_SYMBOL_SIZE = 18;
const MAX_STRING = 4096;
const MAX_ENTRIES = 1 << 20;

function bad(detail: string): LabError {
  return new LabError("bad-image", `not a valid PE image: ${detail}`);
}

/** Bounds-checked little-endian reads. */
class Reader {
  readonly #view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  #check(offset: number, size: number, what: string): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + size > this.bytes.length) {
      throw bad(`${what} at 0x${offset.toString(16)} is past the end of the file`);
    }
  }
  u16(offset: number, what: string): number {
    this.#check(offset, 2, what);
    return this.#view.getUint16(offset, true);
  }
  u32(offset: number, what: string): number {
    this.#check(offset, 4, what);
    return this.#view.getUint32(offset, true);
  }
  u64(offset: number, what: string): bigint {
    this.#check(offset, 8, what);
    return this.#view.getBigUint64(offset, true);
  }
  ascii(offset: number, max: number, what: string): string {
    this.#check(offset, 1, what);
    const end = Math.min(this.bytes.length, offset + max);
    let text = "";
    for (let i = offset; i < end; i++) {
      const byte = this.bytes[i];
      if (byte === 0) return text;
      text += String.fromCharCode(byte);
    }
    if (max === MAX_STRING) throw bad(`${what} at 0x${offset.toString(16)} is not terminated`);
    return text;
  }
}

function sectionName(reader: Reader, header: number, stringTable: number | undefined): string {
  const raw = reader.ascii(header, 8, "section name");
  // "/123": the name is at offset 123 of the COFF string table (long names, e.g. .debug_info).
  if (raw.startsWith("/") && stringTable !== undefined) {
    const index = Number(raw.slice(1));
    if (Number.isInteger(index)) {
      return reader.ascii(stringTable + index, MAX_STRING, "section name");
    }
  }
  return raw;
}

/**
 * Parses a PE image.
 *
 * @throws {LabError} `bad-image` when `bytes` is no PE image or is malformed
 *
 * @example
 * ```ts ignore
 * import { parsePe } from "./pe.ts";
 * const image = parsePe(await Deno.readFile("C:\\Windows\\System32\\drivers\\null.sys"));
 * console.log(image.is64, image.imports.length);
 * ```
 */
export function parsePe(bytes: Uint8Array): PeImage {
  if (!(bytes instanceof Uint8Array)) throw bad("expected the file's bytes");
  const reader = new Reader(bytes);
  if (bytes.length < 64 || reader.u16(0, "DOS signature") !== 0x5a4d) throw bad("no MZ signature");
  const pe = reader.u32(0x3c, "e_lfanew");
  if (reader.u32(pe, "PE signature") !== 0x4550) throw bad("no PE signature");
  const machine = reader.u16(pe + 4, "Machine");
  const sectionCount = reader.u16(pe + 6, "NumberOfSections");
  const symbolTable = reader.u32(pe + 12, "PointerToSymbolTable");
  const symbolCount = reader.u32(pe + 16, "NumberOfSymbols");
  const optionalSize = reader.u16(pe + 20, "SizeOfOptionalHeader");
  const optional = pe + 24;
  const magic = reader.u16(optional, "optional header magic");
  if (magic !== PE32 && magic !== PE32_PLUS) {
    throw bad(`unknown optional header magic 0x${magic.toString(16)}`);
  }
  const is64 = magic === PE32_PLUS;
  const imageBase = is64
    ? reader.u64(optional + 24, "ImageBase")
    : BigInt(reader.u32(optional + 28, "ImageBase"));
  const sizeOfImage = reader.u32(optional + 56, "SizeOfImage");
  const subsystem = reader.u16(optional + 68, "Subsystem");
  const directories = optional + (is64 ? 112 : 96);
  const directoryCount = reader.u32(optional + (is64 ? 108 : 92), "NumberOfRvaAndSizes");
  const directory = (index: number): { rva: number; size: number } =>
    index < directoryCount
      ? {
        rva: reader.u32(directories + 8 * index, "data directory"),
        size: reader.u32(directories + 8 * index + 4, "data directory"),
      }
      : { rva: 0, size: 0 };

  const stringTable = symbolTable !== 0 ? symbolTable + symbolCount * COFF_SYMBOL_SIZE : undefined;
  const sections: PeSection[] = [];
  const sectionTable = optional + optionalSize;
  for (let i = 0; i < sectionCount; i++) {
    const header = sectionTable + i * SECTION_HEADER_SIZE;
    sections.push({
      name: sectionName(reader, header, stringTable),
      virtualSize: reader.u32(header + 8, "VirtualSize"),
      virtualAddress: reader.u32(header + 12, "VirtualAddress"),
      rawSize: reader.u32(header + 16, "SizeOfRawData"),
      rawOffset: reader.u32(header + 20, "PointerToRawData"),
    });
  }

  /** The file offset of `rva` (undefined when no section's file bytes hold it). */
  const offsetOf = (rva: number): number | undefined => {
    for (const s of sections) {
      const size = Math.max(s.virtualSize, s.rawSize);
      if (rva >= s.virtualAddress && rva < s.virtualAddress + size) {
        const delta = rva - s.virtualAddress;
        return delta < s.rawSize ? s.rawOffset + delta : undefined;
      }
    }
    return undefined;
  };
  const at = (rva: number, what: string): number => {
    const offset = offsetOf(rva);
    if (offset === undefined) throw bad(`${what} (RVA 0x${rva.toString(16)}) is in no section`);
    return offset;
  };
  const stringAt = (rva: number, what: string) => reader.ascii(at(rva, what), MAX_STRING, what);

  const imports = readImports(reader, directory(1), is64, at, stringAt);
  const exportDirectory = directory(0);
  const exports = exportDirectory.rva === 0
    ? []
    : readExports(reader, exportDirectory, at, stringAt);

  return {
    machine,
    is64,
    imageBase,
    sizeOfImage,
    subsystem,
    sections,
    imports,
    exports,
    hasDwarf: sections.some((s) => s.name === ".debug_line") &&
      sections.some((s) => s.name === ".debug_info"),
    bytesAt(rva: number, length: number): Uint8Array | undefined {
      if (!Number.isInteger(rva) || !Number.isInteger(length) || rva < 0 || length < 0) {
        return undefined;
      }
      const section = sections.find((s) =>
        rva >= s.virtualAddress &&
        rva + length <= s.virtualAddress + Math.max(s.virtualSize, s.rawSize)
      );
      if (section === undefined) return undefined;
      const out = new Uint8Array(length);
      const delta = rva - section.virtualAddress;
      const available = Math.max(0, Math.min(length, section.rawSize - delta));
      const start = section.rawOffset + delta;
      if (available > 0 && start + available <= bytes.length) {
        out.set(bytes.subarray(start, start + available));
      }
      return out;
    },
    stringAt(rva: number): string | undefined {
      const offset = offsetOf(rva);
      if (offset === undefined) return undefined;
      try {
        return reader.ascii(offset, MAX_STRING, "string");
      } catch {
        return undefined;
      }
    },
  };
}

function readImports(
  reader: Reader,
  table: { rva: number; size: number },
  is64: boolean,
  at: (rva: number, what: string) => number,
  stringAt: (rva: number, what: string) => string,
): PeImport[] {
  const imports: PeImport[] = [];
  if (table.rva === 0) return imports;
  const thunkSize = is64 ? 8 : 4;
  for (let descriptor = at(table.rva, "import table");; descriptor += 20) {
    const lookup = reader.u32(descriptor, "import descriptor");
    const nameRva = reader.u32(descriptor + 12, "import descriptor");
    const firstThunk = reader.u32(descriptor + 16, "import descriptor");
    if (nameRva === 0 && firstThunk === 0) break;
    if (imports.length > MAX_ENTRIES) throw bad("import table without an end");
    const dll = stringAt(nameRva, "imported DLL name");
    // The lookup table (or, when a linker left none, the address table before binding).
    let thunk = at(lookup !== 0 ? lookup : firstThunk, "import lookup table");
    for (;; thunk += thunkSize) {
      const entry = is64
        ? reader.u64(thunk, "import thunk")
        : BigInt(reader.u32(thunk, "import thunk"));
      if (entry === 0n) break;
      const byOrdinal = is64 ? (entry >> 63n) === 1n : (entry >> 31n) === 1n;
      if (byOrdinal) {
        imports.push({ dll, ordinal: Number(entry & 0xffffn) });
      } else {
        // IMAGE_IMPORT_BY_NAME: a 2-byte hint, then the name.
        imports.push({ dll, name: stringAt(Number(entry & 0x7fff_ffffn) + 2, "imported name") });
      }
      if (imports.length > MAX_ENTRIES) throw bad("import lookup table without an end");
    }
  }
  return imports;
}

function readExports(
  reader: Reader,
  table: { rva: number; size: number },
  at: (rva: number, what: string) => number,
  stringAt: (rva: number, what: string) => string,
): PeExport[] {
  const directory = at(table.rva, "export directory");
  const functionCount = reader.u32(directory + 20, "NumberOfFunctions");
  const nameCount = reader.u32(directory + 24, "NumberOfNames");
  if (functionCount > MAX_ENTRIES || nameCount > MAX_ENTRIES) throw bad("export table too large");
  const functions = reader.u32(directory + 28, "AddressOfFunctions");
  const names = reader.u32(directory + 32, "AddressOfNames");
  const ordinals = reader.u32(directory + 36, "AddressOfNameOrdinals");
  const exports: PeExport[] = [];
  for (let i = 0; i < nameCount; i++) {
    const name = stringAt(
      reader.u32(at(names, "export names") + 4 * i, "export name"),
      "export name",
    );
    const index = reader.u16(at(ordinals, "export ordinals") + 2 * i, "export ordinal");
    if (index >= functionCount) throw bad(`export ${name} has no address`);
    const rva = reader.u32(at(functions, "export addresses") + 4 * index, "export address");
    // An address inside the export directory is a forwarder string ("NTDLL.RtlCopyMemory").
    const forwarded = rva >= table.rva && rva < table.rva + table.size;
    exports.push(forwarded ? { name, rva, forwarder: stringAt(rva, "forwarder") } : { name, rva });
  }
  return exports;
}
