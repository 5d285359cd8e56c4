"""Running totals derived from spans and live state, read when someone looks.

Nothing in the pipeline reports a metric: every task already records a span on its
episode's timeline, episodes keep their startup times and the viewers' own reports,
and each WebRTC viewer's playhead counts its stalls. ``Observability.refresh`` reads
what is new since its last call (spans are append-only, so each is read once) and
folds it into running totals; the collector turns those into metric families.

Counters only ever grow: they accumulate increments as they are seen, so deleting an
episode (or a viewer leaving) does not lower them. They count what this process did:
episodes restored from the store after a restart are a baseline (shown on the
dashboard, not counted again); an episode re-run under the same id counts anew.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from models.protocols import CLOCK_RATE
from server.episodes.episode import Episode
from server.observability.histogram import Hist
from server.observability.loop_lag import LoopLag
from server.observability.pricing import Pricing
from server.state import ServerState

#: Stage latency and queue wait buckets (seconds).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
#: Time to first frame / first speech buckets (seconds).
STARTUP_BUCKETS = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0)
#: Window of the worker utilisation gauge.
UTILISATION_WINDOW_S = 60.0

#: Response status of an episode creation -> the refusal reason counted.
REFUSALS = {429: "quota", 507: "disk"}


# ------------------------------------------------------------------ running totals
def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100) of unsorted values."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


@dataclass
class EpisodeTrack:
    episode: Episode | None = None  # the Episode read (a re-run replaces it under the same id)
    counted: bool = True  # False for an episode restored from the store: a baseline
    spans: int = 0
    tiers: dict[int, str] = field(default_factory=dict)
    quality_changes: int = 0
    busy_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cost: float = 0.0
    media_s: float = 0.0
    first_content: bool = False
    first_speech: bool = False
    failed: bool = False
    done: bool = False  # terminal and read to the end: its spans no longer change
    quiet: int = 0  # refreshes since it last had viewers or was generating
    viewers: dict[str, _ViewerReport] = field(default_factory=dict)


@dataclass
class _ViewerReport:
    freezes: int = 0
    frozen_s: float = 0.0
    ttff: bool = False
    first_speech: bool = False
    last: dict[str, Any] = field(default_factory=dict)


@dataclass
class _PlayheadTrack:
    stalls: int = 0
    stalled_samples: int = 0


def episode_label(episode_id: str) -> str:
    """The ``episode`` label: the id's first 8 characters. Whoever knows an id can watch the
    episode, so metrics (often scraped without credentials) never carry a whole one."""
    return episode_id[:8]


def quality_changes(tiers: dict[int, str]) -> int:
    """Tier changes between consecutive segments (by index) of one episode."""
    ordered = [tiers[i] for i in sorted(tiers)]
    return sum(a != b for a, b in pairwise(ordered))


#: Reports keep being read for this many refreshes after an episode goes quiet.
_QUIET_REFRESHES = 30


class Observability:
    """Running totals over every episode, viewer and span the server has held."""

    def __init__(self, state: ServerState, pricing: Pricing) -> None:
        self.state = state
        self.pricing = pricing
        self.started = time.monotonic()
        self.last_refresh = 0.0
        self._episodes: dict[str, EpisodeTrack] = {}
        self._playheads: dict[str, _PlayheadTrack] = {}
        # histograms
        self.ttff = {"server": Hist(STARTUP_BUCKETS), "viewer": Hist(STARTUP_BUCKETS)}
        self.first_speech = {"server": Hist(STARTUP_BUCKETS), "viewer": Hist(STARTUP_BUCKETS)}
        self.latency: dict[tuple[str, str], Hist] = {}
        self.wait: dict[tuple[str, str], Hist] = {}
        # counters
        self.busy_s: dict[tuple[str, str], float] = defaultdict(float)  # (worker, stage)
        self.cost: dict[tuple[str, str], float] = defaultdict(float)  # (stage, device)
        self.stalls = {"viewer": 0, "server": 0}
        self.stalled_s = {"viewer": 0.0, "server": 0.0}
        self.quality_changes = 0
        #: Refused episode creations by reason, counted from responses (RefusalCounter).
        self.refusals: dict[str, int] = {reason: 0 for reason in REFUSALS.values()}
        self.errors = 0
        self.episodes_started = 0
        self.media_s = 0.0
        # recent busy intervals per worker, absolute monotonic times
        self._busy_recent: dict[str, deque[tuple[float, float]]] = defaultdict(lambda: deque(maxlen=4096))
        self.worker_stage: dict[str, str] = {}
        #: How late the event loop wakes up (its ticker runs for the server's life: app.py).
        self.loop_lag = LoopLag()

    # -------------------------------------------------------------- reading
    def refresh(self) -> None:
        """Fold in what changed since the last call. Runs on the event loop; cheap."""
        now = time.monotonic()
        self.last_refresh = now
        mgr = self.state.manager
        if mgr is not None:
            current = mgr.episodes
            for episode in list(current.values()):
                track = self._episodes.get(episode.id)
                if track is None or track.episode is not episode:
                    restored = bool(getattr(episode, "restored", False))
                    track = self._episodes[episode.id] = EpisodeTrack(episode=episode, counted=not restored)
                    if restored:  # what it did before the restart is a baseline, never counted again
                        self._read_episode(episode, track)
                        self._read_reports(episode, track)
                        track.done, track.counted = True, True  # new viewers of its replay do count
                        continue
                    self.episodes_started += 1
                if not track.done:
                    self._read_episode(episode, track)
                live = episode.status == "generating" or episode.viewers > 0
                track.quiet = 0 if live else track.quiet + 1
                if track.quiet <= _QUIET_REFRESHES:
                    self._read_reports(episode, track)
            for gone in [e for e in self._episodes if e not in current]:
                del self._episodes[gone]
        gateway = self.state.gateway
        viewers = {**dict(gateway.recently_closed), **{v.id: v.playhead.stats for v in gateway.viewers.values()}}
        for viewer_id, stats in list(viewers.items()):
            track = self._playheads.setdefault(viewer_id, _PlayheadTrack())
            if stats.stalls > track.stalls:
                self.stalls["server"] += stats.stalls - track.stalls
                track.stalls = stats.stalls
            if stats.stalled_samples > track.stalled_samples:
                self.stalled_s["server"] += (stats.stalled_samples - track.stalled_samples) / CLOCK_RATE
                track.stalled_samples = stats.stalled_samples
        for gone in [v for v in self._playheads if v not in viewers]:
            del self._playheads[gone]
        cutoff = now - UTILISATION_WINDOW_S
        for intervals in self._busy_recent.values():
            while intervals and intervals[0][1] < cutoff:
                intervals.popleft()

    def _read_episode(self, episode: Episode, track: EpisodeTrack) -> None:
        terminal = episode.status != "generating"  # read before the spans: none come after it
        count = track.counted
        spans = episode.timeline.spans()
        t0 = episode.timeline.t0
        tiers_changed = False
        for span in spans[track.spans:]:
            run_s = max(0.0, span.run_s)
            device = self.pricing.device_for(span.stage)
            cost = run_s * self.pricing.hourly(device) / 3600
            track.cost += cost
            track.busy_s[span.stage] += run_s
            if span.tier and span.segment is not None:
                track.tiers[span.segment] = span.tier
                tiers_changed = True
            if not count:
                continue
            key = (span.stage, span.tier or "none")
            if key not in self.latency:
                self.latency[key] = Hist(LATENCY_BUCKETS)
                self.wait[key] = Hist(LATENCY_BUCKETS)
            self.latency[key].observe(run_s)
            self.wait[key].observe(max(0.0, span.wait_s))
            self.busy_s[(span.worker, span.stage)] += run_s
            self.worker_stage[span.worker] = span.stage
            self._busy_recent[span.worker].append((t0 + span.started, t0 + span.finished))
            self.cost[(span.stage, device)] += cost
        track.spans = len(spans)
        if tiers_changed:
            changes = quality_changes(track.tiers)
            if changes > track.quality_changes:
                if count:
                    self.quality_changes += changes - track.quality_changes
                track.quality_changes = changes
        media_s = episode.buffer.end / CLOCK_RATE
        if media_s > track.media_s:
            if count:
                self.media_s += media_s - track.media_s
            track.media_s = media_s
        if not track.first_content and episode.first_content_s is not None:
            track.first_content = True
            if count:
                self.ttff["server"].observe(episode.first_content_s)
        if not track.first_speech and episode.first_speech_s is not None:
            track.first_speech = True
            if count:
                self.first_speech["server"].observe(episode.first_speech_s)
        if episode.status == "failed" and not track.failed:
            track.failed = True
            if count:
                self.errors += 1
        track.done = terminal

    def _read_reports(self, episode: Episode, track: EpisodeTrack) -> None:
        count = track.counted
        for report in episode.viewer_stats:
            viewer = report.get("viewer")
            if not viewer:
                continue  # anonymous reports cannot be told apart: they would count twice
            v = track.viewers.get(viewer)
            if v is None:
                v = track.viewers[viewer] = _ViewerReport()
            v.last = report
            freezes = int(report.get("freezeCount") or 0)
            if freezes > v.freezes:
                if count:
                    self.stalls["viewer"] += freezes - v.freezes
                v.freezes = freezes
            frozen = float(report.get("totalFreezesDuration") or 0.0)
            if frozen > v.frozen_s:
                if count:
                    self.stalled_s["viewer"] += frozen - v.frozen_s
                v.frozen_s = frozen
            if not v.ttff and report.get("ttffSeconds") is not None:
                v.ttff = True
                if count:
                    self.ttff["viewer"].observe(float(report["ttffSeconds"]))
            if not v.first_speech and report.get("firstSpeechSeconds") is not None:
                v.first_speech = True
                if count:
                    self.first_speech["viewer"].observe(float(report["firstSpeechSeconds"]))

    # -------------------------------------------------------------- derived
    def utilisation(self, window_s: float = UTILISATION_WINDOW_S) -> dict[str, float]:
        """Busy fraction of each worker over the last ``window_s`` (finished spans only)."""
        now = time.monotonic()
        start = now - window_s
        out = {}
        for worker, intervals in self._busy_recent.items():
            busy = sum(max(0.0, min(b, now) - max(a, start)) for a, b in intervals)
            out[worker] = min(1.0, busy / window_s)
        for worker in self.worker_stage:
            out.setdefault(worker, 0.0)
        return out

    def episode_track(self, episode_id: str) -> EpisodeTrack | None:
        return self._episodes.get(episode_id)

    def viewer_positions(self) -> dict[str, list[int]]:
        positions: dict[str, list[int]] = defaultdict(list)
        for viewer in self.state.gateway.viewers.values():
            positions[viewer.episode_id].append(viewer.playhead.position)
        return positions

    def live_episodes(self) -> list[Episode]:
        mgr = self.state.manager
        if mgr is None:
            return []
        return [e for e in mgr.episodes.values() if e.status == "generating" or e.viewers > 0]

    def buffered_s(self, episode: Episode, positions: dict[str, list[int]]) -> float:
        """Media generated that the episode's furthest-along viewer has not played yet."""
        ahead = max(positions.get(episode.id) or [0])
        return max(0.0, (episode.buffer.end - ahead) / CLOCK_RATE)

    @property
    def admission_refusals(self) -> int:
        return sum(self.refusals.values())

    def total_cost(self) -> float:
        return sum(self.cost.values())

    def cost_per_episode_minute(self) -> float | None:
        return self.total_cost() / (self.media_s / 60) if self.media_s > 0 else None


