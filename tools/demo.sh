#!/usr/bin/env bash
# The main job: installs what is missing, builds the reference driver, loads it
# under Wine and runs the demo script against it with the Windows build of Deno.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$KB_ROOT"
bash tools/setup.sh
source tools/wine.sh
make -s -C driver OUT="$KB_BUILD/driver"
kb_install_driver || { echo "demo: could not load the driver (see $KB_LOG/driver-load.log)" >&2; exit 1; }
kb_wine "$KB_DENO_EXE" run -A examples/demo.ts "$@" 2>&1 | tr -d '\r'
exit "${PIPESTATUS[0]}"
