"""The episode's length in media time: how fast its voices really speak, learned as they speak.

A writer cannot know how long its words will last: voices differ, and so do the pauses
between lines and the padding to the frame grid. So the runtime reports every segment
it voices (its words and its real duration on the media clock) and the writer sizes the
rest of the episode from that: the word budget is the words already voiced plus the
time left, at the pace measured so far. The writer plans its ending when what is voiced
plus what is written but not voiced yet (at that pace) nears the requested length.

Contract: thread-safe (the runtime reports on its event loop while the writer reads on
a worker thread); without any report the pace is ``prior_wps``.
"""
from __future__ import annotations

import threading

#: Words a second before anything is voiced: about what the bundled voices speak,
#: pauses between lines included.
PRIOR_WORDS_PER_SECOND = 3.0
#: Voiced seconds after which the measured pace is trusted alone (before: blended with the prior).
TRUSTED_AFTER_S = 10.0


class SpeakingPace:
    """The media time an episode has and how fast it is spending it, in words."""

    def __init__(self, duration_s: float, fixed_s: float = 0.0, prior_wps: float = PRIOR_WORDS_PER_SECOND) -> None:
        """``duration_s``: the requested length; ``fixed_s``: media time that is not speech
        (the intro and closing cards), taken from it."""
        if prior_wps <= 0:
            raise ValueError("prior_wps must be positive")
        self.requested_s = duration_s
        self.fixed_s = fixed_s
        self.prior_wps = prior_wps
        self._words = 0
        self._seconds = 0.0
        #: Words written for a viewer's question and not voiced yet: the length stretches by them.
        self._aside_words = 0
        #: Seconds of answers to viewers voiced so far: the length stretches by them.
        self._aside_s = 0.0
        self._lock = threading.Lock()

    def voiced(self, words: int, seconds: float) -> None:
        """A segment of ``words`` words was voiced and lasts ``seconds`` on the media clock."""
        with self._lock:
            self._words += words
            self._seconds += seconds

    def aside_written(self, words: int) -> None:
        """``words`` were written to answer a viewer: the episode grows by them, not the rest
        of the show shrinks (until they are voiced; then by their real length)."""
        with self._lock:
            self._aside_words += words

    def aside_voiced(self, words: int, seconds: float) -> None:
        """A segment of a viewer's answer was voiced: the length asked for grows by ``seconds``."""
        with self._lock:
            self._aside_words = max(0, self._aside_words - words)
            self._words += words
            self._seconds += seconds
            self._aside_s += seconds

    def rewind(self, words: int, seconds: float, aside_s: float) -> None:
        """Back to what is kept after a splice: ``words`` and ``seconds`` voiced, of which
        ``aside_s`` answered viewers (added to the length asked for)."""
        with self._lock:
            self._words, self._seconds, self._aside_words, self._aside_s = words, seconds, 0, aside_s

    @property
    def duration_s(self) -> float:
        """The length to fill: the one asked for, plus the time spent answering viewers."""
        return self.requested_s + self._aside_s

    @property
    def voiced_s(self) -> float:
        with self._lock:
            return self._seconds

    @property
    def words_per_second(self) -> float:
        """The pace so far: the prior, pulled towards the measured pace as speech accumulates."""
        with self._lock:
            return self._pace(self._words, self._seconds)

    def word_budget(self) -> int:
        """Words the whole episode should have: those voiced, plus the time left at the pace so far."""
        with self._lock:
            words, seconds, aside = self._words, self._seconds, self._aside_words
            duration_s = self.requested_s + self._aside_s
        left_s = max(0.0, duration_s - self.fixed_s - seconds)
        return max(12, round(words + aside + left_s * self._pace(words, seconds)))

    def _pace(self, words: int, seconds: float) -> float:
        weight = min(1.0, seconds / TRUSTED_AFTER_S)
        measured = words / seconds if seconds > 0 else self.prior_wps
        return weight * measured + (1.0 - weight) * self.prior_wps
