"""Speech to text with pocketsphinx (CMU Sphinx), for viewers' spoken questions.

The ``pocketsphinx`` wheel on PyPI ships the US English acoustic model, language model and
pronunciation dictionary, so nothing is downloaded. Recognition is of general English with
a small vocabulary: near word for word on clear speech, rough on noisy or accented speech.

Contract: ``recognise(pcm)`` takes 16 kHz mono signed 16-bit native-endian samples (bytes or
an int16 array) and returns the words heard, lower case, without punctuation, one space
apart; "" when there is no speech to recognise (silence, less voiced sound than
``MIN_VOICED_S``, or noise the decoder makes no words of). One ``SphinxRecogniser`` serves one
thread at a time: the decoder is not thread-safe. It also holds the GIL while it decodes,
so a server runs it in a process of its own (server/hearing.py), not on a thread beside its
event loop.
"""
from __future__ import annotations

import re

import numpy as np

#: The sample rate the acoustic model was trained at; ``recognise`` takes only this.
SAMPLE_RATE = 16_000
#: Loudness (RMS of a 20 ms frame, of full scale 32768) from which a frame counts as voiced:
#: about -40 dBFS, under quiet speech and over a quiet room.
VOICED_LEVEL = 330.0
#: Less voiced sound than this is not a question (a click, a breath, the button's noise):
#: nothing is decoded, so silence cannot come back as a stray word.
MIN_VOICED_S = 0.25
_FRAME = SAMPLE_RATE // 50
#: Alternative pronunciations ("read(2)") and fillers ("<sil>", "[NOISE]") are not words.
_NOT_WORDS = re.compile(r"\(\d+\)|<[^>]*>|\[[^\]]*\]")


def voiced_seconds(samples: np.ndarray) -> float:
    """Seconds of ``samples`` (16 kHz int16) in 20 ms frames at least ``VOICED_LEVEL`` loud."""
    n = len(samples) // _FRAME
    if n == 0:
        return 0.0
    frames = samples[: n * _FRAME].astype(np.float32).reshape(n, _FRAME)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    return float(np.count_nonzero(rms >= VOICED_LEVEL)) * _FRAME / SAMPLE_RATE


class SphinxRecogniser:
    """pocketsphinx's decoder with the model its wheel ships, loaded once and reused."""

    name = "pocketsphinx"

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self._decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")

    def recognise(self, pcm: bytes | np.ndarray) -> str:
        """The words in ``pcm`` (see the module's contract)."""
        samples = np.frombuffer(pcm, dtype=np.int16) if isinstance(pcm, bytes) else np.asarray(pcm, dtype=np.int16)
        if voiced_seconds(samples) < MIN_VOICED_S:
            return ""
        decoder = self._decoder
        decoder.start_utt()
        try:
            decoder.process_raw(samples.tobytes(), full_utt=True)
        finally:
            decoder.end_utt()
        hypothesis = decoder.hyp()
        if hypothesis is None:
            return ""
        return " ".join(_NOT_WORDS.sub(" ", hypothesis.hypstr).split())

    def warm_up(self) -> None:
        """Decode a short tone once, so the first question pays no first-call costs."""
        t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
        self.recognise((np.sin(2 * np.pi * 220 * t) * 3000).astype(np.int16))
