# Shared settings of the Wine harness; sourced by the other scripts. The work is
# done by the lab (`kbridge lab`, src/lab/): these scripts only call it.
KB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KB_BUILD="${KB_BUILD:-$KB_ROOT/build}"
# The one Deno version pin (Linux `deno` from npm; the lab installs the Windows
# build at the version of the Deno that runs it).
KB_DENO_VERSION=2.9.6
# Beyond the lab's packages: clang, for `make -C driver analyze`; clang-19 and lld
# (lld-link), for the SEH build of the drivers (driver/seh.mk).
KB_EXTRA_PACKAGES="clang clang-19 lld"
# The lab's environment for Wine programs (src/lab/wine.ts sets the same for what it runs).
export WINEPREFIX="$KB_BUILD/wine-prefix"
export WINEDEBUG="${WINEDEBUG:--all}"
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=}"
export KB_DENO_EXE="$KB_BUILD/win/deno-wine.exe"
KB_LINUX_DENO="$KB_BUILD/npm/node_modules/.bin/deno"
# The two builds of the reference driver and of the kit's sample driver (driver/sample),
# each into its own folder: mingw gcc (no SEH), and clang 19 + lld-link with real SEH.
KB_DRIVER_DIR="$KB_BUILD/driver"
KB_SEH_DRIVER_DIR="$KB_BUILD/driver-seh"
export KB_LOG="$KB_BUILD/logs"

# `kbridge lab …` in the harness's lab directory (build/), with the Linux Deno.
kb_lab() {
  "$KB_LINUX_DENO" run -A "$KB_ROOT/cli.ts" lab --dir "$KB_BUILD" "$@"
}
