#!/usr/bin/env bash
# The main job: installs what is missing, builds the reference driver, loads it
# under Wine and runs the demo script against it with the Windows build of Deno
# (`kbridge lab run`, which reports a driver host that dies).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$KB_ROOT"
bash tools/setup.sh
source tools/wine.sh
kb_build_and_load demo
kb_lab run examples/demo.ts "$@"
