"""Every task records a span on one timeline; metrics and benchmarks derive from spans."""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any


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


class Timeline:
    """Spans of one episode, times in seconds since the episode was created."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self._spans: list[Span] = []
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
