"""Generations that cannot wait: while one runs, the writer's other generations pause.

One writer serves every episode on the machine's cores. The first line of an answer to a
viewer's question is due when the question's reading ends, seconds after the splice, while
the other episodes' lines are written ahead of their viewers. So while an urgent generation
runs, the others wait between two tokens, each keeping its own llama.cpp context, and the
cores go to the answer. A generation on the urgent one's own context never waits (that
context's lock already keeps them apart), nor one whose stream was halted, and no pause
lasts longer than ``max_wait_s``.

Contract: thread-safe; ``pause_point`` returns at once when nothing is urgent.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

#: How often a paused generation looks whether its stream was halted meanwhile.
_POLL_S = 0.05


class UrgentGenerations:
    """The generations running as urgent, by llama.cpp context; where the others wait."""

    def __init__(self, max_wait_s: float = 5.0) -> None:
        self.max_wait_s = max_wait_s
        self._cv = threading.Condition()
        self._urgent: Counter[int] = Counter()  # id(context) -> urgent generations on it

    @contextmanager
    def urgent(self, context: object) -> Iterator[None]:
        """Mark a generation on ``context`` as urgent while the block runs."""
        with self._cv:
            self._urgent[id(context)] += 1
        try:
            yield
        finally:
            with self._cv:
                self._urgent[id(context)] -= 1
                if self._urgent[id(context)] <= 0:
                    del self._urgent[id(context)]
                self._cv.notify_all()

    def _others(self, context: object) -> bool:
        return any(key != id(context) for key in self._urgent)

    def pause_point(self, context: object, halt: threading.Event | None = None) -> float:
        """Wait while a generation on another context is urgent (not past ``max_wait_s``, and
        not once ``halt`` is set); the seconds waited."""
        if not self._urgent:
            return 0.0
        t0 = time.monotonic()
        give_up = t0 + self.max_wait_s
        with self._cv:
            while self._others(context) and not (halt is not None and halt.is_set()):
                left = give_up - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(min(_POLL_S, left))
        return time.monotonic() - t0
