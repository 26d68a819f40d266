#!/usr/bin/env bash
# What chain replication is for: `meff push` to R=3 against a single-copy push when the
# pusher's uplink is the narrow part, as at home. The pusher runs in its own network
# namespace behind a veth pair whose uplink side is shaped to RATE (tc tbf, default 200mbit);
# the three holders share the host side, where links are fast. With the chain the pusher's
# uplink carries one copy and the holders pass it on; a push that sent every copy itself
# would take R times as long. Phase 1 runs four fresh peers with `--replicas 1`, phase 2
# four with `--replicas 3`; each pushes 3 different WAVs of MiB (default 64) and times the
# whole `meff push`. Run as root (network namespaces).
#   sudo bash benches/push_chain_uplink.sh [MiB] [RATE]
set -euo pipefail
cd "$(dirname "$0")/.."
MB="${1:-64}"
RATE="${2:-200mbit}"
[ "$(id -u)" = 0 ] || { echo "run as root: it makes a network namespace"; exit 1; }
cargo build --release --quiet --bin meff
MEFF="$PWD/target/release/meff"
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/meff-uplink.XXXXXX")"
NS="meff-up$$"
HOST_IF="mfh$$"
NS_IF="mfp$$"
pids=()
stop_all() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
cleanup() { stop_all; ip netns del "$NS" 2>/dev/null || true; ip link del "$HOST_IF" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

ip netns add "$NS"
ip link add "$HOST_IF" type veth peer name "$NS_IF"
ip link set "$NS_IF" netns "$NS"
ip addr add 10.213.0.1/24 dev "$HOST_IF"
ip link set "$HOST_IF" up
ip netns exec "$NS" ip addr add 10.213.0.2/24 dev "$NS_IF"
ip netns exec "$NS" ip link set "$NS_IF" up
ip netns exec "$NS" ip link set lo up
# The pusher's uplink: its side of the pair, shaped. Downlink (acks) unshaped.
ip netns exec "$NS" tc qdisc add dev "$NS_IF" root tbf rate "$RATE" burst 64kb latency 100ms

for i in 1 2 3; do
  python3 benches/make_wav.py "$WORK/track$i.wav" "$MB" "$i"
done

start() { # DIR NAME [netns] ARGS...
  local dir=$1 name=$2; shift 2
  local wrap=()
  if [ "$1" = netns ]; then wrap=(ip netns exec "$NS"); shift; fi
  "${wrap[@]}" "$MEFF" up --name "$name" --port 0 --http off --data-dir "$dir/$name" "$@" \
    >"$dir/$name.out" 2>"$dir/$name.err" &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q '^listening:' "$dir/$name.out" && break; sleep 0.1; done
}

phase() { # R
  local r=$1 dir="$WORK/r$1"
  mkdir -p "$dir"
  start "$dir" h1 --bind 10.213.0.1 --replicas "$r"
  local ticket
  ticket=$(sed -n 's/^invite: //p' "$dir/h1.out")
  for h in h2 h3; do MEFF_TICKET="$ticket" start "$dir" "$h" --bind 10.213.0.1 --replicas "$r"; done
  MEFF_TICKET="$ticket" start "$dir" up netns --bind 10.213.0.2 --replicas "$r" --capacity 1
  for _ in $(seq 1 100); do
    [ "$(MEFF_DATA_DIR="$dir/up" "$MEFF" status --json | python3 -c '
import json, sys
print(sum(p["state"] == "alive" and p["path"] == "direct" for p in json.load(sys.stdin)["peers"]))')" = 3 ] && break
    sleep 0.1
  done
  local runs=()
  for i in 1 2 3; do
    local t0 t1 out
    t0=$(date +%s.%N)
    out=$(MEFF_DATA_DIR="$dir/up" "$MEFF" push "track$i" "$WORK/track$i.wav")
    t1=$(date +%s.%N)
    echo "  R=$r push $i: $out ($(awk "BEGIN{printf \"%.2f\", $t1 - $t0}") s)" >&2
    runs+=("$(awk "BEGIN{print $t1 - $t0}")")
  done
  stop_all
  echo "${runs[*]}"
}
single=$(phase 1)
chain=$(phase 3)
python3 - "$MB" "$RATE" "$single" "$chain" <<'PY'
import statistics, sys
mb, rate = int(sys.argv[1]), sys.argv[2]
s = sorted(float(x) for x in sys.argv[3].split())
c = sorted(float(x) for x in sys.argv[4].split())
ms, mc = statistics.median(s), statistics.median(c)
print(f"pusher's uplink shaped to {rate}")
print(f"push of {mb} MiB, one copy: median {ms:.3f} s = {mb / ms:.1f} MiB/s  (runs {', '.join(f'{x:.3f}' for x in s)})")
print(f"push of {mb} MiB, R=3 by chain: median {mc:.3f} s = {mb / mc:.1f} MiB/s  (runs {', '.join(f'{x:.3f}' for x in c)})")
print(f"ratio R=3 / one copy: {mc / ms:.2f}x (sending every copy from the pusher: about 3x)")
PY
