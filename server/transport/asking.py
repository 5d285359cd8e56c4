"""A viewer's questions over its WebRTC data channel: asked from the page, followed to their answer.

The page sends ``{"type": "ask", "text": "...", "name": "..." | null}``. The answer is the
question (``{"type": "question", ...Question.to_dict(), "mine": true}``) or why it was
refused (``{"type": "question_error", "status": 403|409|422|429, "detail": "...",
"retry_after_s": n | null}``, as the REST route answers: server/questions.py). Every later
change of that viewer's questions (``answering`` at its media time, ``answered``,
``declined`` with the reason) is pushed as another ``question`` message. A question asked
by voice (listening.py) is taken as its recognised words through ``take``: the same path.

Contract: nothing a viewer sends can break its connection or the episode. Messages that
are not a well-formed ``ask`` are ignored; a listener never raises into the code that
moves a question on (the episode runtime).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pipelines.questions import Question
from server.questions import REFUSALS, refusal

log = logging.getLogger(__name__)

#: Longer messages are not read at all (a question is at most a few hundred characters).
MAX_MESSAGE_CHARS = 16_384


@dataclass(frozen=True)
class QuestionDesk:
    """What a viewer's connection may do with its episode's questions. The route that
    creates the viewer builds it (the transport knows no episodes)."""

    #: ``ask(text, name, asker)``: the question, or one of ``REFUSALS`` raised.
    ask: Callable[[str, str | None, str], Question]
    #: Called with every question that changes (pipelines/questions.py ``QuestionBoard.listeners``).
    listeners: list[Callable[[Question], None]]
    #: ``check(asker)``: raises what ``ask`` would for that asker now, whatever the text
    #: (None: nothing is checked before the question is asked).
    check: Callable[[str], None] | None = None
    #: ``await hear(pcm)``: the words in 16 kHz mono int16 speech ("" for none), for questions
    #: asked by voice (listening.py); None when this show takes typed questions only.
    hear: Callable[[bytes], Awaitable[str]] | None = None


def parse_ask(message: Any) -> tuple[str, str | None] | None:
    """``(text, name)`` of an ``ask`` message; None for anything else (ignored)."""
    if isinstance(message, bytes):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(message, str) or len(message) > MAX_MESSAGE_CHARS:
        return None
    try:
        data = json.loads(message)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("type") != "ask":
        return None
    text, name = data.get("text"), data.get("name")
    if not isinstance(text, str) or not (name is None or isinstance(name, str)):
        return None
    return text, name


class QuestionChannel:
    """One viewer's questions on one data channel: ``on_message`` for what the page sends,
    ``close`` once the viewer leaves (it stops listening to the episode's questions)."""

    def __init__(self, channel: Any, desk: QuestionDesk, viewer_id: str) -> None:
        self.channel = channel
        self.desk = desk
        #: What the rate limit counts for questions asked here.
        self.asker = f"viewer:{viewer_id}"
        #: What was sent last about each question: a change is pushed once.
        self._sent: dict[str, tuple[Any, ...]] = {}
        desk.listeners.append(self._changed)

    def on_message(self, message: Any) -> None:
        asked = parse_ask(message)
        if asked is not None:
            self.take(*asked)

    def take(self, text: str, name: str | None) -> None:
        """Ask ``text`` for this viewer; the answer (the question, or why not) goes to the page."""
        try:
            question = self.desk.ask(text, name, self.asker)
        except Exception as exc:  # noqa: BLE001 - a refusal, or a bug that must not close the connection
            self._refused(exc, "take the question")
            return
        self._push(question)

    def check(self) -> bool:
        """Whether a question from this viewer would be taken now (whatever its text); if not,
        the page is told why, as for a refused question."""
        if self.desk.check is None:
            return True
        try:
            self.desk.check(self.asker)
        except Exception as exc:  # noqa: BLE001 - as in take
            self._refused(exc, "check the question")
            return False
        return True

    def _refused(self, exc: Exception, doing: str) -> None:
        if isinstance(exc, REFUSALS):
            answer = refusal(exc)
            self.send({"type": "question_error", "status": answer.status, "detail": answer.detail,
                       "retry_after_s": answer.retry_after_s})
            return
        log.error("viewer %s: could not %s", self.asker, doing, exc_info=exc)
        self.send({"type": "question_error", "status": 500, "retry_after_s": None,
                   "detail": "the server could not take the question; try again in a moment"})

    def close(self) -> None:
        if self._changed in self.desk.listeners:
            self.desk.listeners.remove(self._changed)

    def _changed(self, question: Question) -> None:
        if question.asker == self.asker:
            self._push(question)

    def _push(self, question: Question) -> None:
        state = (question.status, question.media_start, question.reason)
        if self._sent.get(question.id) == state:
            return
        self._sent[question.id] = state
        self.send({"type": "question", **question.to_dict(), "mine": True})

    def send(self, message: dict[str, Any]) -> None:
        """``message`` to the page as JSON, if the channel is open; never raises."""
        if self.channel.readyState != "open":
            return
        try:
            self.channel.send(json.dumps(message))
        except Exception:  # noqa: BLE001 - the channel closed under us: nobody is left to tell
            log.debug("viewer %s: could not send %s", self.asker, message.get("type"))
