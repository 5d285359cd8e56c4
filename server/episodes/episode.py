"""One episode as the server holds it: request, status, buffer, transcript, timeline, viewers'
reports and viewers' questions.

``record()`` is what the store keeps; ``summary()`` what the API shows. ``ask`` takes a
viewer's question (pipelines/questions.py); ``close_questions`` ends the asking when the
episode ends or is cut short, with a reason the viewer is told.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from models.protocols import CLOCK_RATE
from pipelines.config import QuestionsSpec
from pipelines.playout.buffer import PlayoutBuffer
from pipelines.playout.transcript import TranscriptBuilder
from pipelines.questions import Question, QuestionBoard, QuestionsClosed
from pipelines.segments import EpisodeRequest
from pipelines.spans import Timeline
from pipelines.stages.runtime import EpisodeRuntime
from server.shares import Share

STATUSES = ("queued", "generating", "finished", "failed", "cancelled", "interrupted")

#: Who may watch an episode and where it is listed (server/ownership.py).
Visibility = Literal["private", "unlisted", "public"]
VISIBILITIES: tuple[Visibility, ...] = ("private", "unlisted", "public")

#: Why an episode takes no more questions, by the status it ended with (the viewer reads it).
QUESTIONS_CLOSED = {
    "finished": "the episode has finished; questions are answered while it plays. Start a new episode to ask yours",
    "failed": "the episode stopped with an error; questions can't be answered",
    "cancelled": "the episode was cancelled; questions can't be answered",
    "interrupted": "the server stopped this episode before its end; questions can't be answered until it is re-run",
}
#: An episode deleted (or stopped) while it plays.
QUESTIONS_CUT_SHORT = "the episode is being cut short; questions can't be answered"
#: An episode still waiting for admission: nothing is promised before it plays.
QUESTIONS_NOT_STARTED = "the episode is waiting for its turn to start; ask again once it is playing"


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
    #: Viewers' questions; the manager builds it from the deployment's ``questions:``.
    questions: QuestionBoard = field(default_factory=lambda: QuestionBoard(QuestionsSpec()))
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
            "questions": [q.to_dict() for q in self.questions.questions],
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
            "questions": self.questions_state(),
        }

    # ------------------------------------------------------------------ viewers' questions
    def ask(self, text: str, name: str | None, asker: str) -> Question:
        """Take a viewer's question; raises what ``QuestionBoard.ask`` raises, and
        ``QuestionsClosed`` while the episode waits for admission (with questions on)."""
        if self.status == "queued" and self.questions.spec.enabled:
            raise QuestionsClosed(QUESTIONS_NOT_STARTED)
        return self.questions.ask(text, name, asker)

    def check_ask(self, asker: str) -> None:
        """Raises what ``ask`` would for ``asker`` now, whatever the text (``QuestionBoard.check``)."""
        if self.status == "queued" and self.questions.spec.enabled:
            raise QuestionsClosed(QUESTIONS_NOT_STARTED)
        self.questions.check(asker)

    def close_questions(self, reason: str | None = None) -> None:
        """No more questions: ``reason``, or the one for the episode's status. Queued ones are
        declined; one still being answered counts as answered if the episode finished (its
        answer is in the archive), else declined."""
        reason = reason or QUESTIONS_CLOSED.get(self.status, QUESTIONS_CUT_SHORT)
        self.questions.close(reason)
        for question in [q for q in self.questions.questions if q.status == "answering"]:
            if self.status == "finished":
                self.questions.answered(question)
            else:
                self.questions.declined(question, reason)

    def questions_state(self) -> dict[str, Any]:
        """What a page needs to show the question box: on or off (and why), open or closed (and why),
        and whether it takes spoken questions."""
        spec = self.questions.spec
        return {
            "enabled": spec.enabled,
            "disabled_reason": None if spec.enabled else spec.disabled_reason,
            "closed": self.questions.closed,
            "max_chars": spec.max_chars,
            "voice": spec.enabled and spec.voice,
            "asked": len(self.questions.questions),
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
