"""Live episodes: each runs the episode stream into a playout buffer and the MP4 archive.

Viewers attach playheads to the buffer; the archive and transcript are written as
segments arrive and published when the episode ends.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import secrets
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from models.protocols import CLOCK_RATE
from pipelines.config import Deployment
from pipelines.playout.archive import Mp4Writer
from pipelines.playout.buffer import PlayoutBuffer
from pipelines.playout.replay import segments_from_archive
from pipelines.playout.transcript import TranscriptBuilder
from pipelines.segments import EpisodeError, EpisodeRequest, ReadySegment
from pipelines.spans import Span, Timeline
from pipelines.stages.models_loaded import LoadedModels
from pipelines.stages.pools import StagePools
from pipelines.stages.runtime import EpisodeRuntime
from server.admission.cost_learning import CostLearner, Usage, UsageSampler, other_cores
from server.admission.gate import Admission, Load, Verdict
from server.episodes.store import EpisodeStore, StoreError

log = logging.getLogger(__name__)

STATUSES = ("queued", "generating", "finished", "failed", "cancelled", "interrupted")
#: New episodes are refused below this much free disk (an archive is tens of MB).
MIN_FREE_BYTES = 512 * 1024 * 1024
#: What admission learned about this machine's costs, next to the episodes.
LEARNED_COSTS_FILE = "admission-costs.json"
#: Seconds between two readings of the CPU times (what other programs use follows them).
USAGE_INTERVAL_S = 2.0
#: Seconds of readings per observation of the learned costs: segments land a few seconds
#: of media at a time while their CPU is spent all along, so short windows would blur
#: generation into viewing.
LEARN_WINDOW_S = 10.0


class Overloaded(RuntimeError):
    """Admission control refused a new episode; ``verdict`` says why and when to retry."""

    def __init__(self, verdict: Verdict, queue_full: bool = False) -> None:
        self.verdict = verdict
        why = "the wait queue is full" if queue_full else verdict.reason
        super().__init__(f"the server is at capacity: {why}. Retry in about {verdict.retry_after_s} s, "
                         "or send \"wait\": true to be queued.")


class InsufficientStorage(RuntimeError):
    """Not enough free disk for a new episode; the message says where and how much."""


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
    #: The key id that created it (server/access.py), for per-key caps.
    owner: str = "local"
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
            "status": self.status,
            "error": self.error,
            "title": self.title,
            "first_content_s": self.first_content_s,
            "first_speech_s": self.first_speech_s,
            "finished_s": self.finished_s,
            "buffered_s": round(self.buffer.end / 48_000, 3) if not self.restored else self._restored_buffered_s,
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
            "buffered_s": self._restored_buffered_s if self.restored and not self.buffer.end else round(self.buffer.end / 48_000, 3),
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
    def __init__(
        self,
        models: LoadedModels,
        deployment: Deployment,
        pools: StagePools,
        media_dir: Path,
        store: EpisodeStore | None = None,
        min_free_bytes: int = MIN_FREE_BYTES,
    ) -> None:
        self.models = models
        self.deployment = deployment
        self.pools = pools
        self.media_dir = media_dir
        self.media_dir.mkdir(parents=True, exist_ok=True)
        self.store = store or EpisodeStore(media_dir / "episodes.sqlite")
        self.min_free_bytes = min_free_bytes
        self.episodes: dict[str, Episode] = {}
        # x264 encoding of the archive must never block the event loop that paces WebRTC.
        self._archive_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sw-archive")
        self._stopping = False
        #: Episodes waiting for admission, oldest first.
        self.queue: list[str] = []
        self._pump_task: asyncio.Task | None = None
        self.learned: CostLearner | None = None
        #: Cores other programs keep busy (smoothed); admission leaves them alone.
        self.other_cores = 0.0
        self._usage_task: asyncio.Task | None = None
        #: Viewers of an episode that are being sent media (the WebRTC gateway knows better than
        #: the connection count: a viewer at the end of an episode is sent nothing).
        self.streaming: Callable[[Episode], int] = lambda episode: episode.viewers
        self.admission = self._admission(deployment, pools)
        self._restore()

    def _admission(self, deployment: Deployment, pools: StagePools) -> Admission:
        q = deployment.quality
        spec = deployment.runtime.admission
        archive = q.default
        stage_rtf: dict[str, float] = {}
        profile = pools.profile
        if profile is not None:
            stage_rtf = {"script": profile.script.rtf, "speech": profile.speech.rtf}
            if archive in profile.encode:
                stage_rtf["encode"] = profile.encode[archive].rtf
        admission = Admission(spec, stage_rtf, pools.video_costs.rtf, q.floor or q.ladder[0].name,
                              deployment.runtime.startup_target_s)
        if spec.enabled and spec.learn_costs:
            self.learned = CostLearner(admission.process_demand(), spec.viewer_rtf,
                                       path=self.media_dir / LEARNED_COSTS_FILE)
            admission.learned = self.learned
            admission.other_load = lambda: self.other_cores
        return admission

    def costs(self) -> dict[str, Any]:
        """What admission plans with per episode, for /api/admission."""
        a = self.admission
        return {"generation_cores": round(a.generation_demand(), 3), "viewer_cores": round(a.viewer_demand(), 3),
                "other_programs_cores": round(self.other_cores, 3),
                "learned_samples": self.learned.samples if self.learned else 0}

    async def _learn_usage(self, sampler: UsageSampler, interval_s: float = USAGE_INTERVAL_S) -> None:
        """Every few seconds: the server's CPU time against the media generated and the viewers served."""
        assert self.learned is not None
        before: Usage = await asyncio.to_thread(sampler.sample)
        window, seen, viewer_s = before, self._generated(), 0.0
        saved = before.at
        while not self._stopping:
            await asyncio.sleep(interval_s)
            try:
                after = await asyncio.to_thread(sampler.sample)
            except OSError as exc:  # /proc unreadable for a moment: skip this reading
                log.debug("could not read CPU times: %s", exc)
                continue
            viewer_s += sum(self.streaming(e) for e in self.episodes.values()) * (after.at - before.at)
            other = other_cores(before, after)
            if other is not None:
                self.other_cores += 0.3 * (other - self.other_cores)
            before = after
            if after.at - window.at < LEARN_WINDOW_S:
                continue
            now = self._generated()
            media_s = sum(end - seen.get(eid, 0) for eid, end in now.items()) / CLOCK_RATE
            self.learned.observe(after.own_s - window.own_s, media_s, viewer_s)
            window, seen, viewer_s = after, now, 0.0
            if after.at - saved > 30.0:
                await asyncio.to_thread(self.learned.save)
                saved = after.at

    def _generated(self) -> dict[str, int]:
        """Samples generated so far by each episode this process generated (not rebuilt from an archive)."""
        return {eid: e.buffer.end for eid, e in self.episodes.items() if e.runtime is not None}

    # ------------------------------------------------------------------ persistence
    def _restore(self) -> None:
        """Bring back every stored episode; one that was generating when the server stopped is interrupted."""
        for rec in self.store.load_all():
            try:
                req = rec["request"]
                episode = Episode(
                    id=rec["id"],
                    request=EpisodeRequest(topic=req["topic"], duration_s=req["duration_s"], style=req["style"],
                                           quality=req.get("quality"), policy=req.get("policy")),
                    directory=self.media_dir / rec["id"],
                    created_wall=rec["created_at"],
                    status=rec["status"],
                    error=rec.get("error"),
                    title=rec.get("title") or "",
                    first_content_s=rec.get("first_content_s"),
                    first_speech_s=rec.get("first_speech_s"),
                    finished_s=rec.get("finished_s"),
                    viewer_stats=rec.get("viewer_stats") or [],
                    restored=True,
                    owner=rec.get("owner", "local"),
                )
                episode._restored_buffered_s = float(rec.get("buffered_s") or 0.0)
                tr = rec.get("transcript") or {}
                episode.transcript.title = tr.get("title", "")
                episode.transcript.hosts = tuple(tr.get("hosts") or [h.name for h in self.deployment.hosts])
                episode.transcript.segments = list(tr.get("segments") or [])
                for span in rec.get("spans") or []:
                    episode.timeline.add(Span(**span))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("skipping a stored episode that cannot be read: %s", exc)
                continue
            if episode.status in ("generating", "queued"):
                episode.status = "interrupted"
                episode.error = ("the server stopped while this episode was being generated; "
                                 f"re-run it with POST /api/episodes/{episode.id}/rerun")
                self._save(episode)
            if episode.status == "finished" and not episode.video_path.exists():
                episode.status = "failed"
                episode.error = "the archive file is missing from the media directory"
                self._save(episode)
            if episode.status != "finished":
                episode.buffer.finish(episode.error)
            self.episodes[episode.id] = episode

    def _save(self, episode: Episode) -> None:
        try:
            self.store.save(episode.id, episode.created_wall, episode.status, episode.record())
        except StoreError:
            log.exception("could not persist episode %s", episode.id)

    def save_stats(self, episode: Episode) -> None:
        """Viewer reports arrive every few seconds; persist them only once generation is over."""
        if episode.status != "generating":
            self._save(episode)

    async def ensure_playable(self, episode: Episode) -> None:
        """After a restart the buffer is empty: rebuild it from the archive once, off the event loop."""
        if not episode.restored or episode.buffer.end or episode.status != "finished":
            return
        async with episode._replay_lock:
            if episode.buffer.end:
                return
            quality = self.deployment.quality.stream_tier(episode.request.quality)
            segments = await asyncio.to_thread(
                segments_from_archive, str(episode.video_path), quality, episode.transcript.segments
            )
            for segment in segments:
                episode.buffer.append(segment)
            episode.buffer.finish()

    # ------------------------------------------------------------------ lifecycle
    def check_disk(self) -> None:
        free = shutil.disk_usage(self.media_dir).free
        if free < self.min_free_bytes:
            raise InsufficientStorage(
                f"only {free // 2**20} MiB free in {self.media_dir}; new episodes need at least "
                f"{self.min_free_bytes // 2**20} MiB. Delete old episodes (DELETE /api/episodes/{{id}}) or free disk space."
            )

    def loads(self) -> list[Load]:
        """What every episode asks of the machine now: generation and viewers' streams."""
        out = []
        for e in self.episodes.values():
            generating = e.status == "generating"
            streaming = self.streaming(e)
            if not generating and not streaming:
                continue
            runtime = e.runtime
            remaining = max(0.0, e.request.duration_s - e.buffer.end / 48_000) if generating else 0.0
            # Made to be watched live: until its viewer's stream is up (a second or so after
            # the request), plan for one, or a burst of requests would be admitted as if unwatched.
            viewers = max(streaming, 1) if generating else streaming
            out.append(Load(generating, viewers, remaining, bool(runtime and runtime.at_risk)))
        return out

    def admit(self) -> Verdict:
        return self.admission.check(self.loads())

    def create(self, request: EpisodeRequest, episode_id: str | None = None, owner: str = "local",
               wait: bool = False) -> Episode:
        """Start an episode, queue it (``wait``) when the server is full, or raise Overloaded."""
        self.check_disk()
        verdict = self.admit() if not self.queue else None
        if verdict is None or not verdict.admit:
            if not wait or len(self.queue) >= self.deployment.runtime.admission.max_queue:
                raise Overloaded(verdict or self.admit(), queue_full=wait)
        episode_id = episode_id or secrets.token_urlsafe(12)
        episode = Episode(id=episode_id, request=request, directory=self.media_dir / episode_id, owner=owner)
        episode.directory.mkdir(parents=True, exist_ok=True)
        episode.transcript.hosts = tuple(h.name for h in self.deployment.hosts)
        self.episodes[episode_id] = episode
        if verdict is not None and verdict.admit:
            self._start(episode)
        else:
            episode.status = "queued"
            self.queue.append(episode_id)
            self._save(episode)
            if self._pump_task is None or self._pump_task.done():
                self._pump_task = asyncio.create_task(self._pump(), name="admission-queue")
        return episode

    def _start(self, episode: Episode) -> None:
        if self.learned is not None and (self._usage_task is None or self._usage_task.done()):
            self._usage_task = asyncio.create_task(self._learn_usage(UsageSampler()), name="admission-costs")
        episode.status = "generating"
        episode.started = time.monotonic()
        episode.runtime = EpisodeRuntime(
            self.models, self.deployment, self.pools, episode.request, timeline=episode.timeline
        )
        episode.buffer.hold_until_finished = episode.runtime.policy == "batch"
        self._save(episode)
        episode.task = asyncio.create_task(self._produce(episode), name=f"episode-{episode.id}")

    async def _pump(self, interval_s: float = 1.0) -> None:
        """Start queued episodes, oldest first, as soon as admission lets each in."""
        while self.queue and not self._stopping:
            head = self.episodes.get(self.queue[0])
            if head is None or head.status != "queued":
                self.queue.pop(0)
                continue
            if self.admit().admit:
                self.queue.pop(0)
                self._start(head)
                continue
            await asyncio.sleep(interval_s)

    def queue_position(self, episode_id: str) -> int | None:
        return self.queue.index(episode_id) + 1 if episode_id in self.queue else None

    def queue_status(self, episode_id: str) -> dict[str, int | None] | None:
        """Where a queued episode stands, for the viewers waiting on it; None once it is not queued.

        Admission's estimate of when room frees up (a generating episode done) is only
        an estimate for the head of the queue: the others get their place in line.
        """
        position = self.queue_position(episode_id)
        if position is None:
            return None
        starts_in = self.admit().retry_after_s if position == 1 else None
        return {"position": position, "starts_in_s": starts_in}

    def rerun(self, episode_id: str) -> Episode:
        """Generate an interrupted, failed or cancelled episode again, under the same id."""
        old = self.episodes[episode_id]
        if old.status in ("generating", "finished"):
            raise ValueError(f"episode {episode_id} is {old.status}; only interrupted, failed or cancelled episodes can be re-run")
        shutil.rmtree(old.directory, ignore_errors=True)
        return self.create(old.request, episode_id=episode_id, owner=old.owner)

    def get(self, episode_id: str) -> Episode | None:
        return self.episodes.get(episode_id)

    def list(self) -> list[Episode]:
        return sorted(self.episodes.values(), key=lambda e: e.created_wall, reverse=True)

    async def delete(self, episode_id: str) -> bool:
        episode = self.episodes.pop(episode_id, None)
        if episode is None:
            return False
        if episode_id in self.queue:
            self.queue.remove(episode_id)
        if episode.task and not episode.task.done():
            episode.task.cancel()
            try:
                await episode.task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - being deleted
                pass
        self.store.delete(episode_id)
        shutil.rmtree(episode.directory, ignore_errors=True)
        return True

    async def _produce(self, episode: Episode) -> None:
        loop = asyncio.get_running_loop()
        runtime = episode.runtime
        assert runtime is not None
        quality = self.deployment.quality.stream_tier(episode.request.quality)
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
            if self._stopping:
                episode.status = "interrupted"
                episode.error = ("the server shut down while this episode was being generated; "
                                 f"re-run it with POST /api/episodes/{episode.id}/rerun")
            else:
                episode.status = "cancelled"
            episode.buffer.finish(episode.status)
            await loop.run_in_executor(self._archive_pool, writer.abort)
            raise
        except Exception as exc:  # noqa: BLE001 - reported on the episode, never crashes the server
            log.exception("episode %s failed", episode.id)
            episode.status = "failed"
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                episode.error = f"the disk holding {self.media_dir} is full; free space and re-run the episode"
            else:
                episode.error = str(exc) if isinstance(exc, EpisodeError) else f"internal error: {exc}"
            episode.buffer.finish(episode.error)
            await loop.run_in_executor(self._archive_pool, writer.abort)
        finally:
            self._save(episode)

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

    async def shutdown(self) -> None:
        """Stop generating; what was running is kept as interrupted, ready to re-run."""
        self._stopping = True
        if self._pump_task is not None:
            self._pump_task.cancel()
        if self._usage_task is not None:
            self._usage_task.cancel()
        if self.learned is not None:
            self.learned.save()
        for episode_id in self.queue:
            queued = self.episodes.get(episode_id)
            if queued is not None:
                queued.status = "interrupted"
                queued.error = ("the server shut down while this episode waited for capacity; "
                                f"re-run it with POST /api/episodes/{episode_id}/rerun")
                queued.buffer.finish(queued.error)
                self._save(queued)
        self.queue.clear()
        for episode in list(self.episodes.values()):
            if episode.task and not episode.task.done():
                episode.task.cancel()
        await asyncio.gather(*(e.task for e in self.episodes.values() if e.task), return_exceptions=True)
        self._archive_pool.shutdown(wait=True)
        self.store.close()
