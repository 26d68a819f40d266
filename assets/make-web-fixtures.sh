#!/usr/bin/env bash
# Makes the two 6-second tagged tracks of the web player's browser test
# (tests/fixtures/web/). Needs sox and lame: apt-get install -y sox lame
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../tests/fixtures/web"
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
sox -q -n -r 44100 -c 1 -b 16 "$tmp/a.wav" synth 6 sine 440 sine 660 remix 1,2 vol 0.4 fade q 0.05 -0 0.05
sox -q -n -r 44100 -c 1 -b 16 "$tmp/b.wav" synth 6 sine 330 sine 495 remix 1,2 vol 0.4 fade q 0.05 -0 0.05
sox -q -n -r 44100 -c 1 -b 16 "$tmp/c.wav" synth 6 sine 262 sine 392 remix 1,2 vol 0.4 fade q 0.05 -0 0.05
lame --quiet -b 64 --tt "First Light" --ta "Web Artist" --tl "Browser Album" --ty 2026 --tn 1/2 --tg Ambient "$tmp/a.wav" "$out/first-light.mp3"
lame --quiet -b 64 --tt "Second Wind" --ta "Web Artist" --tl "Browser Album" --ty 2026 --tn 2/2 --tg Ambient "$tmp/b.wav" "$out/second-wind.mp3"
lame --quiet -b 64 --tt "Dropped In" --ta "Upload Band" --tl "Uploads" --ty 2026 --tn 1 "$tmp/c.wav" "$out/dropped-in.mp3"
ls -l "$out"
