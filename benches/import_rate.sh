#!/usr/bin/env bash
# `meff import` of N tiny tagged WAVs (benches/gen_library.py) into 5 `meff up` processes
# (R=3), as a user runs it: tracks/s and the CPU the five peers spent per track. The quick
# form of catalog_scale.sh's first figure, for comparing builds (the catalog starts empty).
#   bash benches/import_rate.sh [N]      (default 10,000; MEFF_BIN=path to time another build)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10000}"
if [ -z "${MEFF_BIN:-}" ]; then cargo build --release --quiet; fi
MEFF="${MEFF_BIN:-$PWD/target/release/meff}"
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/meff-import.XXXXXX")"
declare -A pid
cleanup() { for p in "${pid[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
start() { # NAME [ARGS...]
  local name=$1; shift
  "$MEFF" up --name "$name" --port 0 --bind 127.0.0.1 --http off --replicas 3 \
    --data-dir "$WORK/$name" "$@" >>"$WORK/$name.out" 2>>"$WORK/$name.err" &
  pid[$name]=$!
}
cpu() { for p in "${pid[@]}"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | paste -sd+ | bc; }
python3 benches/gen_library.py "$WORK/files" "$N"
start p0
for _ in $(seq 1 100); do grep -q '^invite:' "$WORK/p0.out" && break; sleep 0.1; done
ticket=$(sed -n 's/^invite: //p' "$WORK/p0.out")
for i in 1 2 3 4; do MEFF_TICKET="$ticket" start "p$i"; done
for i in 1 2 3 4; do for _ in $(seq 1 100); do grep -q '^invite:' "$WORK/p$i.out" && break; sleep 0.1; done; done
sleep 2
t0=$(date +%s.%N); c0=$(cpu)
MEFF_DATA_DIR="$WORK/p0" "$MEFF" import "$WORK/files" | tail -1
t1=$(date +%s.%N); c1=$(cpu)
awk -v a="$t0" -v b="$t1" -v n="$N" -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" 'BEGIN{
  printf "import of %d tiny tracks into 5 peers (R=3): %.2f s, %.0f tracks/s; the peers used %.2f s of CPU, %.2f ms a track\n",
    n, b - a, n / (b - a), c / hz, c / hz / n * 1000 }'
