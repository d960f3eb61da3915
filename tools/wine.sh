# Helpers of the Wine harness; sourced after env.sh. They call the lab.

# Builds the test-only fixtures (the coverage fixture kbmagic with `kbridge lab build
# --coverage`, into $KB_BUILD/lab/drivers) and (re)loads, through the lab, the drivers of folder $1
# (default: the mingw build, $KB_DRIVER_DIR; the SEH build is $KB_SEH_DRIVER_DIR): the
# reference driver and the kit's sample driver (kbsample, built next to it by
# driver/Makefile), and the SEH fixture (kbseh, tests/wine/seh.test.ts). Some tests
# install services themselves from system32 (tests/wine/_driver.ts, fuzz.test.ts,
# seh.test.ts): copy those drivers there too, by rename so that a running host keeps its
# own image.
kb_install_driver() {
  local dir="${1:-$KB_DRIVER_DIR}" drivers="$WINEPREFIX/drive_c/windows/system32/drivers" sys name
  # The log holds this install's build output only: it does not grow with use.
  : >"$KB_LOG/driver-load.log"
  make -s -C "$KB_ROOT/tests/fixture" OUT="$KB_BUILD/fixture" >>"$KB_LOG/driver-load.log" 2>&1 ||
    { tail -n 20 "$KB_LOG/driver-load.log"; return 1; }
  kb_lab build --coverage --name kbmagic "$KB_ROOT/tests/fixture/magic.c" >>"$KB_LOG/driver-load.log" 2>&1 ||
    { tail -n 20 "$KB_LOG/driver-load.log"; return 1; }
  for sys in "$dir/kbridge.sys" "$KB_BUILD/fixture/kbcrashy.sys" "$KB_BUILD/fixture/kbseh.sys"; do
    name="$(basename "$sys")"
    cmp -s "$sys" "$drivers/$name" || { cp "$sys" "$drivers/$name.tmp" && mv -f "$drivers/$name.tmp" "$drivers/$name"; } ||
      return 1
  done
  kb_lab load "$dir/kbridge.sys" --name kbridge && kb_lab load "$dir/kbsample.sys" --name kbsample &&
    kb_lab load "$KB_BUILD/fixture/kbseh.sys" --name kbseh
}

# Builds both builds of the drivers and loads one (the SEH build when $2 is "seh"); on
# failure says so for `$1` (the caller's name).
kb_build_and_load() {
  local dir="$KB_DRIVER_DIR"
  [ "${2:-}" = seh ] && dir="$KB_SEH_DRIVER_DIR"
  make -s -C "$KB_ROOT/driver" all seh OUT="$KB_DRIVER_DIR" SEH_OUT="$KB_SEH_DRIVER_DIR" &&
    kb_install_driver "$dir" ||
    { echo "$1: could not build or load the driver (see $KB_LOG/driver-load.log)" >&2; return 1; }
}
