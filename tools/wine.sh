# Helpers to run Windows programs under the harness's Wine prefix; sourced.
# Output goes to files or the caller's stdout, never a pipe that services.exe could inherit.

kb_wine() {
  wine "$@" </dev/null
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
  make -s -C "$KB_ROOT/driver" OUT="$KB_BUILD/driver" &&
    kb_install_driver ||
    { echo "$1: could not build or load the driver (see $KB_LOG/driver-load.log)" >&2; return 1; }
}
