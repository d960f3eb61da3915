/**
 * Stale `\DosDevices` links under Wine, from user mode. A driver host that
 * dies leaves the permanent symbolic link its driver made
 * (`IoCreateSymbolicLink`) behind; a driver that does not delete a stale link
 * in `DriverEntry` then fails to start again (`StartServiceW` →
 * `ERROR_INVALID_HANDLE (6)`). `DefineDosDeviceW(DDD_REMOVE_DEFINITION)`
 * cannot remove it (error 2), but opening the link with `DELETE` access and
 * making it temporary (`NtMakeTemporaryObject`, what `IoDeleteSymbolicLink`
 * does) removes it with the last handle. Runs under Wine only: on Windows a
 * driver host does not die alone, and the link belongs to a live driver.
 *
 * @module
 */
import { ArgumentError, KbridgeError } from "../core/errors.ts";
import { ntdll, pointerValue, wideString } from "../core/native.ts";
import { ntStatusName } from "../core/error_names.ts";

const DELETE = 0x0001_0000;
const OBJ_CASE_INSENSITIVE = 0x40;
const STATUS_OBJECT_NAME_NOT_FOUND = 0xc000_0034;
const OBJECT_ATTRIBUTES_SIZE = 48;

/**
 * The `\??\Name` link behind a `\\.\Name` device path, or undefined for other paths.
 *
 * @example
 * ```ts
 * import { dosLinkOf } from "./dos_link.ts";
 * dosLinkOf("\\\\.\\KbWdm"); // "\\??\\KbWdm"
 * ```
 */
export function dosLinkOf(devicePath: string): string | undefined {
  const match = /^\\\\[.?]\\([^\\/\0]{1,200})$/.exec(devicePath);
  return match === null ? undefined : `\\??\\${match[1]}`;
}

/**
 * Removes the `\DosDevices` link of `devicePath` (`\\.\Name`) under Wine.
 * Returns true when a link was removed, false when there was none.
 *
 * @throws {ArgumentError} for a path that is not `\\.\Name`
 * @throws {KbridgeError} when the link cannot be opened or removed
 *   (`UnsupportedPlatformError` off Windows)
 *
 * @example
 * ```ts ignore
 * // After the host of a driver that does not clean up died:
 * removeDosDeviceLink("\\\\.\\KbWdm"); // true
 * startDriver("kbwdm");
 * ```
 */
export function removeDosDeviceLink(devicePath: string): boolean {
  const link = dosLinkOf(devicePath);
  if (link === undefined) {
    throw new ArgumentError(
      "removeDosDeviceLink",
      "devicePath",
      "a \\\\.\\Name device path",
      devicePath,
    );
  }
  const api = ntdll("NtOpenSymbolicLinkObject");
  const name = wideString(link);
  // UNICODE_STRING { USHORT Length, USHORT MaximumLength, PWSTR Buffer }
  const unicode = new Uint8Array(16);
  const unicodeView = new DataView(unicode.buffer);
  unicodeView.setUint16(0, name.length - 2, true);
  unicodeView.setUint16(2, name.length, true);
  unicodeView.setBigUint64(8, pointerValue(Deno.UnsafePointer.of(name)), true);
  // OBJECT_ATTRIBUTES { ULONG Length, HANDLE RootDirectory, PUNICODE_STRING ObjectName, ULONG Attributes, … }
  const attributes = new Uint8Array(OBJECT_ATTRIBUTES_SIZE);
  const view = new DataView(attributes.buffer);
  view.setUint32(0, OBJECT_ATTRIBUTES_SIZE, true);
  view.setBigUint64(16, pointerValue(Deno.UnsafePointer.of(unicode)), true);
  view.setUint32(24, OBJ_CASE_INSENSITIVE, true);
  const handle = new BigUint64Array(1);
  const opened = api.NtOpenSymbolicLinkObject(handle, DELETE, attributes);
  if (opened === STATUS_OBJECT_NAME_NOT_FOUND) return false;
  if (opened !== 0) {
    throw new KbridgeError(`kbridge: cannot open the link ${link}: ${ntStatusName(opened)}`);
  }
  const pointer = Deno.UnsafePointer.create(handle[0]);
  try {
    const status = api.NtMakeTemporaryObject(pointer);
    if (status !== 0) {
      throw new KbridgeError(`kbridge: cannot remove the link ${link}: ${ntStatusName(status)}`);
    }
  } finally {
    api.NtClose(pointer);
  }
  return true;
}
