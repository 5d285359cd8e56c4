"""The episode runtime: script -> segments -> speech -> video, as a stream of ready segments.

Each stage starts on a segment as soon as its input exists, so the first segment is
voiced and drawn while the LLM is still writing the rest. The runtime yields
segments in playout order; sinks (the MP4 archive, the live playout buffer) consume
the same stream, so offline rendering and live streaming share one code path.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

import numpy as np

from models.protocols import (
    DialogueLine,
    HostsAnnounced,
    Quality,
    SceneInfo,
    ScriptEnd,
    ScriptRequest,
    ShowTitle,
)
from models.script.pace import SpeakingPace
from models.script.text import word_count
from pipelines.config import Deployment
from pipelines.plan.shots import ShotPlanner
from pipelines.plan.tier_planner import Decision, TierPlanner
from pipelines.playout import clock
from pipelines.playout.frames import FrameList
from pipelines.playout.pixels import rgb_to_i420
from pipelines.segments import (
    EpisodeError,
    EpisodeRequest,
    Progress,
    ReadySegment,
    VoicedSegment,
)
from pipelines.spans import Span, Timeline
from pipelines.stages.models_loaded import LoadedModels
from pipelines.stages.pools import StagePools
from pipelines.stages.segmenter import Segmenter

log = logging.getLogger(__name__)


class EpisodeRuntime:
    def __init__(
        self,
        models: LoadedModels,
        deployment: Deployment,
        pools: StagePools,
        request: EpisodeRequest,
        timeline: Timeline | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.models = models
        self.deployment = deployment
        self.pools = pools
        self.request = request
        self.timeline = timeline or Timeline()
        self.on_progress = on_progress
        self.hosts: tuple[str, str] = (deployment.hosts[0].name, deployment.hosts[1].name)
        self.voices = (deployment.hosts[0].voice, deployment.hosts[1].voice)
        self.title: str = request.topic
        self.lines: list[DialogueLine] = []
        self.progress = Progress()
        self.grid = deployment.grid_samples()
        self.end_reason = ""
        q = deployment.quality
        #: Every frame is delivered at this tier's size, whatever tier drew it.
        self.stream = q.stream_tier(request.quality)
        self._stream_size = (self.stream.width, self.stream.height)
        self.policy = request.policy or q.policy
        self.planner = TierPlanner(
            q.qualities(), self.policy, q.default, q.floor, pools.video_costs,
            startup=q.startup, startup_segments=q.startup_segments, reserve_s=q.reserve_s,
            cpu=pools.cpu, climb_below_cpu=q.climb_below_cpu,
            min_lead=pools.min_lead_s, climb_lead_s=q.climb_lead_s,
        )
        cards = deployment.timeline
        #: The episode's length in media time, as its voices spend it: the writer sizes the
        #: script by it (the intro and closing cards count towards the length asked for).
        self.pace = SpeakingPace(request.duration_s, fixed_s=cards.intro_s + cards.outro_s)
        self.shots = ShotPlanner(request.topic, deployment.camera)
        self._title_ready = asyncio.Event()
        self._rendered_event = asyncio.Event()
        # The wall-clock instant the first words are due: deadlines count from it.
        self._origin = time.monotonic() + deployment.runtime.startup_target_s
        self._intro_samples = 0
        #: End (clock samples) of the spoken content ready to play, in order.
        self._ready_end: int | None = None
        #: Worker slots that have drawn each tier for this episode (its studio is built there).
        self._warm: dict[str, set[str]] = {}

    def deadline(self, start: int) -> float:
        """When the segment starting at clock sample ``start`` must be ready (monotonic seconds).

        Viewers start playing when the first spoken segment is ready, so once it is,
        the clock's origin moves there: later deadlines count from the real start.
        """
        spoken = max(0, start - self._intro_samples) / clock.CLOCK_RATE
        return self._origin + spoken - self.deployment.runtime.deadline_margin_s

    def lead_s(self) -> float:
        """Seconds of content ready ahead of the viewers' playout clock: this episode's buffer."""
        if self._ready_end is None:
            return 0.0
        return self.deadline(self._ready_end) + self.deployment.runtime.deadline_margin_s - time.monotonic()

    @property
    def at_risk(self) -> bool:
        """Its latest segment (after the first two) could not be planned to meet its deadline."""
        decisions = self.planner.decisions
        return len(decisions) > 2 and decisions[-1].predicted_s > decisions[-1].slack_s

    def _queue_key(self, start: int) -> float | None:
        """The deadline the queues order by; fifo and batch run in arrival order."""
        return None if self.policy in ("fifo", "batch") else self.deadline(start)

    # -------------------------------------------------------------- decisions
    def _first_tier(self) -> Quality:
        """The tier of the intro card: the one the first segment would get under the static rule."""
        q = self.deployment.quality
        if self.request.quality:
            return q.tier(self.request.quality)
        return q.tier(q.startup if q.startup and q.startup_segments else q.default)

    @property
    def scene(self) -> SceneInfo:
        return SceneInfo(title=self.title, hosts=self.hosts)

    def _notify(self) -> None:
        if self.on_progress:
            self.on_progress(self.progress)

    # -------------------------------------------------------------- stages
    async def _script(self, out: asyncio.Queue) -> None:
        """Pull events from the writer one at a time, so episodes interleave on the one LLM."""
        request = ScriptRequest(
            topic=self.request.topic,
            duration_s=self.request.duration_s,
            hosts=self.hosts,
            style=self.request.style,
            pace=self.pace,
        )
        self.progress.estimated_total = max(1, request.word_budget // max(1, self.deployment.segmenter.max_words - 4))
        segmenter = Segmenter(
            self.hosts,
            self.deployment.segmenter.max_words,
            self.deployment.segmenter.first_max_words,
            self.deployment.segmenter.first_segments,
        )
        stream = self.models.writer.stream(request)
        done = object()
        count = 0
        lead = self.deployment.runtime.lead_segments
        try:
            while True:
                # Until the first segment is on screen it has the machine to itself.
                while count - self.progress.rendered >= (lead if self.progress.rendered else 1):
                    await self._rendered_event.wait()
                    self._rendered_event.clear()
                event = await self.pools.script.run(next, stream, done, timeline=self.timeline, note="script")
                if event is done:
                    break
                if isinstance(event, ShowTitle):
                    self.title = event.title
                    self._title_ready.set()
                elif isinstance(event, HostsAnnounced):
                    pass  # the deployment names the hosts; the writer echoes them
                elif isinstance(event, DialogueLine):
                    self._title_ready.set()
                    self.lines.append(event)
                    for seg in segmenter.add_line(event):
                        count += 1
                        self.progress.written = count
                        self.progress.estimated_total = max(self.progress.estimated_total, count + 1)
                        self._notify()
                        await out.put(seg)
                elif isinstance(event, ScriptEnd):
                    self.end_reason = event.reason
                    break
        except Exception as exc:
            raise EpisodeError(f"script stage failed: {exc}") from exc
        finally:
            close = getattr(stream, "close", None)
            if close:
                try:
                    close()
                except ValueError:
                    pass  # still running on the script thread; it ends with its line
            self._title_ready.set()
            self.progress.total = count
            self._notify()
            await out.put(None)

    async def _speech(self, inp: asyncio.Queue, out: asyncio.Queue, intro_samples: int) -> None:
        """Voice segments in order: each start on the clock is the previous end."""
        cursor = intro_samples
        pause = clock.to_samples(self.deployment.segmenter.pause_ms / 1000)
        try:
            while True:
                seg = await inp.get()
                if seg is None:
                    break
                voice = self.voices[seg.speaker]
                speech = await self.pools.speech.run(
                    self.models.speech.synthesize,
                    seg.text,
                    voice,
                    timeline=self.timeline,
                    segment=seg.index,
                    media_s=lambda s: s.n_samples / clock.CLOCK_RATE,
                    deadline=self._queue_key(cursor),
                )
                tail = pause if seg.ends_line else 0
                n = clock.pad_to_grid(max(speech.n_samples + tail, self.grid), self.grid)
                voiced = VoicedSegment(
                    seg=seg,
                    start=cursor,
                    n_samples=n,
                    speech_samples=speech.n_samples,
                    pcm=clock.fit_audio(speech.pcm, n),
                    phonemes=tuple(speech.phonemes),
                    shot=self.shots.shot(seg, cursor),
                )
                cursor += n
                self.pace.voiced(word_count(seg.text), n / clock.CLOCK_RATE)
                self.progress.voiced += 1
                self._notify()
                await out.put(voiced)
        except EpisodeError:
            raise
        except Exception as exc:
            raise EpisodeError(f"speech stage failed: {exc}") from exc
        finally:
            self._speech_end = cursor
            await out.put(None)

    def _plan(self, voiced: VoicedSegment) -> Decision:
        """Tier and worker count for a voiced segment, from its slack and the video queue."""
        index = voiced.seg.index
        if self.request.quality:
            tier = self.deployment.quality.tier(self.request.quality)
            return Decision(index, tier.name, "requested by the client", 0.0, 0.0)
        deadline = self.deadline(voiced.start)
        video = self.pools.video
        # Pools that draw only some tiers (GPU pools): each tier is planned on its own slots.
        per_tier = {t: video.view(t, deadline) for t in self.planner.names} if video.restricted else None
        cold = [t for t in self.planner.names
                if len(self._warm.get(t, ())) < (per_tier[t].workers if per_tier else video.workers)]
        return self.planner.plan(index, voiced.media_s, deadline - time.monotonic(),
                                 backlog_s=video.backlog_s(deadline), capacity=video.capacity,
                                 fastest=video.fastest, max_parts=video.workers, cold=cold, per_tier=per_tier)

    def _draw(self, voiced: VoicedSegment, quality: Quality, frames: tuple[int, int] | None = None,
              parts: int = 1) -> FrameList:
        """Draw the segment (or a range of its frames, one of ``parts`` drawn at once) on the
        calling worker slot's drawer."""
        from pipelines.stages.drawing import DrawJob, draw_with
        from pipelines.stages.pools import current_slot

        slot = current_slot()
        job = DrawJob(self.scene, voiced.visual(), quality, self.deployment.runtime.frame_jpeg_quality, frames,
                      size=self._stream_size, encode=self.deployment.runtime.shared_encoding)
        # Pools built without drawers (tests, the offline bench) draw here with the loaded animator.
        drawn = slot.drawer.draw(job) if slot is not None and slot.drawer is not None else draw_with(self.models.animator, job)
        if drawn.retries:
            now = self.timeline.now()
            self.timeline.add(Span("video", voiced.seg.index, quality.name, "respawn", now, now, now,
                                   note=f"drawing worker died; drawn again on a new one ({drawn.retries}x)"))
        if slot is not None:
            n_total = clock.frame_count(voiced.n_samples, quality.fps)
            share = (min(frames[1], n_total) - frames[0]) / max(1, n_total) if frames else 1.0
            warm = self._warm.setdefault(quality.name, set())
            # A part drawn while the others are takes what the split's measured speed-up says.
            predicted = self.pools.video_costs.cost(quality.name, voiced.media_s * share * parts,
                                                    cold=slot.name not in warm, parts=parts)
            slot.observe(predicted, drawn.elapsed_s)
            warm.add(slot.name)
        return drawn.frames

    def _store(self, frames: list[np.ndarray], fps: int) -> FrameList:
        from pipelines.stages.drawing import store

        runtime = self.deployment.runtime
        return store(frames, runtime.frame_jpeg_quality, fps if runtime.shared_encoding else None)

    async def _video(self, voiced: VoicedSegment) -> ReadySegment:
        decision = self._plan(voiced)
        quality = self.deployment.quality.tier(decision.tier)
        n_frames = clock.frame_count(voiced.n_samples, quality.fps)
        parts = max(1, min(decision.parts, n_frames))
        bounds = [round(n_frames * k / parts) for k in range(parts + 1)]
        cost = self.pools.video_costs.cost(quality.name, voiced.media_s, cold=quality.name not in self._warm, parts=parts)
        try:
            pieces = await asyncio.gather(*(
                self.pools.video.run(
                    self._draw,
                    voiced,
                    quality,
                    (bounds[k], bounds[k + 1]) if parts > 1 else None,
                    parts,
                    timeline=self.timeline,
                    segment=voiced.seg.index,
                    tier=quality.name,
                    # The default binds this part's share now, not the last k's.
                    media_s=lambda _f, share=(bounds[k + 1] - bounds[k]) / max(1, n_frames): voiced.media_s * share,  # noqa: B008
                    note=f"part {k + 1}/{parts}" if parts > 1 else "",
                    deadline=self._queue_key(voiced.start),
                    cost_s=cost,
                )
                for k in range(parts)
            ))
        except Exception as exc:
            raise EpisodeError(f"video stage failed on segment {voiced.seg.index}: {exc}") from exc
        frames = pieces[0] if parts == 1 else FrameList.join(pieces)
        self.progress.rendered += 1
        self._rendered_event.set()
        self._notify()
        return voiced.ready(quality, frames)

    def _start_segments(self) -> int:
        """Spoken segments viewers start on: one alone on the machine, more while other
        episodes generate on the same workers, where the next segment's arrival is uncertain:
        a later first word beats a stall after it."""
        others = len(self.pools.generating) > 1
        return self.deployment.runtime.start_segments_shared if others else 1

    def _released(self, seg: ReadySegment) -> ReadySegment:
        """``seg``, handed to the sinks; the first spoken one starts the viewers' clock."""
        if self._ready_end is None:
            # Viewers start playing now: later deadlines count from here.
            self._origin = max(self._origin, time.monotonic())
        self._ready_end = seg.end
        return seg

    def _prewarm(self, quality: Quality) -> None:
        self.models.animator.idle_frame(self.scene, quality, 0)

    def card(self, kind: str, start: int, n_samples: int, quality: Quality) -> ReadySegment:
        """A title card (intro, outro, or filler) of the given length, in silence.

        ``quality`` sets its frame rate; the card is drawn at the stream's size, so
        no tier's supersampling is spent on a still picture.
        """
        spf = quality.samples_per_frame
        frames = self._store([
            rgb_to_i420(self.models.animator.title_card(self.scene, self.stream, n * spf / clock.CLOCK_RATE))
            for n in range(clock.frame_count(n_samples, quality.fps))
        ], quality.fps)
        return ReadySegment(
            kind=kind,
            index=-1,
            start=start,
            n_samples=n_samples,
            pcm=np.zeros(n_samples, dtype=np.float32),
            quality=quality,
            frames=frames,
        )

    # -------------------------------------------------------------- the stream
    async def _dispatch(self, voiced_q: asyncio.Queue, ordered: asyncio.Queue) -> None:
        """Start each voiced segment's video at once; keep the tasks in playout order."""
        while (item := await voiced_q.get()) is not None:
            await ordered.put(asyncio.create_task(self._video(item), name=f"video-{item.seg.index}"))
        await ordered.put(None)

    async def run(self) -> AsyncIterator[ReadySegment]:
        """Yield the intro, every segment in order as soon as it is ready, then the outro."""
        intro = clock.pad_to_grid(clock.to_samples(self.deployment.timeline.intro_s), self.grid)
        outro = clock.pad_to_grid(clock.to_samples(self.deployment.timeline.outro_s), self.grid)
        self._intro_samples = intro
        texts: asyncio.Queue = asyncio.Queue()
        voiced_q: asyncio.Queue = asyncio.Queue()
        ordered: asyncio.Queue = asyncio.Queue()
        self._speech_end = intro
        tasks = [
            asyncio.create_task(self._script(texts), name="script"),
            asyncio.create_task(self._speech(texts, voiced_q, intro), name="speech"),
            asyncio.create_task(self._dispatch(voiced_q, ordered), name="dispatch"),
        ]
        video_tasks: list[asyncio.Task] = []
        last_tier = self._first_tier()
        self.pools.generating.add(self)
        try:
            await self._title_ready.wait()
            if intro:
                yield await self.pools.video.run(
                    self.card, "intro", 0, intro, last_tier, timeline=self.timeline, note="intro",
                    deadline=self._queue_key(0),
                )
            # Build the studio for this title now, while the first segment is voiced.
            await self.pools.video.run(self._prewarm, last_tier, timeline=self.timeline, note="prewarm",
                                       deadline=self._queue_key(0))
            held: list[ReadySegment] = []  # the first spoken segments, until viewers may start on them
            while (task := await ordered.get()) is not None:
                video_tasks.append(task)
                ready = await task
                last_tier = ready.quality
                held.append(ready)
                if self._ready_end is None and len(held) < self._start_segments():
                    continue
                for seg in held:
                    yield self._released(seg)
                held.clear()
            for seg in held:  # an episode shorter than its start buffer
                yield self._released(seg)
            for task in tasks:
                await task  # re-raises a stage's EpisodeError
            if outro:
                yield await self.pools.video.run(
                    self.card, "outro", self._speech_end, outro, last_tier, timeline=self.timeline, note="outro",
                    deadline=self._queue_key(self._speech_end),
                )
        finally:
            self.pools.generating.discard(self)
            for task in tasks + video_tasks:
                if not task.done():
                    task.cancel()
