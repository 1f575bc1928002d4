"""A short notification chime, generated here: no file to ship, no third-party URL."""

from __future__ import annotations

import base64
import io
import math
import struct
import wave
from functools import cache

RATE = 16_000


@cache
def chime_wav(duration_s: float = 0.35, frequencies: tuple[float, ...] = (880.0, 1320.0)) -> bytes:
    """Two rising tones with a soft fade, as 16-bit mono WAV bytes."""
    per_tone = int(RATE * duration_s / len(frequencies))
    frames = bytearray()
    for freq in frequencies:
        for i in range(per_tone):
            fade = min(1.0, i / 200, (per_tone - i) / 400)
            sample = 0.4 * fade * math.sin(2 * math.pi * freq * i / RATE)
            frames += struct.pack("<h", int(sample * 32767))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(bytes(frames))
    return buffer.getvalue()


def chime_html() -> str:
    """An invisible, self-playing ``<audio>`` element carrying the chime as a data URI."""
    encoded = base64.b64encode(chime_wav()).decode("ascii")
    return f'<audio autoplay src="data:audio/wav;base64,{encoded}"></audio>'
