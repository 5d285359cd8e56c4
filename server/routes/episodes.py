"""``/api/episodes``: create, list, describe, delete and re-run episodes; their transcripts and timelines.

Reading follows the episode's visibility (server/ownership.py); deleting, re-running
and the timeline are for its owner and admins. Others are told it does not exist.
"""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from server.episodes.episode import QUESTIONS_CUT_SHORT
from server.episodes.manager import InsufficientStorage, Overloaded
from server.observability.trace import chrome_trace
from server.ownership import can_manage, listed
from server.routes.deps import (
    StateDep,
    create_episode,
    describe,
    manageable,
    manager_of,
    refused,
    watchable,
)
from server.schemas import EpisodeCreate

router = APIRouter(prefix="/api/episodes", tags=["episodes"])


@router.post("", status_code=201)
async def post_episode(state: StateDep, body: EpisodeCreate, request: Request) -> JSONResponse:
    who = state.access.identify(request)
    episode = create_episode(state, body, who)
    # 202: queued, it starts when there is room (``queue_position`` says how soon).
    code = 202 if episode.status == "queued" else 201
    return JSONResponse(describe(state, episode, who), status_code=code, headers={"Location": f"/api/episodes/{episode.id}"})


@router.get("")
async def list_episodes(state: StateDep, request: Request) -> dict[str, Any]:
    """Without a key, the public episodes; with one, those it may manage (an admin's: all)."""
    who = state.access.caller(request)
    return {"episodes": [describe(state, e, who) for e in manager_of(state).list() if listed(who, e)]}


@router.get("/{episode_id}")
async def get_episode(state: StateDep, episode_id: str, request: Request) -> dict[str, Any]:
    episode = watchable(state, request, episode_id)
    who = state.access.caller(request)
    out = describe(state, episode, who) | {"viewer_stats": episode.viewer_stats[-20:]}
    if can_manage(who, episode):
        out["audit"] = manager_of(state).store.audit_of(episode.id)
    return out


@router.delete("/{episode_id}", status_code=204)
async def delete_episode(state: StateDep, episode_id: str, request: Request) -> PlainTextResponse:
    episode, who = manageable(state, request, episode_id)
    # First, so the viewers still connected are told why their questions will not be answered.
    episode.close_questions(QUESTIONS_CUT_SHORT)
    await state.gateway.close_episode(episode_id)
    await manager_of(state).delete(episode_id, by=who.name)
    state.forget_fillers(episode_id)
    return PlainTextResponse("", status_code=204)


@router.post("/{episode_id}/rerun", status_code=202)
async def rerun_episode(state: StateDep, episode_id: str, request: Request) -> JSONResponse:
    _, who = manageable(state, request, episode_id)
    await state.gateway.close_episode(episode_id)
    try:
        episode = manager_of(state).rerun(episode_id, by=who.name)
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None
    except (InsufficientStorage, Overloaded) as exc:
        raise refused(exc) from None
    return JSONResponse(describe(state, episode, who), status_code=202)


@router.get("/{episode_id}/transcript")
async def transcript(state: StateDep, episode_id: str, request: Request) -> dict[str, Any]:
    episode = watchable(state, request, episode_id)
    episode.transcript.title = episode.title
    return episode.transcript.to_json() | {"status": episode.status}


@router.get("/{episode_id}/captions.vtt")
async def captions(state: StateDep, episode_id: str, request: Request) -> PlainTextResponse:
    episode = watchable(state, request, episode_id)
    return PlainTextResponse(episode.transcript.to_webvtt(), media_type="text/vtt")


@router.get("/{episode_id}/timeline")
async def timeline(state: StateDep, episode_id: str, request: Request,
                   format: Literal["json", "chrome"] = "json") -> JSONResponse:
    episode, _ = manageable(state, request, episode_id)
    if format == "chrome":
        return JSONResponse(chrome_trace(episode.id, episode.title, episode.timeline.spans()),
                            headers={"Content-Disposition": f'attachment; filename="{episode.id}.trace.json"'})
    decisions = [d.to_dict() for d in episode.runtime.planner.decisions] if episode.runtime else []
    stalls = [s.to_dict() for s in episode.timeline.stalls()]
    return JSONResponse({"id": episode.id, "spans": episode.timeline.to_list(), "decisions": decisions,
                         "stalls": stalls})
