"""What every router needs: the server state, the episode manager, an episode by id.

Each turns a condition the client can act on into an HTTP error: 503 with
Retry-After while the models load, 404 for an unknown id, 503/507 when admission
or the disk refuses a new episode.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from pipelines.segments import EpisodeRequest
from server.episodes.episode import Episode
from server.episodes.manager import EpisodeManager, InsufficientStorage, Overloaded
from server.schemas import EpisodeCreate
from server.state import ServerState


def get_state(request: Request) -> ServerState:
    """The server's state (a FastAPI dependency)."""
    return request.app.state.sw


#: A handler's parameter ``state: StateDep`` receives the server's state.
StateDep = Annotated[ServerState, Depends(get_state)]


def manager_of(state: ServerState) -> EpisodeManager:
    if state.manager is None:
        raise HTTPException(503, "the server is still loading its models; retry in a few seconds",
                            headers={"Retry-After": "2"})
    return state.manager


def episode_or_404(state: ServerState, episode_id: str) -> Episode:
    episode = manager_of(state).get(episode_id)
    if episode is None:
        raise HTTPException(404, f"no episode with id {episode_id!r}")
    return episode


def overloaded(exc: Overloaded) -> HTTPException:
    """503 with Retry-After; the problem detail says why (load, startup prediction)."""
    return HTTPException(503, str(exc), headers={"Retry-After": str(exc.verdict.retry_after_s)})


def refused(exc: Overloaded | InsufficientStorage) -> HTTPException:
    """The HTTP answer to a creation admission or the disk refused."""
    return overloaded(exc) if isinstance(exc, Overloaded) else HTTPException(507, str(exc))


def create_episode(state: ServerState, body: EpisodeCreate, who: str) -> Episode:
    """Start (or queue) the episode ``body`` asks for on behalf of key ``who``."""
    mgr = manager_of(state)
    tiers = [t.name for t in mgr.deployment.quality.ladder]
    if body.quality is not None and body.quality not in tiers:
        raise HTTPException(422, f"quality: unknown tier {body.quality!r}; allowed: {tiers}")
    generating = sum(1 for e in mgr.episodes.values() if e.owner == who and e.status == "generating")
    state.access.admit_create(who, generating)
    request = EpisodeRequest(topic=body.topic, duration_s=body.duration_s, style=body.style,
                             quality=body.quality, policy=body.policy)
    try:
        return mgr.create(request, owner=who, wait=body.wait)
    except (InsufficientStorage, Overloaded) as exc:
        raise refused(exc) from None


def urls(episode: Episode) -> dict[str, str]:
    base = f"/api/episodes/{episode.id}"
    return {
        "self": base,
        "watch": f"/watch/{episode.id}",
        "offer": f"{base}/offer",
        "transcript": f"{base}/transcript",
        "timeline": f"{base}/timeline",
        "video": f"{base}/video.mp4",
        "stream": f"{base}/stream.mp4",
        "rerun": f"{base}/rerun",
    }


def describe(state: ServerState, episode: Episode) -> dict[str, Any]:
    """An episode as the API shows it: its summary, links and place in the queue."""
    return episode.summary() | {"urls": urls(episode), "queue_position": manager_of(state).queue_position(episode.id)}
