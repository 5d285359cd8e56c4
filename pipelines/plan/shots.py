"""Which shot each segment is drawn in: the camera directed as a podcast video editor cuts it.

Editors of two-person podcasts cut between a wide two-shot and close-ups of the person
speaking, now and then of the listener's reaction, only where a turn starts and never
faster than a viewer can follow. So: the first line stays in the two-shot (its segments
are the ones racing for the startup), a cut falls only on a segment that starts a line,
and only once the current shot has lasted ``CameraSpec.min_shot_s``; a close-up held
longer than ``max_close_up_s`` goes back to the two-shot at the next line. Choices come
from a generator seeded by the episode's topic and the line's number, so the same
episode gets the same cuts on every run, whatever the timing of its stages.

Contract: ``ShotPlanner.shot`` is called once per voiced segment in playout order.
"""
from __future__ import annotations

import hashlib
import random

from models.protocols import TWO_SHOT, Shot
from pipelines.config import CameraSpec
from pipelines.playout import clock
from pipelines.segments import SegmentText


class ShotPlanner:
    """The shots of one episode, segment by segment."""

    def __init__(self, seed_text: str, params: CameraSpec | None = None) -> None:
        self.params = params or CameraSpec()
        self._seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "big")
        self._shot: Shot = TWO_SHOT
        self._since = 0  # clock sample where the current shot began
        self._line = -1  # the line of the segment before

    def shot(self, seg: SegmentText, start: int) -> Shot:
        """The shot of the segment ``seg`` that starts at clock sample ``start``."""
        starts_line, self._line = seg.line_index != self._line, seg.line_index
        if not (starts_line and self.params.cuts) or seg.line_index == 0:
            return self._shot
        held_s = (start - self._since) / clock.CLOCK_RATE
        if held_s < self.params.min_shot_s:
            return self._shot
        new = self._choose(seg, held_s)
        if new != self._shot:
            self._shot, self._since = new, start
        return self._shot

    def _choose(self, seg: SegmentText, held_s: float) -> Shot:
        p = self.params
        if self._shot.kind == "close_up" and held_s >= p.max_close_up_s:
            return TWO_SHOT
        roll = random.Random(self._seed ^ seg.line_index).random()
        if roll < p.speaker_close_up:
            return Shot("close_up", seg.speaker)
        if roll < p.speaker_close_up + p.listener_close_up:
            return Shot("close_up", 1 - seg.speaker)
        return TWO_SHOT
