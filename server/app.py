"""The HTTP application: routers for episodes, media, viewers, questions, operations and pages over one server state.

Models are loaded and warmed before the server reports ready, so a request never
pays a load cost. Observability (running totals, the Prometheus registry, the
dashboard hub) is built here and handed to the routes through ``app.state``.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from server.limits import BodySizeLimit
from server.observability.dashboard import DashboardHub, watch_server_exit
from server.observability.metrics import Observability
from server.observability.middleware import RefusalCounter
from server.observability.pricing import load_pricing
from server.observability.prometheus import make_registry
from server.problems import install_problem_handlers
from server.routes import episodes, media, operations, pages, questions, shares, viewers
from server.state import WEB_DIR, ServerState, Settings

#: Request bodies above this are refused with 413 before they are read.
MAX_BODY_BYTES = 256 * 1024


def create_app(settings: Settings | None = None, pricing_path: str | Path | None = None) -> FastAPI:
    """The application; its lifespan loads the models and closes everything on exit.

    The pricing file is read now, so a bad one stops the server at start with a
    message naming the file and field (ConfigError).
    """
    state = ServerState(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.load()
        ticker = asyncio.create_task(app.state.observability.loop_lag.run(), name="loop-lag")
        yield
        ticker.cancel()
        await state.close()

    app = FastAPI(title="StreamWise", version="0.1.0", lifespan=lifespan,
                  description="Generated podcast episodes, streamed while they are made.")
    app.state.sw = state
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    _install_observability(app, state, pricing_path)
    for module in (operations, episodes, media, viewers, questions, shares, pages):
        app.include_router(module.router)
    return app


def _install_observability(app: FastAPI, state: ServerState, pricing_path: str | Path | None) -> None:
    obs = Observability(state, load_pricing(pricing_path))
    app.state.observability = obs
    app.state.metrics_registry = make_registry(obs)
    app.state.dashboard_hub = DashboardHub(obs)
    app.add_middleware(RefusalCounter, obs=obs)
    watch_server_exit()
