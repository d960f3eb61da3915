#!/usr/bin/env bash
# Runs every test: static checks, the Linux-side `deno test`, and the Windows
# side (`deno.exe test` under Wine against the loaded reference driver), twice:
# the whole Wine suite against the mingw build, then the tests that exercise
# SEH, the transfer methods and the channels against the SEH build (clang 19).
# Ends with one line "N passed, N failed" summing all of them, after the time
# of each Wine pass.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$KB_ROOT"
bash tools/setup.sh || exit 1
source tools/wine.sh

passed=0
failed=0
failures=()

# A check counts as one test.
check() {
  local name="$1"; shift
  local log="$KB_LOG/check-${name// /-}.log"
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1)); echo "check $name ... ok"
  else
    failed=$((failed + 1)); failures+=("check $name"); echo "check $name ... FAILED"; tail -n 30 "$log"
  fi
}

# Adds the counts of a `deno test` run from its summary line.
count_deno_tests() {
  local label="$1" log="$2" rc="$3" line p f
  line="$(tr -d '\r' <"$log" | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -n 1)"
  if [ -z "$line" ]; then
    failed=$((failed + 1)); failures+=("$label: no summary (exit $rc)"); tail -n 40 "$log"; return
  fi
  p="$(sed -E 's/^[A-Z]+ \| ([0-9]+) passed.*/\1/I' <<<"$line")"
  f="$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$line")"
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$f" != 0 ] || [ "$rc" != 0 ]; then
    failures+=("$label"); [ "$f" = 0 ] && { failed=$((failed + 1)); }
  fi
}

check "driver build" make -s -C driver OUT="$KB_DRIVER_DIR"
check "driver SEH build" make -s -C driver seh OUT="$KB_DRIVER_DIR" SEH_OUT="$KB_SEH_DRIVER_DIR"
check "driver analyze" make -s -C driver analyze
check "deno fmt" "$KB_LINUX_DENO" fmt --check
check "deno lint" "$KB_LINUX_DENO" lint
check "deno check" "$KB_LINUX_DENO" check mod.ts cli.ts src/ ffi/ tests/ examples/ tools/
check "deno doc lint" "$KB_LINUX_DENO" doc --lint mod.ts src/reference/mod.ts src/fuzz/mod.ts src/lab/mod.ts cli.ts
check "deno doc examples" "$KB_LINUX_DENO" test -A --doc mod.ts cli.ts src/
check "deno publish dry-run" "$KB_LINUX_DENO" publish --dry-run --allow-dirty

echo "--- Linux: deno test"
NO_COLOR=1 "$KB_LINUX_DENO" test -A --ignore=tests/wine tests/ 2>&1 | tee "$KB_LOG/linux-tests.log"
count_deno_tests "linux deno test" "$KB_LOG/linux-tests.log" "${PIPESTATUS[0]}"

# One pass of the Wine tests $3... against the drivers of folder $2, labelled $1.
wine_pass() {
  local build="$1" dir="$2" rc start
  shift 2
  echo "--- Wine: deno.exe test against the $build build of the drivers (kbridge lab test)"
  start="$(date +%s)"
  if kb_install_driver "$dir"; then
    # The lab prints deno.exe's output (with Deno's summary line), crash reports of
    # driver hosts that died (the fuzz tests kill kbcrashy's on purpose), and its own line.
    KB_DRIVER_BUILD="$build" kb_lab test "$@" >"$KB_LOG/wine-tests-$build.log" 2>&1
    rc=$?
    cat "$KB_LOG/wine-tests-$build.log"
    count_deno_tests "wine deno test ($build)" "$KB_LOG/wine-tests-$build.log" "$rc"
  else
    failed=$((failed + 1)); failures+=("driver install under Wine ($build)")
  fi
  timings+=("wine pass $build: $(($(date +%s) - start)) s")
}

timings=()
wine_pass mingw "$KB_DRIVER_DIR" tests/wine/
# The SEH build: what its compiler changes (the guarded paths, every transfer method,
# the channels and the kit, the sample driver, hostile clients and bad input). The
# fuzzer, the CLI and the examples exercise the library rather than the build: once.
wine_pass seh "$KB_SEH_DRIVER_DIR" tests/wine/seh.test.ts tests/wine/transfer.test.ts \
  tests/wine/channels.test.ts tests/wine/ring_sizing.test.ts tests/wine/sample.test.ts \
  tests/wine/bad_input.test.ts tests/wine/hostile.test.ts tests/wine/overlapped.test.ts \
  tests/wine/foundation.test.ts tests/wine/least_privilege.test.ts

for t in "${timings[@]}"; do echo "$t"; done
for f in "${failures[@]}"; do echo "failed: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
