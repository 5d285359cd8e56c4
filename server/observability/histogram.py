"""A cumulative histogram with Prometheus semantics, shared by every running total."""
from __future__ import annotations

import bisect
import math
from collections import deque

#: Values kept per series for the dashboard's percentiles and distributions.
RECENT = 500


class Hist:
    """A cumulative histogram (Prometheus semantics) plus the most recent values."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.recent: deque[float] = deque(maxlen=RECENT)

    def observe(self, value: float) -> None:
        if not math.isfinite(value):
            return
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.recent.append(value)

    @property
    def count(self) -> int:
        return sum(self.counts)

    def buckets(self) -> list[tuple[str, int]]:
        out, total = [], 0
        for bound, n in zip(self.bounds, self.counts):
            total += n
            out.append((_float(bound), total))
        out.append(("+Inf", total + self.counts[-1]))
        return out


def _float(value: float) -> str:
    return repr(float(value))
