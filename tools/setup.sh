#!/usr/bin/env bash
# Installs and prepares everything the Wine harness needs, idempotently, in build/:
# Deno for Linux (npm, the pinned version), then `kbridge lab setup`: the Debian
# packages (or the apt-get line to run), Deno for Windows, the Wine prefix, the
# bcryptprimitives.dll shim, a patched private deno.exe and a persistent
# wineserver, verified. A second run with everything in place is quick.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
mkdir -p "$KB_BUILD" "$KB_LOG"

# The lab runs on the Linux Deno: install that first.
if ! { [ -x "$KB_LINUX_DENO" ] && "$KB_LINUX_DENO" --version 2>/dev/null | grep -q "^deno $KB_DENO_VERSION "; }; then
  echo "setup: installing deno $KB_DENO_VERSION for Linux (npm)" >&2
  mkdir -p "$KB_BUILD/npm"
  [ -f "$KB_BUILD/npm/package.json" ] || echo '{ "private": true }' >"$KB_BUILD/npm/package.json"
  (cd "$KB_BUILD/npm" && npm install --no-audit --no-fund --silent "deno@$KB_DENO_VERSION") \
    >"$KB_LOG/npm-deno.log" 2>&1 || { echo "setup: npm install failed, see $KB_LOG/npm-deno.log" >&2; exit 1; }
fi
kb_lab setup --with "${KB_EXTRA_PACKAGES// /,}"
