"""Live episodes: each runs the episode stream into a playout buffer and the MP4 archive.

Viewers attach playheads to the buffer; the archive and transcript are written as
segments arrive and published when the episode ends.
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.archive import Mp4Writer
from pipelines.config import Deployment
from pipelines.episode import EpisodeError, EpisodeRequest, EpisodeRuntime, ReadySegment
from pipelines.executors import StagePools
from pipelines.models_loaded import LoadedModels
from pipelines.playout import PlayoutBuffer
from pipelines.spans import Timeline
from pipelines.transcript import TranscriptBuilder

log = logging.getLogger(__name__)

STATUSES = ("generating", "finished", "failed", "cancelled")


@dataclass
class Episode:
    id: str
    request: EpisodeRequest
    directory: Path
    created_wall: float = field(default_factory=time.time)
    created: float = field(default_factory=time.monotonic)
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

    @property
    def video_path(self) -> Path:
        return self.directory / "episode.mp4"

    def progress(self) -> dict[str, Any]:
        p = self.runtime.progress if self.runtime else None
        return {
            "segments_written": p.written if p else 0,
            "segments_voiced": p.voiced if p else 0,
            "segments_rendered": p.rendered if p else 0,
            "segments_total": p.total if p else None,
            "buffered_s": round(self.buffer.end / 48_000, 3),
        }

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "topic": self.request.topic,
            "title": self.title or self.request.topic,
            "duration_s": self.request.duration_s,
            "style": self.request.style,
            "quality": self.request.quality,
            "status": self.status,
            "error": self.error,
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


class EpisodeManager:
    def __init__(self, models: LoadedModels, deployment: Deployment, pools: StagePools, media_dir: Path) -> None:
        self.models = models
        self.deployment = deployment
        self.pools = pools
        self.media_dir = media_dir
        self.media_dir.mkdir(parents=True, exist_ok=True)
        self.episodes: dict[str, Episode] = {}
        # x264 encoding of the archive must never block the event loop that paces WebRTC.
        self._archive_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sw-archive")

    def create(self, request: EpisodeRequest) -> Episode:
        episode_id = secrets.token_urlsafe(12)
        episode = Episode(id=episode_id, request=request, directory=self.media_dir / episode_id)
        episode.directory.mkdir(parents=True, exist_ok=True)
        episode.transcript.hosts = tuple(h.name for h in self.deployment.hosts)
        episode.runtime = EpisodeRuntime(
            self.models, self.deployment, self.pools, request, timeline=episode.timeline
        )
        self.episodes[episode_id] = episode
        episode.task = asyncio.create_task(self._produce(episode), name=f"episode-{episode_id}")
        return episode

    def get(self, episode_id: str) -> Episode | None:
        return self.episodes.get(episode_id)

    def list(self) -> list[Episode]:
        return sorted(self.episodes.values(), key=lambda e: e.created_wall, reverse=True)

    async def delete(self, episode_id: str) -> bool:
        episode = self.episodes.pop(episode_id, None)
        if episode is None:
            return False
        if episode.task and not episode.task.done():
            episode.task.cancel()
            try:
                await episode.task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - being deleted
                pass
        shutil.rmtree(episode.directory, ignore_errors=True)
        return True

    async def _produce(self, episode: Episode) -> None:
        loop = asyncio.get_running_loop()
        runtime = episode.runtime
        assert runtime is not None
        quality = self.deployment.quality.tier(episode.request.quality or self.deployment.quality.default)
        writer = Mp4Writer(episode.video_path, quality, self.deployment.output)
        try:
            async for segment in runtime.run():
                self._on_segment(episode, segment)
                await loop.run_in_executor(self._archive_pool, writer.write, segment)
            episode.title = runtime.title
            await loop.run_in_executor(self._archive_pool, writer.close)
            episode.transcript.title = runtime.title
            episode.transcript.write(episode.directory / "transcript.json", episode.directory / "captions.vtt")
            episode.status = "finished"
            episode.finished_s = round(time.monotonic() - episode.created, 3)
            episode.buffer.finish()
        except asyncio.CancelledError:
            episode.status = "cancelled"
            episode.buffer.finish("cancelled")
            await loop.run_in_executor(self._archive_pool, writer.abort)
            raise
        except Exception as exc:  # noqa: BLE001 - reported on the episode, never crashes the server
            log.exception("episode %s failed", episode.id)
            episode.status = "failed"
            episode.error = str(exc) if isinstance(exc, EpisodeError) else f"internal error: {exc}"
            episode.buffer.finish(episode.error)
            await loop.run_in_executor(self._archive_pool, writer.abort)
        finally:
            self._write_meta(episode)

    def _on_segment(self, episode: Episode, segment: ReadySegment) -> None:
        now = round(time.monotonic() - episode.created, 3)
        if episode.first_content_s is None:
            episode.first_content_s = now
        if segment.kind == "speech" and episode.first_speech_s is None:
            episode.first_speech_s = now
        if episode.runtime is not None:
            episode.title = episode.runtime.title
        episode.buffer.append(segment)
        episode.transcript.add(segment)

    def _write_meta(self, episode: Episode) -> None:
        path = episode.directory / "episode.json"
        if not episode.directory.exists():
            return
        tmp = path.with_name(".episode.json.part")
        tmp.write_text(json.dumps(episode.summary(), indent=2))
        tmp.replace(path)

    async def shutdown(self) -> None:
        for episode in list(self.episodes.values()):
            if episode.task and not episode.task.done():
                episode.task.cancel()
        await asyncio.gather(*(e.task for e in self.episodes.values() if e.task), return_exceptions=True)
        self._archive_pool.shutdown(wait=True)
