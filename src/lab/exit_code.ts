/**
 * Preloaded by the lab into `deno.exe run` (`--preload`): at a normal exit
 * (the script's end, `Deno.exit`) it writes `Deno.exitCode` to the file that
 * `KBRIDGE_LAB_EXIT_FILE` names. Wine's server sends SIGKILL to a process
 * still exiting a second after its last thread ended, as on a loaded
 * machine, and `wine`'s own status then reads 137: the file keeps the code.
 * An uncaught error ends the process without the event, and so without the
 * file: its status (1) stands.
 *
 * @module
 */
const exitFile = Deno.env.get("KBRIDGE_LAB_EXIT_FILE");
if (exitFile !== undefined) {
  addEventListener("unload", () => Deno.writeTextFileSync(exitFile, `${Deno.exitCode}\n`));
}
