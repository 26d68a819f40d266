"""A WAV of MiB megabytes of random 16-bit stereo 48 kHz audio, for the transfer benches.
A 1 MiB random block repeats; with SEED its first byte is SEED, so files of different seeds
differ (different blobs).
    python3 benches/make_wav.py PATH MiB [SEED]
"""
import os, struct, sys

path, mb = sys.argv[1], int(sys.argv[2])
seed = int(sys.argv[3]) if len(sys.argv) > 3 else None
data = mb * 1024 * 1024 - 44
with open(path, "wb") as f:
    f.write(b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE")
    f.write(b"fmt " + struct.pack("<IHHIIHH", 16, 1, 2, 48000, 192000, 4, 16))
    f.write(b"data" + struct.pack("<I", data))
    block = os.urandom(1 << 20)
    if seed is not None:
        block = bytes([seed]) + block[1:]
    left = data
    while left > 0:
        n = min(left, len(block))
        f.write(block[:n])
        left -= n
