"""The episode runtime: script -> segments -> speech -> video, as a stream of ready segments.

Each stage starts on a segment as soon as its input exists, so the first segment is
voiced and drawn while the LLM is still writing the rest. The runtime yields
segments in playout order; sinks (the MP4 archive, the live playout buffer) consume
the same stream, so offline rendering and live streaming share one code path.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator

from models.protocols import (
    DialogueLine,
    LineStart,
    Quality,
    QuestionDeclined,
    SceneInfo,
    ScriptEnd,
    ScriptEvent,
    ScriptRequest,
    ShowTitle,
    Speech,
    ViewerQuestion,
)
from models.script.pace import SpeakingPace
from models.script.text import word_count
from pipelines.config import Deployment
from pipelines.plan.shots import ShotPlanner
from pipelines.plan.tier_planner import Decision, TierPlanner
from pipelines.playout import clock
from pipelines.playout.frames import FrameList
from pipelines.questions import Question, QuestionBoard
from pipelines.segments import (
    EpisodeError,
    EpisodeRequest,
    Progress,
    ReadySegment,
    SegmentText,
    VoicedSegment,
)
from pipelines.spans import Span, Timeline
from pipelines.stages.episode_clock import EpisodeClock
from pipelines.stages.models_loaded import LoadedModels
from pipelines.stages.pools import StagePools
from pipelines.stages.segmenter import Segmenter
from pipelines.stages.splice import (
    Splicer,
    kept_history,
    kept_pace,
    unheard_lines,
    unheard_speech,
)

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
        questions: QuestionBoard | None = None,
        viewers_at: Callable[[], int | None] | None = None,
        on_splice: Callable[[int], None] | None = None,
    ) -> None:
        """``questions``: the episode's viewers' questions, spliced in as they come (None: none);
        ``viewers_at``: the furthest clock sample any viewer has played (None: nobody yet);
        ``on_splice(at)``: everything from ``at`` on that was handed over is dropped (the
        sinks forget it before anyone plays it)."""
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
        self.end_reason, self.script_ended = "", False
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
        #: When each clock sample is due, and where the viewers are.
        self.timing = EpisodeClock(deployment.runtime.startup_target_s, deployment.runtime.deadline_margin_s,
                                   viewers_at or (lambda: None))
        #: Worker slots that have drawn each tier for this episode (its studio is built there).
        self._warm: dict[str, set[str]] = {}
        self.questions = questions
        self.on_splice = on_splice
        #: The stages now writing, voicing and dispatching (replaced at a splice).
        self._chain: list[asyncio.Task] = []
        #: Video tasks in playout order (the run loop hands them over); the chain's voiced ones.
        self._ordered, self._voiced_q = asyncio.Queue(), asyncio.Queue()
        self._inflight: dict[asyncio.Task, VoicedSegment] = {}
        #: Set at a splice to stop the writer's stream; unheard lines' voices by (speaker, text).
        self._halt, self._unheard_speech = threading.Event(), dict[tuple[int, str], Speech]()
        #: Which chain each video task came from, and the current chain's number: a task of
        #: an older chain that finished before its splice could not be cancelled, and what it
        #: drew past the splice point must not be handed over.
        self._chain_of: dict[asyncio.Task, int] = {}
        self._chains = 0
        #: Where each ended chain was cut: its segments from there on are dropped.
        self._cuts: dict[int, int] = {}
        #: Every voiced segment kept, in clock order, and where the voiced content ends.
        self.voiced: list[VoicedSegment] = []
        self._voiced_end = 0
        self._held: list[ReadySegment] = []
        #: The first segment of the last question's reading (-1: none yet): drawn at the floor tier.
        self._answer_first = -1
        #: The archive holds everything before this clock sample: a splice never goes earlier.
        self.archived_until = 0
        self.splicer = Splicer(self, questions, deployment.questions) if questions is not None else None

    def lead_s(self) -> float:
        """Seconds of content ready ahead of the furthest viewer: this episode's buffer."""
        return self.timing.lead_s()

    @property
    def at_risk(self) -> bool:
        """Its latest segment (after the first two) could not be planned to meet its deadline."""
        decisions = self.planner.decisions
        return len(decisions) > 2 and decisions[-1].predicted_s > decisions[-1].slack_s

    def _queue_key(self, start: int) -> float | None:
        """The deadline the queues order by; fifo and batch run in arrival order."""
        return None if self.policy in ("fifo", "batch") else self.timing.deadline(start)

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
    async def _script(self, out: asyncio.Queue, history: tuple[DialogueLine, ...] = (),
                      question: ViewerQuestion | None = None, unheard: tuple[DialogueLine, ...] = ()) -> None:
        """Pull events from the writer one at a time, so episodes interleave on the one LLM.

        With ``history`` the script goes on from the middle of the episode (after a splice),
        ``question`` first, then the ``unheard`` lines."""
        request = ScriptRequest(topic=self.request.topic, duration_s=self.request.duration_s, hosts=self.hosts,
                                style=self.request.style, pace=self.pace, history=history, question=question,
                                unheard=unheard, halt=self._halt)
        if not history:
            self.progress.estimated_total = max(1, request.word_budget // max(1, self.deployment.segmenter.max_words - 4))
        spec = self.deployment.segmenter
        segmenter = Segmenter(self.hosts, spec.max_words, spec.first_max_words, spec.first_segments,
                              first_index=self.progress.written)
        stream = self.models.writer.stream(request)
        failure: Exception | None = None
        try:
            # A question's reading and the answer's cue need no model (ScriptRequest.question).
            await self._read_script(stream, segmenter, out, unmodelled=2 if question is not None else 0)
        except asyncio.CancelledError:
            _close(stream)  # a splice replaced this script
            raise
        except Exception as exc:  # noqa: BLE001 - raised below, once the speech stage is told
            failure = exc
        _close(stream)
        self._title_ready.set()
        self.progress.total = self.progress.written
        self._notify()
        await out.put(None)
        if failure is not None:
            raise EpisodeError(f"script stage failed: {failure}") from failure

    async def _read_script(self, stream: Iterator[ScriptEvent], segmenter: Segmenter, out: asyncio.Queue,
                           unmodelled: int = 0) -> None:
        """Segment the stream's events into ``out``; its first ``unmodelled`` events, and the
        line after them, are asked for at once (an answer cannot wait for the lead)."""
        done, lead = object(), self.deployment.runtime.lead_segments
        for k in itertools.count():
            # Until the first segment is on screen it has the machine to itself.
            while not (unmodelled and k <= unmodelled) and self.progress.written - self.progress.rendered >= (
                    lead if self.progress.rendered else 1):
                await self._rendered_event.wait()
                self._rendered_event.clear()
            while self._too_far_ahead():
                await asyncio.sleep(0.2)
            if k < unmodelled:
                event = await asyncio.to_thread(next, stream, done)
            else:  # the writer serves every episode: the one whose voices are nearest its viewers goes first
                event = await self.pools.script.run(next, stream, done, timeline=self.timeline, note="script",
                                                    deadline=self._queue_key(self._voiced_end))
            if event is done:
                return
            if isinstance(event, ShowTitle) and not self.lines:
                self.title = event.title
                self._title_ready.set()
            elif isinstance(event, LineStart):
                await self._segmented(segmenter.start_line(event), out)
            elif isinstance(event, DialogueLine):
                self._title_ready.set()
                self.lines.append(event)
                if event.question:
                    self.pace.aside_written(word_count(event.text))
                await self._segmented(segmenter.add_line(event), out)
            elif isinstance(event, QuestionDeclined) and self.splicer is not None:
                self.splicer.gave_up = event.reason
            elif isinstance(event, ScriptEnd):
                self.end_reason = event.reason
                self.script_ended = True
                if self.questions is not None:
                    self.questions.close("the hosts are wrapping up this episode; ask in the next one")
                return

    async def _segmented(self, segments: list[SegmentText], out: asyncio.Queue) -> None:
        for seg in segments:
            self.progress.written += 1
            self.progress.estimated_total = max(self.progress.estimated_total, self.progress.written + 1)
            self._notify()
            await out.put(seg)

    def _too_far_ahead(self) -> bool:
        """While questions can come and someone watches, the voices stay within
        ``questions.max_lead_s`` of the furthest viewer: what a splice discards, and how early
        the ending is fixed. Unwatched, an episode is generated as fast as it can be."""
        if self.questions is None or self.questions.closed is not None:
            return False
        furthest = self.timing.viewers_at()
        if furthest is None:
            return False
        ahead = self._voiced_end - furthest
        return ahead > clock.to_samples(self.deployment.questions.max_lead_s)

    async def _speech(self, inp: asyncio.Queue, out: asyncio.Queue, start: int) -> None:
        """Voice segments in order: each start on the clock is the previous end."""
        cursor = start
        pause = clock.to_samples(self.deployment.segmenter.pause_ms / 1000)
        try:
            while True:
                seg = await inp.get()
                if seg is None:
                    break
                voice = self.voices[seg.speaker]
                speech = self._unheard_speech.pop((seg.speaker, seg.text), None) or await self.pools.speech.run(
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
                self._voiced_segment(voiced)
                await out.put(voiced)
            if self.splicer is not None:
                self.splicer.settle()  # the script ended on the answer
        except (EpisodeError, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise EpisodeError(f"speech stage failed: {exc}") from exc
        finally:
            await out.put(None)

    def _voiced_segment(self, voiced: VoicedSegment) -> None:
        """Account for a voiced segment: the pace, the answer it belongs to, the progress."""
        seg, seconds = voiced.seg, voiced.n_samples / clock.CLOCK_RATE
        if seg.question:
            self.pace.aside_voiced(word_count(seg.text), seconds)
        else:
            self.pace.voiced(word_count(seg.text), seconds)
        if self.splicer is not None:
            self.splicer.voiced(voiced)
        self.voiced.append(voiced)
        self._voiced_end = voiced.end
        self.progress.voiced += 1
        self._notify()

    def _plan(self, voiced: VoicedSegment) -> Decision:
        """Tier and worker count for a voiced segment, from its slack and the video queue."""
        index = voiced.seg.index
        if self.request.quality:
            tier = self.deployment.quality.tier(self.request.quality)
            return Decision(index, tier.name, "requested by the client", 0.0, 0.0)
        deadline = self.timing.deadline(voiced.start)
        video = self.pools.video
        # Pools that draw only some tiers (GPU pools): each tier is planned on its own slots.
        per_tier = {t: video.view(t, deadline) for t in self.planner.names} if video.restricted else None
        cold = [t for t in self.planner.names
                if len(self._warm.get(t, ())) < (per_tier[t].workers if per_tier else video.workers)]
        return self.planner.plan(index, voiced.media_s, deadline - time.monotonic(),
                                 backlog_s=video.backlog_s(deadline), capacity=video.capacity,
                                 fastest=video.fastest, max_parts=video.workers, cold=cold, per_tier=per_tier,
                                 urgent=index == self._answer_first)

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
        if voiced.seg.index == self._answer_first and self.splicer is not None:
            self.splicer.answer_drawn()
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
        self.timing.released(seg.end)
        return seg

    def _prewarm(self, quality: Quality) -> None:
        self.models.animator.idle_frame(self.scene, quality, 0)

    def card(self, kind: str, start: int, n_samples: int, quality: Quality) -> ReadySegment:
        """A title card (intro, outro) of the given length: ``drawing.title_card``."""
        from pipelines.stages.drawing import title_card

        runtime = self.deployment.runtime
        return title_card(self.models.animator, self.scene, self.stream, kind, (start, n_samples), quality,
                          runtime.frame_jpeg_quality, runtime.shared_encoding)

    # -------------------------------------------------------------- the stream
    async def _dispatch(self, voiced_q: asyncio.Queue) -> None:
        """Start each voiced segment's video at once; keep the tasks in playout order."""
        chain = self._chains
        while (item := await voiced_q.get()) is not None:
            self._draw_task(item, chain)
        self._ordered.put_nowait(None)

    def _draw_task(self, item: VoicedSegment, chain: int) -> None:
        task = asyncio.create_task(self._video(item), name=f"video-{item.seg.index}")
        self._inflight[task] = item
        self._chain_of[task] = chain
        task.add_done_callback(lambda t: self._inflight.pop(t, None))
        self._ordered.put_nowait(task)

    def _start_chain(self, start: int, history: tuple[DialogueLine, ...] = (),
                     question: ViewerQuestion | None = None, unheard: tuple[DialogueLine, ...] = ()) -> None:
        """Script, speech and dispatch from clock sample ``start`` on (the episode's start, or a
        splice: ``history``, ``question`` and ``unheard`` as in ``ScriptRequest``)."""
        texts: asyncio.Queue = asyncio.Queue()
        voiced_q: asyncio.Queue = asyncio.Queue()
        self._voiced_q, self._halt = voiced_q, threading.Event()
        self._chain = [
            asyncio.create_task(self._script(texts, history, question, unheard), name="script"),
            asyncio.create_task(self._speech(texts, voiced_q, start), name="speech"),
            asyncio.create_task(self._dispatch(voiced_q), name="dispatch"),
        ]

    async def _next_ready(self) -> ReadySegment | None | bool:
        """The next segment in playout order; None when there are no more, False for one a
        splice dropped."""
        task = await self._ordered.get()
        if task is None:
            return None
        chain = self._chain_of.pop(task, self._chains)
        try:
            ready = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and not (current and current.cancelling()):
                return False
            raise
        cut = self._cuts.get(chain)
        if cut is None or ready.end <= cut:
            return ready
        return False if ready.start >= cut else ready.cut(cut)

    async def run(self) -> AsyncIterator[ReadySegment]:
        """Yield the intro, every segment in order as soon as it is ready, then the outro."""
        intro = clock.pad_to_grid(clock.to_samples(self.deployment.timeline.intro_s), self.grid)
        outro = clock.pad_to_grid(clock.to_samples(self.deployment.timeline.outro_s), self.grid)
        self.timing.intro = self._voiced_end = intro
        self._start_chain(intro)
        if self.splicer is not None:
            self.splicer.start()
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
            while (ready := await self._next_ready()) is not None:
                if ready is False:
                    continue
                last_tier = ready.quality
                self._held.append(ready)  # the first spoken segments, until viewers may start on them
                if self.timing.ready_end is None and len(self._held) < self._start_segments():
                    continue
                while self._held:
                    yield self._released(self._held.pop(0))
            while self._held:  # an episode shorter than its start buffer
                yield self._released(self._held.pop(0))
            for task in self._chain:
                await task  # re-raises a stage's EpisodeError
            if outro:
                yield await self.pools.video.run(
                    self.card, "outro", self._voiced_end, outro, last_tier, timeline=self.timeline, note="outro",
                    deadline=self._queue_key(self._voiced_end),
                )
        finally:
            self._stop()

    def _stop(self) -> None:
        self.pools.generating.discard(self)
        if self.splicer is not None:
            self.splicer.stop("the episode has ended")
        for task in [*self._chain, *self._inflight]:
            if not task.done():
                task.cancel()

    # -------------------------------------------------------------- viewers' questions
    def furthest(self) -> int:
        """The furthest clock sample a viewer has played (see ``EpisodeClock.furthest``)."""
        return self.timing.furthest()

    def archived(self, end: int) -> None:
        """The archive holds everything before clock sample ``end``: no splice goes earlier."""
        self.archived_until = end

    async def splice(self, at: int, question: Question) -> None:
        """Drop everything from ``at`` on and go on from there with ``question``."""
        old = self._chain
        self._halt.set()  # the writer's generation under way stops: the model is free for the answer
        for task in old:
            task.cancel()
        await asyncio.gather(*old, return_exceptions=True)
        while not self._voiced_q.empty():  # voiced before the cut, not yet sent to be drawn
            if (item := self._voiced_q.get_nowait()) is not None and item.start < at:
                self._draw_task(item, self._chains)
        self._cuts[self._chains] = at
        self._chains += 1
        for task, voiced in list(self._inflight.items()):
            if voiced.start >= at:
                task.cancel()
        # A segment the splice falls inside keeps its words before the cut.
        self._held = [s if s.end <= at else s.cut(at) for s in self._held if s.start < at]
        self._unheard_speech = unheard_speech(self.voiced, at)
        self.voiced = [v if v.end <= at else v.cut(at) for v in self.voiced if v.start < at]
        self._voiced_end = at
        self.timing.cut(at)
        if self.on_splice is not None:
            self.on_splice(at)
        history = kept_history(self.voiced)
        unheard = unheard_lines(self.lines, history)
        self.lines = list(history)
        self.pace.rewind(*kept_pace(self.voiced))
        pending = sum(1 for v in self._inflight.values() if v.start < at)
        self.progress.written = self.progress.voiced = self._answer_first = len(self.voiced)
        self.progress.rendered = len(self.voiced) - pending
        assert self.questions is not None
        self.questions.answering(question, at)
        now = self.timeline.now()
        self.timeline.add(Span("script", len(self.voiced), "", "splice", now, now, now,
                               note=f"question {question.id} at {at / clock.CLOCK_RATE:.2f} s"))
        self._start_chain(at, history, question.to_viewer(), unheard)


def _close(stream: Iterator[ScriptEvent]) -> None:
    """Close a writer's stream; one still running on the script thread ends with its line."""
    close = getattr(stream, "close", None)
    if close:
        try:
            close()
        except ValueError:
            pass
