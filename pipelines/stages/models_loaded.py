"""The three adapters an episode needs, loaded from the deployment and warmed up once."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from models.protocols import Animator, ScriptWriter, SpeechSynthesiser
from models.registry import load_adapter
from pipelines.config import Deployment, Workflow

log = logging.getLogger(__name__)


@dataclass
class LoadedModels:
    writer: ScriptWriter
    speech: SpeechSynthesiser
    animator: Animator
    load_s: dict[str, float] = field(default_factory=dict)


def load_models(deployment: Deployment, workflow: Workflow, warm: bool = True) -> LoadedModels:
    """Load (or reuse, see models.registry) every adapter, then warm each up."""
    adapters: dict[str, Any] = {}
    timings: dict[str, float] = {}
    for kind in ("script", "speech", "video"):
        spec = deployment.tasks[workflow.task_of_kind(kind)]
        t0 = time.perf_counter()
        adapter = load_adapter(kind, spec.adapter, spec.params)
        if warm and not getattr(adapter, "_streamwise_warm", False):
            adapter.warm_up()
            adapter._streamwise_warm = True
        timings[kind] = time.perf_counter() - t0
        adapters[kind] = adapter
        log.info("loaded %s adapter %s in %.2fs", kind, spec.adapter, timings[kind])
    for host in deployment.hosts:
        if host.voice not in adapters["speech"].voices():
            raise ValueError(
                f"host {host.name!r} uses voice {host.voice!r}, which the speech adapter does not have; "
                f"configured voices: {list(adapters['speech'].voices())}"
            )
    return LoadedModels(adapters["script"], adapters["speech"], adapters["video"], timings)
