#!/usr/bin/env bash
# Runs every test: static checks, the Linux-side `deno test`, and the Windows
# side (`deno.exe test` under Wine against the loaded reference driver).
# Ends with one line "N passed, N failed" summing all of them.
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

check "driver build" make -s -C driver OUT="$KB_BUILD/driver"
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

echo "--- Wine: deno.exe test against the reference driver (kbridge lab test)"
if kb_install_driver; then
  # The lab prints deno.exe's output (with Deno's summary line), crash reports of
  # driver hosts that died (the fuzz tests kill kbcrashy's on purpose), and its own line.
  kb_lab test tests/wine/ >"$KB_LOG/wine-tests.log" 2>&1
  rc=$?
  cat "$KB_LOG/wine-tests.log"
  count_deno_tests "wine deno test" "$KB_LOG/wine-tests.log" "$rc"
else
  failed=$((failed + 1)); failures+=("driver install under Wine")
fi

for f in "${failures[@]}"; do echo "failed: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
