#!/usr/bin/env bash
# `import` of a folder of 20 real-size tracks (3-10 MB; wav, flac, mp3, ogg, tagged) against
# `push` of the same files one by one, each into a fresh network of 3 `meff up` processes
# with R=2. Prints both times, the ratio of throughputs and the importing peer's peak RSS.
#   bash benches/import_vs_push.sh      (needs lame, flac, vorbis-tools: apt-get install -y lame flac vorbis-tools)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
MEFF="$PWD/target/release/meff"
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/meff-import.XXXXXX")"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

# 20 tracks: noise-like chords so that lossless files stay large.
python3 - "$WORK/src" <<'PY'
import math, os, random, struct, sys
out = sys.argv[1]; os.makedirs(out, exist_ok=True)
rate = 44100
for i in range(20):
    secs = [30, 45, 60, 75][i % 4]
    rnd = random.Random(i)
    f1, f2 = 110 * (1 + i % 7), 165 * (1 + i % 5)
    frames = bytearray()
    for n in range(rate * secs):
        t = n / rate
        v = 0.3 * math.sin(2 * math.pi * f1 * t) + 0.2 * math.sin(2 * math.pi * f2 * t) + 0.2 * (rnd.random() - 0.5)
        s = int(max(-1, min(1, v)) * 32000)
        frames += struct.pack("<hh", s, -s)
    hdr = b"RIFF" + struct.pack("<I", 36 + len(frames)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 2, rate, rate * 4, 4, 16) + b"data" + struct.pack("<I", len(frames))
    with open(os.path.join(out, f"t{i:02d}.wav"), "wb") as f:
        f.write(hdr + frames)
PY
mkdir -p "$WORK/music"
for i in $(seq -w 0 19); do
    src="$WORK/src/t$i.wav"; title="Track $i"; artist="Bench Artist $((10#$i % 4))"
    case $((10#$i % 4)) in
        0) cp "$src" "$WORK/music/t$i.wav" ;;
        1) flac -s -5 -T "TITLE=$title" -T "ARTIST=$artist" -T "ALBUM=Bench" -o "$WORK/music/t$i.flac" "$src" ;;
        2) lame --quiet -b 320 --tt "$title" --ta "$artist" --tl Bench "$src" "$WORK/music/t$i.mp3" ;;
        3) oggenc -Q -q 9 -t "$title" -a "$artist" -l Bench -o "$WORK/music/t$i.ogg" "$src" ;;
    esac
done
du -sh "$WORK/music"; ls -l "$WORK/music" | awk 'NR>1 {s+=$5} END {printf "%d files, %.1f MB\n", NR-1, s/1e6}'

wait_for() { for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "timeout: $2 in $1" >&2; exit 1; }
network() { # PREFIX: starts 3 peers, sets FIRST_DIR and FIRST_PID
    local p=$1
    "$MEFF" up --name "${p}a" --port 0 --bind 127.0.0.1 --replicas 2 --data-dir "$WORK/${p}a" >"$WORK/${p}a.out" 2>&1 &
    pids+=($!); FIRST_PID=$!; FIRST_DIR="$WORK/${p}a"
    wait_for "$WORK/${p}a.out" '^invite:'
    sed -n 's/^invite: //p' "$WORK/${p}a.out" >"$WORK/${p}.ticket"
    for n in b c; do
        "$MEFF" up --name "$p$n" --port 0 --bind 127.0.0.1 --replicas 2 --join-file "$WORK/${p}.ticket" --data-dir "$WORK/$p$n" >"$WORK/$p$n.out" 2>&1 &
        pids+=($!)
        wait_for "$WORK/$p$n.out" '^joined:'
    done
}
now() { date +%s.%N; }

network push
t0=$(now)
for f in "$WORK"/music/*; do "$MEFF" --data-dir "$FIRST_DIR" push "$(basename "$f")" "$f" >/dev/null; done
t1=$(now)
push_s=$(awk "BEGIN{print $t1 - $t0}")

network imp
rss0=$(awk '/VmHWM/ {print $2}' "/proc/$FIRST_PID/status")
t0=$(now)
"$MEFF" --data-dir "$FIRST_DIR" import "$WORK/music" | tail -1
t1=$(now)
import_s=$(awk "BEGIN{print $t1 - $t0}")
rss1=$(awk '/VmHWM/ {print $2}' "/proc/$FIRST_PID/status")
"$MEFF" --data-dir "$FIRST_DIR" ls | head -3
awk -v p="$push_s" -v i="$import_s" 'BEGIN { printf "push one by one: %.2f s; import: %.2f s; import throughput / push throughput = %.2f\n", p, i, p / i }'
echo "importing peer: peak RSS growth $(( (rss1 - rss0) / 1024 )) MiB"
