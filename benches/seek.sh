#!/usr/bin/env bash
# Seek latency as a user gets it: 3 `meff up` processes on loopback (R=1), a 20-minute
# track in mp3, flac and ogg, each streamed (--output null, real time) by a peer that holds
# no copy while `meff seek` jumps to 40 random positions. Latency is the player's own
# figure (stats `seeks`: from the request to the first sample out at the new position).
# Prints p50/p95 per format and the bytes fetched against the track's size.
#   bash benches/seek.sh      (needs sox, lame, flac, vorbis-tools)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
MEFF="$PWD/target/release/meff"
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/meff-seek.XXXXXX")"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

# 20 minutes: a slow chord sweep with a little noise, so no encoder squeezes it to nothing.
sox -q -n -r 44100 -c 2 -b 16 "$WORK/long.wav" synth 1200 sine 220-880 sine 330-1320 \
    whitenoise vol 0.05 remix 1,2v0.5 2,3v0.5 gain -n -6
lame --quiet -b 192 "$WORK/long.wav" "$WORK/long.mp3"
flac -s -5 -o "$WORK/long.flac" "$WORK/long.wav"
oggenc -Q -q 5 -o "$WORK/long.ogg" "$WORK/long.wav"
rm "$WORK/long.wav"

wait_for() { for _ in $(seq 1 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timeout: $2 in $1" >&2; exit 1; }
"$MEFF" up --name a --port 0 --bind 127.0.0.1 --replicas 1 --data-dir "$WORK/a" >"$WORK/a.out" 2>&1 &
pids+=($!)
wait_for "$WORK/a.out" '^invite:'
sed -n 's/^invite: //p' "$WORK/a.out" >"$WORK/ticket"
for n in b c; do
    "$MEFF" up --name "$n" --port 0 --bind 127.0.0.1 --replicas 1 --join-file "$WORK/ticket" --data-dir "$WORK/$n" >"$WORK/$n.out" 2>&1 &
    pids+=($!)
    wait_for "$WORK/$n.out" '^joined:'
done

for ext in mp3 flac ogg; do
    "$MEFF" --data-dir "$WORK/a" push "long-$ext" "$WORK/long.$ext" >/dev/null
    holder=$("$MEFF" --data-dir "$WORK/a" ls --json | python3 -c "import json,sys; print([t for t in json.load(sys.stdin) if t['name']=='long-$ext'][0]['holders'][0])")
    listener=""
    for n in a b c; do
        id=$("$MEFF" --data-dir "$WORK/$n" status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['id'])")
        [ "$id" != "$holder" ] && { listener="$WORK/$n"; break; }
    done
    size=$(stat -c %s "$WORK/long.$ext")
    "$MEFF" --data-dir "$listener" stream "long-$ext" --output null --stats json >"$WORK/stats-$ext.json" 2>"$WORK/stream-$ext.err" &
    player=$!
    sleep 1
    python3 - "$MEFF" "$listener" <<'PY'
import random, subprocess, sys, time
meff, d = sys.argv[1], sys.argv[2]
rnd = random.Random(7)
for i in range(40):
    to = rnd.uniform(0, 1190)
    r = subprocess.run([meff, "--data-dir", d, "seek", f"{to:.1f}"], capture_output=True, text=True)
    if r.returncode != 0:
        print("seek failed:", r.stderr.strip(), file=sys.stderr)
    time.sleep(0.25)
PY
    "$MEFF" --data-dir "$listener" stop >/dev/null || true
    wait "$player" || true
    python3 - "$WORK/stats-$ext.json" "$ext" "$size" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); ext = sys.argv[2]; size = int(sys.argv[3])
lat = sorted(x["latency_ms"] for x in s["seeks"])
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print(f"{ext:5} {len(lat)} seeks: p50 {p(0.5):.1f} ms, p95 {p(0.95):.1f} ms, max {lat[-1]:.1f} ms; "
      f"fetched {s['bytes']/1e6:.1f} of {size/1e6:.1f} MB; underruns {s['underruns']}")
PY
done
