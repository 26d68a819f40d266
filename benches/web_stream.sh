#!/usr/bin/env bash
# HTTP `stream` of a 256 MiB track through the Subsonic API against `meff get` of the same
# track, in the same run, as users run them: two `meff up` processes on loopback, the track
# held only by peer a, both fetched through peer b (verified chunk by chunk from a).
#   bash benches/web_stream.sh      (needs sox and curl: apt-get install -y sox curl)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
MEFF="$PWD/target/release/meff"
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/meff-webstream.XXXXXX")"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

sox -q -n -r 44100 -c 2 -b 16 "$WORK/big.wav" synth 1522 sine 440 vol 0.5
size=$(stat -c %s "$WORK/big.wav")
"$MEFF" up --name a --port 0 --bind 127.0.0.1 --replicas 1 --http off --data-dir "$WORK/a" >"$WORK/a.out" 2>"$WORK/a.err" &
pids+=($!)
for _ in $(seq 1 100); do grep -q '^invite:' "$WORK/a.out" && break; sleep 0.1; done
ticket=$(sed -n 's/^invite: //p' "$WORK/a.out")
"$MEFF" up --name b --port 0 --bind 127.0.0.1 --replicas 1 --capacity 1K --http 127.0.0.1:0 --join "$ticket" --data-dir "$WORK/b" >"$WORK/b.out" 2>"$WORK/b.err" &
pids+=($!)
for _ in $(seq 1 100); do grep -q '^web:' "$WORK/b.out" && break; sleep 0.1; done
port=$(sed -n 's|^web: http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$WORK/b.out")
echo pw | "$MEFF" --data-dir "$WORK/b" password >/dev/null
"$MEFF" --data-dir "$WORK/a" push big "$WORK/big.wav" >/dev/null
for _ in $(seq 1 100); do "$MEFF" --data-dir "$WORK/b" ls | grep -q big && break; sleep 0.1; done
id=$(curl -s "http://127.0.0.1:$port/rest/search3?u=b&p=pw&f=json&query=big" | python3 -c 'import json,sys; print(json.load(sys.stdin)["subsonic-response"]["searchResult3"]["song"][0]["id"])')
holders=$("$MEFF" --data-dir "$WORK/b" ls --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["holders"])')
echo "track: $size bytes, held by $holders (peer a only); fetched through peer b"

now() { date +%s.%N; }
gets=() https=() nulls=()
for run in 1 2 3 4 5; do
  rm -f "$WORK/got.wav" "$WORK/http.wav"
  t0=$(now); "$MEFF" --data-dir "$WORK/b" get big -o "$WORK/got.wav" >/dev/null; t1=$(now)
  gets+=("$(awk "BEGIN{print $t1 - $t0}")")
  t0=$(now)
  curl -s -o "$WORK/http.wav" "http://127.0.0.1:$port/rest/stream?u=b&p=pw&id=$id"
  sync -d "$WORK/http.wav"
  t1=$(now)
  https+=("$(awk "BEGIN{print $t1 - $t0}")")
  t0=$(now)
  curl -s -o /dev/null "http://127.0.0.1:$port/rest/stream?u=b&p=pw&id=$id"
  t1=$(now)
  nulls+=("$(awk "BEGIN{print $t1 - $t0}")")
  cmp -s "$WORK/http.wav" "$WORK/big.wav" || { echo "HTTP bytes differ"; exit 1; }
  cmp -s "$WORK/got.wav" "$WORK/big.wav" || { echo "get bytes differ"; exit 1; }
done
python3 - "$size" "${gets[*]}" "${https[*]}" "${nulls[*]}" <<'PY'
import statistics, sys
size = int(sys.argv[1]) / 2**20
g = [float(x) for x in sys.argv[2].split()]
h = [float(x) for x in sys.argv[3].split()]
n = [float(x) for x in sys.argv[4].split()]
gm, hm, nm = statistics.median(g), statistics.median(h), statistics.median(n)
print(f"meff get -o FILE      : median {gm:.2f} s = {size / gm:6.0f} MiB/s  (runs {', '.join(f'{x:.2f}' for x in g)})")
print(f"HTTP /rest/stream curl -o FILE + sync: median {hm:.2f} s = {size / hm:6.0f} MiB/s  (runs {', '.join(f'{x:.2f}' for x in h)})")
print(f"HTTP stream, curl to /dev/null (as a player reads it): median {nm:.2f} s = {size / nm:6.0f} MiB/s")
print(f"HTTP stream to a file / get throughput: {gm / hm:.2f}x; read as a player: {gm / nm:.2f}x")
PY
