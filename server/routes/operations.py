"""For operators and their tools: health, readiness, admission, Prometheus metrics, the dashboard stream.

``/metrics`` and the dashboard stream read ``app.state.observability`` and
``app.state.dashboard_hub``, which the application builds (server/app.py).
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.observability.dashboard import (
    MAX_SUBSCRIBERS,
    STREAM_MAX_S,
    DashboardHub,
    Subscriber,
    exit_requested,
)
from server.routes.deps import StateDep, manager_of

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: StateDep) -> JSONResponse:
    if state.ready:
        # The task count lets leak tests see that viewers who left took their tasks with them.
        return JSONResponse({"status": "ready", "load_s": state.manager.models.load_s if state.manager else {},
                             "tasks": len(asyncio.all_tasks()), "viewers": len(state.gateway.viewers)})
    return JSONResponse({"status": "loading"}, status_code=503, headers={"Retry-After": "2"})


@router.get("/api/admission")
async def admission(state: StateDep, request: Request) -> dict[str, Any]:
    """Would a new episode be admitted now, and the load behind the answer (admins, when keys are set)."""
    state.access.require_admin(request)
    mgr = manager_of(state)
    return mgr.admit().to_dict() | {"queued": len(mgr.queue), "costs": mgr.costs()}


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    obs = request.app.state.observability
    # With API keys configured, Prometheus sends an admin one (monitoring/prometheus.yml: authorization).
    access = getattr(obs.state, "access", None)
    if access is not None:
        access.require_admin(request)
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)


# Left out of the OpenAPI schema: an endless stream that only the dashboard page reads
# (a generic client or fuzzer that reads a response to its end would never return).
@router.get("/api/dashboard/stream", include_in_schema=False)
async def dashboard_stream(request: Request) -> StreamingResponse:
    hub: DashboardHub = request.app.state.dashboard_hub
    # Snapshots carry every episode's title and id: with API keys configured
    # (server/access.py) they need an admin's, as a header or ?key=.
    access = getattr(hub.obs.state, "access", None)
    if access is not None:
        access.require_admin(request)
    sub = hub.subscribe()
    if sub is None:
        raise HTTPException(503, f"too many open dashboards (at most {MAX_SUBSCRIBERS})", headers={"Retry-After": "10"})
    return StreamingResponse(_events(hub, sub), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _events(hub: DashboardHub, sub: Subscriber):
    """The subscriber's events until it is cut off, the server exits, or the stream's time is up."""
    ends = time.monotonic() + STREAM_MAX_S
    try:
        while not sub.closed and not exit_requested() and time.monotonic() < ends:
            try:
                item = await asyncio.wait_for(sub.queue.get(), timeout=1.0)
            except TimeoutError:
                continue
            yield item
    finally:
        hub.unsubscribe(sub)
