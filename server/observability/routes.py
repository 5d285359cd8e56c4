"""Operations: ``GET /metrics`` (Prometheus) and ``/dashboard`` (live, server-sent events).

Both read one ``Observability``: running totals derived from the episodes' spans and
the server's live state, refreshed when someone looks (a scrape or a dashboard tick).
Nothing in the pipeline reports to it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from server.observability.dashboard import install_dashboard
from server.observability.metrics import Observability, install_metrics, load_pricing

if TYPE_CHECKING:  # pragma: no cover
    from server.app import ServerState


def install_observability(app: Any, state: ServerState, pricing_path: Any = None) -> Observability:
    """Register ``/metrics``, ``/dashboard`` and ``/api/dashboard/stream`` on ``app``.

    The pricing file is read now, so a bad one stops the server at start with a
    message naming the file and field (ConfigError).
    """
    from server.app import WEB_DIR

    obs = Observability(state, load_pricing(pricing_path))
    app.state.observability = obs
    install_metrics(app, obs)
    install_dashboard(app, obs, WEB_DIR / "dashboard.html")
    return obs
