"""Every task records a span on one timeline; metrics and benchmarks derive from spans.

The timeline also keeps where viewers' playheads stalled (``Stall``): not work, so no
metric counts them as spans, but what a stall is traced back from.
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from models.protocols import CLOCK_RATE


@dataclass
class Span:
    stage: str
    segment: int | None
    tier: str | None
    worker: str
    queued: float
    started: float
    finished: float
    #: Seconds of media the task produced (for real-time factors).
    media_s: float = 0.0
    note: str = ""

    @property
    def wait_s(self) -> float:
        return self.started - self.queued

    @property
    def run_s(self) -> float:
        return self.finished - self.started

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Stall:
    """A viewer's playhead waited for content at ``at_s`` on the media clock, from
    ``began`` to ``ended`` (timeline seconds)."""

    at_s: float
    began: float
    ended: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Timeline:
    """Spans of one episode, times in seconds since the episode was created."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self._spans: list[Span] = []
        self._stalls: list[Stall] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def add(self, span: Span) -> None:
        with self._lock:
            self._spans.append(span)

    def spans(self, stage: str | None = None) -> list[Span]:
        with self._lock:
            return [s for s in self._spans if stage is None or s.stage == stage]

    def to_list(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.spans()]

    def stalled(self, at: int, seconds: float) -> None:
        """A viewer's playhead just played again after waiting ``seconds`` at clock sample
        ``at`` (``Playhead``'s ``on_stall``)."""
        now = self.now()
        with self._lock:
            self._stalls.append(Stall(round(at / CLOCK_RATE, 3), round(now - seconds, 3), round(now, 3)))

    def stalls(self) -> list[Stall]:
        with self._lock:
            return list(self._stalls)
