#!/usr/bin/env bash
# The main job: installs what is missing, builds the reference driver, loads it
# under Wine and runs the demo script against it with the Windows build of Deno.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$KB_ROOT"
bash tools/setup.sh
source tools/wine.sh
kb_build_and_load demo
mark="$(kb_log_mark)"
rc=0
kb_wine "$KB_DENO_EXE" run -A examples/demo.ts "$@" 2>&1 | tr -d '\r' || rc="${PIPESTATUS[0]}"
kb_crash_report "$mark" demo || true
exit "$rc"
