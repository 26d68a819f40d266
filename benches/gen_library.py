#!/usr/bin/env python3
"""Writes N tiny tagged WAV files (50 ms, 8 kHz, 8-bit mono, each a different tone) with RIFF
INFO tags: title, artist (N/50 artists), album (5 per artist), track number and year.

    python3 benches/gen_library.py DIR N
"""
import math
import os
import struct
import sys


def info_chunk(tags):
    body = b"INFO"
    for key, value in tags:
        data = value.encode() + b"\0"
        if len(data) % 2:
            data += b"\0"
        body += key + struct.pack("<I", len(data)) + data
    return b"LIST" + struct.pack("<I", len(body)) + body


def wav(i, tags):
    rate, n = 8000, 400
    freq = 200 + (i % 3000) * 0.7 + i / 7919.0
    samples = bytes(
        int(128 + 100 * math.sin(2 * math.pi * freq * k / rate + i)) & 0xFF for k in range(n)
    )
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate, 1, 8)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += info_chunk(tags)
    chunks += b"data" + struct.pack("<I", len(samples)) + samples
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    for i in range(n):
        artist = f"Artist {i // 50:04d}"
        album = f"Album {i // 10:05d}"
        tags = [
            (b"INAM", f"Song {i:06d} of {artist}"),
            (b"IART", artist),
            (b"IPRD", album),
            (b"ITRK", str(i % 10 + 1)),
            (b"ICRD", str(1970 + i % 50)),
        ]
        with open(os.path.join(out, f"t{i:06d}.wav"), "wb") as f:
            f.write(wav(i, tags))


main()
