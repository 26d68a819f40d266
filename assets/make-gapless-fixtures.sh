#!/usr/bin/env bash
# Regenerates tests/fixtures/gapless/: an "album" of three tracks cut from one continuous
# recording, so that a gapless player joins them back into that recording.
#
# Needs: sox, lame, flac, vorbis-tools (oggenc).
#   apt-get install -y sox lame flac vorbis-tools
#
# The recording is 4.5 s of mono 44.1 kHz: a sustained chord under a melody whose notes
# run across the cuts (at 1.5 s and 3.0 s), so a gap or an overlap at a cut shows as a
# discontinuity. Each of part1..3 is 1.5 s, cut at exact sample positions.
#   partN.flac  16-bit FLAC (the tests make WAV parts from these: lossless, so the same)
#   partN.mp3   LAME 256 kbit/s CBR (its LAME tag carries encoder delay and padding)
#   partN.ogg   vorbis q8
#   whole.mp3, whole.ogg  the uncut recording, encoded the same way (the reference a
#                         lossy album is compared with)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="$(dirname "$here")/tests/fixtures/gapless"
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

R=44100
hz() { awk -v n="$1" 'BEGIN { printf "%.3f", 440 * 2 ^ ((n - 69) / 12) }'; }

# the pad: a C major chord for the whole 4.5 s
parts=()
for m in 48 55 64; do
  sox -q -n -r $R -c 1 -b 16 "$tmp/pad$m.wav" synth 4.5 sine "$(hz "$m")" vol 0.15
  parts+=(-v 1 "$tmp/pad$m.wav")
done
sox -q -m "${parts[@]}" "$tmp/pad.wav"

# the melody: notes of 0.4 s, so cuts at 1.5 s and 3.0 s fall inside notes
notes=()
k=0
for m in 72 74 76 77 79 77 76 74 72 71 72 74; do
  sox -q -n -r $R -c 1 -b 16 "$tmp/n$k.wav" synth 0.375 sine "$(hz "$m")" vol 0.3
  notes+=("$tmp/n$k.wav")
  k=$((k + 1))
done
sox -q "${notes[@]}" "$tmp/lead.wav"
sox -q -m -v 1 "$tmp/pad.wav" -v 1 "$tmp/lead.wav" "$tmp/whole.wav" trim 0s 198450s fade q 0.01 -0 0.05

for i in 1 2 3; do
  start=$(( (i - 1) * 66150 ))
  sox -q "$tmp/whole.wav" "$tmp/part$i.wav" trim "${start}s" 66150s
  flac -s -f --best -o "$out/part$i.flac" "$tmp/part$i.wav"
  lame --quiet -b 256 --cbr "$tmp/part$i.wav" "$out/part$i.mp3"
  oggenc -Q -q 8 -o "$out/part$i.ogg" "$tmp/part$i.wav"
done
lame --quiet -b 256 --cbr "$tmp/whole.wav" "$out/whole.mp3"
oggenc -Q -q 8 -o "$out/whole.ogg" "$tmp/whole.wav"
ls -l "$out"
