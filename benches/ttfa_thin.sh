#!/usr/bin/env bash
# Time to first audio when the only holder of a 320 kbps mp3 (ordinary ID3 tags, no picture)
# uploads at 80 KB/s (`--upload-limit 80K`; the limiter sends 8 KiB pieces, so the cap holds
# from the first byte). Two `meff up` processes on loopback; the listener offers no storage
# (`--capacity 1`: a weight of one byte against 10G) so it never holds a copy. 20 runs of `meff stream --output null --stats
# json`, each stopped after 1.5 s; prints p50/p95 of `ttfa_ms`.
#   bash benches/ttfa_thin.sh      (needs sox and lame: apt-get install -y sox lame)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
MEFF="$PWD/target/release/meff"
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/meff-ttfa.XXXXXX")"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

sox -n -r 44100 -c 2 -b 16 "$WORK/t.wav" synth 30 sine 440 sine 660 vol 0.5
lame --quiet -b 320 --tt "Thin Uplink" --ta "Bench Artist" --tl "Bench Album" --ty 2026 --tn 1 \
  --tg Electronic "$WORK/t.wav" "$WORK/thin.mp3"
echo "track: $(stat -c %s "$WORK/thin.mp3") bytes, 320 kbps mp3 with ID3v2 tags"

"$MEFF" up --name holder --port 0 --bind 127.0.0.1 --replicas 1 --upload-limit 80K \
  --data-dir "$WORK/h" >"$WORK/h.out" 2>"$WORK/h.log" &
pids+=($!)
for _ in $(seq 1 100); do grep -q '^invite:' "$WORK/h.out" && break; sleep 0.1; done
invite="$(sed -n 's/^invite: //p' "$WORK/h.out")"
MEFF_DATA_DIR="$WORK/h" "$MEFF" push thin "$WORK/thin.mp3" >/dev/null
"$MEFF" up --name listener --port 0 --bind 127.0.0.1 --replicas 1 --capacity 1 \
  --join "$invite" --data-dir "$WORK/l" >"$WORK/l.out" 2>"$WORK/l.log" &
pids+=($!)
for _ in $(seq 1 100); do
  MEFF_DATA_DIR="$WORK/l" "$MEFF" ls 2>/dev/null | grep -q '^thin ' && break; sleep 0.1
done
holder_id="$(MEFF_DATA_DIR="$WORK/h" "$MEFF" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
holders="$(MEFF_DATA_DIR="$WORK/l" "$MEFF" ls --json | python3 -c 'import json,sys; print(",".join(json.load(sys.stdin)[0]["holders"]))')"
[ "$holders" = "$holder_id" ] || { echo "the track is not on the capped peer alone: $holders"; exit 1; }
echo "the only holder is the capped peer"

: >"$WORK/ttfa"
for i in $(seq 1 20); do
  MEFF_DATA_DIR="$WORK/l" "$MEFF" stream thin --output null --stats json >"$WORK/run.json" 2>/dev/null &
  s=$!
  sleep 1.5
  MEFF_DATA_DIR="$WORK/l" "$MEFF" stop >/dev/null 2>&1 || true
  wait "$s" || true
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ttfa_ms"])' "$WORK/run.json" >>"$WORK/ttfa"
  sleep 0.5
done
python3 - "$WORK/ttfa" <<'PY'
import sys
v = sorted(float(x) for x in open(sys.argv[1]) if x.strip())
q = lambda p: v[min(len(v) - 1, int(p * len(v)))]
print(f"ttfa at 80 KB/s over {len(v)} runs: p50 {q(0.5):.1f} ms, p95 {q(0.95):.1f} ms, min {v[0]:.1f}, max {v[-1]:.1f}")
PY
