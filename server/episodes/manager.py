"""The lifecycle of live episodes: each runs the episode stream into a playout buffer and the MP4 archive.

Viewers attach playheads to the buffer; the archive and transcript are written as
segments arrive and published when the episode ends.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pipelines.config import Deployment
from pipelines.playout.archive import Mp4Writer
from pipelines.playout.encoding import OpusStream
from pipelines.playout.replay import segments_from_archive
from pipelines.questions import QuestionBoard
from pipelines.segments import EpisodeError, EpisodeRequest, ReadySegment
from pipelines.stages.models_loaded import LoadedModels
from pipelines.stages.pools import StagePools
from pipelines.stages.runtime import EpisodeRuntime
from server.admission.gate import Verdict
from server.episodes.admission_loop import AdmissionLoop
from server.episodes.archiver import Archiver
from server.episodes.episode import Episode, Visibility
from server.episodes.restore import episode_from_record, settle
from server.episodes.store import EpisodeStore, StoreError
from server.shares import Share, ShareSigner, load_secret

log = logging.getLogger(__name__)

#: New episodes are refused below this many MiB of free disk (``STREAMWISE_MIN_FREE_MB``).
MIN_FREE_MB = 512


class Overloaded(RuntimeError):
    """Admission control refused a new episode; ``verdict`` says why and when to retry."""

    def __init__(self, verdict: Verdict, queue_full: bool = False) -> None:
        self.verdict = verdict
        why = "the wait queue is full" if queue_full else verdict.reason
        super().__init__(f"the server is at capacity: {why}. Retry in about {verdict.retry_after_s} s, "
                         "or send \"wait\": true to be queued.")


class InsufficientStorage(RuntimeError):
    """Not enough free disk for a new episode; the message says where and how much."""


class EpisodeManager:
    def __init__(
        self,
        models: LoadedModels,
        deployment: Deployment,
        pools: StagePools,
        media_dir: Path,
        store: EpisodeStore | None = None,
        min_free_bytes: int = MIN_FREE_MB * 2**20,
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
        #: Per generating episode, its archive: segments are written once no viewer's
        #: question can replace them any more (a viewer has played past them).
        self._archives: dict[str, Archiver] = {}
        self._stopping = False
        self.signer = ShareSigner(load_secret(media_dir, dict(os.environ)))
        self.admission = AdmissionLoop(deployment, pools, media_dir, self.episodes, self._start)
        self._restore()

    # ------------------------------------------------------------------ admission
    @property
    def queue(self) -> list[str]:
        """Ids of the episodes waiting for admission, oldest first."""
        return self.admission.queue

    @property
    def streaming(self) -> Callable[[Episode], int]:
        return self.admission.streaming

    @streaming.setter
    def streaming(self, count: Callable[[Episode], int]) -> None:
        """How many viewers of an episode are sent media now (the transports know)."""
        self.admission.streaming = count

    def admit(self) -> Verdict:
        return self.admission.admit()

    def costs(self) -> dict[str, Any]:
        return self.admission.costs()

    def queue_position(self, episode_id: str) -> int | None:
        return self.admission.position(episode_id)

    def queue_status(self, episode_id: str) -> dict[str, int | None] | None:
        return self.admission.status(episode_id)

    # ------------------------------------------------------------------ persistence
    def _restore(self) -> None:
        """Bring back every stored episode; one that was generating when the server stopped is interrupted."""
        hosts = tuple(h.name for h in self.deployment.hosts)
        for rec in self.store.load_all():
            try:
                episode = episode_from_record(rec, self.media_dir, hosts)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("skipping a stored episode that cannot be read: %s", exc)
                continue
            if settle(episode):
                self._save(episode)
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

    def create(self, request: EpisodeRequest, episode_id: str | None = None, owner: str | None = "local",
               wait: bool = False, visibility: Visibility = "unlisted", shares: list[Share] | None = None) -> Episode:
        """Start an episode for ``owner``, queue it (``wait``) when the server is full, or raise Overloaded."""
        self.check_disk()
        verdict = self.admit() if not self.queue else None
        if verdict is None or not verdict.admit:
            if not wait or self.admission.full:
                raise Overloaded(verdict or self.admit(), queue_full=wait)
        episode_id = episode_id or secrets.token_urlsafe(12)
        episode = Episode(id=episode_id, request=request, directory=self.media_dir / episode_id, owner=owner,
                          visibility=visibility, shares=shares or [],
                          questions=QuestionBoard(self.deployment.questions))
        episode.directory.mkdir(parents=True, exist_ok=True)
        episode.transcript.hosts = tuple(h.name for h in self.deployment.hosts)
        self.episodes[episode_id] = episode
        if verdict is not None and verdict.admit:
            self._start(episode)
        else:
            self.admission.enqueue(episode)
            self._save(episode)
        return episode

    def _start(self, episode: Episode) -> None:
        self.admission.learn()
        episode.status = "generating"
        episode.started = time.monotonic()
        takes_questions = self.deployment.questions.enabled
        episode.runtime = EpisodeRuntime(
            self.models, self.deployment, self.pools, episode.request, timeline=episode.timeline,
            questions=episode.questions if takes_questions else None, viewers_at=episode.buffer.furthest,
            on_splice=lambda at: self._on_splice(episode, at),
        )
        episode.buffer.hold_until_finished = episode.runtime.policy == "batch"
        episode.buffer.opus = OpusStream() if self.deployment.runtime.shared_encoding else None
        self._save(episode)
        episode.task = asyncio.create_task(self._produce(episode), name=f"episode-{episode.id}")

    def rerun(self, episode_id: str, by: str) -> Episode:
        """Generate an interrupted, failed or cancelled episode again, under the same id, owner and links."""
        old = self.episodes[episode_id]
        if old.status in ("generating", "finished"):
            raise ValueError(f"episode {episode_id} is {old.status}; only interrupted, failed or cancelled episodes can be re-run")
        shutil.rmtree(old.directory, ignore_errors=True)
        episode = self.create(old.request, episode_id=episode_id, owner=old.owner, visibility=old.visibility,
                              shares=old.shares)
        self.record_action(episode_id, by, "rerun")
        return episode

    # ------------------------------------------------------------------ audit and share links
    def record_action(self, episode_id: str, by: str, action: str, detail: str = "") -> None:
        """Keep who did what to an episode (the audit trail outlives the episode)."""
        log.info("audit: %s %s by %s %s", action, episode_id, by, detail)
        try:
            self.store.audit(time.time(), by, action, episode_id, detail)
        except StoreError:
            log.exception("could not record %s of episode %s", action, episode_id)

    def share(self, episode: Episode, by: str, ttl_s: float) -> tuple[Share, str]:
        """A new share link for ``episode``: the share and its token."""
        share = self.signer.new_share(by, ttl_s)
        episode.shares.append(share)
        self._save(episode)
        self.record_action(episode.id, by, "share", f"{share.id} until {int(share.expires_at)}")
        return share, self.signer.token(episode.id, share)

    def revoke_share(self, episode: Episode, share_id: str, by: str) -> bool:
        """Revoke one of the episode's share links; False if it has none by that id."""
        for share in episode.shares:
            if share.id == share_id and not share.revoked:
                share.revoked = True
                self._save(episode)
                self.record_action(episode.id, by, "revoke-share", share_id)
                return True
        return False

    def shared(self, episode: Episode, token: str | None) -> bool:
        """The token is a valid share link of this episode."""
        return self.signer.valid(episode.id, episode.shares, token)

    def get(self, episode_id: str) -> Episode | None:
        return self.episodes.get(episode_id)

    def list(self) -> list[Episode]:
        return sorted(self.episodes.values(), key=lambda e: e.created_wall, reverse=True)

    async def delete(self, episode_id: str, by: str) -> bool:
        episode = self.episodes.pop(episode_id, None)
        if episode is None:
            return False
        self.record_action(episode_id, by, "delete", episode.request.topic)
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
        runtime = episode.runtime
        assert runtime is not None
        quality = self.deployment.quality.stream_tier(episode.request.quality)
        archive = self._archives[episode.id] = Archiver(
            Mp4Writer(episode.video_path, quality, self.deployment.output), self._archive_pool,
            settled=lambda: runtime.timing.settled() if runtime.splicer else None, on_archived=runtime.archived)
        try:
            async for segment in runtime.run():
                self._on_segment(episode, segment)
            episode.title = runtime.title
            await archive.close()
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
            await archive.abort()
            raise
        except Exception as exc:
            log.exception("episode %s failed", episode.id)
            episode.status = "failed"
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                episode.error = f"the disk holding {self.media_dir} is full; free space and re-run the episode"
            else:
                episode.error = str(exc) if isinstance(exc, EpisodeError) else f"internal error: {exc}"
            episode.buffer.finish(episode.error)
            await archive.abort()
        finally:
            self._archives.pop(episode.id, None)
            episode.close_questions()
            self._save(episode)

    def _on_splice(self, episode: Episode, at: int) -> None:
        """A viewer's question goes in at clock sample ``at``: what was handed over from
        there on is dropped before anyone plays it (buffer, transcript, archive queue)."""
        cut = episode.buffer.truncate(at)
        episode.transcript.truncate(at, cut)
        if (archive := self._archives.get(episode.id)) is not None:
            archive.truncate(at, cut)  # it queues the buffer's segments: the one cut is the buffer's cut

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
        self._archives[episode.id].add(segment)

    async def shutdown(self) -> None:
        """Stop generating; what was running is kept as interrupted, ready to re-run."""
        self._stopping = True
        self.admission.stop()
        for queued in self.admission.drain():
            queued.status = "interrupted"
            queued.error = ("the server shut down while this episode waited for capacity; "
                            f"re-run it with POST /api/episodes/{queued.id}/rerun")
            queued.buffer.finish(queued.error)
            queued.close_questions()
            self._save(queued)
        for episode in list(self.episodes.values()):
            if episode.task and not episode.task.done():
                episode.task.cancel()
        await asyncio.gather(*(e.task for e in self.episodes.values() if e.task), return_exceptions=True)
        self._archive_pool.shutdown(wait=True)
        self.store.close()
