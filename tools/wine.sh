# Helpers to run Windows programs under the harness's Wine prefix; sourced.
# Output goes to files or the caller's stdout, never a pipe that services.exe could inherit.

kb_wine() {
  wine "$@" </dev/null
}

# Copies the freshly built driver into the prefix and (re)loads its service
# through the library's own CLI.
kb_install_driver() {
  local cli=(kb_wine "$KB_DENO_EXE" run -A "$KB_ROOT/cli.ts" service)
  "${cli[@]}" stop kbridge >>"$KB_LOG/driver-load.log" 2>&1
  cp "$KB_SYS" "$WINEPREFIX/drive_c/windows/system32/drivers/kbridge.sys" || return 1
  # The fuzzer's test-only fixture driver (planted fault), loaded by tests/wine/fuzz.test.ts.
  # Copied by rename so that a running kbcrashy host keeps its own image.
  local crashy="$WINEPREFIX/drive_c/windows/system32/drivers/kbcrashy.sys"
  make -s -C "$KB_ROOT/tests/fixture" OUT="$KB_BUILD/fixture" >>"$KB_LOG/driver-load.log" 2>&1 &&
    { cmp -s "$KB_BUILD/fixture/kbcrashy.sys" "$crashy" ||
      { cp "$KB_BUILD/fixture/kbcrashy.sys" "$crashy.tmp" && mv -f "$crashy.tmp" "$crashy"; }; } ||
    { tail -n 20 "$KB_LOG/driver-load.log"; return 1; }
  if ! "${cli[@]}" status kbridge >>"$KB_LOG/driver-load.log" 2>&1; then
    "${cli[@]}" install kbridge --sys 'C:\windows\system32\drivers\kbridge.sys' \
      >>"$KB_LOG/driver-load.log" 2>&1 || { tail -n 20 "$KB_LOG/driver-load.log"; return 1; }
  fi
  "${cli[@]}" start kbridge >>"$KB_LOG/driver-load.log" 2>&1 || { tail -n 20 "$KB_LOG/driver-load.log"; return 1; }
}

# Builds the reference driver and loads it; on failure says so for `$1` (the caller's name).
kb_build_and_load() {
  make -s -C "$KB_ROOT/driver" OUT="$KB_BUILD/driver" &&
    kb_install_driver ||
    { echo "$1: could not build or load the driver (see $KB_LOG/driver-load.log)" >&2; return 1; }
}
