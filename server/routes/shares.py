"""``/api/episodes/{id}/shares``: share links of an episode, for its owner and admins.

A link (``/watch/{id}?share=<token>``) lets whoever holds it watch the episode, private
ones included, until it expires or is revoked (server/shares.py).
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from server.routes.deps import StateDep, manageable, manager_of
from server.schemas import ShareCreate
from server.shares import Share

router = APIRouter(prefix="/api/episodes", tags=["shares"])


def _share_json(share: Share) -> dict[str, Any]:
    return {"id": share.id, "created_by": share.created_by, "created_at": share.created_at,
            "expires_at": share.expires_at, "revoked": share.revoked}


@router.post("/{episode_id}/shares", status_code=201)
async def create_share(state: StateDep, episode_id: str, body: ShareCreate, request: Request) -> JSONResponse:
    episode, who = manageable(state, request, episode_id)
    share, token = manager_of(state).share(episode, who.name, body.ttl_s or state.settings.share_ttl_s)
    return JSONResponse(_share_json(share) | {"token": token, "url": f"/watch/{episode.id}?share={token}"},
                        status_code=201)


@router.get("/{episode_id}/shares")
async def list_shares(state: StateDep, episode_id: str, request: Request) -> dict[str, Any]:
    episode, _ = manageable(state, request, episode_id)
    return {"shares": [_share_json(s) for s in episode.shares]}


@router.delete("/{episode_id}/shares/{share_id}", status_code=204)
async def revoke_share(state: StateDep, episode_id: str, share_id: str, request: Request) -> PlainTextResponse:
    episode, who = manageable(state, request, episode_id)
    if not manager_of(state).revoke_share(episode, share_id, who.name):
        raise HTTPException(404, f"episode {episode_id} has no active share link {share_id!r}")
    return PlainTextResponse("", status_code=204)
