"""Viewers start on two spoken segments while other episodes generate on the same workers.

Real models and worker pools: two episodes requested at once. Under that contention the
second spoken segment often comes after the short first one has played, a stall one
second into the show; so each episode hands its first spoken segment to the viewers only
with the next one. ``runtime.start_segments_shared: 1`` hands it over alone (the control).
"""
from __future__ import annotations

import asyncio

import pytest
from conftest import run_async

from pipelines.config import load_deployment, load_workflow
from pipelines.segments import EpisodeRequest
from pipelines.stages.models_loaded import load_models
from pipelines.stages.pools import StagePools
from pipelines.stages.runtime import EpisodeRuntime

pytestmark = pytest.mark.models


async def _first_spoken_handovers(start_segments: int) -> list[int]:
    """For each of two episodes generated at once: segments drawn when its first spoken one was handed over."""
    base = load_deployment()
    deployment = base.model_copy(update={
        "runtime": base.runtime.model_copy(update={"start_segments_shared": start_segments}),
    })
    models = load_models(deployment, load_workflow())
    pools = StagePools.for_deployment(deployment)
    runtimes = [EpisodeRuntime(models, deployment, pools, EpisodeRequest(topic=topic, duration_s=12.0))
                for topic in ("how bees find flowers", "why bread rises")]

    async def drawn_at_first_words(runtime: EpisodeRuntime) -> int:
        drawn = -1
        async for segment in runtime.run():
            if segment.kind == "speech" and drawn < 0:
                drawn = runtime.progress.rendered
        return drawn

    try:
        return list(await asyncio.wait_for(asyncio.gather(*(drawn_at_first_words(r) for r in runtimes)), 300))
    finally:
        pools.shutdown()


def test_under_contention_the_first_words_come_with_the_next_segment() -> None:
    assert all(drawn >= 2 for drawn in run_async(_first_spoken_handovers(2)))


def test_start_segments_one_hands_the_first_words_over_alone() -> None:
    """The control: the first spoken segment goes out as soon as it is drawn."""
    assert 1 in run_async(_first_spoken_handovers(1))
