"""Per-segment quality decisions: which tier each segment is drawn at, and why.

``static`` draws every segment at the default tier (with the fixed early-low
rule for the first ones). ``adaptive`` picks, for each segment, the highest tier
whose predicted drawing time fits the segment's slack (time until its deadline),
using seconds-per-media-second estimates per tier that start from a profile and
follow what the workers actually measure (an exponential moving average). It
climbs at most one rung per segment, so quality rises smoothly as the buffer
grows, drops as far as needed when a deadline is at risk, and never goes below
the configured floor. Every decision is kept with its reason for the timeline.
"""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

from models.protocols import Quality


@dataclass(frozen=True)
class Decision:
    segment: int
    tier: str
    reason: str
    slack_s: float
    predicted_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CostModel:
    """Seconds of drawing per second of media, per tier: profile first, then measurements.

    Shared by all episodes in the process, since they share the workers.
    """

    def __init__(self, initial: dict[str, float], alpha: float = 0.3) -> None:
        self._rtf = dict(initial)
        self._alpha = alpha
        self._lock = threading.Lock()

    def rtf(self, tier: str) -> float:
        with self._lock:
            return self._rtf.get(tier, max(self._rtf.values(), default=1.0))

    def observe(self, tier: str, run_s: float, media_s: float) -> None:
        if media_s <= 0:
            return
        sample = run_s / media_s
        with self._lock:
            old = self._rtf.get(tier)
            self._rtf[tier] = sample if old is None else (1 - self._alpha) * old + self._alpha * sample


class TierPlanner:
    def __init__(
        self,
        ladder: list[Quality],
        policy: str,
        default: str,
        floor: str | None,
        costs: CostModel,
        startup: str | None = None,
        startup_segments: int = 0,
        headroom: float = 1.5,
    ) -> None:
        self.ladder = ladder
        self.names = [q.name for q in ladder]
        self.policy = policy
        self.default = default
        self.floor = self.names.index(floor) if floor else 0
        self.costs = costs
        self.startup = startup
        self.startup_segments = startup_segments
        self.headroom = headroom
        self.decisions: list[Decision] = []
        self._last: int | None = None

    def _tier(self, name: str) -> Quality:
        return self.ladder[self.names.index(name)]

    def choose(self, segment: int, media_s: float, slack_s: float) -> Quality:
        """The tier for ``segment`` (``media_s`` long, due in ``slack_s`` seconds); recorded."""
        if self.policy != "adaptive":
            name = self.startup if (self.startup and segment < self.startup_segments) else self.default
            predicted = self.costs.rtf(name) * media_s
            return self._record(segment, name, f"{self.policy} policy", slack_s, predicted)
        top = len(self.ladder) - 1 if self._last is None else min(len(self.ladder) - 1, self._last + 1)
        for i in range(top, self.floor - 1, -1):
            predicted = self.costs.rtf(self.names[i]) * media_s * self.headroom
            if predicted <= slack_s:
                if self._last is None:
                    why = "first segment: highest tier that meets its deadline"
                elif i > self._last:
                    why = "slack allows one rung up"
                elif i < self._last:
                    why = "deadline at risk: stepping down"
                else:
                    why = "holding: the next rung would not meet the deadline" if i < len(self.ladder) - 1 else "top tier fits"
                return self._record(segment, self.names[i], why, slack_s, predicted)
        name = self.names[self.floor]
        return self._record(segment, name, "no tier meets the deadline: floor tier", slack_s,
                            self.costs.rtf(name) * media_s * self.headroom)

    def _record(self, segment: int, name: str, reason: str, slack_s: float, predicted: float) -> Quality:
        self._last = self.names.index(name)
        self.decisions.append(Decision(segment, name, reason, round(slack_s, 3), round(predicted, 3)))
        return self._tier(name)
