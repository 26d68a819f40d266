#!/usr/bin/env bash
# `meff push` to R=3 by chain replication against a single-copy push, as a user runs it, in
# the same run: four `meff up` processes on loopback, the pusher offering no storage
# (`--capacity 1`, so the copies go to the three others). Phase 1 runs the four with
# `--replicas 1`, phase 2 four fresh ones with `--replicas 3`; each pushes 5 different WAVs of
# MiB (default 128) and times the whole `meff push` command (hashing, the transfer, every
# holder's write and fsync, the catalog entry). Medians and their ratio, and the CPU the four
# peers used per push. Then the same two shapes with bare quinn (`examples/bare_quinn.rs`,
# default transport, memory to memory, no hashing, no disk): one upload to a sink against one
# through two relays that pass the bytes on as they arrive, alternating, 5 each. Its ratio is
# what the transport alone costs a chain on this machine.
#   bash benches/push_chain.sh [MiB]
set -euo pipefail
cd "$(dirname "$0")/.."
MB="${1:-128}"
cargo build --release --quiet --bin meff --example bare_quinn
BARE="$PWD/target/release/examples/bare_quinn"
MEFF="$PWD/target/release/meff"
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/meff-push.XXXXXX")"
pids=()
stop_all() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
cleanup() { stop_all; rm -rf "$WORK"; }
trap cleanup EXIT
start() { # DIR NAME [ARGS...]
  local dir=$1 name=$2; shift 2
  "$MEFF" up --name "$name" --port 0 --bind 127.0.0.1 --http off \
    --data-dir "$dir/$name" "$@" >"$dir/$name.out" 2>"$dir/$name.err" &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q '^listening:' "$dir/$name.out" && break; sleep 0.1; done
}
cpu_of() { # PIDS: user+system seconds of those processes so far
  local hz t=0 p
  hz=$(getconf CLK_TCK)
  for p in "$@"; do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  awk "BEGIN{print $t / $hz}"
}
for i in 1 2 3 4 5; do
  python3 benches/make_wav.py "$WORK/track$i.wav" "$MB" "$i"
done
phase() { # R
  local r=$1 dir="$WORK/r$1"
  mkdir -p "$dir"
  start "$dir" up --replicas "$r" --capacity 1
  local ticket
  ticket=$(sed -n 's/^invite: //p' "$dir/up.out")
  for h in h1 h2 h3; do MEFF_TICKET="$ticket" start "$dir" "$h" --replicas "$r"; done
  for _ in $(seq 1 100); do
    [ "$(MEFF_DATA_DIR="$dir/up" "$MEFF" status --json | python3 -c '
import json, sys
print(sum(p["state"] == "alive" for p in json.load(sys.stdin)["peers"]))')" = 3 ] && break
    sleep 0.1
  done
  local runs=() cpu0 cpu1
  cpu0=$(cpu_of "${pids[@]}")
  for i in 1 2 3 4 5; do
    local t0 t1 out
    t0=$(date +%s.%N)
    out=$(MEFF_DATA_DIR="$dir/up" "$MEFF" push "track$i" "$WORK/track$i.wav")
    t1=$(date +%s.%N)
    echo "  R=$r push $i: $out" >&2
    runs+=("$(awk "BEGIN{print $t1 - $t0}")")
  done
  cpu1=$(cpu_of "${pids[@]}")
  echo "  R=$r: the 4 peers used $(awk "BEGIN{printf \"%.2f\", ($cpu1 - $cpu0) / 5}") s of CPU per push" >&2
  stop_all
  echo "${runs[*]}"
}
bare_listen() { # NAME ARGS...: starts a bare quinn process; its address is then in $addr
  local name=$1; shift
  "$BARE" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q '^listening:' "$WORK/$name.out" && break; sleep 0.1; done
  addr=$(sed -n 's/^listening: //p' "$WORK/$name.out")
}
single=$(phase 1)
chain=$(phase 3)
bytes=$((MB << 20))
bare_listen sink1 sink; sink1=$addr
bare_listen sink3 sink; sink3=$addr
bare_listen relay2 relay "$sink3"; relay2=$addr
bare_listen relay1 relay "$relay2"; relay1=$addr
bare_single=(); bare_chain=()
for _ in 1 2 3 4 5; do
  bare_single+=("$("$BARE" push "$sink1" "$bytes" | awk '{print $4}')")
  bare_chain+=("$("$BARE" push "$relay1" "$bytes" | awk '{print $4}')")
done
stop_all
python3 - "$MB" "$single" "$chain" "${bare_single[*]}" "${bare_chain[*]}" <<'PY'
import statistics, sys
mb = int(sys.argv[1])
s = sorted(float(x) for x in sys.argv[2].split())
c = sorted(float(x) for x in sys.argv[3].split())
ms, mc = statistics.median(s), statistics.median(c)
print(f"push of {mb} MiB, one copy: median {ms:.3f} s = {mb / ms:.0f} MiB/s  (runs {', '.join(f'{x:.3f}' for x in s)})")
print(f"push of {mb} MiB, R=3 by chain: median {mc:.3f} s = {mb / mc:.0f} MiB/s  (runs {', '.join(f'{x:.3f}' for x in c)})")
print(f"ratio R=3 / one copy: {mc / ms:.2f}x")
bs = sorted(float(x) for x in sys.argv[4].split())
bc = sorted(float(x) for x in sys.argv[5].split())
mbs, mbc = statistics.median(bs), statistics.median(bc)
print(f"bare quinn, one hop: median {mbs:.3f} s  (runs {', '.join(f'{x:.3f}' for x in bs)})")
print(f"bare quinn, three hops through two relays: median {mbc:.3f} s  (runs {', '.join(f'{x:.3f}' for x in bc)})")
print(f"ratio bare quinn three hops / one hop: {mbc / mbs:.2f}x")
PY
