#!/usr/bin/env bash
# Regenerates the committed test fixtures (tests/fixtures/tone.*) and the demo
# track (assets/demo.ogg) from nothing but synthesized tones.
#
# Needs: sox, lame, flac, vorbis-tools (oggenc), ffmpeg.
#   apt-get install -y sox lame flac vorbis-tools ffmpeg
#
# Fixtures are 2.0 s at 44.1 kHz: a four-chord sequence (C, Am, F, G), 0.5 s each.
#   tone.wav   mono, 8-bit unsigned PCM (keeps the file under 100 KB)
#   tone.flac  mono, 16-bit
#   tone.mp3   stereo, 128 kbit/s CBR (left: chords, right: a melody line)
#   tone.ogg   stereo, vorbis q3
#   tone.m4a   stereo, AAC-LC 96 kbit/s in MP4 with the moov atom first
#   tone-moov-at-end.m4a  the same at 64 kbit/s with the moov atom last (probe must refuse it)
# demo.ogg is a ~20 s stereo melody (pluck lead, soft pad, bass), vorbis q2.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
fix="$root/tests/fixtures"
mkdir -p "$fix"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

R=44100
# frequency of a MIDI note number
hz() { awk -v n="$1" 'BEGIN { printf "%.3f", 440 * 2 ^ ((n - 69) / 12) }'; }

# tone OUT DUR KIND MIDI VOL: one mono note with short fades
tone() {
  local out=$1 dur=$2 kind=$3 midi=$4 vol=$5
  sox -q -n -r $R -c 1 -b 16 "$out" synth "$dur" "$kind" "$(hz "$midi")" \
    fade q 0.01 "$dur" 0.08 vol "$vol"
}

# chord OUT DUR VOL MIDI...: a mono chord of sines
chord() {
  local out=$1 dur=$2 vol=$3; shift 3
  local parts=() i=0
  for m in "$@"; do
    tone "$tmp/cp$i.wav" "$dur" sine "$m" "$vol"; parts+=(-v 1 "$tmp/cp$i.wav"); i=$((i + 1))
  done
  # -v 1 on every input: no automatic 1/n scaling, the levels above are the mix levels
  sox -q -m "${parts[@]}" "$out"
}

# ---- fixtures: 4 chords x 0.5 s -------------------------------------------
chords=("60 64 67" "57 60 64" "53 57 60" "55 59 62")
lead=(72 76 77 74)
left=() right=()
for i in 0 1 2 3; do
  # shellcheck disable=SC2086
  chord "$tmp/fl$i.wav" 0.5 0.25 ${chords[$i]}
  tone "$tmp/fr$i.wav" 0.5 sine "${lead[$i]}" 0.4
  left+=("$tmp/fl$i.wav"); right+=("$tmp/fr$i.wav")
done
sox -q "${left[@]}" "$tmp/left.wav"
sox -q "${right[@]}" "$tmp/right.wav"
sox -q -M "$tmp/left.wav" "$tmp/right.wav" "$tmp/stereo.wav"
sox -q "$tmp/left.wav" "$tmp/mono.wav"

sox -q "$tmp/mono.wav" -b 8 -e unsigned-integer "$fix/tone.wav"
flac -s -f --best -o "$fix/tone.flac" "$tmp/mono.wav"
lame --quiet -b 128 --cbr --resample 44.1 "$tmp/stereo.wav" "$fix/tone.mp3"
oggenc -Q -q 3 -o "$fix/tone.ogg" "$tmp/stereo.wav"
ffmpeg -hide_banner -loglevel error -y -i "$tmp/stereo.wav" -c:a aac -b:a 96k \
  -movflags +faststart "$fix/tone.m4a"
# the same without faststart (moov atom last): decodable, but not streamable
ffmpeg -hide_banner -loglevel error -y -i "$tmp/stereo.wav" -c:a aac -b:a 64k \
  "$fix/tone-moov-at-end.m4a"
printf 'This is not audio.\nJust a plain text file used to check that probing refuses it.\n' \
  >"$fix/not-audio.txt"

# ---- demo: 10 bars of 2 s (C Am F G C Am Dm G C-C) ------------------------
bars=("60 64 67" "57 60 64" "53 57 60" "55 59 62" "60 64 67" "57 60 64" "50 53 57" "55 59 62" "60 64 67" "60 64 67")
bass=(48 45 41 43 48 45 38 43 48 36)
mel=(
  "72 74 76 79 76 74 72 67" "69 72 76 72 69 67 69 72" "65 69 72 77 76 72 69 65" "67 71 74 79 77 74 71 67"
  "76 74 72 74 76 79 76 72" "72 69 67 69 72 76 74 72" "74 77 81 77 74 72 69 74" "79 77 74 71 74 77 79 83"
  "84 79 76 72 76 79 84 79" "72 67 64 60 64 67 72 72"
)
pads=() leads=() basses=()
for b in "${!bars[@]}"; do
  # shellcheck disable=SC2086
  chord "$tmp/pad$b.wav" 2.0 0.12 ${bars[$b]}
  tone "$tmp/bass$b.wav" 2.0 sine "${bass[$b]}" 0.35
  notes=()
  k=0
  for m in ${mel[$b]}; do
    tone "$tmp/n${b}_$k.wav" 0.25 pluck "$m" 0.45; notes+=("$tmp/n${b}_$k.wav"); k=$((k + 1))
  done
  sox -q "${notes[@]}" "$tmp/lead$b.wav"
  pads+=("$tmp/pad$b.wav"); leads+=("$tmp/lead$b.wav"); basses+=("$tmp/bass$b.wav")
done
sox -q "${pads[@]}" "$tmp/pad.wav"
sox -q "${leads[@]}" "$tmp/lead.wav"
sox -q "${basses[@]}" "$tmp/bass.wav"
# lead a little right, pad a little left, bass centred; a touch of reverb
sox -q -m -v 1 "$tmp/pad.wav" -v 1 "$tmp/bass.wav" "$tmp/under.wav"
sox -q -M "$tmp/under.wav" "$tmp/lead.wav" "$tmp/demo2.wav" remix 1v0.8,2v0.35 1v0.6,2v0.9
sox -q "$tmp/demo2.wav" "$tmp/demo.wav" reverb 30 gain -n -3 fade q 0.02 -0 1.0
oggenc -Q -q 2 -o "$here/demo.ogg" "$tmp/demo.wav"

ls -l "$fix" "$here/demo.ogg"
