// Shared fixtures of the Wine-side tests: the reference driver's service and helpers.
import assert from "node:assert/strict";
import {
  type Device,
  installDriver,
  openDevice,
  type ProcessResources,
  processResources,
  queryDriver,
  startDriver,
} from "../../mod.ts";
import { IOCTL, Stats } from "../../src/reference/mod.ts";
import { xorshift32 } from "../_util.ts";

/** The service the test harness installs (tools/wine.sh). */
export const SERVICE = "kbridge";
/** Where the harness copies the freshly built driver inside the prefix. */
export const SYS_PATH = "C:\\windows\\system32\\drivers\\kbridge.sys";
/** The reference driver's device. */
export const DEVICE_PATH = "\\\\.\\Kbridge";

/** Installs and starts the reference driver unless it already runs. */
export function ensureDriverRunning(): void {
  const status = queryDriver(SERVICE);
  if (status === null) installDriver(SERVICE, SYS_PATH);
  if (status?.state !== "running") startDriver(SERVICE);
}

/** Opens the reference driver's device (started first when needed). */
export function openKbridge(options: { overlapped?: boolean } = {}): Device {
  ensureDriverRunning();
  return openDevice(DEVICE_PATH, options);
}

/** The driver's resource counters. */
export function readStats(device: Device): ReturnType<typeof Stats.decode> {
  return Stats.decode(device.ioctl(IOCTL.GET_STATS, null, Stats.size));
}

/** Random bytes from a seeded generator, for reproducible payloads. */
export function seededBytes(seed: number, length: number): Uint8Array {
  const next = xorshift32(seed);
  return Uint8Array.from({ length }, () => next() & 0xff);
}

/**
 * Asserts the process holds no more handles than at `before`, allowing one per thread
 * started meanwhile (Deno's pools start threads on their own; a thread is a handle).
 * A leak of ours shows once per cycle, thousands of times.
 */
export function assertHandlesBack(before: ProcessResources): void {
  const after = processResources();
  const newThreads = Math.max(0, after.threads - before.threads);
  assert.ok(
    after.handles - before.handles <= newThreads,
    `handles ${before.handles} -> ${after.handles}, threads ${before.threads} -> ${after.threads}`,
  );
}
