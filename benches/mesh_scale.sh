#!/usr/bin/env bash
# A mesh of N `meff up` processes on loopback (default 32): the first creates the network, the
# other N-1 are launched at once, each joining through its ticket. Reports the time until every
# peer sees all others alive over direct paths, false deaths (a peer declared dead that never
# died), relayed pairs, then the idle traffic: IP bytes on the loopback interface over 20 s
# with no transfers, per peer, and idle CPU per peer; then SIGKILLs one peer and reports when
# the last of the others declared it dead (from their logs' timestamps).
# With DEAD > 0, DEAD more peers join and are SIGKILLed once the mesh formed: the idle figures
# are then those of N live peers that still remember DEAD dead ones.
#   bash benches/mesh_scale.sh [N] [DEAD]   (MEFF_BIN=PATH to measure another build)
set -euo pipefail
cd "$(dirname "$0")/.."
LIVE="${1:-32}"
DEAD="${2:-0}"
N=$((LIVE + DEAD))
# MEFF_BIN=PATH measures another build (e.g. an older one, for a before/after).
if [ -z "${MEFF_BIN:-}" ]; then cargo build --release --quiet; fi
MEFF="${MEFF_BIN:-$PWD/target/release/meff}"
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/meff-mesh.XXXXXX")"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null || true; [ -n "${MEFF_KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"; }
trap cleanup EXIT
start() { # NAME [ARGS...]
  local name=$1; shift
  RUST_LOG=meff=info "$MEFF" up --name "$name" --port 0 --bind 127.0.0.1 --http off --data-dir "$WORK/$name" "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" &
  pids+=($!)
}
start p0
for _ in $(seq 1 100); do grep -q '^invite:' "$WORK/p0.out" && break; sleep 0.1; done
ticket=$(sed -n 's/^invite: //p' "$WORK/p0.out")
t0=$(date +%s.%N)
for i in $(seq 1 $((N - 1))); do MEFF_TICKET="$ticket" start "p$i"; done
formed=""
for _ in $(seq 1 1200); do
  if python3 - "$MEFF" "$WORK" "$N" <<'PY'
import json, subprocess, sys
meff, work, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    r = subprocess.run([meff, "--data-dir", f"{work}/p{i}", "peers", "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(1)
    peers = json.loads(r.stdout)
    ok = [p for p in peers if p["state"] == "alive" and p["path"] == "direct"]
    if len(ok) < n - 1:
        sys.exit(1)
PY
  then formed=$(date +%s.%N); break; fi
  sleep 0.05
done
if [ -z "$formed" ]; then echo "no full direct mesh of $N within 60 s"; else
  echo "mesh of $N formed (all alive, all direct) in $(awk "BEGIN{printf \"%.2f\", $formed - $t0}") s after launching $((N - 1)) joiners (includes polling $N peers' status)"
fi
cpu_formed=$(for p in "${pids[@]}"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | paste -sd+ | bc)
awk -v c="$cpu_formed" -v hz="$(getconf CLK_TCK)" -v n="$N" 'BEGIN{
  printf "CPU of all %d peers from launch until formed: %.1f s, %.2f ms per pair\n", n, c / hz, c / hz * 1000 / (n * (n - 1) / 2) }'
deaths=$(cat "$WORK"/p*.err | grep -c " is dead" || true)
relayed=$(cat "$WORK"/p*.err | grep -ci "relayed\|via relay\|tunnel" || true)
echo "false deaths while forming: $deaths; relay and tunnel mentions in the logs: $relayed"
if [ "$DEAD" -gt 0 ]; then
  for i in $(seq "$LIVE" $((N - 1))); do kill -9 "${pids[$i]}"; done
  pids=("${pids[@]:0:$LIVE}")
  for _ in $(seq 1 200); do
    dead_seen=$(cat "$WORK"/p*.err | grep -c " is dead" || true)
    [ "$dead_seen" -ge $((LIVE * DEAD)) ] && break
    sleep 0.1
  done
  echo "killed $DEAD peers; $LIVE live peers remember them ($dead_seen deaths logged)"
  N=$LIVE
fi
sleep 5
rx0=$(awk '/^ *lo:/{print $2}' /proc/net/dev)
cpu0=$(for p in "${pids[@]}"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | paste -sd+ | bc)
sleep 20
rx1=$(awk '/^ *lo:/{print $2}' /proc/net/dev)
cpu1=$(for p in "${pids[@]}"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | paste -sd+ | bc)
hz=$(getconf CLK_TCK)
awk -v b=$((rx1 - rx0)) -v n="$N" -v c=$((cpu1 - cpu0)) -v hz="$hz" 'BEGIN{
  printf "idle: %.2f KB/s sent per peer (loopback IP bytes over 20 s / %d peers); CPU %.2f%% of a core per peer\n", b / 20 / n / 1000, n, c / hz / 20 / n * 100 }'
# Failure detection: SIGKILL the last live peer, then read when each other peer logged it dead.
victim=$((N - 1))
killed_at=$(date -u +%H:%M:%S.%N)
kill -9 "${pids[$victim]}"
for _ in $(seq 1 100); do
  seen=$(cat "$WORK"/p*.err | grep -c ": p$victim is dead" || true)
  [ "$seen" -ge $((N - 1)) ] && break
  sleep 0.1
done
last=$(grep -h ": p$victim is dead" "$WORK"/p*.err | cut -c12-26 | sort | tail -1)
awk -v k="$killed_at" -v l="$last" -v seen="$seen" -v n=$((N - 1)) 'function s(t, a) { split(t, a, ":"); return a[1] * 3600 + a[2] * 60 + a[3] }
  BEGIN { printf "SIGKILLed p%s: dead for %d of %d peers, the last %.2f s after the kill\n", "'$victim'", seen, n, s(l) - s(k) }'

