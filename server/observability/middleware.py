"""ASGI middleware that feeds the running totals from responses, so routes need no hook."""
from __future__ import annotations

from typing import Any

from server.observability.metrics import REFUSALS, Observability


class RefusalCounter:
    """ASGI middleware: counts refused episode creations (POST /api/episodes, POST .../rerun).

    Admission control answers with an HTTP status; reading the status here means the
    routes need no hook. Every other request passes straight through.
    """

    def __init__(self, app: Any, obs: Observability) -> None:
        self.app = app
        self.obs = obs

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope.get("method") != "POST" or not (
            path == "/api/episodes" or (path.startswith("/api/episodes/") and path.endswith("/rerun"))
        ):
            await self.app(scope, receive, send)
            return

        async def counting_send(message: dict) -> None:
            if message["type"] == "http.response.start" and message["status"] in REFUSALS:
                self.obs.refusals[REFUSALS[message["status"]]] += 1
            await send(message)

        await self.app(scope, receive, counting_send)
