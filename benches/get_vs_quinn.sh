#!/usr/bin/env bash
# `meff get` as a user runs it against bare quinn, in the same run on the same machine:
#  - meff: two `meff up` processes on loopback; a 256 MiB WAV held only by one of them is
#    fetched by `meff get -o FILE` on the other (verified piece by piece, written, fsynced);
#  - bare quinn: `examples/bare_quinn.rs`, two processes, quinn's default transport config,
#    the same number of bytes over one stream, memory to memory.
# Alternating runs, 5 each (RUNS=N for more); medians and their ratio.
#   bash benches/get_vs_quinn.sh [MiB]   (MEFF_BIN=PATH to measure another build)
set -euo pipefail
cd "$(dirname "$0")/.."
MB="${1:-256}"
cargo build --release --quiet --bin meff --example bare_quinn
MEFF="${MEFF_BIN:-$PWD/target/release/meff}"
BARE="$PWD/target/release/examples/bare_quinn"
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/meff-get.XXXXXX")"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
start() { # NAME [ARGS...]
  local name=$1; shift
  "$MEFF" up --name "$name" --port 0 --bind 127.0.0.1 --http off --replicas 1 \
    --data-dir "$WORK/$name" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q '^invite:' "$WORK/$name.out" && break; sleep 0.1; done
}
python3 benches/make_wav.py "$WORK/track.wav" "$MB"
BYTES=$(stat -c %s "$WORK/track.wav")
start a
ticket=$(sed -n 's/^invite: //p' "$WORK/a.out")
MEFF_TICKET="$ticket" start b
sleep 1
MEFF_DATA_DIR="$WORK/a" "$MEFF" push big "$WORK/track.wav" >/dev/null
# `get` runs on the peer that does not hold the copy.
holder=$(MEFF_DATA_DIR="$WORK/a" "$MEFF" status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
print("a" if s.get("stored_bytes", 0) > 0 else "b")')
getter=$([ "$holder" = a ] && echo b || echo a)
for _ in $(seq 1 100); do
  MEFF_DATA_DIR="$WORK/$getter" "$MEFF" ls big 2>/dev/null | grep -q big && break; sleep 0.1
done
"$BARE" serve "$BYTES" >"$WORK/bare.out" &
pids+=($!)
for _ in $(seq 1 100); do grep -q '^listening:' "$WORK/bare.out" && break; sleep 0.1; done
bare_addr=$(sed -n 's/^listening: //p' "$WORK/bare.out")

meff_runs=(); bare_runs=(); null_runs=()
for _ in $(seq 1 "${RUNS:-5}"); do
  t0=$(date +%s.%N)
  MEFF_DATA_DIR="$WORK/$getter" "$MEFF" get big -o /dev/null >/dev/null
  t1=$(date +%s.%N)
  null_runs+=("$(awk "BEGIN{print $t1 - $t0}")")
  rm -f "$WORK/got.wav"
  t0=$(date +%s.%N)
  MEFF_DATA_DIR="$WORK/$getter" "$MEFF" get big -o "$WORK/got.wav" >/dev/null
  t1=$(date +%s.%N)
  meff_runs+=("$(awk "BEGIN{print $t1 - $t0}")")
  bare_runs+=("$("$BARE" fetch "$bare_addr" | awk '{print $4}')")
done
cmp -s "$WORK/track.wav" "$WORK/got.wav" || { echo "get was not byte-identical"; exit 1; }
python3 - "$BYTES" "${meff_runs[*]}" "${bare_runs[*]}" "${null_runs[*]}" <<'PY'
import statistics, sys
size = int(sys.argv[1]) / (1 << 20)
in_order_m = [float(x) for x in sys.argv[2].split()]
in_order_b = [float(x) for x in sys.argv[3].split()]
m, b = sorted(in_order_m), sorted(in_order_b)
n = sorted(float(x) for x in sys.argv[4].split())
nm = statistics.median(n)
print(f"meff get -o /dev/null (no file, no fsync; verified): median {nm:.3f} s = {size / nm:.0f} MiB/s")
mm, bm = statistics.median(m), statistics.median(b)
print(f"meff get -o FILE ({size:.0f} MiB, another peer's copy, verified, fsynced): median {mm:.3f} s = {size / mm:.0f} MiB/s  (runs {', '.join(f'{x:.3f}' for x in m)})")
print(f"bare quinn, same bytes, memory to memory, default transport: median {bm:.3f} s = {size / bm:.0f} MiB/s  (runs {', '.join(f'{x:.3f}' for x in b)})")
print(f"ratio meff get / bare quinn: {bm / mm:.2f}x (to /dev/null: {bm / nm:.2f}x)")
# Each meff get ran just before its bare quinn fetch: the ratio within a pair leaves out
# the machine's slower and faster minutes, which move both alike.
pairs = sorted(bt / mt for mt, bt in zip(in_order_m, in_order_b))
print(f"ratio within each pair: median {statistics.median(pairs):.2f}x  (pairs {', '.join(f'{x:.2f}' for x in pairs)})")
PY
