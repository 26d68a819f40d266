#!/usr/bin/env bash
# `ls QUERY`, `artists` and `albums` on a library of N tracks (default 10,000), each timed as
# the whole command a user runs (a `meff` process talking to a running peer), 20 runs each.
#   bash benches/library.sh [N]
# The tracks are tiny tagged WAVs (benches/gen_library.py), imported with `meff import`.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10000}"
cargo build --release --quiet
MEFF="$PWD/target/release/meff"
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/meff-library.XXXXXX")"
peer=""
cleanup() { [ -n "$peer" ] && kill "$peer" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

python3 benches/gen_library.py "$WORK/files" "$N"
"$MEFF" up --name lib --port 0 --replicas 1 --data-dir "$WORK/peer" >"$WORK/peer.out" 2>&1 &
peer=$!
for _ in $(seq 1 100); do grep -q '^invite:' "$WORK/peer.out" && break; sleep 0.1; done
export MEFF_DATA_DIR="$WORK/peer"
t0=$(date +%s.%N)
"$MEFF" import "$WORK/files" | tail -1
t1=$(date +%s.%N)
count=$("$MEFF" ls --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "import of $count tiny tagged tracks: $(awk "BEGIN{printf \"%.1f s, %.0f tracks/s\", $t1 - $t0, $count / ($t1 - $t0)}")"

time_cmd() { # LABEL ARGS...
    local label=$1; shift
    python3 - "$MEFF" "$label" "$@" <<'PY'
import statistics, subprocess, sys, time
meff, label, args = sys.argv[1], sys.argv[2], sys.argv[3:]
runs = []
for _ in range(20):
    t = time.perf_counter()
    out = subprocess.run([meff] + args, capture_output=True, check=True).stdout
    runs.append((time.perf_counter() - t) * 1000)
runs.sort()
print(f"{label:<28} p50 {statistics.median(runs):6.1f} ms  max {runs[-1]:6.1f} ms  ({len(out.splitlines())} lines)")
PY
}
time_cmd "ls song 004217" ls song 004217
time_cmd "ls artist 01" ls artist 01
time_cmd "ls --artist 'Artist 0042'" ls --artist "Artist 0042"
time_cmd "artists" artists
time_cmd "albums" albums
time_cmd "ls --json (everything)" ls --json
