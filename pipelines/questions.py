"""Viewers' questions to one episode: who asked what, where each one stands, and the limits.

The board is where the REST API and the player's data channel leave a question and where
the episode runtime picks the next one up to splice it into the script. A question goes
``queued`` -> ``answering`` (spliced: its reading is being voiced and drawn at
``media_s``) -> ``answered`` (the hosts have answered and gone back to the topic), or
``declined`` with the reason (the writer could not answer, the episode ended first).

Limits: a viewer (or API key) asks at most once per ``per_viewer_interval_s``; at most
``max_queued`` questions wait per episode; the show's configuration can turn questions
off; an episode that has finished, is being cut short or is saying goodbye takes none.

Contract: used on the event loop only. ``ask`` raises ``BadQuestion``, ``QuestionsOff``,
``QuestionsClosed`` or ``TooManyQuestions``, each with a message a viewer can act on;
``check`` raises the last three as ``ask`` would, and takes nothing.
"""
from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from models.protocols import CLOCK_RATE, ViewerQuestion
from models.script.questions import BadQuestion, clean_name, clean_question
from pipelines.config import QuestionsSpec

Status = Literal["queued", "answering", "answered", "declined"]

__all__ = ["BadQuestion", "Question", "QuestionBoard", "QuestionsClosed", "QuestionsOff", "TooManyQuestions"]


class QuestionsOff(RuntimeError):
    """The show's configuration turned questions off (HTTP 403)."""


class QuestionsClosed(RuntimeError):
    """This episode takes no more questions (HTTP 409); the message says what to do instead."""


class TooManyQuestions(RuntimeError):
    """A limit was hit (HTTP 429); ask again after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, math.ceil(retry_after_s))


@dataclass
class Question:
    """One viewer's question and where it stands."""

    id: str
    text: str
    name: str
    #: Who asked (a viewer's connection or an API key): what the rate limit counts.
    asker: str
    asked_wall: float = field(default_factory=time.time)
    status: Status = "queued"
    #: Where in the episode the reading starts, clock samples (once spliced).
    media_start: int | None = None
    reason: str = ""

    def to_viewer(self) -> ViewerQuestion:
        return ViewerQuestion(id=self.id, text=self.text, name=self.name)

    def to_dict(self) -> dict[str, Any]:
        """The public view: never the asker's identity."""
        return {
            "id": self.id, "text": self.text, "name": self.name or None, "status": self.status,
            "asked_at": round(self.asked_wall, 3),
            "media_s": None if self.media_start is None else round(self.media_start / CLOCK_RATE, 3),
            "reason": self.reason or None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Question:
        """A stored question (the asker is not stored)."""
        media_s = data.get("media_s")
        return cls(id=str(data["id"]), text=str(data["text"]), name=str(data.get("name") or ""), asker="",
                   asked_wall=float(data.get("asked_at") or 0.0), status=data.get("status", "declined"),
                   media_start=None if media_s is None else round(float(media_s) * CLOCK_RATE),
                   reason=str(data.get("reason") or ""))


class QuestionBoard:
    """The questions of one episode, in the order they were asked."""

    def __init__(self, spec: QuestionsSpec, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.questions: list[Question] = []
        self._clock = clock
        self._last_ask: dict[str, float] = {}
        #: Why the episode takes no more questions (None: it does).
        self.closed: str | None = None
        #: Called after any change (a new question, a status): the runtime and the
        #: data channels listen.
        self.listeners: list[Callable[[Question], None]] = []

    # ------------------------------------------------------------ asking
    def ask(self, text: str, name: str | None, asker: str) -> Question:
        """Leave a question; raises when it cannot be taken (see the module's contract)."""
        self._open()
        cleaned = clean_question(text, self.spec.max_chars)
        now = self._clock()
        self._admit(asker, now)
        self._last_ask[asker] = now
        question = Question(id=secrets.token_urlsafe(8), text=cleaned, name=clean_name(name), asker=asker)
        self.questions.append(question)
        self._changed(question)
        return question

    def check(self, asker: str) -> None:
        """Raises what ``ask`` would raise for ``asker`` now, whatever the text; changes nothing.

        For a question that takes a while to put into words (spoken): the viewer is told
        before speaking, not after, that it would be refused."""
        self._open()
        self._admit(asker, self._clock())

    def _open(self) -> None:
        if not self.spec.enabled:
            raise QuestionsOff(f"questions are off: {self.spec.disabled_reason}")
        if self.closed is not None:
            raise QuestionsClosed(self.closed)

    def _admit(self, asker: str, now: float) -> None:
        """The limits: one question per viewer per interval, a few waiting per episode."""
        last = self._last_ask.get(asker)
        if last is not None and now - last < self.spec.per_viewer_interval_s:
            wait = self.spec.per_viewer_interval_s - (now - last)
            raise TooManyQuestions(f"one question every {self.spec.per_viewer_interval_s:g} s per viewer; "
                                   f"ask again in {math.ceil(wait)} s", wait)
        if len(self.waiting()) >= self.spec.max_queued:
            raise TooManyQuestions(f"{self.spec.max_queued} questions are already waiting for the hosts; "
                                   "ask again once one is answered", self.spec.per_viewer_interval_s or 10.0)

    def close(self, reason: str) -> None:
        """No more questions; those still queued are declined with ``reason``."""
        if self.closed is None:
            self.closed = reason
        for question in self.waiting():
            self.declined(question, reason)

    # ------------------------------------------------------------ reading
    def get(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)

    def waiting(self) -> list[Question]:
        return [q for q in self.questions if q.status == "queued"]

    def next_queued(self) -> Question | None:
        """The oldest question not taken up yet."""
        return next(iter(self.waiting()), None)

    @property
    def busy(self) -> bool:
        """A question is being answered: the next one waits until it is."""
        return any(q.status == "answering" for q in self.questions)

    # ------------------------------------------------------------ moving on
    def answering(self, question: Question, media_start: int) -> None:
        question.status, question.media_start = "answering", media_start
        self._changed(question)

    def answered(self, question: Question) -> None:
        question.status = "answered"
        self._changed(question)

    def declined(self, question: Question, reason: str) -> None:
        question.status, question.reason = "declined", reason
        self._changed(question)

    def _changed(self, question: Question) -> None:
        for listener in list(self.listeners):
            listener(question)
