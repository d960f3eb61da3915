/**
 * A bulk copy that keeps its speed whatever the two buffers' addresses.
 *
 * x86 processors slow large copies several times over when the destination
 * lies a few bytes after the source modulo the 4 KiB page ("4K aliasing": each
 * load looks as if it depended on the store just made). The C runtimes take
 * another path for large copies than for small ones, and only that path
 * suffers: over 8 KiB in deno.exe's (Windows), from 4 KiB in glibc's. Measured
 * under Wine on an AMD EPYC, one `set()` of 1 MiB: 1.6-2.7 GB/s with the
 * destination 4-28 bytes ahead, 11-21 GB/s at every other distance.
 *
 * @module
 */

const PAGE_MASK = 4095;
/** The piece a slow-distance copy is cut into: the largest deno.exe's runtime copies at full speed. */
const PIECE_BYTES = 8192;
/** Distances (destination − source, modulo a page) up to this one count as slow: 4-28 measured, room left for other processors. */
const ALIASING_BYTES = 63;

/** Page offset of each buffer's first byte; -1 where it cannot be known (no FFI permission). */
const bufferPageOffsets = new WeakMap<ArrayBufferLike, number>();

/**
 * Where `view`'s first byte lies within its page (its address modulo 4096),
 * or -1 when this process may not read addresses (no `--allow-ffi`). A
 * buffer's place is looked up once, then remembered.
 *
 * @example
 * ```ts ignore
 * const offset = pageOffset(new Uint8Array(1 << 20)); // 0..4095, or -1
 * ```
 */
export function pageOffset(view: Uint8Array): number {
  const buffer = view.buffer;
  let base = bufferPageOffsets.get(buffer);
  if (base === undefined) {
    try {
      const address = Deno.UnsafePointer.value(Deno.UnsafePointer.of(view));
      base = Number(BigInt.asUintN(12, address - BigInt(view.byteOffset)));
    } catch {
      base = -1;
    }
    bufferPageOffsets.set(buffer, base);
  }
  return base < 0 ? -1 : (base + view.byteOffset) & PAGE_MASK;
}

/**
 * `target.set(source, at)`, cut into pieces of 8 KiB when the two would sit
 * at a slow distance (see the module's note): one call otherwise.
 *
 * @example
 * ```ts ignore
 * copyBytes(batch, 0, ringBytes.subarray(start, start + length));
 * ```
 */
export function copyBytes(target: Uint8Array, at: number, source: Uint8Array): void {
  if (source.length > PIECE_BYTES) {
    const targetPage = pageOffset(target);
    const sourcePage = pageOffset(source);
    const distance = (targetPage + at - sourcePage) & PAGE_MASK;
    if (targetPage >= 0 && sourcePage >= 0 && distance !== 0 && distance <= ALIASING_BYTES) {
      const { buffer, byteOffset, length } = source;
      for (let done = 0; done < length; done += PIECE_BYTES) {
        const piece = Math.min(PIECE_BYTES, length - done);
        target.set(new Uint8Array(buffer, byteOffset + done, piece), at + done);
      }
      return;
    }
  }
  target.set(source, at);
}
