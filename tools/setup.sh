#!/usr/bin/env bash
# Installs and prepares everything the Wine harness needs, idempotently, in build/:
# Debian packages, Deno for Linux and Windows (npm, one pinned version), a Wine
# prefix, the bcryptprimitives.dll shim, a private patched deno.exe and a
# persistent wineserver. A second run with everything in place is quick.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
mkdir -p "$KB_BUILD" "$KB_LOG"

say() { printf 'setup: %s\n' "$*" >&2; }

missing_packages() {
  local p
  for p in $KB_APT_PACKAGES; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || printf '%s ' "$p"
  done
}

install_packages() {
  local missing
  missing="$(missing_packages)"
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" != 0 ]; then
    say "missing Debian packages: $missing"
    say "run as root: apt-get update && apt-get install -y --no-install-recommends $KB_APT_PACKAGES"
    exit 1
  fi
  say "installing $missing (apt-get)"
  apt-get update -qq >"$KB_LOG/apt.log" 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $KB_APT_PACKAGES \
    >>"$KB_LOG/apt.log" 2>&1 || { say "apt-get failed, see $KB_LOG/apt.log"; exit 1; }
}

install_linux_deno() {
  [ -x "$KB_LINUX_DENO" ] && "$KB_LINUX_DENO" --version 2>/dev/null | grep -q "^deno $KB_DENO_VERSION " && return 0
  say "installing deno $KB_DENO_VERSION for Linux (npm)"
  mkdir -p "$KB_BUILD/npm"
  [ -f "$KB_BUILD/npm/package.json" ] || echo '{ "private": true }' >"$KB_BUILD/npm/package.json"
  (cd "$KB_BUILD/npm" && npm install --no-audit --no-fund --silent "deno@$KB_DENO_VERSION") \
    >"$KB_LOG/npm-deno.log" 2>&1 || { say "npm install failed, see $KB_LOG/npm-deno.log"; exit 1; }
}

# deno.exe with V8's lookup of VirtualAlloc2 renamed: Wine 8's VirtualAlloc2 rejects
# MEM_RESERVE_PLACEHOLDER, and without the name V8 falls back to emulated subspaces.
install_windows_deno() {
  [ -f "$KB_DENO_EXE" ] && [ -f "$KB_BUILD/win/version" ] &&
    [ "$(cat "$KB_BUILD/win/version")" = "$KB_DENO_VERSION" ] && return 0
  say "installing deno $KB_DENO_VERSION for Windows (npm @deno/win32-x64) and patching a private copy"
  rm -rf "$KB_BUILD/win" && mkdir -p "$KB_BUILD/win"
  (cd "$KB_BUILD/win" && npm pack --silent "@deno/win32-x64@$KB_DENO_VERSION" && tar -xzf deno-win32-x64-*.tgz \
    && rm deno-win32-x64-*.tgz) >"$KB_LOG/npm-deno-win.log" 2>&1 ||
    { say "npm pack failed, see $KB_LOG/npm-deno-win.log"; exit 1; }
  local count
  count="$(grep -c -a -o $'VirtualAlloc2\x00' "$KB_BUILD/win/package/deno.exe" || true)"
  if [ "$count" != 1 ]; then
    say "expected one 'VirtualAlloc2' string in deno.exe, found $count"
    exit 1
  fi
  perl -0777 -pe 's/VirtualAlloc2\x00/VirtualAllocX\x00/' "$KB_BUILD/win/package/deno.exe" >"$KB_DENO_EXE.tmp"
  mv "$KB_DENO_EXE.tmp" "$KB_DENO_EXE"
  rm -f "$KB_BUILD/win/package/deno.exe"
  echo "$KB_DENO_VERSION" >"$KB_BUILD/win/version"
}

build_shim() {
  local src="$KB_ROOT/tools/bcryptprimitives.c" dll="$KB_BUILD/win/bcryptprimitives.dll"
  [ -f "$dll" ] && [ "$dll" -nt "$src" ] && return 0
  x86_64-w64-mingw32-gcc -O2 -Wall -Wextra -Werror -shared -o "$dll" "$src" -ladvapi32
}

# Pid of a wineserver started with -p (persistent) that serves this prefix: its working
# directory is server-<device>-<inode> of the prefix, its arguments hold a plain -p.
persistent_server() {
  local id pid
  id="server-$(stat -c '%D' "$WINEPREFIX")-$(printf '%x' "$(stat -c '%i' "$WINEPREFIX")")"
  for pid in $(pgrep -f wineserver); do
    [ "$(basename "$(readlink "/proc/$pid/cwd" 2>/dev/null)")" = "$id" ] || continue
    tr '\0' '\n' <"/proc/$pid/cmdline" | tail -n +2 | grep -qx -- -p && { echo "$pid"; return 0; }
  done
  return 1
}

# A persistent server keeps winedevice.exe (the driver host) alive between commands.
# `wineserver -p` cannot make a running server persistent (it exits 2), and a server
# that is not persistent ends a few seconds after its last client, taking services.exe
# and the driver hosts with it: wait for such a server (e.g. wineboot's) to end first.
start_persistent_server() {
  persistent_server >/dev/null && return 0
  timeout 60 wineserver -w </dev/null >>"$KB_LOG/wineserver.log" 2>&1 || true
  wineserver -p </dev/null >>"$KB_LOG/wineserver.log" 2>&1 || true
  local i
  for i in $(seq 50); do
    persistent_server >/dev/null && return 0
    sleep 0.1
  done
  say "no persistent wineserver runs for $WINEPREFIX (see $KB_LOG/wineserver.log);"
  say "stop Wine for this prefix (WINEPREFIX=$WINEPREFIX wineserver -k) and run again"
  exit 1
}

start_wine() {
  # The registry files appear only when the server flushes them: keep a marker instead.
  if [ ! -f "$WINEPREFIX/.kbridge-ready" ]; then
    say "creating the Wine prefix $WINEPREFIX (about 10 s)"
    wine wineboot -i </dev/null >"$KB_LOG/wineboot.log" 2>&1
    touch "$WINEPREFIX/.kbridge-ready"
  fi
  start_persistent_server
  local sys32="$WINEPREFIX/drive_c/windows/system32"
  cmp -s "$KB_BUILD/win/bcryptprimitives.dll" "$sys32/bcryptprimitives.dll" ||
    cp "$KB_BUILD/win/bcryptprimitives.dll" "$sys32/bcryptprimitives.dll"
  # Copies of deno.exe left by runs before DENO_DISABLE_NODE_SHIM (see env.sh).
  rm -rf "$WINEPREFIX"/drive_c/users/*/AppData/Local/deno/node_compat_bin
  # The first process of a server starts services.exe, which inherits its output:
  # start it here with files as output so later pipes close. Driver hosts inherit it
  # too, so Wine's crash text lands in this log (see kb_crash_report in wine.sh).
  wine cmd.exe /c exit 0 </dev/null >>"$KB_LOG/wine-start.log" 2>&1
}

install_packages
install_linux_deno
install_windows_deno
build_shim
start_wine
