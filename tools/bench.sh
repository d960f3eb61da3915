#!/usr/bin/env bash
# `deno task bench`: Deno against a native C client under the same wineserver.
# Builds and loads the reference driver, builds the C client (mingw-w64), runs the
# Linux microbenchmarks, then tests/bench/bench.ts with the Windows build of Deno
# under Wine, which alternates C and Deno round after round and writes
# tests/bench/results.md and results.json. Arguments go to bench.ts
# (e.g. --rounds 3 --scale 0.2 for a quick look; --only REGEXP runs just the matching
# workloads and replaces only their rows).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$KB_ROOT"
bash tools/setup.sh
source tools/wine.sh
kb_build_and_load bench

mkdir -p "$KB_BUILD/bench"
x86_64-w64-mingw32-gcc -O2 -Wall -Wextra -Werror -Idriver -o "$KB_BUILD/bench/client.exe" tests/bench/client.c

echo "bench: Linux microbenchmarks (deno bench)" >&2
"$KB_LINUX_DENO" bench --json tests/bench/micro_bench.ts >"$KB_BUILD/bench/micro.json"

echo "bench: C and Deno under Wine" >&2
cpu="$(grep -m 1 '^model name' /proc/cpuinfo | sed 's/^model name[[:space:]]*: //') ($(nproc) CPUs)"
# The fuzzer's known-hang rows use the fixture kb_build_and_load built, loaded through drive Z:.
kb_lab run tests/bench/bench.ts \
  --client "$KB_BUILD/bench/client.exe" --micro "$KB_BUILD/bench/micro.json" \
  --quirky "Z:${KB_BUILD//\//\\}\\fixture\\kbquirky.sys" \
  --cpu "$cpu" --wine "$(wine --version </dev/null 2>/dev/null)" "$@"
# The results files are committed: keep them as `deno fmt --check` wants them; results.md and
# the README's table are regenerated from results.json, which now holds this machine's run.
"$KB_LINUX_DENO" fmt --quiet tests/bench/results.json
"$KB_LINUX_DENO" run --allow-read --allow-write --allow-run tools/bench_readme.ts
