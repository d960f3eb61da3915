/**
 * The lab's agent: run by the Windows Deno under Wine, it does the service
 * work of `kbridge lab load` / `unload` through the library's service API and
 * prints one JSON line with the outcome, which the Linux side reads from the
 * output file.
 *
 * ```sh
 * deno.exe run -A src/lab/agent.ts load <name> <Windows path of the .sys>
 * deno.exe run -A src/lab/agent.ts unload <name>
 * ```
 *
 * @example
 * ```ts ignore
 * import { agentMain } from "./agent.ts";
 * await agentMain(["load", "kbwdm", "Z:\\tmp\\lab\\lab\\drivers\\kbwdm.sys"]);
 * ```
 *
 * @module
 */
import { installDriver, queryDriver, removeDriver, startDriver, stopDriver } from "../../mod.ts";
import { KbridgeError } from "../core/errors.ts";
import { Win32Error } from "../core/win32_error.ts";

/**
 * The JSON line the agent prints.
 *
 * @example
 * ```ts
 * import type { AgentResult } from "./agent.ts";
 * const result: AgentResult = { ok: false, message: "StartServiceW failed", code: 1053 };
 * ```
 */
export interface AgentResult {
  /** Whether the action succeeded. */
  readonly ok: boolean;
  /** What happened, one line. */
  readonly message: string;
  /** The Win32 error of a failed call. */
  readonly code?: number;
  /** The service state at the end. */
  readonly state?: string;
}

/** Marks the agent's JSON line in its output. */
export const AGENT_MARK = "kbridge-lab-agent:";

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What Wine's service manager can answer a first call with, right after a new wineserver started. */
const ERROR_INVALID_ADDRESS = 487;
/** Tries of a first call to the service manager, `RETRY_MS` apart (about 5 s in all). */
const SERVICE_MANAGER_TRIES = 25;
const RETRY_MS = 200;

/**
 * `call()`, asked again while it fails with `ERROR_INVALID_ADDRESS`: under
 * Wine a service call made while services.exe is still starting (after
 * `kbridge lab restart`) can fail so — Wine's sechost turns an RPC null
 * reference into that error. Any other error, or the last try's, is thrown.
 *
 * @example
 * ```ts ignore
 * const before = await whenServicesAnswer(() => queryDriver("kbwdm"));
 * ```
 */
export async function whenServicesAnswer<T>(
  call: () => T,
  tries: number = SERVICE_MANAGER_TRIES,
  retryMs: number = RETRY_MS,
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return call();
    } catch (error) {
      const starting = error instanceof Win32Error && error.code === ERROR_INVALID_ADDRESS;
      if (!starting || attempt >= tries) throw error;
    }
    await delay(retryMs);
  }
}

/** Stops a service whose host may be dead (then ControlService fails: expected). */
async function stopQuietly(name: string): Promise<void> {
  try {
    await stopDriver(name, { timeoutMs: 5000 });
  } catch (error) {
    if (!(error instanceof KbridgeError)) throw error;
  }
}

async function load(name: string, sys: string): Promise<AgentResult> {
  const before = await whenServicesAnswer(() => queryDriver(name));
  if (before !== null) {
    await stopQuietly(name);
    removeDriver(name);
    // DeleteService takes effect once the service is stopped and unreferenced.
    for (let i = 0; i < 50 && queryDriver(name) !== null; i++) await delay(100);
  }
  installDriver(name, sys);
  startDriver(name);
  // StartServiceW returns once DriverEntry returned: check that it stays up.
  const state = queryDriver(name)?.state ?? "not installed";
  return state === "running"
    ? { ok: true, message: `started ${name}`, state }
    : { ok: false, message: `${name} is ${state} after StartServiceW`, state };
}

async function unload(name: string): Promise<AgentResult> {
  if ((await whenServicesAnswer(() => queryDriver(name))) === null) {
    return { ok: true, message: `${name} is not installed` };
  }
  await stopQuietly(name);
  removeDriver(name);
  return { ok: true, message: `removed ${name}` };
}

/**
 * Runs one agent action and prints its {@linkcode AgentResult} after
 * {@linkcode AGENT_MARK}; returns the exit code (0 success, 1 failure, 2 usage).
 *
 * @example
 * ```ts ignore
 * Deno.exit(await agentMain(["unload", "kbwdm"]));
 * ```
 */
export async function agentMain(args: readonly string[]): Promise<number> {
  const [action, name, sys] = args;
  let result: AgentResult;
  try {
    if (action === "load" && name !== undefined && sys !== undefined) {
      result = await load(name, sys);
    } else if (action === "unload" && name !== undefined) result = await unload(name);
    else result = { ok: false, message: `usage: agent.ts load <name> <sys> | unload <name>` };
  } catch (error) {
    if (!(error instanceof KbridgeError)) throw error;
    result = {
      ok: false,
      message: error.message,
      ...(error instanceof Win32Error ? { code: error.code } : {}),
      ...(name !== undefined ? { state: queryDriver(name)?.state ?? "not installed" } : {}),
    };
  }
  console.log(`${AGENT_MARK}${JSON.stringify(result)}`);
  return result.ok ? 0 : 1;
}

if (import.meta.main) Deno.exit(await agentMain(Deno.args));
