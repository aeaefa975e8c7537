#!/usr/bin/env python3
"""Write the wall board's alarm tone: mitelacd/web/board/alarm.wav.

    python3 scripts/make-tone.py [OUTPUT]

A short two-note chime, high then low ("ding-dong"), 0.4 s of 16 kHz 16-bit
mono PCM: each note a sine with a softer octave above it, a 5 ms rise (no
click) and a bell's decay, the second note starting as the first fades. Only
the standard library; the same bytes every run, so the file in the
repository is this script's output exactly. The board plays it, every 30 s,
while a queue is in alarm and no one has acknowledged it (docs/board.md,
?sound=1).
"""

from __future__ import annotations

import math
import struct
import sys
import wave
from pathlib import Path

RATE = 16_000  # samples a second
LENGTH = 0.4  # seconds
#: (start in seconds, frequency in Hz, loudness 0..1): E5, then C5.
NOTES = ((0.0, 659.25, 0.9), (0.16, 523.25, 0.85))
ATTACK = 0.005  # seconds to full loudness
DECAY = 0.09  # seconds for a note to fall to 1/e
FADE_OUT = 0.03  # the last seconds of the file fade to silence
OVERTONE = 0.25  # loudness of the octave above each note, relative to it

OUTPUT = Path(__file__).resolve().parent.parent / "mitelacd" / "web" / "board" / "alarm.wav"


def sample(t: float) -> float:
    """The chime at ``t`` seconds, between -1 and 1."""
    value = 0.0
    for start, frequency, loudness in NOTES:
        dt = t - start
        if dt < 0:
            continue
        envelope = min(1.0, dt / ATTACK) * math.exp(-dt / DECAY)
        phase = 2 * math.pi * frequency * dt
        value += loudness * envelope * (math.sin(phase) + OVERTONE * math.sin(2 * phase))
    value /= 1 + OVERTONE
    return value * min(1.0, (LENGTH - t) / FADE_OUT)


def frames() -> bytes:
    count = int(RATE * LENGTH)
    values = (round(32767 * max(-1.0, min(1.0, sample(i / RATE)))) for i in range(count))
    return b"".join(struct.pack("<h", v) for v in values)


def main(argv: list[str]) -> None:
    output = Path(argv[1]) if len(argv) > 1 else OUTPUT
    with wave.open(str(output), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(frames())
    print(f"{output}: {output.stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv)
