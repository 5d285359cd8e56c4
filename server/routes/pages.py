"""The pages people open: home, the player (``/watch``) and the ops dashboard.

Pages are static HTML with one placeholder, ``/*STREAMWISE_CONFIG*/{}``, replaced by
the page's settings as JSON (escaped so it cannot close the script element).
"""
from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from server.routes.deps import StateDep, create_episode, watchable
from server.schemas import EpisodeCreate
from server.state import WEB_DIR

router = APIRouter(include_in_schema=False)


def page(name: str, **values: Any) -> HTMLResponse:
    text = (WEB_DIR / name).read_text(encoding="utf-8")
    config = json.dumps(values).replace("</", "<\\/")
    return HTMLResponse(text.replace("/*STREAMWISE_CONFIG*/{}", config), headers={"Cache-Control": "no-store"})


@router.get("/", response_class=HTMLResponse)
async def index() -> HTMLResponse:
    return page("index.html")


@router.get("/watch", response_class=HTMLResponse)
async def watch_new(state: StateDep, request: Request, topic: str = "", duration_s: float = 60, style: str = "conversational",
                    quality: str | None = None, policy: str | None = None) -> HTMLResponse:
    if not topic.strip():
        return page("index.html", error="Give a topic: /watch?topic=why+the+sky+is+blue")
    try:
        # A viewer in a browser would rather wait in the queue than read an error.
        body = EpisodeCreate(topic=topic, duration_s=duration_s, style=style, quality=quality, policy=policy, wait=True)
    except ValueError as exc:
        return page("index.html", error=f"Cannot start this episode: {exc}")
    try:
        episode = create_episode(state, body, state.access.identify(request))
    except HTTPException as exc:
        return page("index.html", error=f"Cannot start this episode: {exc.detail}")
    return page("watch.html", episode=episode.id, created=True, topic=episode.request.topic,
                iceServers=state.settings.ice_servers or [])


@router.get("/watch/{episode_id}", response_class=HTMLResponse)
async def watch_existing(state: StateDep, episode_id: str, request: Request, share: str | None = None) -> HTMLResponse:
    episode = watchable(state, request, episode_id)
    # The player passes the share link on to the API calls it makes for this episode.
    return page("watch.html", episode=episode.id, created=False, topic=episode.request.topic,
                iceServers=state.settings.ice_servers or [], share=share)


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard_page() -> HTMLResponse:
    # The page holds no data: what it shows comes over /api/dashboard/stream, which needs a key.
    return HTMLResponse((WEB_DIR / "dashboard.html").read_text(encoding="utf-8"), headers={"Cache-Control": "no-store"})
