#!/usr/bin/env bash
# Click -> `playing` in the web player, in Debian's headless Chromium, for 20 tracks that only
# another peer holds: two `meff up` processes on loopback, the page served by peer b, the
# bytes verified chunk by chunk from peer a.
#   bash benches/web_click.sh      (needs sox, lame; and scripts/deps.sh for chromium + selenium)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --quiet
MEFF="$PWD/target/release/meff"
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/meff-webclick.XXXXXX")"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/music"
for i in $(seq 1 20); do
  sox -q -n -r 44100 -c 2 -b 16 "$WORK/t.wav" synth 30 sine $((200 + 20 * i)) vol 0.4
  lame --quiet -b 192 --tt "Track $i" --ta "Bench Artist" --tl "Bench Album" --tn "$i" "$WORK/t.wav" "$WORK/music/t$i.mp3"
done
"$MEFF" up --name a --port 0 --bind 127.0.0.1 --replicas 1 --http off --data-dir "$WORK/a" >"$WORK/a.out" 2>"$WORK/a.err" &
pids+=($!)
for _ in $(seq 1 100); do grep -q '^invite:' "$WORK/a.out" && break; sleep 0.1; done
ticket=$(sed -n 's/^invite: //p' "$WORK/a.out")
"$MEFF" up --name b --port 0 --bind 127.0.0.1 --replicas 1 --capacity 1K --http 127.0.0.1:0 --join "$ticket" --data-dir "$WORK/b" >"$WORK/b.out" 2>"$WORK/b.err" &
pids+=($!)
for _ in $(seq 1 100); do grep -q '^web:' "$WORK/b.out" && break; sleep 0.1; done
url=$(sed -n 's/^web: //p' "$WORK/b.out")
"$MEFF" --data-dir "$WORK/a" import "$WORK/music" | tail -1
for _ in $(seq 1 100); do [ "$("$MEFF" --data-dir "$WORK/b" ls | grep -c Track || true)" -ge 20 ] && break; sleep 0.1; done
"$MEFF" --data-dir "$WORK/b" ls --json | python3 -c '
import json,sys
t = json.load(sys.stdin)
b = [x for x in t if len(x["holders"]) != 1]
print(f"{len(t)} tracks, each held by one peer (a)" if not b else f"unexpected holders: {b}")'
target/web-test-venv/bin/python benches/web_click.py "$url"
