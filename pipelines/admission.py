"""Admission control: take a new episode only if everyone, it included, can still play on time.

Generating an episode in real time needs, per second of media, the script, the
speech, the drawing at (at least) the floor tier and the archive's encoding, plus
each viewer's WebRTC encoding: a *demand* in cores, read from the measured
profile and the drawing costs the workers observe. The server admits a new
episode when the summed demand of the generating episodes and the new one stays
under ``max_load`` of the cores, and the new one's first segment is predicted
inside the startup target at that load. Otherwise the request is refused with a
Retry-After (when the soonest generating episode should be done), or queued when
the client said it may wait. An episode that is already behind its deadlines
also closes the door: admitting more would make it stall.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

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


def available_cores() -> float:
    try:
        return float(len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return float(os.cpu_count() or 1)


class Admission:
    def __init__(self, spec: Any, stage_rtf: dict[str, float], video_rtf: Callable[[str], float],
                 floor: str, startup_target_s: float) -> None:
        """``stage_rtf``: script, speech and encode seconds per media second (a profile);
        ``video_rtf``: drawing cost of a tier now (the live cost model)."""
        self.spec = spec
        self.stage_rtf = stage_rtf
        self.video_rtf = video_rtf
        self.floor = floor
        self.startup_target_s = startup_target_s
        self.cores = spec.cores or available_cores()

    @property
    def capacity(self) -> float:
        return self.cores * self.spec.max_load

    def generation_demand(self) -> float:
        """Cores one episode needs to generate in real time at the floor tier."""
        s = self.stage_rtf
        return s.get("script", 0.1) + s.get("speech", 0.1) + s.get("encode", 0.05) + self.video_rtf(self.floor)

    def demand(self, episode: Load) -> float:
        gen = self.generation_demand() if episode.generating else 0.0
        return gen + self.spec.viewer_rtf * episode.viewers

    def check(self, episodes: Sequence[Load], viewers: int = 1) -> Verdict:
        if not self.spec.enabled:
            return Verdict(True, "admission control is off", 0.0, math.inf, 0.0)
        load = sum(self.demand(e) for e in episodes)
        after = load + self.demand(Load(True, viewers, 0.0))
        # The first segment is generated as fast as the cores allow, shared with the rest.
        alone = FIRST_SEGMENT_S * self.generation_demand()
        startup = alone * max(1.0, after / self.cores)
        retry = self._retry_after(episodes, load)
        risky = sum(e.at_risk for e in episodes if e.generating)
        if risky:
            return Verdict(False, f"{risky} generating episode(s) are behind their deadlines; a new one would make them stall",
                           load, self.capacity, startup, retry)
        if after > self.capacity:
            return Verdict(False, f"the generating episodes need {load:.2f} of {self.capacity:.2f} cores; "
                           f"one more needs {after - load:.2f}", load, self.capacity, startup, retry)
        if startup > self.startup_target_s:
            return Verdict(False, f"the first segment would take about {startup:.2f} s, over the "
                           f"{self.startup_target_s:.2f} s startup target", load, self.capacity, startup, retry)
        return Verdict(True, "fits", after, self.capacity, startup)

    def _retry_after(self, episodes: Sequence[Load], load: float) -> int:
        """Seconds until the soonest generating episode should be done (generation runs ahead of playback)."""
        pace = max(load, 1e-6) / self.cores  # seconds of wall time per second of media, at least
        soonest = min((e.remaining_media_s * min(1.0, pace) for e in episodes if e.generating), default=1.0)
        return int(min(300, max(2, math.ceil(soonest))))
