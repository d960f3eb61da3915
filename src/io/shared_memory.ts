/**
 * Memory shared with a driver: a view of a named section (e.g. one the
 * driver created as `\BaseNamedObjects\X`), or a user-mode address the driver
 * mapped into this process and returned.
 *
 * The memory is reached through {@linkcode SharedMemory.buffer} and
 * {@linkcode SharedMemory.bytes}. `close()` detaches that `ArrayBuffer` before
 * it unmaps the view, so every typed array or `DataView` made over it reads
 * as empty (or throws) afterwards instead of touching unmapped memory.
 *
 * @module
 */
import { ArgumentError, checkInteger, ClosedError } from "../core/errors.ts";
import { Win32Error } from "../core/win32_error.ts";
import { kernel32, lastError, pointerValue, wideString } from "../core/native.ts";

const FILE_MAP_WRITE = 0x2;
const FILE_MAP_READ = 0x4;
const FILE_MAP_COPY = 0x1;
/** sizeof(MEMORY_BASIC_INFORMATION) on x64, and where its RegionSize sits. */
const MEMORY_BASIC_INFORMATION_SIZE = 48;
const REGION_SIZE_OFFSET = 24;
/** The largest view kbridge maps: 1 TiB. */
const MAX_SIZE = 2 ** 40;

/**
 * Options of {@linkcode openSharedMemory}.
 *
 * @example
 * ```ts ignore
 * const options: SharedMemoryOptions = { size: 4096, access: "read" };
 * using shared = openSharedMemory("Global\\KbSampleShared", options);
 * ```
 */
export interface SharedMemoryOptions {
  /** Bytes to map from the start of the section; default: all of it (rounded up to pages). */
  size?: number;
  /**
   * `"readwrite"` (default): writes reach the section. `"read"`: the view is
   * copy-on-write, so a write changes only this process's copy of the page.
   */
  access?: "read" | "readwrite";
}

/**
 * Memory shared with a driver. Make one with {@linkcode openSharedMemory} or
 * {@linkcode mapUserAddress}; close it with {@linkcode SharedMemory.close}
 * or a `using` declaration. Once closed, `buffer`, `bytes` and `address`
 * throw a {@linkcode ClosedError}, and views made before are detached.
 *
 * @example
 * ```ts ignore
 * using shared = openSharedMemory("Global\\KbSampleShared");
 * const tick = Tick.decode(shared.bytes);
 * ```
 */
export class SharedMemory implements Disposable {
  #buffer: ArrayBuffer | null;
  #bytes: Uint8Array<ArrayBuffer> | null;
  #pointer: Deno.PointerObject | null;
  readonly #unmap: ((pointer: Deno.PointerObject) => void) | undefined;
  /** Bytes mapped. */
  readonly size: number;
  /** The section's name, or a description of the user address. */
  readonly name: string;

  /**
   * Use {@linkcode openSharedMemory} or {@linkcode mapUserAddress}.
   * `unmap` releases the view at close (none: someone else owns it). @internal
   */
  constructor(
    pointer: Deno.PointerObject,
    size: number,
    name: string,
    unmap?: (pointer: Deno.PointerObject) => void,
  ) {
    this.#pointer = pointer;
    this.size = size;
    this.name = name;
    this.#unmap = unmap;
    this.#buffer = Deno.UnsafePointerView.getArrayBuffer(pointer, size);
    this.#bytes = new Uint8Array(this.#buffer);
    if (unmap !== undefined) forgottenViews.register(this, pointer, this);
  }

  /** Whether {@linkcode SharedMemory.close} has run. */
  get closed(): boolean {
    return this.#buffer === null;
  }

  /** The memory, as an `ArrayBuffer` of {@linkcode SharedMemory.size} bytes (no copy). */
  get buffer(): ArrayBuffer {
    if (this.#buffer === null) throw new ClosedError(`shared memory ${this.name}`);
    return this.#buffer;
  }

  /** The memory, as bytes (no copy). */
  get bytes(): Uint8Array<ArrayBuffer> {
    if (this.#bytes === null) throw new ClosedError(`shared memory ${this.name}`);
    return this.#bytes;
  }

  /** The address of the first byte in this process. */
  get address(): bigint {
    if (this.#pointer === null) throw new ClosedError(`shared memory ${this.name}`);
    return pointerValue(this.#pointer);
  }

  /**
   * Detaches the `ArrayBuffer` (every view of it becomes empty), then unmaps
   * a section view (a driver's mapping is left to the driver). Calling it
   * again does nothing.
   */
  close(): void {
    const buffer = this.#buffer;
    const pointer = this.#pointer;
    if (buffer === null || pointer === null) return;
    this.#buffer = null;
    this.#bytes = null;
    this.#pointer = null;
    buffer.transfer(0); // detaches: no view of it can read the mapping any more
    if (this.#unmap !== undefined) {
      forgottenViews.unregister(this);
      this.#unmap(pointer);
    }
  }

  /** Same as {@linkcode SharedMemory.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

const forgottenViews = new FinalizationRegistry<Deno.PointerObject>((pointer) => {
  kernel32("UnmapViewOfFile").UnmapViewOfFile(pointer);
});

function unmapView(pointer: Deno.PointerObject): void {
  kernel32("UnmapViewOfFile").UnmapViewOfFile(pointer);
}

/**
 * Maps a view of the named section `name` (`OpenFileMappingW` +
 * `MapViewOfFile`). A driver's `\BaseNamedObjects\X` is `Global\X` here.
 * Without `size` the whole section is mapped and `size` is the view's size
 * (`VirtualQuery`, a multiple of the page size).
 *
 * @throws {Win32Error} `ERROR_FILE_NOT_FOUND (2)` when no section has that name; from
 *   `MapViewOfFile` when `size` is larger than the section
 *
 * @example
 * ```ts ignore
 * using shared = openSharedMemory("Global\\KbSampleShared", { access: "read" });
 * const counter = new DataView(shared.buffer).getUint32(4, true);
 * ```
 */
export function openSharedMemory(name: string, options: SharedMemoryOptions = {}): SharedMemory {
  const fn = "openSharedMemory";
  if (typeof name !== "string" || name.length === 0 || name.includes("\0")) {
    throw new ArgumentError(fn, "name", "a non-empty string without NUL", name);
  }
  const size = options.size === undefined
    ? 0
    : checkInteger(fn, "options.size", options.size, 1, MAX_SIZE);
  const access = options.access ?? "readwrite";
  if (access !== "read" && access !== "readwrite") {
    throw new ArgumentError(fn, "options.access", '"read" or "readwrite"', access);
  }
  const k32 = kernel32("OpenFileMappingW");
  const mapping = k32.OpenFileMappingW(
    access === "read" ? FILE_MAP_READ : FILE_MAP_READ | FILE_MAP_WRITE,
    0,
    wideString(name),
  );
  if (mapping === null) {
    throw new Win32Error({ ...lastError(k32), call: "OpenFileMappingW", detail: name });
  }
  try {
    const view = k32.MapViewOfFile(
      mapping,
      access === "read" ? FILE_MAP_COPY : FILE_MAP_READ | FILE_MAP_WRITE,
      0,
      0,
      BigInt(size),
    );
    if (view === null) {
      throw new Win32Error({ ...lastError(k32), call: "MapViewOfFile", detail: name });
    }
    try {
      return new SharedMemory(view, size === 0 ? viewSize(view, name) : size, name, unmapView);
    } catch (error) {
      k32.UnmapViewOfFile(view);
      throw error;
    }
  } finally {
    // The view keeps the section alive; the mapping handle is not needed any more.
    k32.CloseHandle(mapping);
  }
}

/** The size of the view at `view` (its region, whole pages). */
function viewSize(view: Deno.PointerObject, name: string): number {
  const k32 = kernel32("VirtualQuery");
  const info = new Uint8Array(MEMORY_BASIC_INFORMATION_SIZE);
  if (k32.VirtualQuery(view, info, BigInt(info.length)) === 0n) {
    throw new Win32Error({ ...lastError(k32), call: "VirtualQuery", detail: name });
  }
  return Number(new DataView(info.buffer).getBigUint64(REGION_SIZE_OFFSET, true));
}

/**
 * Wraps `size` bytes at a user-mode `address` a driver mapped into this
 * process and returned (e.g. in an IOCTL reply), without copying.
 *
 * **Unsafe**: the driver owns that memory. kbridge cannot check the address;
 * a wrong one crashes the process at the first access, and so does an access
 * after the driver unmapped it. Close the `SharedMemory` before you ask the
 * driver to unmap (its views are detached then); `close()` does not unmap.
 *
 * @example
 * ```ts ignore
 * const { userAddress, size } = ShareInfo.decode(device.ioctl(GET_SHARE_ADD, null, ShareInfo.size));
 * using shared = mapUserAddress(userAddress, size);
 * ```
 */
export function mapUserAddress(address: bigint | Deno.PointerObject, size: number): SharedMemory {
  const fn = "mapUserAddress";
  const value = typeof address === "bigint" ? address : pointerOf(fn, address);
  if (value <= 0n || value >= 1n << 64n) {
    throw new ArgumentError(fn, "address", "a non-null user-mode address", address);
  }
  checkInteger(fn, "size", size, 1, MAX_SIZE);
  const pointer = Deno.UnsafePointer.create(value)!;
  return new SharedMemory(pointer, size, `at 0x${value.toString(16)}`);
}

function pointerOf(fn: string, address: unknown): bigint {
  try {
    return pointerValue(address as Deno.PointerObject);
  } catch {
    throw new ArgumentError(fn, "address", "a bigint or a Deno pointer", address);
  }
}
