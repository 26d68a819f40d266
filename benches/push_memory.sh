#!/usr/bin/env bash
# Peak memory of two peers (separate `meff up` processes, R=2) while one of them pushes a
# 4 GiB WAV and refuses a 3 GiB file that is not audio. Prints the VmHWM growth of each.
#   bash benches/push_memory.sh            (needs ~9 GiB free under ${TMPDIR:-/var/tmp})
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
MEFF="$PWD/target/release/meff"
WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/meff-pushmem.XXXXXX")"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

wait_for() { # FILE PATTERN
    for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; exit 1
}
hwm_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

"$MEFF" up --name alice --port 0 --replicas 2 --data-dir "$WORK/alice" >"$WORK/alice.out" 2>&1 &
pids+=($!); alice=$!
wait_for "$WORK/alice.out" '^invite:'
sed -n 's/^invite: //p' "$WORK/alice.out" >"$WORK/ticket"
"$MEFF" up --name bob --port 0 --replicas 2 --join-file "$WORK/ticket" --data-dir "$WORK/bob" \
    >"$WORK/bob.out" 2>&1 &
pids+=($!); bob=$!
wait_for "$WORK/bob.out" '^joined:'

# A 4 GiB WAV (16-bit stereo 44.1 kHz silence; sparse, so making it costs nothing).
python3 - "$WORK/big.wav" <<'PY'
import struct, sys
data = 4 * 1024**3 - 64
with open(sys.argv[1], "wb") as f:
    f.write(b"RIFF" + struct.pack("<I", data + 36) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 2, 44100, 44100 * 4, 4, 16))
    f.write(b"data" + struct.pack("<I", data))
    f.truncate(44 + data)
PY
truncate -s 3G "$WORK/junk.mp3"

a0=$(hwm_kib "$alice"); b0=$(hwm_kib "$bob")
t0=$(date +%s.%N)
"$MEFF" --data-dir "$WORK/alice" push big "$WORK/big.wav" >/dev/null
t1=$(date +%s.%N)
a1=$(hwm_kib "$alice"); b1=$(hwm_kib "$bob")
if "$MEFF" --data-dir "$WORK/alice" push junk "$WORK/junk.mp3" 2>"$WORK/junk.err"; then
    echo "the 3 GiB file that is not audio was accepted" >&2; exit 1
fi
a2=$(hwm_kib "$alice")
echo "push of a 4 GiB WAV to R=2: $(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s"
echo "  pushing peer: peak RSS growth $(( (a1 - a0) / 1024 )) MiB (target <= 64)"
echo "  receiving peer: peak RSS growth $(( (b1 - b0) / 1024 )) MiB (target <= 64)"
echo "refusing a 3 GiB file that is not audio: $(head -1 "$WORK/junk.err")"
echo "  pushing peer: peak RSS growth $(( (a2 - a1) / 1024 )) MiB (target <= 128)"
"$MEFF" --data-dir "$WORK/alice" ls
