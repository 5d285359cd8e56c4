"""The live ops dashboard: one server-sent-event stream per open page, a snapshot a second.

Snapshots are computed once per tick by a shared hub (however many pages are open)
and only while at least one page is open. Each tick carries only the spans that are
new since the previous tick; a page that connects gets a ``hello`` with what came
before (spans, buffer history), then the ticks. A page that falls behind is cut off
and reconnects (EventSource does so by itself) to a fresh ``hello``.
"""
from __future__ import annotations

import asyncio
import heapq
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from models.protocols import CLOCK_RATE
from pipelines.spans import Span
from server.episodes.episode import Episode
from server.observability.metrics import (
    UTILISATION_WINDOW_S,
    EpisodeTrack,
    Observability,
    percentile,
)

log = logging.getLogger(__name__)

TICK_S = 1.0
MAX_EPISODES = 12  # the most recent episodes shown
MAX_VIEWERS = 24
HELLO_SPANS = 2000  # spans per episode sent to a page that connects
HISTORY = 180  # ticks of buffer history kept for pages that connect (3 minutes)
MAX_SUBSCRIBERS = 32
#: A stream ends after this long; the page reconnects at once and gets a fresh hello.
STREAM_MAX_S = 600.0
QUEUE_DEPTH = 16


class _Exit:
    """Set when uvicorn is told to exit, so open streams end and shutdown is not held up."""

    requested = False


def exit_requested() -> bool:
    """True once the server was told to exit: open streams end instead of holding shutdown up."""
    return _Exit.requested


def watch_server_exit() -> None:
    """Wrap uvicorn's signal handler (as sse-starlette does): streams end on SIGTERM/SIGINT."""
    try:
        from uvicorn.server import Server
    except ImportError:  # pragma: no cover - another ASGI server
        return
    original = Server.handle_exit
    if getattr(original, "_streamwise", False):
        return

    def handle_exit(self: Any, sig: int, frame: Any) -> None:
        _Exit.requested = True
        original(self, sig, frame)

    handle_exit._streamwise = True  # type: ignore[attr-defined]
    Server.handle_exit = handle_exit  # type: ignore[method-assign]


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _span_row(span: Span) -> list[Any]:
    return [span.stage, span.segment, span.tier, span.worker,
            round(span.queued, 3), round(span.started, 3), round(span.finished, 3), span.note]


@dataclass
class Subscriber:
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_DEPTH))
    closed: bool = False


class DashboardHub:
    def __init__(self, obs: Observability, tick_s: float = TICK_S) -> None:
        self.obs = obs
        self.tick_s = tick_s
        self.subscribers: list[Subscriber] = []
        #: Spans of each listed episode sent in ticks so far, with the Episode they came from
        #: (a re-run replaces the episode under the same id: its spans start again from 0).
        self.sent: dict[str, tuple[Episode, int]] = {}
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.seq = 0
        self.tick_cost_s = 0.0  # last tick's compute time, shown on the page
        self._task: asyncio.Task | None = None

    # -------------------------------------------------------------- subscribers
    def subscribe(self) -> Subscriber | None:
        if len(self.subscribers) >= MAX_SUBSCRIBERS:
            return None
        sub = Subscriber()
        sub.queue.put_nowait(self._encode("hello", self._hello()))
        self.subscribers.append(sub)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="dashboard-hub")
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        sub.closed = True
        if sub in self.subscribers:
            self.subscribers.remove(sub)

    async def _run(self) -> None:
        while self.subscribers and not _Exit.requested:
            began = time.monotonic()
            try:
                self.tick()
            except Exception:
                log.exception("dashboard tick failed")
            await asyncio.sleep(max(0.05, self.tick_s - (time.monotonic() - began)))

    def tick(self) -> None:
        began = time.perf_counter()
        self.obs.refresh()
        snap, episodes = self._snapshot()
        snap["spans"] = self._new_spans(episodes)
        self.history.append({"t": snap["t"], "buffered": {e["id"]: e["buffered_s"] for e in snap["episodes"] if e["buffered_s"] is not None}})
        self.seq += 1
        snap["seq"] = self.seq
        self.tick_cost_s = time.perf_counter() - began
        snap["tick_ms"] = round(self.tick_cost_s * 1000, 2)
        data = self._encode("tick", snap)
        for sub in list(self.subscribers):
            try:
                sub.queue.put_nowait(data)
            except asyncio.QueueFull:
                self.unsubscribe(sub)  # too slow: it reconnects and gets a fresh hello

    @staticmethod
    def _encode(event: str, payload: dict[str, Any]) -> bytes:
        data = json.dumps(payload, separators=(",", ":"), allow_nan=False)
        return f"event: {event}\nretry: 2000\ndata: {data}\n\n".encode()

    # -------------------------------------------------------------- content
    def _listed(self) -> list[Episode]:
        mgr = self.obs.state.manager
        if mgr is None:
            return []
        return heapq.nlargest(MAX_EPISODES, mgr.episodes.values(), key=lambda e: e.created_wall)

    def _hello(self) -> dict[str, Any]:
        spans = {}
        for episode in self._listed():
            source, n = self.sent.get(episode.id, (None, 0))
            if n and source is episode:
                rows = episode.timeline.spans()[max(0, n - HELLO_SPANS):n]
                spans[episode.id] = {"from": n - len(rows), "rows": [_span_row(s) for s in rows]}
        return {
            "t": round(time.monotonic() - self.obs.started, 3),
            "tick_s": self.tick_s,
            "spans": spans,
            "history": list(self.history),
            "pricing": self.obs.pricing.to_json(),
            "clock_rate": CLOCK_RATE,
        }

    def _new_spans(self, episodes: list[Episode]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        listed = {e.id for e in episodes}
        for episode_id in [e for e in self.sent if e not in listed]:
            del self.sent[episode_id]
        for episode in episodes:
            track = self.obs.episode_track(episode.id)
            upto = track.spans if track is not None and track.episode is episode else 0
            source, done = self.sent.get(episode.id, (episode, 0))
            if source is not episode:
                done = 0  # re-run: "from": 0 tells the page to start this episode's spans afresh
                out[episode.id] = {"from": 0, "rows": []}
            if upto > done:
                rows = episode.timeline.spans()[done:upto]
                out[episode.id] = {"from": done, "rows": [_span_row(s) for s in rows]}
                done = upto
            self.sent[episode.id] = (episode, done)
        return out

    def _snapshot(self) -> tuple[dict[str, Any], list[Episode]]:
        obs = self.obs
        episodes = self._listed()
        rows, viewers = self._episode_rows(episodes)
        startup = {
            "server_ttff": list(obs.ttff["server"].recent),
            "viewer_ttff": list(obs.ttff["viewer"].recent),
            "server_speech": list(obs.first_speech["server"].recent),
            "viewer_speech": list(obs.first_speech["viewer"].recent),
        }
        snap = {
            "t": round(time.monotonic() - obs.started, 3),
            "summary": self._summary(startup),
            "episodes": rows,
            "viewers": viewers[:MAX_VIEWERS],
            "stages": self._stage_rows(),
            "workers": [{"worker": w, "stage": obs.worker_stage.get(w, ""), "utilisation": round(u, 4)}
                        for w, u in sorted(obs.utilisation(UTILISATION_WINDOW_S).items())],
            "utilisation_window_s": UTILISATION_WINDOW_S,
            "startup": startup,
        }
        return snap, episodes

    def _episode_rows(self, episodes: list[Episode]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """One row per listed episode, and one per viewer that reported on it (connected first)."""
        positions = self.obs.viewer_positions()
        rows, viewers = [], []
        for episode in episodes:
            track = self.obs.episode_track(episode.id)
            if track is not None and track.episode is not episode:
                track = None  # re-run since the last refresh
            rows.append(self._episode_row(episode, track, positions))
            if track is not None:
                viewers.extend(self._viewer_rows(episode, track))
        viewers.sort(key=lambda v: (not v["connected"],))
        return rows, viewers

    def _episode_row(self, episode: Episode, track: EpisodeTrack | None,
                     positions: dict[str, list[int]]) -> dict[str, Any]:
        progress = episode.progress()
        generated = float(progress.get("buffered_s") or 0.0)  # restored episodes: from the store
        live = episode.status == "generating" or episode.viewers > 0
        tiers = track.tiers if track else {}
        cost = track.cost if track else 0.0
        return {
            "id": episode.id,
            "title": episode.title or episode.request.topic,
            "topic": episode.request.topic,
            "status": episode.status,
            "age_s": round(time.time() - episode.created_wall, 1),
            "generated_s": round(generated, 3),
            "buffered_s": _r(self.obs.buffered_s(episode, positions)) if live else None,
            "viewers": episode.viewers,
            "first_content_s": episode.first_content_s,
            "first_speech_s": episode.first_speech_s,
            "segments": progress.get("segments_rendered") or 0,
            "tier": tiers[max(tiers)] if tiers else episode.request.quality,
            "quality_changes": track.quality_changes if track else 0,
            "busy_s": round(sum(track.busy_s.values()), 3) if track else 0.0,
            "cost": round(cost, 6),
            "cost_per_min": round(cost / (generated / 60), 6) if generated > 0 else None,
        }

    def _viewer_rows(self, episode: Episode, track: EpisodeTrack) -> list[dict[str, Any]]:
        gateway_viewers = self.obs.state.gateway.viewers
        rows = []
        for viewer_id, report in track.viewers.items():
            last = report.last
            connected = gateway_viewers.get(viewer_id)
            rows.append({
                "episode": episode.id,
                "viewer": viewer_id,
                "connected": connected is not None,
                "freezes": report.freezes,
                "frozen_s": round(report.frozen_s, 3),
                "skew_ms": _r(last.get("avSkewMs"), 1),
                "played_s": _r(last.get("playedSeconds"), 1),
                "fps": _r(last.get("framesPerSecond"), 1),
                "ttff_s": _r(last.get("ttffSeconds")),
                "server_stalls": connected.playhead.stats.stalls if connected else None,
            })
        return rows

    def _stage_rows(self) -> list[dict[str, Any]]:
        """Run time and queue wait percentiles of each stage and tier, over recent tasks."""
        stages = []
        for (stage, tier), hist in sorted(self.obs.latency.items()):
            run = list(hist.recent)
            wait = list(self.obs.wait[(stage, tier)].recent)
            stages.append({"stage": stage, "tier": tier, "n": hist.count,
                           "p50": _r(percentile(run, 50), 4), "p95": _r(percentile(run, 95), 4),
                           "wait_p50": _r(percentile(wait, 50), 4), "wait_p95": _r(percentile(wait, 95), 4)})
        return stages

    def _summary(self, startup: dict[str, list[float]]) -> dict[str, Any]:
        obs = self.obs
        mgr = obs.state.manager
        return {
            "ready": obs.state.ready,
            "active": sum(e.status == "generating" for e in mgr.episodes.values()) if mgr else 0,
            "episodes": len(mgr.episodes) if mgr else 0,
            "viewers": len(obs.state.gateway.viewers),
            "ttff_p50": _r(percentile(startup["server_ttff"], 50)),
            "first_speech_p50": _r(percentile(startup["server_speech"], 50)),
            "viewer_ttff_p50": _r(percentile(startup["viewer_ttff"], 50)),
            "stalls_viewer": obs.stalls["viewer"],
            "stalls_server": obs.stalls["server"],
            "quality_changes": obs.quality_changes,
            "errors": obs.errors,
            "admission_refusals": obs.admission_refusals,
            "media_s": round(obs.media_s, 3),
            "cost": round(obs.total_cost(), 6),
            "cost_per_min": _r(obs.cost_per_episode_minute(), 6),
        }
