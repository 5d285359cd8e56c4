"""WebRTC viewers: the SDP offer/answer that starts a stream (its data channel also takes the
viewer's questions, typed or spoken), and the stats players report back."""
from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse

from models.protocols import Quality, SceneInfo
from pipelines.playout.buffer import Playhead
from pipelines.playout.pixels import rgb_to_i420
from server.episodes.episode import Episode
from server.episodes.manager import EpisodeManager
from server.routes.deps import StateDep, manager_of, watchable
from server.schemas import SessionDescription, ViewerStats
from server.state import ServerState
from server.transport.asking import QuestionDesk
from server.transport.webrtc import InvalidOffer, Viewer

router = APIRouter(prefix="/api/episodes", tags=["webrtc"])

#: Viewer reports kept per episode (one running report per viewer).
MAX_REPORTS = 200


def waiting_card(state: ServerState, mgr: EpisodeManager, episode: Episode, quality: Quality) -> np.ndarray:
    """The still title card a viewer sees until the episode's first words, drawn once per title."""
    key = (episode.id, episode.title)
    if key not in state.filler_cache:
        segments = episode.buffer.segments
        if segments and segments[0].kind == "intro":
            # The intro is the same title card at the stream's size, already drawn off the event loop.
            state.filler_cache[key] = segments[0].frames[0]
        else:
            scene = SceneInfo(title=episode.title or episode.request.topic, hosts=tuple(h.name for h in mgr.deployment.hosts))
            state.filler_cache[key] = rgb_to_i420(mgr.models.animator.title_card(scene, quality, 0.0))
    return state.filler_cache[key]


@router.post("/{episode_id}/offer")
async def offer(state: StateDep, episode_id: str, body: SessionDescription, request: Request) -> dict[str, Any]:
    episode = watchable(state, request, episode_id)
    mgr = manager_of(state)
    await mgr.ensure_playable(episode)
    quality = mgr.deployment.quality.stream_tier(episode.request.quality)

    def count_viewers() -> None:
        episode.viewers = sum(v.episode_id == episode.id for v in state.gateway.viewers.values())

    def on_close(viewer: Viewer) -> None:
        count_viewers()
        state.forget_fillers(episode.id, unless_watched=True)

    try:
        viewer, answer = await state.gateway.answer(
            episode.id, body.sdp, body.type, Playhead(episode.buffer, on_stall=episode.timeline.stalled), quality.fps,
            lambda: waiting_card(state, mgr, episode, quality), on_close,
            size=(quality.width, quality.height), queue_status=lambda: mgr.queue_status(episode.id),
            questions=QuestionDesk(ask=episode.ask, listeners=episode.questions.listeners, check=episode.check_ask,
                                   hear=state.hearing.recognise if episode.questions.spec.voice else None),
        )
    except InvalidOffer as exc:
        raise HTTPException(400, f"sdp: {exc}") from None
    count_viewers()
    return {"sdp": answer.sdp, "type": answer.type, "viewer": viewer.id}


@router.post("/{episode_id}/viewer-stats", status_code=204)
async def viewer_stats(state: StateDep, episode_id: str, body: ViewerStats, request: Request) -> PlainTextResponse:
    episode = watchable(state, request, episode_id)
    # Per connection, not per the viewer id the body claims: a client picks its ids.
    client = request.client
    connection = f"{client.host}:{client.port}" if client else "?"
    retry = state.reports.take(f"{episode.id}/{connection}")
    if retry is not None:
        raise HTTPException(429, f"too many viewer reports from this connection; retry in {retry} s",
                            headers={"Retry-After": str(retry)})
    report = body.model_dump(exclude_none=True)
    # One running report per viewer: replace that viewer's previous one.
    if body.viewer:
        episode.viewer_stats = [s for s in episode.viewer_stats if s.get("viewer") != body.viewer]
    episode.viewer_stats.append(report)
    episode.viewer_stats = episode.viewer_stats[-MAX_REPORTS:]
    manager_of(state).save_stats(episode)
    return PlainTextResponse("", status_code=204)
