# Shared settings of the Wine harness; sourced by the other scripts. The work is
# done by the lab (`kbridge lab`, src/lab/): these scripts only call it.
KB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KB_BUILD="${KB_BUILD:-$KB_ROOT/build}"
# The one Deno version pin (Linux `deno` from npm; the lab installs the Windows
# build at the version of the Deno that runs it).
KB_DENO_VERSION=2.9.6
# Beyond the lab's packages: clang, for `make -C driver analyze`.
KB_EXTRA_PACKAGES="clang"
# The lab's environment for Wine programs (src/lab/wine.ts sets the same for what it runs).
export WINEPREFIX="$KB_BUILD/wine-prefix"
export WINEDEBUG="${WINEDEBUG:--all}"
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=}"
# Deno 2.9 copies deno.exe to %LOCALAPPDATA%\deno\node_compat_bin\node.exe on every start
# (a `node` shim for child processes); under Wine each run leaves a 97 MB node.exe.tmp-<pid>.
# Nothing here spawns `node`: switch the shim off.
export DENO_DISABLE_NODE_SHIM=1
export KB_DENO_EXE="$KB_BUILD/win/deno-wine.exe"
KB_LINUX_DENO="$KB_BUILD/npm/node_modules/.bin/deno"
KB_SYS="$KB_BUILD/driver/kbridge.sys"
# The channel kit's sample driver (driver/sample), built next to kbridge.sys.
KB_SAMPLE_SYS="$KB_BUILD/driver/kbsample.sys"
export KB_LOG="$KB_BUILD/logs"

# `kbridge lab …` in the harness's lab directory (build/), with the Linux Deno.
kb_lab() {
  "$KB_LINUX_DENO" run -A "$KB_ROOT/cli.ts" lab --dir "$KB_BUILD" "$@"
}
