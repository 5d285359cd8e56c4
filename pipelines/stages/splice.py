"""Where a viewer's question goes into an episode that is already playing, and what is kept.

The episode runtime generates ahead of its viewers. A question is spliced in at the
earliest point nobody has seen yet that its first segment can be ready for: after the
furthest viewer's playhead plus the time to voice and draw the reading of the question.
Everything voiced after that point is dropped from the timeline; the script goes on from
what is kept.

The point is a line's end when one comes within ``LINE_END_WINDOW_S`` of the earliest,
else a segment's end (a sentence's or clause's) when one comes sooner still, else the
first gap between two words: a host cut mid-sentence stops between words, and the part of
the segment before the cut plays as it was (``VoicedSegment.cut``).

The lines written after the one the point falls in are not thrown away: nobody heard
them, so the hosts say them after the answer (``unheard_lines``), in the voices already
made for them (``unheard_speech``); the writer goes on after them.

Contract: ``splice_point``, ``kept_history``, ``kept_pace`` and the ``unheard_`` functions
are pure functions of the voiced segments (in clock order, contiguous) and lines;
``Splicer`` runs on the event loop.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Protocol

from models.protocols import DialogueLine, Speech
from models.script.text import word_count
from pipelines.config import QuestionsSpec
from pipelines.playout import clock
from pipelines.questions import Question, QuestionBoard
from pipelines.segments import VoicedSegment

#: A line's end this close after the earliest point is worth waiting for over a cut mid-line.
LINE_END_WINDOW_S = 0.5
#: A segment's end (a sentence's or clause's) this close is worth waiting for over a cut
#: between two words.
SEGMENT_END_WINDOW_S = 0.25
#: Kept between how long this episode's recent answers took to be voiced and drawn and the
#: margin a splice leaves: the machine's pace varies from one splice to the next.
MARGIN_SAFETY_S = 0.4
#: Recent splices that set the margin.
RECENT_SPLICES = 3
#: What the first answer of an episode is taken to need before any was measured: it often
#: comes while the episode is still building its lead, with every worker busy.
FIRST_READY_S = 1.5


def splice_point(voiced: Sequence[VoicedSegment], earliest: int, grid: int) -> int | None:
    """The clock sample to splice at, at or after ``earliest`` (None when nothing voiced
    reaches that far yet): a line's end if one comes soon, else a segment's end if one
    comes sooner still, else the first gap between words (a grid point, ``grid`` samples)."""
    ahead = [v for v in voiced if v.end >= earliest]
    if not ahead:
        return None
    line_ends = [v.end for v in ahead if v.seg.ends_line]
    if line_ends and line_ends[0] <= earliest + clock.to_samples(LINE_END_WINDOW_S):
        return line_ends[0]
    end = ahead[0].end
    if end <= earliest + clock.to_samples(SEGMENT_END_WINDOW_S):
        return end
    # Only the first segment's gaps come before its end: later ones' never win.
    return min([end, *(at for at in ahead[0].gaps(grid) if at >= earliest)])


def kept_history(kept: Sequence[VoicedSegment]) -> tuple[DialogueLine, ...]:
    """The script as it will have played up to the splice: the kept segments joined back
    into lines (a line cut at the splice keeps the part that was voiced)."""
    lines: list[DialogueLine] = []
    for v in kept:
        seg = v.seg
        if lines and lines[-1].index == seg.line_index:
            last = lines[-1]
            lines[-1] = DialogueLine(index=last.index, speaker=last.speaker, text=f"{last.text} {seg.text}",
                                     question=last.question)
        else:
            lines.append(DialogueLine(index=seg.line_index, speaker=seg.speaker_name, text=seg.text,
                                      question=seg.question))
    return tuple(lines)


def unheard_lines(lines: Sequence[DialogueLine], kept: Sequence[DialogueLine]) -> tuple[DialogueLine, ...]:
    """The lines written after the one the splice falls in (or after the last kept line):
    nobody heard them, and the script says them after the answer (``ScriptRequest.unheard``)."""
    last = kept[-1].index if kept else -1
    return tuple(line for line in lines if line.index > last and not line.question)


def unheard_speech(voiced: Sequence[VoicedSegment], at: int) -> dict[tuple[int, str], Speech]:
    """The voices of the segments wholly after ``at``, by (speaker, text): an unheard line said
    again after the answer is not voiced twice."""
    return {(v.seg.speaker, v.seg.text): Speech(v.pcm[:v.speech_samples].copy(), list(v.phonemes))
            for v in voiced if v.start >= at}


def kept_pace(kept: Sequence[VoicedSegment]) -> tuple[int, float, float]:
    """Words and seconds voiced in ``kept``, and the seconds of them that answered viewers."""
    words = sum(word_count(v.seg.text) for v in kept)
    seconds = sum(v.n_samples for v in kept) / clock.CLOCK_RATE
    aside = sum(v.n_samples for v in kept if v.seg.question) / clock.CLOCK_RATE
    return words, seconds, aside


class Spliceable(Protocol):
    """What the splicer needs of the episode runtime."""

    script_ended: bool
    voiced: list[VoicedSegment]
    archived_until: int
    #: Segments' lengths are multiples of this (clock samples): so is a cut inside one.
    grid: int

    def furthest(self) -> int: ...

    async def splice(self, at: int, question: Question) -> None: ...


class Splicer:
    """Takes an episode's questions one at a time and splices each into its script.

    A question waits while another is being answered; it is answered once the first
    segment after its lines (the show again) is voiced, or declined when the writer gave up
    on it or no splice point came in time. A later splice never cuts into an answer.
    """

    def __init__(self, episode: Spliceable, board: QuestionBoard, spec: QuestionsSpec) -> None:
        self.episode = episode
        self.board = board
        self.spec = spec
        #: The question being answered, and why the writer gave up on it ("" if it did not).
        self.answering: Question | None = None
        self.gave_up = ""
        #: Where the last answer's voiced lines end: a splice never cuts before it.
        self.floor = 0
        #: Seconds from each splice to its first segment being voiced and drawn, in order.
        self.ready_s: list[float] = []
        self._spliced: float | None = None  # when the splice whose answer is not drawn yet was made
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self.board.listeners.append(self._changed)

    def stop(self, reason: str) -> None:
        """No more questions for this episode: waiting ones are declined with ``reason``."""
        self.board.close(reason)
        if self._changed in self.board.listeners:
            self.board.listeners.remove(self._changed)
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def voiced(self, segment: VoicedSegment) -> None:
        """A segment was voiced: an answer's moves the floor, the show's settles the answer."""
        if segment.seg.question:
            self.floor = segment.end
        else:
            self.settle()

    def answer_drawn(self) -> None:
        """The first segment of the answer under way is voiced and drawn."""
        if self._spliced is not None:
            self.ready_s.append(time.monotonic() - self._spliced)
            self._spliced = None

    def margin_s(self) -> float:
        """Media time a splice leaves ahead of the furthest viewer: the configured margin, or
        more while this episode's recent answers took longer than that to be voiced and drawn
        (a busy machine: several episodes, a slow writer)."""
        recent = self.ready_s[-RECENT_SPLICES:] or [FIRST_READY_S]
        return max(self.spec.splice_margin_s, max(recent) + MARGIN_SAFETY_S)

    def settle(self) -> None:
        """The question being answered is answered (or declined, if the writer gave up)."""
        question, self.answering = self.answering, None
        if question is None:
            return
        if self.gave_up:
            self.board.declined(question, self.gave_up)
        else:
            self.board.answered(question)
        self.gave_up = ""

    def _changed(self, _question: Question) -> None:
        if self._task is not None or self.answering is not None or self.board.busy:
            return
        if self.board.next_queued() is not None and not self.episode.script_ended:
            self._task = asyncio.create_task(self._splice_next(), name="splice")

    async def _splice_next(self) -> None:
        question = self.board.next_queued()
        try:
            if question is None:
                return
            at = await self._point()
            if question.status != "queued":
                return  # declined meanwhile (the episode is ending)
            if at is None:
                self.board.declined(question, "the episode had no room left for it")
                return
            self.answering, self.gave_up = question, ""
            self._spliced = time.monotonic()
            await self.episode.splice(at, question)
        finally:
            self._task = None
        self._changed(question)

    async def _point(self) -> int | None:
        """The earliest voiced boundary ahead of every viewer by the splice margin (waits for
        the voices to get there; None if the script ends or it takes too long)."""
        margin = clock.to_samples(self.margin_s())
        give_up = time.monotonic() + self.spec.answer_timeout_s
        while not self.episode.script_ended and time.monotonic() < give_up:
            earliest = max(self.episode.furthest() + margin, self.floor, self.episode.archived_until)
            at = splice_point(self.episode.voiced, earliest, self.episode.grid)
            if at is not None:
                return at
            await asyncio.sleep(0.05)
        return None
