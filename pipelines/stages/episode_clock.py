"""An episode's media clock against wall time: when each stretch is due, and where viewers are.

Deadlines count from the instant the first words play. That instant is planned at the
startup target when the episode starts, moves to the hand-over of the first spoken
segment if that comes later, and, once viewers play, to where the furthest of them
has got: a viewer who stalled plays everything after the stall that much later.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from pipelines.playout import clock


class EpisodeClock:
    """Clock samples (``pipelines.playout.clock``) to monotonic seconds, for one episode.

    ``intro``: clock samples before the first words (the intro card); ``ready_end``: where
    the content handed to the viewers ends (None: no spoken segment yet); ``viewers_at()``:
    the furthest clock sample any viewer has played (None: nobody has started).
    """

    def __init__(self, startup_target_s: float, margin_s: float, viewers_at: Callable[[], int | None]) -> None:
        #: When the first words are planned to play (monotonic seconds).
        self.origin = time.monotonic() + startup_target_s
        self.margin_s = margin_s
        self.viewers_at = viewers_at
        self.intro = 0
        self.ready_end: int | None = None

    def released(self, end: int) -> None:
        """Content up to clock sample ``end`` went to the viewers; the first spoken segment
        starts their clock (later deadlines count from the real start)."""
        if self.ready_end is None:
            self.origin = max(self.origin, time.monotonic())
        self.ready_end = end

    def cut(self, at: int) -> None:
        """A splice dropped what was handed over from clock sample ``at`` on."""
        if self.ready_end is not None and self.ready_end > at:
            self.ready_end = at

    def first_words(self) -> float:
        """When the first words play on the furthest viewer's clock (monotonic seconds).

        Counting from the planned start after a stall would make every later segment
        look overdue: drawn at the floor tier and queued ahead of other episodes' work
        that is due sooner.
        """
        at = self.viewers_at()
        if at is None or self.ready_end is None:
            return self.origin
        played = (at - self.intro) / clock.CLOCK_RATE
        return max(self.origin, time.monotonic() - played)

    def deadline(self, start: int) -> float:
        """When the content starting at clock sample ``start`` must be ready (monotonic
        seconds): when the furthest viewer reaches it, less the margin."""
        spoken = max(0, start - self.intro) / clock.CLOCK_RATE
        return self.first_words() + spoken - self.margin_s

    def lead_s(self) -> float:
        """Seconds of content ready ahead of the furthest viewer: the episode's buffer."""
        if self.ready_end is None:
            return 0.0
        return self.deadline(self.ready_end) + self.margin_s - time.monotonic()

    def settled(self) -> int:
        """Content before this clock sample can no longer be replaced by a splice: what the
        furthest viewer has played, or, with nobody watching, everything handed over."""
        at = self.viewers_at()
        ready = self.ready_end or 0
        return ready if at is None else min(at, ready)

    def furthest(self) -> int:
        """The furthest clock sample a viewer has played; with no viewer, where one who
        started at the first words would be now."""
        at = self.viewers_at()
        if at is None:
            if self.ready_end is None:
                return self.intro
            at = self.intro + clock.to_samples(max(0.0, time.monotonic() - self.origin))
        return max(at, self.intro)
