"""What one server process holds: its settings, models, episodes and viewers.

Routers reach it through ``request.app.state.sw``; nothing here imports a router,
so the HTTP layer depends on the state and never the other way round.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.config import (
    DEFAULT_DEPLOYMENT,
    DEFAULT_WORKFLOW,
    REPO_ROOT,
    load_deployment,
    load_workflow,
)
from pipelines.stages.pools import StagePools
from server.access import AccessPolicy
from server.episodes.manager import MIN_FREE_MB, Episode, EpisodeManager
from server.hearing import Hearing
from server.limits import REPORT_BURST, REPORTS_PER_S, RateLimiter
from server.shares import DEFAULT_TTL_S, MAX_TTL_S
from server.transport.webrtc import WebRTCGateway

log = logging.getLogger(__name__)

#: Pages, scripts and styles served to browsers.
WEB_DIR = REPO_ROOT / "web"


@dataclass
class Settings:
    workflow: Path = DEFAULT_WORKFLOW
    deployment: Path = DEFAULT_DEPLOYMENT
    media_dir: Path = REPO_ROOT / "data" / "episodes"
    host: str = "127.0.0.1"
    port: int = 8000
    ice_servers: list[dict[str, Any]] | None = None
    #: None: from STREAMWISE_API_KEYS and friends (see server/access.py).
    access: AccessPolicy | None = None
    #: How long a share link lasts unless its request says (STREAMWISE_SHARE_TTL_S).
    share_ttl_s: float = DEFAULT_TTL_S


class ServerState:
    """The server's live objects; ``manager`` is None until the models are loaded."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ready = False
        self.error: str | None = None
        self.manager: EpisodeManager | None = None
        self.gateway = WebRTCGateway(settings.ice_servers)
        self.access = settings.access or AccessPolicy.from_env(dict(os.environ), settings.host)
        #: The still card shown to viewers waiting for an episode, per (episode id, title).
        self.filler_cache: dict[tuple[str, str], np.ndarray] = {}
        #: Viewers' reports (stats, and later questions), limited per connection.
        self.reports = RateLimiter(REPORTS_PER_S, REPORT_BURST)
        #: Recognises questions asked by voice; its worker process starts on the first one
        #: (a server that is never spoken to runs no recogniser).
        self.hearing = Hearing()

    async def load(self) -> None:
        from pipelines.stages.models_loaded import load_models

        workflow = load_workflow(self.settings.workflow)
        deployment = load_deployment(self.settings.deployment, workflow)
        models = await asyncio.to_thread(load_models, deployment, workflow)
        pools = StagePools.for_deployment(deployment)
        min_free_mb = int(os.environ.get("STREAMWISE_MIN_FREE_MB", str(MIN_FREE_MB)))
        self.manager = EpisodeManager(models, deployment, pools, self.settings.media_dir, min_free_bytes=min_free_mb * 2**20)
        # Viewers waiting for the start are sent a still title card, those at the end nothing:
        # only the ones between are streams to admission.
        self.manager.streaming = self.streaming_viewers
        self.ready = True
        log.info("models loaded: %s", models.load_s)

    def streaming_viewers(self, episode: Episode) -> int:
        """Viewers of ``episode`` being sent its media now (started, not at its end)."""
        return sum(v.episode_id == episode.id and v.playhead.started and not v.playhead.ended
                   for v in self.gateway.viewers.values())

    def forget_fillers(self, episode_id: str, unless_watched: bool = False) -> None:
        """Drop the episode's cached waiting cards (kept while someone still watches, if asked)."""
        if unless_watched and any(v.episode_id == episode_id for v in self.gateway.viewers.values()):
            return
        for key in [k for k in self.filler_cache if k[0] == episode_id]:
            self.filler_cache.pop(key, None)

    async def close(self) -> None:
        """Close every viewer, stop generating and the worker pools."""
        await self.gateway.shutdown()
        self.hearing.shutdown()
        if self.manager:
            await self.manager.shutdown()
            self.manager.pools.shutdown()


def parse_ice_servers(text: str) -> list[dict[str, Any]]:
    """STUN/TURN servers for real deployments, as the JSON list browsers take:
    ``[{"urls": "stun:stun.example.org:3478"}, {"urls": "turn:...", "username": "u", "credential": "p"}]``."""
    if not text.strip():
        return []
    try:
        servers = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"STREAMWISE_ICE_SERVERS: not valid JSON ({exc})") from None
    if not isinstance(servers, list) or not all(isinstance(s, dict) and "urls" in s for s in servers):
        raise ValueError('STREAMWISE_ICE_SERVERS: expected a JSON list like [{"urls": "stun:host:3478"}]')
    allowed = {"urls", "username", "credential"}
    for server in servers:
        extra = set(server) - allowed
        if extra:
            raise ValueError(f"STREAMWISE_ICE_SERVERS: unknown keys {sorted(extra)}; allowed: {sorted(allowed)}")
    return servers


def parse_share_ttl(text: str) -> float:
    """STREAMWISE_SHARE_TTL_S: seconds a share link lasts by default (empty: a day)."""
    if not text.strip():
        return DEFAULT_TTL_S
    try:
        ttl = float(text)
    except ValueError:
        raise ValueError(f"STREAMWISE_SHARE_TTL_S: {text!r} is not a number of seconds") from None
    if not 1 <= ttl <= MAX_TTL_S:
        raise ValueError(f"STREAMWISE_SHARE_TTL_S: {ttl:g} s is out of range; allowed: 1 to {MAX_TTL_S} seconds")
    return ttl
