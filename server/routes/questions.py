"""``/api/episodes/{id}/questions``: viewers ask the hosts; everyone who may watch sees where each question stands.

Whoever may watch an episode may ask (server/ownership.py: its visibility, a key, a
share link); others are told it does not exist. A refusal is a problem response with
what to do (server/questions.py): 422 a question that is empty or too long once
cleaned, 403 questions off, 409 an episode that takes none (finished, cut short, not
started), 429 with ``Retry-After`` a limit. The rate limit counts per API key, or per
client address for callers without one.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from server.problems import problem
from server.questions import REFUSALS, refusal
from server.routes.deps import StateDep, watchable
from server.schemas import QuestionCreate, QuestionList, QuestionOut
from server.state import ServerState

router = APIRouter(prefix="/api/episodes", tags=["questions"])

_REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"description": "questions are off for this show; the detail says why"},
    404: {"description": "no such episode, or one the caller may not watch"},
    409: {"description": "the episode takes no questions now (finished, cut short, or not started yet)"},
    422: {"description": "the question is empty or too long once cleaned, or the body is not valid"},
    429: {"description": "a limit was hit (one question every so often per viewer, a few waiting per episode); "
                         "see Retry-After"},
}


def asker_of(state: ServerState, request: Request) -> str:
    """Who the rate limit counts: the API key the request carries, else the client's address."""
    if not state.access.open:
        principal = state.access.caller(request)
        if principal is not None:
            return f"key:{principal.name}"
    return f"addr:{request.client.host if request.client else 'unknown'}"


@router.post("/{episode_id}/questions", status_code=202, response_model=QuestionOut, responses=_REFUSED)
async def ask(state: StateDep, episode_id: str, body: QuestionCreate, request: Request) -> JSONResponse:
    """Ask the hosts: 202 with the question, ``queued`` until the show reaches it."""
    episode = watchable(state, request, episode_id)
    try:
        question = episode.ask(body.text, body.name, asker_of(state, request))
    except REFUSALS as exc:
        answer = refusal(exc)
        extra: dict[str, Any] = {}
        if answer.status == 422:
            extra["errors"] = [{"field": "text", "message": answer.detail}]
        if answer.retry_after_s is not None:
            extra["retry_after_s"] = answer.retry_after_s
        return problem(answer.status, answer.detail, request, headers=answer.headers, **extra)
    return JSONResponse(question.to_dict(), status_code=202,
                        headers={"Location": f"/api/episodes/{episode.id}/questions/{question.id}"})


@router.get("/{episode_id}/questions", response_model=QuestionList, responses={404: _REFUSED[404]})
async def list_questions(state: StateDep, episode_id: str, request: Request) -> dict[str, Any]:
    """Every question to the episode, oldest first, with where it stands."""
    episode = watchable(state, request, episode_id)
    return {"questions": [q.to_dict() for q in episode.questions.questions]}


@router.get("/{episode_id}/questions/{question_id}", response_model=QuestionOut, responses={404: _REFUSED[404]})
async def get_question(state: StateDep, episode_id: str, question_id: str, request: Request) -> dict[str, Any]:
    episode = watchable(state, request, episode_id)
    question = episode.questions.get(question_id)
    if question is None:
        raise HTTPException(404, f"episode {episode_id} has no question {question_id!r}; "
                                 f"GET /api/episodes/{episode_id}/questions lists them")
    return question.to_dict()
