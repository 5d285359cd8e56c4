"""What every router needs: the server state, the episode manager, an episode by id.

Each turns a condition the client can act on into an HTTP error: 503 with
Retry-After while the models load, 404 for an unknown id or one the caller may not
see (server/ownership.py), 503/507 when admission or the disk refuses a new episode.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from pipelines.segments import EpisodeRequest
from server.access import Principal
from server.episodes.episode import Episode
from server.episodes.manager import EpisodeManager, InsufficientStorage, Overloaded
from server.ownership import can_manage, can_watch
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


def _not_found(episode_id: str) -> HTTPException:
    return HTTPException(404, f"no episode with id {episode_id!r}")


def watchable(state: ServerState, request: Request, episode_id: str) -> Episode:
    """The episode if the caller may watch it (its key, or a ``?share=`` link); 404 otherwise."""
    principal = state.access.caller(request)  # first: a wrong key is a 403 whether the id exists or not
    episode = manager_of(state).get(episode_id)
    if episode is None:
        raise _not_found(episode_id)
    shared = episode.visibility == "private" and manager_of(state).shared(episode, request.query_params.get("share"))
    if not can_watch(principal, episode, shared):
        raise _not_found(episode_id)
    return episode


def manageable(state: ServerState, request: Request, episode_id: str) -> tuple[Episode, Principal]:
    """The episode and the caller if the caller may manage it; 401 without a key, 404 if not theirs."""
    principal = state.access.identify(request)
    episode = manager_of(state).get(episode_id)
    if episode is None or not can_manage(principal, episode):
        raise _not_found(episode_id)
    return episode, principal


def overloaded(exc: Overloaded) -> HTTPException:
    """503 with Retry-After; the problem detail says why (load, startup prediction)."""
    return HTTPException(503, str(exc), headers={"Retry-After": str(exc.verdict.retry_after_s)})


def refused(exc: Overloaded | InsufficientStorage) -> HTTPException:
    """The HTTP answer to a creation admission or the disk refused."""
    return overloaded(exc) if isinstance(exc, Overloaded) else HTTPException(507, str(exc))


def create_episode(state: ServerState, body: EpisodeCreate, who: Principal) -> Episode:
    """Start (or queue) the episode ``body`` asks for, owned by ``who``."""
    mgr = manager_of(state)
    tiers = [t.name for t in mgr.deployment.quality.ladder]
    if body.quality is not None and body.quality not in tiers:
        raise HTTPException(422, f"quality: unknown tier {body.quality!r}; allowed: {tiers}")
    generating = sum(1 for e in mgr.episodes.values() if e.owner == who.name and e.status == "generating")
    state.access.admit_create(who.name, generating)
    request = EpisodeRequest(topic=body.topic, duration_s=body.duration_s, style=body.style,
                             quality=body.quality, policy=body.policy)
    try:
        episode = mgr.create(request, owner=who.name, wait=body.wait, visibility=body.visibility)
    except (InsufficientStorage, Overloaded) as exc:
        raise refused(exc) from None
    mgr.record_action(episode.id, who.name, "create", body.visibility)
    return episode


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


def describe(state: ServerState, episode: Episode, principal: Principal | None = None) -> dict[str, Any]:
    """An episode as the API shows it: its summary, links and place in the queue; its owner
    to whoever may manage it."""
    out = episode.summary() | {"urls": urls(episode), "queue_position": manager_of(state).queue_position(episode.id)}
    if can_manage(principal, episode):
        out["owner"] = episode.owner
    return out
