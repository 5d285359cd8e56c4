"""Admission control: take a new episode only if everyone, it included, can still play on time.

Generating an episode in real time needs, per second of media, the script, the
speech, the drawing at (at least) the floor tier and the archive's encoding, plus
each viewer's WebRTC encoding: a *demand* in cores. The drawing's comes from the
costs the workers observe; the rest from what the server learned its own process
really spends (server.admission.cost_learning), which starts from the measured profile.
The server admits a new episode when the summed demand of the generating episodes
and the new one stays under ``max_load`` of the cores, less what other programs on
the machine keep busy, and the new one's first segment is predicted inside the
startup target at that load. Otherwise the request is refused with a
Retry-After (when the soonest generating episode should be done), or queued when
the client said it may wait. An episode that is already behind its deadlines
also closes the door: admitting more would make it stall.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

#: Seconds of media in an episode's first segment (first_max_words at ~2.6 words/s).
FIRST_SEGMENT_S = 3.0


@dataclass(frozen=True)
class Load:
    """One episode as admission sees it."""

    generating: bool
    viewers: int
    #: Seconds of media still to generate (0 once generated).
    remaining_media_s: float
    #: True when its latest segment was planned late (no tier met its deadline).
    at_risk: bool = False


@dataclass(frozen=True)
class Verdict:
    admit: bool
    reason: str
    load: float
    capacity: float
    predicted_startup_s: float
    retry_after_s: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"admit": self.admit, "reason": self.reason, "load_cores": round(self.load, 3),
                "capacity_cores": round(self.capacity, 3), "predicted_startup_s": round(self.predicted_startup_s, 3),
                "retry_after_s": self.retry_after_s}


class LearnedCosts(Protocol):
    """Seconds of the server process's CPU per media second generated and per viewer second."""

    generation: float
    viewer: float


def available_cores() -> float:
    try:
        return float(len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return float(os.cpu_count() or 1)


class Admission:
    def __init__(self, spec: Any, stage_rtf: dict[str, float], video_rtf: Callable[[str], float],
                 floor: str, startup_target_s: float, learned: LearnedCosts | None = None,
                 other_load: Callable[[], float] | None = None) -> None:
        """``stage_rtf``: script, speech and encode seconds per media second (a profile);
        ``video_rtf``: drawing cost of a tier now (the live cost model); ``learned``: the
        server process's measured costs, which replace the profile's stages and the
        configured viewer cost; ``other_load``: cores other programs keep busy now."""
        self.spec = spec
        self.stage_rtf = stage_rtf
        self.video_rtf = video_rtf
        self.floor = floor
        self.startup_target_s = startup_target_s
        self.learned = learned
        self.other_load = other_load
        self.cores = spec.cores or available_cores()

    @property
    def capacity(self) -> float:
        """Cores the episodes may plan for: ``max_load`` of the machine, less what others use."""
        other = self.other_load() if self.other_load is not None else 0.0
        return max(0.0, self.cores * self.spec.max_load - other)

    def _stages(self) -> float:
        s = self.stage_rtf
        return s.get("script", 0.1) + s.get("speech", 0.1) + s.get("encode", 0.05)

    def process_demand(self) -> float:
        """Cores the server process needs to generate one episode in real time (drawing aside)."""
        return self.learned.generation if self.learned is not None else self._stages()

    def viewer_demand(self) -> float:
        return self.learned.viewer if self.learned is not None else self.spec.viewer_rtf

    def generation_demand(self) -> float:
        """Cores one episode needs to generate in real time at the floor tier."""
        return self.process_demand() + self.video_rtf(self.floor)

    def demand(self, episode: Load) -> float:
        gen = self.generation_demand() if episode.generating else 0.0
        return gen + self.viewer_demand() * episode.viewers

    def check(self, episodes: Sequence[Load], viewers: int = 1) -> Verdict:
        if not self.spec.enabled:
            return Verdict(True, "admission control is off", 0.0, math.inf, 0.0)
        load = sum(self.demand(e) for e in episodes)
        after = load + self.demand(Load(True, viewers, 0.0))
        capacity = self.capacity
        # The first segment is generated as fast as the cores allow, shared with the rest; its
        # critical path is the stages themselves (the archive and the viewer's stream come later).
        alone = FIRST_SEGMENT_S * (self._stages() + self.video_rtf(self.floor))
        startup = alone * max(1.0, after / self.cores)
        retry = self._retry_after(episodes, load)
        risky = sum(e.at_risk for e in episodes if e.generating)
        if risky:
            return Verdict(False, f"{risky} generating episode(s) are behind their deadlines; a new one would make them stall",
                           load, capacity, startup, retry)
        # With nothing of ours running, waiting frees nothing: the one episode goes ahead.
        if after > capacity and episodes:
            return Verdict(False, f"the episodes here need {load:.2f} of {capacity:.2f} cores; "
                           f"one more needs {after - load:.2f}", load, capacity, startup, retry)
        if startup > self.startup_target_s:
            return Verdict(False, f"the first segment would take about {startup:.2f} s, over the "
                           f"{self.startup_target_s:.2f} s startup target", load, capacity, startup, retry)
        return Verdict(True, "fits", after, capacity, startup)

    def _retry_after(self, episodes: Sequence[Load], load: float) -> int:
        """Seconds until the soonest generating episode should be done (generation runs ahead of playback)."""
        pace = max(load, 1e-6) / self.cores  # seconds of wall time per second of media, at least
        soonest = min((e.remaining_media_s * min(1.0, pace) for e in episodes if e.generating), default=1.0)
        return int(min(300, max(2, math.ceil(soonest))))
