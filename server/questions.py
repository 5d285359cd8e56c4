"""Viewers' questions as the server answers them: each refusal as an HTTP status, a message and a wait.

The REST route (server/routes/questions.py) and the player's data channel
(server/transport/asking.py) answer the same refusal the same way:

- ``BadQuestion`` (empty, too long once cleaned): 422
- ``QuestionsOff`` (the show's configuration turned them off): 403
- ``QuestionsClosed`` (finished, cut short, not started yet): 409
- ``TooManyQuestions`` (per-viewer interval, queue cap): 429 with ``Retry-After``
"""
from __future__ import annotations

from dataclasses import dataclass

from pipelines.questions import (
    BadQuestion,
    QuestionsClosed,
    QuestionsOff,
    TooManyQuestions,
)

#: Every refusal ``Episode.ask`` raises; anything else is a server error.
REFUSALS: tuple[type[Exception], ...] = (BadQuestion, QuestionsOff, QuestionsClosed, TooManyQuestions)

#: The longest question text the API reads at all, in characters before cleaning: room for
#: markup and spaces that cleaning removes, while the board's limit is on what is read out.
MAX_RAW_TEXT_CHARS = 2000
#: The longest name read before cleaning (a name is cut to 32 characters once cleaned).
MAX_RAW_NAME_CHARS = 200


@dataclass(frozen=True)
class Refusal:
    """Why a question was not taken, as a client sees it."""

    status: int
    detail: str
    #: Seconds to wait before asking again (429 only).
    retry_after_s: int | None = None

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after_s)} if self.retry_after_s is not None else None


def refusal(exc: Exception) -> Refusal:
    """The answer to one of ``REFUSALS``; TypeError for any other exception (a bug, not a refusal)."""
    if isinstance(exc, BadQuestion):
        return Refusal(422, str(exc))
    if isinstance(exc, QuestionsOff):
        return Refusal(403, str(exc))
    if isinstance(exc, QuestionsClosed):
        return Refusal(409, str(exc))
    if isinstance(exc, TooManyQuestions):
        return Refusal(429, str(exc), exc.retry_after_s)
    raise TypeError(f"not a refusal of a question: {exc!r}")
