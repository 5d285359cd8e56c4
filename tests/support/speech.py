"""Spoken questions for the voice tests: the project's Piper voice saying a sentence, and how
much of a sentence a recogniser heard."""
from __future__ import annotations

import functools
import wave
from collections import Counter
from pathlib import Path

import numpy as np
import soxr

from models.protocols import CLOCK_RATE

#: Sentences pocketsphinx hears word for word from this voice on nearly every synthesis (the
#: voice is not deterministic: each synthesis differs a little).
QUESTIONS = ("Why do we need to sleep every night", "What do you think about the weather today")
#: Of the words said, the share a recogniser must hear to count as having understood them.
MIN_OVERLAP = 0.7


@functools.lru_cache(maxsize=1)
def _piper():
    from models.speech.piper import PiperSpeech

    return PiperSpeech()


def spoken(text: str) -> np.ndarray:
    """``text`` said by the "joe" voice: float samples at the episode's 48 kHz."""
    return _piper().synthesize(text, "joe").pcm


def int16(pcm: np.ndarray) -> np.ndarray:
    return (np.clip(pcm, -1.0, 1.0) * 32767).astype(np.int16)


def at_16k(pcm48: np.ndarray) -> bytes:
    """48 kHz float samples as the recogniser takes them: 16 kHz mono int16."""
    return int16(soxr.resample(pcm48, CLOCK_RATE, 16_000)).tobytes()


def write_wav(path: Path, pcm48: np.ndarray, lead_s: float = 0.0, trail_s: float = 0.0) -> Path:
    """A 16-bit mono 48 kHz WAV of ``pcm48`` between stretches of silence."""
    samples = np.concatenate([np.zeros(int(lead_s * CLOCK_RATE), np.float32), pcm48,
                              np.zeros(int(trail_s * CLOCK_RATE), np.float32)])
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(CLOCK_RATE)
        out.writeframes(int16(samples).tobytes())
    return path


def overlap(said: str, heard: str) -> float:
    """The share of the words ``said`` that are in ``heard`` (each heard word counts once)."""
    words = said.lower().replace("?", " ").replace(".", " ").replace(",", " ").split()
    left = Counter(heard.lower().replace("?", " ").replace(".", " ").replace(",", " ").split())
    hits = 0
    for word in words:
        if left[word] > 0:
            left[word] -= 1
            hits += 1
    return hits / len(words) if words else 0.0
