/**
 * Reproducer files: one JSON object per finding, with everything needed to
 * send the request again (`kbridge fuzz --replay <file>`) and to trace it back
 * to its run (seed, iteration, strategy).
 *
 * ```json
 * {
 *   "format": "kbridge-fuzz-reproducer/1",
 *   "kind": "crash",
 *   "device": "\\\\.\\KbCrashy",
 *   "code": "0x80232400",
 *   "control": "0x80232400 0x8023 fn 0x900 BUFFERED ANY",
 *   "method": "BUFFERED",
 *   "input": "4b42ff00...",
 *   "inputLength": 16,
 *   "outputSize": 4,
 *   "seed": 1,
 *   "iteration": 175,
 *   "strategy": "bitflip",
 *   "service": "kbcrashy",
 *   "status": "the driver's host died: STATUS_ACCESS_DENIED"
 * }
 * ```
 *
 * @module
 */
import { decodeCtlCode, formatCtlCode, type MethodName } from "../core/ctl_code.ts";
import { KbridgeError } from "../core/errors.ts";
import { fromHex, hex32, toHex } from "../core/hex.ts";

/**
 * The `format` of the files this version writes and reads.
 *
 * @example
 * ```ts
 * import { REPRODUCER_FORMAT } from "./reproducer.ts";
 * REPRODUCER_FORMAT; // "kbridge-fuzz-reproducer/1"
 * ```
 */
export const REPRODUCER_FORMAT = "kbridge-fuzz-reproducer/1";

/**
 * The kinds of findings:
 * - `crash`: the driver (its host process) died;
 * - `hang`: a request did not complete, even after it was cancelled;
 * - `canary`: output bytes past the bytes returned changed;
 * - `pointer`: the output holds values that point into the driver's memory
 *   (the kernel half on Windows, the driver host's image, heap and stacks under Wine);
 * - `stale`: bytes inside the returned length differ between two runs of the
 *   same request (stale memory, or bytes the driver never wrote).
 *
 * @example
 * ```ts
 * import type { FindingKind } from "./reproducer.ts";
 * const kind: FindingKind = "crash";
 * ```
 */
export type FindingKind = "crash" | "hang" | "canary" | "pointer" | "stale";

const KINDS: readonly FindingKind[] = ["crash", "hang", "canary", "pointer", "stale"];
/** Kinds of older files, and what they are now. */
const OLD_KINDS: Readonly<Record<string, FindingKind>> = { "kernel-pointer": "pointer" };

/**
 * One request of a reproducer's sequence.
 *
 * @example
 * ```ts
 * import type { SequenceStep } from "./reproducer.ts";
 * const step: SequenceStep = { code: 0x80242020, input: new TextEncoder().encode("ARM!"), outputSize: 4 };
 * ```
 */
export interface SequenceStep {
  /** The control code. */
  readonly code: number;
  /** The input bytes. */
  readonly input: Uint8Array;
  /** The output buffer size. */
  readonly outputSize: number;
}

/**
 * A finding, as a reproducer file holds it.
 *
 * @example
 * ```ts
 * import type { Reproducer } from "./reproducer.ts";
 *
 * const reproducer: Reproducer = {
 *   kind: "crash",
 *   device: "\\\\.\\KbCrashy",
 *   code: 0x80232400,
 *   input: new Uint8Array([0x4b, 0x42, 0xff]),
 *   outputSize: 4,
 *   seed: 1,
 *   iteration: 175,
 *   strategy: "bitflip",
 *   status: "the driver's host died: STATUS_ACCESS_DENIED",
 * };
 * ```
 */
export interface Reproducer {
  /** What was found. */
  readonly kind: FindingKind;
  /** The device path, e.g. `\\.\KbCrashy`. */
  readonly device: string;
  /** The control code. */
  readonly code: number;
  /** The input bytes. */
  readonly input: Uint8Array;
  /** The output buffer size. */
  readonly outputSize: number;
  /** The seed of the run that found it. */
  readonly seed: number;
  /** The iteration (from 0) that found it; -1 during code discovery. */
  readonly iteration: number;
  /** The strategy that made the request (`minimize` for a minimized one). */
  readonly strategy: string;
  /** The driver's service, to restart it after a replayed crash. */
  readonly service?: string;
  /** What was observed. */
  readonly status: string;
  /** Details: the canary offset, the pointer values ... */
  readonly detail?: string;
  /** For a minimized reproducer: the size of the request it was minimized from. */
  readonly minimizedFrom?: { readonly inputLength: number; readonly outputSize: number };
  /**
   * Requests to send first, in order, after a fresh start of the driver: the
   * finding depends on the state they leave (the request alone does not reproduce it).
   */
  readonly sequence?: readonly SequenceStep[];
  /** Where it happened, when known (e.g. `kbquirky.sys+0x1234`). */
  readonly site?: string;
  /** What the driver printed just before a crash, when known, oldest first. */
  readonly prints?: readonly string[];
  /** When it was found (ISO 8601). */
  readonly time?: string;
}

/**
 * A reproducer file that cannot be read: the message names the file and the field.
 *
 * @example
 * ```ts
 * import { ReproducerError } from "./reproducer.ts";
 * new ReproducerError("crash.json", "code is missing").message;
 * // "kbridge: crash.json is no fuzz reproducer: code is missing"
 * ```
 */
export class ReproducerError extends KbridgeError {
  /** `"ReproducerError"`. */
  override name: string = "ReproducerError";

  /**
   * Creates the error for `file`; `reason` says what is wrong, `unreadable`
   * that the file could not be read at all.
   */
  constructor(file: string, reason: string, unreadable = false) {
    super(
      unreadable
        ? `kbridge: cannot read the reproducer ${file}: ${reason}`
        : `kbridge: ${file} is no fuzz reproducer: ${reason}`,
    );
  }
}

/**
 * The JSON text of a reproducer (one object, indented, ending with a newline).
 *
 * @example
 * ```ts
 * import { encodeReproducer } from "./reproducer.ts";
 *
 * const text = encodeReproducer({
 *   kind: "hang", device: "\\\\.\\X", code: 0x222003, input: new Uint8Array([1]), outputSize: 0,
 *   seed: 7, iteration: 3, strategy: "random", status: "no completion",
 * });
 * JSON.parse(text).method; // "NEITHER"
 * ```
 */
export function encodeReproducer(reproducer: Reproducer): string {
  const info = decodeCtlCode(reproducer.code);
  const object: Record<string, unknown> = {
    format: REPRODUCER_FORMAT,
    kind: reproducer.kind,
    device: reproducer.device,
    code: hex32(reproducer.code),
    control: formatCtlCode(reproducer.code),
    method: info.methodName satisfies MethodName,
    input: toHex(reproducer.input),
    inputLength: reproducer.input.length,
    outputSize: reproducer.outputSize,
    seed: reproducer.seed,
    iteration: reproducer.iteration,
    strategy: reproducer.strategy,
  };
  if (reproducer.service !== undefined) object.service = reproducer.service;
  object.status = reproducer.status;
  if (reproducer.detail !== undefined) object.detail = reproducer.detail;
  if (reproducer.minimizedFrom !== undefined) object.minimizedFrom = reproducer.minimizedFrom;
  if (reproducer.sequence !== undefined) {
    object.sequence = reproducer.sequence.map((step) => ({
      code: hex32(step.code),
      input: toHex(step.input),
      outputSize: step.outputSize,
    }));
  }
  if (reproducer.site !== undefined) object.site = reproducer.site;
  if (reproducer.prints !== undefined) object.prints = reproducer.prints;
  if (reproducer.time !== undefined) object.time = reproducer.time;
  return JSON.stringify(object, null, 2) + "\n";
}

function integerField(
  file: string,
  object: Record<string, unknown>,
  name: string,
  max: number,
  min = 0,
): number {
  const value = object[name];
  const number = typeof value === "string" && /^0x[0-9a-f]+$/i.test(value)
    ? parseInt(value.slice(2), 16)
    : value;
  if (typeof number !== "number" || !Number.isSafeInteger(number) || number < min || number > max) {
    throw new ReproducerError(
      file,
      value === undefined ? `${name} is missing` : `${name} must be an integer in ${min}..${max}`,
    );
  }
  return number;
}

function stringField(
  file: string,
  object: Record<string, unknown>,
  name: string,
  optional = false,
): string | undefined {
  const value = object[name];
  if (value === undefined && optional) return undefined;
  if (typeof value !== "string" || (value.length === 0 && !optional)) {
    throw new ReproducerError(
      file,
      value === undefined ? `${name} is missing` : `${name} must be a string`,
    );
  }
  return value;
}

/**
 * Parses and checks the JSON text of a reproducer; `file` names it in errors.
 *
 * @throws {ReproducerError} naming the file and the field that is wrong
 *
 * @example
 * ```ts
 * import { decodeReproducer, encodeReproducer } from "./reproducer.ts";
 *
 * const original = {
 *   kind: "crash" as const, device: "\\\\.\\X", code: 0x80232400, input: new Uint8Array([0x4b]),
 *   outputSize: 4, seed: 1, iteration: 2, strategy: "bitflip", status: "died",
 * };
 * decodeReproducer(encodeReproducer(original), "x.json").code; // 0x80232400
 * ```
 */
export function decodeReproducer(text: string, file = "the reproducer"): Reproducer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ReproducerError(file, `not JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ReproducerError(file, "not a JSON object");
  }
  const object = parsed as Record<string, unknown>;
  if (object.format !== REPRODUCER_FORMAT) {
    throw new ReproducerError(file, `format must be "${REPRODUCER_FORMAT}"`);
  }
  const written = stringField(file, object, "kind")!;
  const kind = (OLD_KINDS[written] ?? written) as FindingKind;
  if (!KINDS.includes(kind)) {
    throw new ReproducerError(file, `kind must be one of ${KINDS.join(", ")}`);
  }
  const inputText = stringField(file, object, "input", true) ?? "";
  const input = fromHex(inputText);
  if (input === undefined) throw new ReproducerError(file, "input must be hex digits in pairs");
  if (object.inputLength !== undefined && object.inputLength !== input.length) {
    throw new ReproducerError(file, `inputLength ${object.inputLength} does not match the input`);
  }
  const minimized = object.minimizedFrom as Record<string, unknown> | undefined;
  const service = stringField(file, object, "service", true);
  const detail = stringField(file, object, "detail", true);
  const site = stringField(file, object, "site", true);
  const prints = object.prints;
  if (
    prints !== undefined &&
    (!Array.isArray(prints) || !prints.every((text) => typeof text === "string"))
  ) {
    throw new ReproducerError(file, "prints must be an array of strings");
  }
  const time = stringField(file, object, "time", true);
  const sequence = decodeSequence(file, object.sequence);
  return {
    kind,
    device: stringField(file, object, "device")!,
    code: integerField(file, object, "code", 0xffff_ffff),
    input,
    outputSize: integerField(file, object, "outputSize", 0xffff_ffff),
    seed: integerField(file, object, "seed", Number.MAX_SAFE_INTEGER),
    iteration: integerField(file, object, "iteration", Number.MAX_SAFE_INTEGER, -1),
    strategy: stringField(file, object, "strategy")!,
    ...(service !== undefined && service !== "" ? { service } : {}),
    status: stringField(file, object, "status", true) ?? "",
    ...(detail !== undefined ? { detail } : {}),
    ...(typeof minimized === "object" && minimized !== null
      ? {
        minimizedFrom: {
          inputLength: integerField(file, minimized, "inputLength", Number.MAX_SAFE_INTEGER),
          outputSize: integerField(file, minimized, "outputSize", 0xffff_ffff),
        },
      }
      : {}),
    ...(sequence !== undefined ? { sequence } : {}),
    ...(site !== undefined ? { site } : {}),
    ...(prints !== undefined ? { prints: prints as string[] } : {}),
    ...(time !== undefined ? { time } : {}),
  };
}

function decodeSequence(file: string, value: unknown): SequenceStep[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new ReproducerError(file, "sequence must be a list");
  return value.map((item, i) => {
    if (typeof item !== "object" || item === null) {
      throw new ReproducerError(file, `sequence[${i}] must be an object`);
    }
    const step = item as Record<string, unknown>;
    const input = fromHex(stringField(file, step, "input", true) ?? "");
    if (input === undefined) {
      throw new ReproducerError(file, `sequence[${i}].input must be hex digits in pairs`);
    }
    return {
      code: integerField(file, step, "code", 0xffff_ffff),
      input,
      outputSize: integerField(file, step, "outputSize", 0xffff_ffff),
    };
  });
}

/**
 * The file name of a reproducer: kind, control code and iteration (or
 * `discovery`), and `.min` for a minimized one, e.g. `crash-80232400-000175.min.json`.
 *
 * @example
 * ```ts
 * import { reproducerName } from "./reproducer.ts";
 * reproducerName({ kind: "crash", code: 0x80232400, iteration: 175 }); // "crash-80232400-000175.json"
 * ```
 */
export function reproducerName(
  reproducer: Pick<Reproducer, "kind" | "code" | "iteration" | "minimizedFrom">,
): string {
  const code = reproducer.code.toString(16).toUpperCase().padStart(8, "0");
  const iteration = reproducer.iteration < 0
    ? "discovery"
    : String(reproducer.iteration).padStart(6, "0");
  const suffix = reproducer.minimizedFrom !== undefined ? ".min" : "";
  return `${reproducer.kind}-${code}-${iteration}${suffix}.json`;
}

/**
 * Writes a reproducer into `directory` (created when missing) and returns its path.
 *
 * @example
 * ```ts ignore
 * const path = await writeReproducer("fuzz-out", reproducer); // "fuzz-out/crash-80232400-000175.json"
 * ```
 */
export async function writeReproducer(directory: string, reproducer: Reproducer): Promise<string> {
  await Deno.mkdir(directory, { recursive: true });
  const separator = directory.endsWith("/") || directory.endsWith("\\") ? "" : "/";
  const path = `${directory}${separator}${reproducerName(reproducer)}`;
  await Deno.writeTextFile(path, encodeReproducer(reproducer));
  return path;
}

/**
 * Reads and checks a reproducer file.
 *
 * @throws {ReproducerError} when the file is missing, unreadable or malformed
 *
 * @example
 * ```ts ignore
 * const reproducer = await readReproducer("fuzz-out/crash-80232400-000175.json");
 * ```
 */
export async function readReproducer(path: string): Promise<Reproducer> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "no such file"
      : (error as Error).message;
    throw new ReproducerError(path, reason, true);
  }
  return decodeReproducer(text, path);
}
