"""One episode as the server holds it: request, status, buffer, transcript, timeline and viewers' reports.

``record()`` is what the store keeps; ``summary()`` what the API shows.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from models.protocols import CLOCK_RATE
from pipelines.playout.buffer import PlayoutBuffer
from pipelines.playout.transcript import TranscriptBuilder
from pipelines.segments import EpisodeRequest
from pipelines.spans import Timeline
from pipelines.stages.runtime import EpisodeRuntime
from server.shares import Share

STATUSES = ("queued", "generating", "finished", "failed", "cancelled", "interrupted")

#: Who may watch an episode and where it is listed (server/ownership.py).
Visibility = Literal["private", "unlisted", "public"]
VISIBILITIES: tuple[Visibility, ...] = ("private", "unlisted", "public")


@dataclass
class Episode:
    id: str
    request: EpisodeRequest
    directory: Path
    created_wall: float = field(default_factory=time.time)
    created: float = field(default_factory=time.monotonic)
    #: When generation began (later than ``created`` for a queued episode).
    started: float | None = None
    status: str = "generating"
    error: str | None = None
    title: str = ""
    buffer: PlayoutBuffer = field(default_factory=PlayoutBuffer)
    timeline: Timeline = field(default_factory=Timeline)
    transcript: TranscriptBuilder = field(default_factory=TranscriptBuilder)
    runtime: EpisodeRuntime | None = None
    task: asyncio.Task | None = None
    first_content_s: float | None = None
    first_speech_s: float | None = None
    finished_s: float | None = None
    viewers: int = 0
    viewer_stats: list[dict[str, Any]] = field(default_factory=list)
    #: Loaded from the store after a restart: the buffer is rebuilt from the archive on demand.
    restored: bool = False
    #: The principal that created it (server/access.py); None: admins only (records from before owners).
    owner: str | None = "local"
    visibility: Visibility = "unlisted"
    #: Its share links, revoked ones included (server/shares.py).
    shares: list[Share] = field(default_factory=list)
    _replay_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def record(self) -> dict[str, Any]:
        """Everything the store keeps: enough to list, describe and replay the episode."""
        return {
            "id": self.id,
            "request": {"topic": self.request.topic, "duration_s": self.request.duration_s,
                        "style": self.request.style, "quality": self.request.quality,
                        "policy": self.request.policy},
            "created_at": self.created_wall,
            "owner": self.owner,
            "visibility": self.visibility,
            "shares": [share.to_dict() for share in self.shares],
            "status": self.status,
            "error": self.error,
            "title": self.title,
            "first_content_s": self.first_content_s,
            "first_speech_s": self.first_speech_s,
            "finished_s": self.finished_s,
            "buffered_s": round(self.buffer.end / CLOCK_RATE, 3) if not self.restored else self._restored_buffered_s,
            "viewer_stats": self.viewer_stats[-50:],
            "transcript": {"title": self.transcript.title, "hosts": list(self.transcript.hosts), "segments": self.transcript.segments},
            "spans": self.timeline.to_list(),
        }

    _restored_buffered_s: float = 0.0

    @property
    def video_path(self) -> Path:
        return self.directory / "episode.mp4"

    def progress(self) -> dict[str, Any]:
        p = self.runtime.progress if self.runtime else None
        done = len(self.transcript.segments)
        return {
            "segments_written": p.written if p else done,
            "segments_voiced": p.voiced if p else done,
            "segments_rendered": p.rendered if p else done,
            "segments_total": p.total if p else done,
            "buffered_s": self._restored_buffered_s if self.restored and not self.buffer.end else round(self.buffer.end / CLOCK_RATE, 3),
        }

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "topic": self.request.topic,
            "title": self.title or self.request.topic,
            "duration_s": self.request.duration_s,
            "style": self.request.style,
            "quality": self.request.quality,
            "policy": self.request.policy,
            "status": self.status,
            "error": self.error,
            "visibility": self.visibility,
            "created_at": self.created_wall,
            "progress": self.progress(),
            "startup": {
                "first_content_s": self.first_content_s,
                "first_speech_s": self.first_speech_s,
                "finished_s": self.finished_s,
            },
            "viewers": self.viewers,
            "stalls": _stall_summary(self.viewer_stats),
        }


def _stall_summary(stats: list[dict[str, Any]]) -> dict[str, Any]:
    freezes = sum(int(s.get("freezeCount") or 0) for s in stats)
    frozen = sum(float(s.get("totalFreezesDuration") or 0.0) for s in stats)
    played = sum(float(s.get("playedSeconds") or 0.0) for s in stats)
    return {
        "viewer_reports": len(stats),
        "freezes": freezes,
        "frozen_s": round(frozen, 3),
        "stall_ratio": round(frozen / played, 4) if played > 0 else None,
    }
