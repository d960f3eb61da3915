/**
 * The error of the lab (`kbridge lab …`): one class, with a machine-readable
 * reason next to the one-line message.
 *
 * @module
 */
import { KbridgeError } from "../core/errors.ts";

/**
 * Why a lab step failed.
 *
 * - `bad-image`: the file is no PE image the lab can read;
 * - `missing-packages`: Debian packages are missing and the user is not root;
 * - `setup`: a set-up step failed (the message names its log);
 * - `not-set-up`: the lab directory lacks what `kbridge lab setup` makes;
 * - `missing-import` / `stub-import`: the driver imports a function Wine lacks or stubs;
 * - `load`: the driver did not start (the message says why);
 * - `build`: `kbridge lab build` failed: no compiler, a missing source, or
 *   compile errors (their first lines are in the message);
 * - `wine`: a Wine program failed.
 *
 * @example
 * ```ts
 * import type { LabErrorReason } from "./lab_error.ts";
 * const reason: LabErrorReason = "stub-import";
 * ```
 */
export type LabErrorReason =
  | "bad-image"
  | "missing-packages"
  | "setup"
  | "not-set-up"
  | "missing-import"
  | "stub-import"
  | "load"
  | "build"
  | "wine"
  | "busy";

/**
 * A failed lab step: `reason` says which kind, the message says why in one line.
 *
 * @example
 * ```ts
 * import { LabError } from "./lab_error.ts";
 *
 * const error = new LabError("stub-import", "kbwdm: imports Wine stubs: IoCsqInsertIrp");
 * error.reason; // "stub-import"
 * ```
 */
export class LabError extends KbridgeError {
  /** `"LabError"`. */
  override name: string = "LabError";
  /** Which kind of failure. */
  readonly reason: LabErrorReason;

  /** Creates the error; `message` is the whole one-line text. */
  constructor(reason: LabErrorReason, message: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}
