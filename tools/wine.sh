# Helpers to run Windows programs under the harness's Wine prefix; sourced.
# Output goes to files or the caller's stdout, never a pipe that services.exe could inherit.

kb_wine() {
  wine "$@" </dev/null
}

# Driver hosts inherit the output of the server's first process (see setup.sh), so
# Wine's crash text ("Unhandled page fault on … at address …") lands in this log.
KB_WINE_LOG="$KB_LOG/wine-start.log"

# The current end of the Wine log, for kb_crash_report.
kb_log_mark() {
  stat -c %s "$KB_WINE_LOG" 2>/dev/null || echo 0
}

# Prints the crash lines Wine wrote since mark $1, for the caller named $2, and the
# log's path. Returns 1 when Wine reported no crash.
kb_crash_report() {
  local lines
  lines="$(tail -c +"$(($1 + 1))" "$KB_WINE_LOG" 2>/dev/null | tr -d '\r' |
    grep -E 'Unhandled|unhandled exception|page fault|wine: ' | head -n 12)"
  [ -n "$lines" ] || return 1
  echo "$2: a driver host died; Wine said:" >&2
  sed 's/^/  /' <<<"$lines" >&2
  echo "$2: Wine's full output is in $KB_WINE_LOG" >&2
}

# Stops service $1, copies the driver file $2 into the prefix as $1.sys, installs the
# service if it is missing and starts it, through the library's own CLI.
kb_load_service() {
  local name="$1" sys="$2"
  local cli=(kb_wine "$KB_DENO_EXE" run -A "$KB_ROOT/cli.ts" service)
  "${cli[@]}" stop "$name" >>"$KB_LOG/driver-load.log" 2>&1
  cp "$sys" "$WINEPREFIX/drive_c/windows/system32/drivers/$name.sys" || return 1
  if ! "${cli[@]}" status "$name" >>"$KB_LOG/driver-load.log" 2>&1; then
    "${cli[@]}" install "$name" --sys "C:\\windows\\system32\\drivers\\$name.sys" \
      >>"$KB_LOG/driver-load.log" 2>&1 || { tail -n 20 "$KB_LOG/driver-load.log"; return 1; }
  fi
  "${cli[@]}" start "$name" >>"$KB_LOG/driver-load.log" 2>&1 || { tail -n 20 "$KB_LOG/driver-load.log"; return 1; }
}

# Copies the freshly built drivers into the prefix and (re)loads the reference driver
# and the kit's sample driver (kbsample, built next to it by driver/Makefile).
kb_install_driver() {
  kb_load_service kbridge "$KB_SYS" || return 1
  # The fuzzer's test-only fixture driver (planted fault), loaded by tests/wine/fuzz.test.ts.
  # Copied by rename so that a running kbcrashy host keeps its own image.
  local crashy="$WINEPREFIX/drive_c/windows/system32/drivers/kbcrashy.sys"
  make -s -C "$KB_ROOT/tests/fixture" OUT="$KB_BUILD/fixture" >>"$KB_LOG/driver-load.log" 2>&1 &&
    { cmp -s "$KB_BUILD/fixture/kbcrashy.sys" "$crashy" ||
      { cp "$KB_BUILD/fixture/kbcrashy.sys" "$crashy.tmp" && mv -f "$crashy.tmp" "$crashy"; }; } ||
    { tail -n 20 "$KB_LOG/driver-load.log"; return 1; }
  kb_load_service kbsample "$KB_SAMPLE_SYS"
}

# Builds the reference driver and loads it; on failure says so for `$1` (the caller's name).
kb_build_and_load() {
  local mark
  mark="$(kb_log_mark)"
  make -s -C "$KB_ROOT/driver" OUT="$KB_BUILD/driver" &&
    kb_install_driver ||
    {
      kb_crash_report "$mark" "$1"
      echo "$1: could not build or load the driver (see $KB_LOG/driver-load.log)" >&2
      return 1
    }
}
