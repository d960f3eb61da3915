// Helpers shared by the Linux-side and the Wine-side tests.
import { fileURLToPath } from "node:url";
import { pageOffset } from "../src/core/copy.ts";

/** A seeded xorshift32 generator of 32-bit unsigned integers, for reproducible tests. */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

const CLI = fileURLToPath(new URL("../cli.ts", import.meta.url));

/** Runs the CLI as a user would, in a subprocess of the running Deno. */
export async function runCli(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes).replaceAll("\r", "");
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/**
 * `kbridge lab …` with the Linux Deno in the harness's lab (`$KB_BUILD`), from
 * the repository's root (scripts are given relative to it), as a user runs it.
 */
export function runLab(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return runLabWith({}, ...args);
}

/** {@linkcode runLab} with more environment variables. */
export async function runLabWith(
  env: Record<string, string>,
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "lab", "--dir", Deno.env.get("KB_BUILD") ?? "", ...args],
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    env,
    stdin: "null",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes).replaceAll("\r", "");
  return { code, out: decode(stdout), err: decode(stderr) };
}

/** The messages a Worker posts, taken in order: each call resolves with the next one. */
export function workerReplies<T>(worker: Worker): () => Promise<T> {
  const replies: T[] = [];
  let notify = () => {};
  worker.onmessage = (event: MessageEvent<T>) => {
    replies.push(event.data);
    notify();
  };
  return async () => {
    while (replies.length === 0) await new Promise<void>((resolve) => (notify = resolve));
    return replies.shift()!;
  };
}

/** The number of `Uint8Array.prototype.set` calls `run` makes. */
export function countSets(run: () => void): number {
  const set = Uint8Array.prototype.set;
  let calls = 0;
  Uint8Array.prototype.set = function (this: Uint8Array, ...args: Parameters<typeof set>) {
    calls++;
    return set.apply(this, args);
  };
  try {
    run();
  } finally {
    Uint8Array.prototype.set = set;
  }
  return calls;
}

/** A `length`-byte view of `buffer` whose first byte lies `distance` bytes (mod 4096) after `from`'s. */
export function placedAfter(
  buffer: ArrayBuffer,
  from: Uint8Array,
  distance: number,
  length: number,
): Uint8Array<ArrayBuffer> {
  const whole = new Uint8Array(buffer);
  const offset = (pageOffset(from) + distance - pageOffset(whole) + 8192) & 4095;
  return new Uint8Array(buffer, offset, length);
}
