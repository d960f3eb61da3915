# Helpers of the Wine harness; sourced after env.sh. They call the lab.

# Builds the fuzzer's fixture and (re)loads, through the lab, the reference driver and
# the kit's sample driver (kbsample, built next to it by driver/Makefile). Some tests
# install services themselves from system32 (tests/wine/_driver.ts, fuzz.test.ts): copy
# those drivers there too, by rename so that a running host keeps its own image.
kb_install_driver() {
  local drivers="$WINEPREFIX/drive_c/windows/system32/drivers" sys name
  make -s -C "$KB_ROOT/tests/fixture" OUT="$KB_BUILD/fixture" >>"$KB_LOG/driver-load.log" 2>&1 ||
    { tail -n 20 "$KB_LOG/driver-load.log"; return 1; }
  for sys in "$KB_SYS" "$KB_BUILD/fixture/kbcrashy.sys"; do
    name="$(basename "$sys")"
    cmp -s "$sys" "$drivers/$name" || { cp "$sys" "$drivers/$name.tmp" && mv -f "$drivers/$name.tmp" "$drivers/$name"; } ||
      return 1
  done
  kb_lab load "$KB_SYS" --name kbridge && kb_lab load "$KB_SAMPLE_SYS" --name kbsample
}

# Builds the reference driver and loads it; on failure says so for `$1` (the caller's name).
kb_build_and_load() {
  make -s -C "$KB_ROOT/driver" OUT="$KB_BUILD/driver" &&
    kb_install_driver ||
    { echo "$1: could not build or load the driver (see $KB_LOG/driver-load.log)" >&2; return 1; }
}
