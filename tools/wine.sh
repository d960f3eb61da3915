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
  if ! "${cli[@]}" status kbridge >>"$KB_LOG/driver-load.log" 2>&1; then
    "${cli[@]}" install kbridge --sys 'C:\windows\system32\drivers\kbridge.sys' \
      >>"$KB_LOG/driver-load.log" 2>&1 || { tail -n 20 "$KB_LOG/driver-load.log"; return 1; }
  fi
  "${cli[@]}" start kbridge >>"$KB_LOG/driver-load.log" 2>&1 || { tail -n 20 "$KB_LOG/driver-load.log"; return 1; }
}
