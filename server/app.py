"""The HTTP server: REST API, WebRTC signalling, archive and fallback streams, pages.

Models are loaded and warmed before the server reports ready, so a request never
pays a load cost.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipelines.config import (
    DEFAULT_DEPLOYMENT,
    DEFAULT_WORKFLOW,
    REPO_ROOT,
    load_deployment,
    load_workflow,
)
from pipelines.playout.buffer import Playhead
from pipelines.segments import EpisodeRequest
from pipelines.stages.pools import StagePools
from server.access import AccessConfigError, AccessPolicy
from server.episodes.manager import (
    Episode,
    EpisodeManager,
    InsufficientStorage,
    Overloaded,
)
from server.limits import BodySizeLimit
from server.problems import install_problem_handlers
from server.transport.webrtc import InvalidOffer, Viewer, WebRTCGateway

log = logging.getLogger(__name__)
WEB_DIR = REPO_ROOT / "web"
STYLES = ("conversational", "explainer", "debate", "interview")


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


class EpisodeCreate(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    topic: str = Field(min_length=1, max_length=200, description="What the hosts talk about")
    duration_s: float = Field(60, ge=10, le=1800, description="Target length in seconds")
    style: Literal["conversational", "explainer", "debate", "interview"] = "conversational"
    quality: str | None = Field(None, description="A tier name from the quality ladder, e.g. 360p")
    policy: Literal["adaptive", "static", "static-high", "static-low", "fifo", "batch"] | None = Field(
        None, description="Quality policy for this episode (default: the deployment's), for comparisons")
    wait: bool = Field(False, description="When the server is at capacity, queue the episode instead of a 503")

    @field_validator("topic")
    @classmethod
    def _clean_topic(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("topic must contain words")
        return value


class SessionDescription(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    sdp: str = Field(max_length=100_000)
    type: str = Field(max_length=16)


class ViewerStats(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    viewer: str | None = Field(None, max_length=64)
    framesDecoded: int | None = Field(None, ge=0)
    freezeCount: int | None = Field(None, ge=0)
    totalFreezesDuration: float | None = Field(None, ge=0)
    concealedSamples: int | None = Field(None, ge=0)
    totalSamplesReceived: int | None = Field(None, ge=0)
    ttffSeconds: float | None = Field(None, ge=0)
    firstAudioSeconds: float | None = Field(None, ge=0)
    firstSpeechSeconds: float | None = Field(None, ge=0)
    playedSeconds: float | None = Field(None, ge=0)
    avSkewMs: float | None = None
    framesPerSecond: float | None = Field(None, ge=0)


class ServerState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ready = False
        self.error: str | None = None
        self.manager: EpisodeManager | None = None
        self.gateway = WebRTCGateway(settings.ice_servers)
        self.access = settings.access or AccessPolicy.from_env(dict(os.environ), settings.host)
        self.filler_cache: dict[tuple[str, str], Any] = {}

    async def load(self) -> None:
        from pipelines.stages.models_loaded import load_models

        workflow = load_workflow(self.settings.workflow)
        deployment = load_deployment(self.settings.deployment, workflow)
        models = await asyncio.to_thread(load_models, deployment, workflow)
        pools = StagePools.for_deployment(deployment)
        min_free_mb = int(os.environ.get("STREAMWISE_MIN_FREE_MB", "512"))
        self.manager = EpisodeManager(models, deployment, pools, self.settings.media_dir, min_free_bytes=min_free_mb * 2**20)
        # Viewers waiting for the start are sent a still title card, those at the end nothing:
        # only the ones between are streams to admission.
        self.manager.streaming = lambda episode: sum(
            v.episode_id == episode.id and v.playhead.started and not v.playhead.ended
            for v in self.gateway.viewers.values())
        self.ready = True
        log.info("models loaded: %s", models.load_s)


def _episode_or_404(state: ServerState, episode_id: str) -> Episode:
    if state.manager is None:
        raise HTTPException(503, "the server is still loading its models; retry in a few seconds", headers={"Retry-After": "2"})
    episode = state.manager.get(episode_id)
    if episode is None:
        raise HTTPException(404, f"no episode with id {episode_id!r}")
    return episode


def _urls(episode: Episode) -> dict[str, str]:
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


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    state = ServerState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await state.load()
        yield
        await state.gateway.shutdown()
        if state.manager:
            await state.manager.shutdown()
            state.manager.pools.shutdown()

    app = FastAPI(title="StreamWise", version="0.1.0", lifespan=lifespan,
                  description="Generated podcast episodes, streamed while they are made.")
    app.state.sw = state

    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=256 * 1024)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")

    def manager() -> EpisodeManager:
        if state.manager is None:
            raise HTTPException(503, "the server is still loading its models; retry in a few seconds", headers={"Retry-After": "2"})
        return state.manager

    def create_episode(body: EpisodeCreate, who: str) -> Episode:
        mgr = manager()
        tiers = [t.name for t in mgr.deployment.quality.ladder]
        if body.quality is not None and body.quality not in tiers:
            raise HTTPException(422, f"quality: unknown tier {body.quality!r}; allowed: {tiers}")
        generating = sum(1 for e in mgr.episodes.values() if e.owner == who and e.status == "generating")
        state.access.admit_create(who, generating)
        request = EpisodeRequest(topic=body.topic, duration_s=body.duration_s, style=body.style,
                                 quality=body.quality, policy=body.policy)
        try:
            return mgr.create(request, owner=who, wait=body.wait)
        except InsufficientStorage as exc:
            raise HTTPException(507, str(exc)) from None
        except Overloaded as exc:
            raise _overloaded(exc) from None

    # ---------------------------------------------------------------- health
    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        if state.ready:
            # The task count lets leak tests see that viewers who left took their tasks with them.
            return JSONResponse({"status": "ready", "load_s": state.manager.models.load_s if state.manager else {},
                                 "tasks": len(asyncio.all_tasks()), "viewers": len(state.gateway.viewers)})
        return JSONResponse({"status": "loading"}, status_code=503, headers={"Retry-After": "2"})

    # ---------------------------------------------------------------- episodes
    @app.post("/api/episodes", status_code=201, tags=["episodes"])
    async def post_episode(body: EpisodeCreate, request: Request) -> JSONResponse:
        episode = create_episode(body, state.access.identify(request))
        # 202: queued, it starts when there is room (``queue_position`` says how soon).
        code = 202 if episode.status == "queued" else 201
        return JSONResponse(describe(episode), status_code=code, headers={"Location": f"/api/episodes/{episode.id}"})

    def describe(episode: Episode) -> dict[str, Any]:
        return episode.summary() | {"urls": _urls(episode), "queue_position": manager().queue_position(episode.id)}

    @app.get("/api/episodes", tags=["episodes"])
    async def list_episodes() -> dict[str, Any]:
        return {"episodes": [describe(e) for e in manager().list()]}

    @app.get("/api/admission", tags=["ops"])
    async def admission() -> dict[str, Any]:
        """Would a new episode be admitted now, and the load behind the answer."""
        mgr = manager()
        return mgr.admit().to_dict() | {"queued": len(mgr.queue), "costs": mgr.costs()}

    @app.get("/api/episodes/{episode_id}", tags=["episodes"])
    async def get_episode(episode_id: str) -> dict[str, Any]:
        episode = _episode_or_404(state, episode_id)
        return describe(episode) | {"viewer_stats": episode.viewer_stats[-20:]}

    @app.delete("/api/episodes/{episode_id}", status_code=204, tags=["episodes"])
    async def delete_episode(episode_id: str, request: Request) -> PlainTextResponse:
        state.access.identify(request)
        _episode_or_404(state, episode_id)
        await state.gateway.close_episode(episode_id)
        await manager().delete(episode_id)
        for key in [k for k in state.filler_cache if k[0] == episode_id]:
            state.filler_cache.pop(key, None)
        return PlainTextResponse("", status_code=204)

    @app.post("/api/episodes/{episode_id}/rerun", status_code=202, tags=["episodes"])
    async def rerun_episode(episode_id: str, request: Request) -> JSONResponse:
        state.access.identify(request)
        _episode_or_404(state, episode_id)
        await state.gateway.close_episode(episode_id)
        try:
            episode = manager().rerun(episode_id)
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        except InsufficientStorage as exc:
            raise HTTPException(507, str(exc)) from None
        except Overloaded as exc:
            raise _overloaded(exc) from None
        return JSONResponse(describe(episode), status_code=202)

    @app.get("/api/episodes/{episode_id}/transcript", tags=["episodes"])
    async def transcript(episode_id: str) -> dict[str, Any]:
        episode = _episode_or_404(state, episode_id)
        episode.transcript.title = episode.title
        return episode.transcript.to_json() | {"status": episode.status}

    @app.get("/api/episodes/{episode_id}/captions.vtt", tags=["episodes"])
    async def captions(episode_id: str) -> PlainTextResponse:
        episode = _episode_or_404(state, episode_id)
        return PlainTextResponse(episode.transcript.to_webvtt(), media_type="text/vtt")

    @app.get("/api/episodes/{episode_id}/timeline", tags=["episodes"])
    async def timeline(episode_id: str, format: Literal["json", "chrome"] = "json") -> JSONResponse:
        episode = _episode_or_404(state, episode_id)
        if format == "chrome":
            from server.observability.trace import chrome_trace

            return JSONResponse(chrome_trace(episode.id, episode.title, episode.timeline.spans()),
                                headers={"Content-Disposition": f'attachment; filename="{episode.id}.trace.json"'})
        decisions = [d.to_dict() for d in episode.runtime.planner.decisions] if episode.runtime else []
        return JSONResponse({"id": episode.id, "spans": episode.timeline.to_list(), "decisions": decisions})

    @app.get("/api/episodes/{episode_id}/video.mp4", tags=["episodes"])
    async def video(episode_id: str) -> FileResponse:
        episode = _episode_or_404(state, episode_id)
        if episode.status != "finished" or not episode.video_path.exists():
            raise HTTPException(409, f"the archive is written when the episode finishes; status is {episode.status!r}. "
                                     f"Watch it live at /watch/{episode.id} or stream /api/episodes/{episode.id}/stream.mp4")
        return FileResponse(episode.video_path, media_type="video/mp4", filename=f"{episode.id}.mp4")

    @app.get("/api/episodes/{episode_id}/stream.mp4", tags=["episodes"])
    async def stream(episode_id: str) -> StreamingResponse:
        from server.transport.fmp4 import fragmented_mp4

        episode = _episode_or_404(state, episode_id)
        mgr = manager()
        await mgr.ensure_playable(episode)
        quality = mgr.deployment.quality.stream_tier(episode.request.quality)
        return StreamingResponse(fragmented_mp4(episode.buffer, quality), media_type="video/mp4")

    # ---------------------------------------------------------------- WebRTC
    @app.post("/api/episodes/{episode_id}/offer", tags=["webrtc"])
    async def offer(episode_id: str, body: SessionDescription) -> dict[str, Any]:
        episode = _episode_or_404(state, episode_id)
        mgr = manager()
        await mgr.ensure_playable(episode)
        quality = mgr.deployment.quality.stream_tier(episode.request.quality)
        playhead = Playhead(episode.buffer)

        def filler():
            key = (episode.id, episode.title)
            if key not in state.filler_cache:
                segments = episode.buffer.segments
                if segments and segments[0].kind == "intro":
                    # The intro is the same title card at the stream's size, already drawn off the event loop.
                    state.filler_cache[key] = segments[0].frames[0]
                else:
                    from models.protocols import SceneInfo
                    from pipelines.playout.pixels import rgb_to_i420

                    scene = SceneInfo(title=episode.title or episode.request.topic, hosts=tuple(h.name for h in mgr.deployment.hosts))
                    state.filler_cache[key] = rgb_to_i420(mgr.models.animator.title_card(scene, quality, 0.0))
            return state.filler_cache[key]

        def count_viewers() -> None:
            episode.viewers = sum(v.episode_id == episode.id for v in state.gateway.viewers.values())

        def on_close(viewer: Viewer) -> None:
            count_viewers()
            for key in [k for k in state.filler_cache if k[0] == episode.id and not any(v.episode_id == episode.id for v in state.gateway.viewers.values())]:
                state.filler_cache.pop(key, None)

        try:
            viewer, answer = await state.gateway.answer(
                episode.id, body.sdp, body.type, playhead, quality.fps, filler, on_close,
                size=(quality.width, quality.height), queue_status=lambda: mgr.queue_status(episode.id),
            )
        except InvalidOffer as exc:
            raise HTTPException(400, f"sdp: {exc}") from None
        count_viewers()
        return {"sdp": answer.sdp, "type": answer.type, "viewer": viewer.id}

    @app.post("/api/episodes/{episode_id}/viewer-stats", status_code=204, tags=["webrtc"])
    async def viewer_stats(episode_id: str, body: ViewerStats) -> PlainTextResponse:
        episode = _episode_or_404(state, episode_id)
        report = body.model_dump(exclude_none=True)
        # One running report per viewer: replace that viewer's previous one.
        if body.viewer:
            episode.viewer_stats = [s for s in episode.viewer_stats if s.get("viewer") != body.viewer]
        episode.viewer_stats.append(report)
        episode.viewer_stats = episode.viewer_stats[-200:]
        manager().save_stats(episode)
        return PlainTextResponse("", status_code=204)

    # ---------------------------------------------------------------- observability
    # (metrics and dashboard routes are installed here)
    from server.observability.routes import install_observability
    install_observability(app, state)

    # ---------------------------------------------------------------- pages
    def page(name: str, **values: Any) -> HTMLResponse:
        text = (WEB_DIR / name).read_text(encoding="utf-8")
        config = json.dumps(values).replace("</", "<\\/")
        return HTMLResponse(text.replace("/*STREAMWISE_CONFIG*/{}", config), headers={"Cache-Control": "no-store"})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return page("index.html")

    @app.get("/watch", response_class=HTMLResponse, include_in_schema=False)
    async def watch_new(request: Request, topic: str = "", duration_s: float = 60, style: str = "conversational",
                        quality: str | None = None, policy: str | None = None) -> HTMLResponse:
        if not topic.strip():
            return page("index.html", error="Give a topic: /watch?topic=why+the+sky+is+blue")
        try:
            # A viewer in a browser would rather wait in the queue than read an error.
            body = EpisodeCreate(topic=topic, duration_s=duration_s, style=style, quality=quality, policy=policy, wait=True)
        except ValueError as exc:
            return page("index.html", error=f"Cannot start this episode: {exc}")
        try:
            episode = create_episode(body, state.access.identify(request))
        except HTTPException as exc:
            return page("index.html", error=f"Cannot start this episode: {exc.detail}")
        return page("watch.html", episode=episode.id, created=True, topic=episode.request.topic, iceServers=settings.ice_servers or [])

    @app.get("/watch/{episode_id}", response_class=HTMLResponse, include_in_schema=False)
    async def watch_existing(episode_id: str) -> HTMLResponse:
        episode = _episode_or_404(state, episode_id)
        return page("watch.html", episode=episode.id, created=False, topic=episode.request.topic, iceServers=settings.ice_servers or [])

    return app


def _overloaded(exc: Overloaded) -> HTTPException:
    """503 with Retry-After; the problem detail says why (load, startup prediction)."""
    return HTTPException(503, str(exc), headers={"Retry-After": str(exc.verdict.retry_after_s)})


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


def add_serve_command(sub: Any, configs: Any) -> None:
    serve = sub.add_parser("serve", help="run the server (REST API, WebRTC, player)")
    serve.add_argument("--host", default=os.environ.get("STREAMWISE_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("STREAMWISE_PORT", "8000")))
    serve.add_argument("--media-dir", default=os.environ.get("STREAMWISE_MEDIA_DIR", str(REPO_ROOT / "data" / "episodes")))
    configs(serve)
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    load_deployment(args.deploy, load_workflow(args.workflow))  # fail fast on a bad config
    try:
        access = AccessPolicy.from_env(dict(os.environ), args.host)
        ice_servers = parse_ice_servers(os.environ.get("STREAMWISE_ICE_SERVERS", ""))
    except (AccessConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = Settings(workflow=Path(args.workflow), deployment=Path(args.deploy), media_dir=Path(args.media_dir),
                        host=args.host, port=args.port, access=access, ice_servers=ice_servers)
    print(f"StreamWise: loading models, then serving on http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    return 0
