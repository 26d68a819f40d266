#!/usr/bin/env bash
# A catalog of N tracks (default 100,000) across 5 `meff up` processes (R=3), every figure
# timed as a user gets it (the `meff` CLI talking to running peers):
#  - `meff import` of N tiny tagged WAVs (benches/gen_library.py) into one peer: tracks/s;
#  - a 6th peer joins: time until its `artists --json` counts all N;
#  - a push, then a remove, at one peer: time until all 6 see it;
#  - idle: loopback IP bytes and CPU per peer over 20 s, peer RSS;
#  - `ls QUERY` and `ls --json` of everything, 10 runs each;
#  - a peer restarted: time from launch until it answers `ls` with its catalog.
#   bash benches/catalog_scale.sh [N]     (MEFF_KEEP=1 keeps the work dir)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"
cargo build --release --quiet
MEFF="$PWD/target/release/meff"
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/meff-catalog.XXXXXX")"
declare -A pid
# SIGKILL: a graceful leave would hand every copy off first, minutes at 100,000 tracks.
cleanup() { for p in "${pid[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null || true; [ -n "${MEFF_KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"; }
trap cleanup EXIT
now() { date +%s.%N; }
since() { awk "BEGIN{printf \"%.2f\", $(now) - $1}"; }
start() { # NAME [ARGS...]
  local name=$1; shift
  "$MEFF" up --name "$name" --port 0 --bind 127.0.0.1 --http off --replicas 3 \
    --data-dir "$WORK/$name" "$@" >>"$WORK/$name.out" 2>>"$WORK/$name.err" &
  pid[$name]=$!
}
count() { # NAME: tracks its peer lists
  "$MEFF" --data-dir "$WORK/$1" artists --json 2>/dev/null |
    python3 -c 'import json,sys; print(sum(a["tracks"] for a in json.load(sys.stdin)))' 2>/dev/null || echo 0
}
sees() { # NAME TRACK: 0 when the peer lists the track
  "$MEFF" --data-dir "$WORK/$1" ls "$2" 2>/dev/null | grep -q "$2"
}

python3 benches/gen_library.py "$WORK/files" "$N"
start p0
for _ in $(seq 1 100); do grep -q '^invite:' "$WORK/p0.out" && break; sleep 0.1; done
ticket=$(sed -n 's/^invite: //p' "$WORK/p0.out")
for i in 1 2 3 4; do MEFF_TICKET="$ticket" start "p$i"; done
for i in 1 2 3 4; do for _ in $(seq 1 100); do grep -q '^invite:' "$WORK/p$i.out" && break; sleep 0.1; done; done
sleep 2

t0=$(now)
MEFF_DATA_DIR="$WORK/p0" "$MEFF" import "$WORK/files" | tail -1
dt=$(since "$t0")
echo "import of $N tiny tagged tracks into 5 peers (R=3): $dt s, $(awk "BEGIN{printf \"%.0f\", $N / $dt}") tracks/s"
for i in 0 1 2 3 4; do
  for _ in $(seq 1 600); do [ "$(count "p$i")" -ge "$N" ] && break; sleep 0.5; done
done
echo "all 5 list $N tracks $(since "$t0") s after the import began"

t0=$(now)
MEFF_TICKET="$ticket" start p5
for _ in $(seq 1 600); do [ "$(count p5)" -ge "$N" ] && break; sleep 0.1; done
echo "6th peer joins: its artists --json counts all $(count p5) tracks $(since "$t0") s after launch"
# The 6th peer takes its share of the copies (placement over 6): wait until the mesh is quiet.
settle() {
  local t=$(now) a b
  for _ in $(seq 1 600); do
    a=$(awk '/^ *lo:/{print $2}' /proc/net/dev); sleep 2; b=$(awk '/^ *lo:/{print $2}' /proc/net/dev)
    [ $(( (b - a) / 2 )) -lt 200000 ] && break
  done
  echo "copies moved to the new peer; mesh quiet $(since "$t") s later"
}
settle

sox -n -r 8000 -b 8 -c 1 "$WORK/fresh.wav" synth 0.05 sine 440 2>/dev/null ||
  cp "$(find "$WORK/files" -name '*.wav' -print -quit)" "$WORK/fresh.wav"
t0=$(now)
MEFF_DATA_DIR="$WORK/p2" "$MEFF" push fresh-track "$WORK/fresh.wav" >/dev/null
echo "  (the push command itself returned after $(since "$t0") s)"
seen=""
for i in 0 1 2 3 4 5; do
  for _ in $(seq 1 400); do sees "p$i" fresh-track && break; sleep 0.02; done
  seen="$seen p$i $(since "$t0")"
done
echo "a push at p2 seen by all 6 in $(since "$t0") s (includes polling 6 peers with ls; by peer:$seen)"
t0=$(now)
MEFF_DATA_DIR="$WORK/p2" "$MEFF" remove fresh-track >/dev/null
for i in 0 1 2 3 4 5; do for _ in $(seq 1 400); do sees "p$i" fresh-track || break; sleep 0.02; done; done
echo "a remove at p2 seen by all 6 in $(since "$t0") s"

sleep 10
rx0=$(awk '/^ *lo:/{print $2}' /proc/net/dev)
cpu0=$(for p in "${pid[@]}"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | paste -sd+ | bc)
sleep 20
rx1=$(awk '/^ *lo:/{print $2}' /proc/net/dev)
cpu1=$(for p in "${pid[@]}"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | paste -sd+ | bc)
hz=$(getconf CLK_TCK)
awk -v b=$((rx1 - rx0)) -v c=$((cpu1 - cpu0)) -v hz="$hz" 'BEGIN{
  printf "idle with the catalog: %.2f KB/s sent per peer (loopback IP bytes over 20 s / 6); CPU %.2f%% of a core per peer\n", b / 20 / 6 / 1000, c / hz / 20 / 6 * 100 }'
rss=$(for p in "${pid[@]}"; do awk '/VmRSS/{print $2}' "/proc/$p/status"; done | sort -n | tail -1)
echo "largest peer RSS: $((rss / 1024)) MiB"

time_cmd() { # LABEL ARGS...
  local label=$1; shift
  python3 - "$MEFF" "$label" "$@" <<'PY'
import os, statistics, subprocess, sys, time
meff, label, args = sys.argv[1], sys.argv[2], sys.argv[3:]
runs = []
for _ in range(10):
    t = time.perf_counter()
    out = subprocess.run([meff] + args, capture_output=True, check=True).stdout
    runs.append((time.perf_counter() - t) * 1000)
runs.sort()
print(f"{label:<24} p50 {statistics.median(runs):7.1f} ms  max {runs[-1]:7.1f} ms  ({len(out.splitlines())} lines)")
PY
}
export MEFF_DATA_DIR="$WORK/p1"
time_cmd "ls song 004217" ls song 004217
time_cmd "ls --json (everything)" ls --json

# A crash and restart (SIGTERM would be a graceful leave, handing copies off first).
kill -9 "${pid[p3]}"; wait "${pid[p3]}" 2>/dev/null || true
t0=$(now)
start p3
for _ in $(seq 1 500); do
  [ -n "$(MEFF_DATA_DIR="$WORK/p3" "$MEFF" ls song 004217 2>/dev/null)" ] && break; sleep 0.01
done
echo "restart of a peer holding the catalog: answering ls again $(since "$t0") s after launch"
sleep 5
echo "restarted peer's RSS (catalog loaded from its database): $(awk '/VmRSS/{printf "%d MiB", $2 / 1024}' "/proc/${pid[p3]}/status")"
