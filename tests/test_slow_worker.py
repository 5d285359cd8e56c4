"""A video worker becomes several times slower mid-episode: playback does not wait on it.

Real models, real worker processes, a playhead consuming audio at real time as a
viewer's track would. The slowed worker is measured as slow (so the planner and
the dispatch rule count on it less), and the job it straggles on is run again by
the other worker (a backup run). Before backup runs existed this scenario stalled
playback for 8-11 s (the job stuck on the slowed worker), so the test can fail.
"""
from __future__ import annotations

import asyncio
import time

import pytest
from conftest import run_async

from models.protocols import CLOCK_RATE
from pipelines.config import PoolSpec, load_deployment, load_workflow
from pipelines.playout.buffer import Playhead, PlayoutBuffer
from pipelines.segments import EpisodeRequest
from pipelines.stages.models_loaded import load_models
from pipelines.stages.pools import StagePools
from pipelines.stages.runtime import EpisodeRuntime

pytestmark = [pytest.mark.slow, pytest.mark.models]  # real models, 30 s of real-time playback

CHUNK = 960  # 20 ms of audio, as the WebRTC audio track pulls it
#: Stalled playback tolerated, in seconds (see the assertion).
MAX_STALLED_S = 2.0


def _deployment(policy: str, backup_runs: bool = True):
    base = load_deployment()
    video = base.tasks["video"].model_copy(update={"pools": [PoolSpec(name="video", workers=2)]})
    return base.model_copy(update={
        "tasks": base.tasks | {"video": video},
        "quality": base.quality.model_copy(update={"policy": policy}),
        "runtime": base.runtime.model_copy(update={"backup_runs": backup_runs}),
    })


async def _episode_with_a_slowed_worker(policy: str, duration_s: float = 30.0, slowdown: float = 6.0,
                                        backup_runs: bool = True):
    deployment = _deployment(policy, backup_runs)
    models = load_models(deployment, load_workflow())
    pools = StagePools.for_deployment(deployment)
    runtime = EpisodeRuntime(models, deployment, pools, EpisodeRequest(topic="how bees find flowers", duration_s=duration_s))
    buffer = PlayoutBuffer()
    playhead = Playhead(buffer)
    slowed_at: list[float] = []

    async def produce() -> None:
        try:
            async for segment in runtime.run():
                buffer.append(segment)
        finally:
            buffer.finish()

    async def play() -> None:
        t0 = time.monotonic()
        n = 0
        while not playhead.ended:
            playhead.next_audio(CHUNK)
            n += 1
            await asyncio.sleep(max(0.0, t0 + n * CHUNK / CLOCK_RATE - time.monotonic()))

    async def slow_one_worker() -> None:
        while runtime.progress.rendered < 3:
            await asyncio.sleep(0.05)
        await asyncio.to_thread(pools.video.slots[0].drawer.set_slowdown, slowdown)
        slowed_at.append(runtime.timeline.now())

    try:
        await asyncio.wait_for(asyncio.gather(produce(), play(), slow_one_worker()), timeout=duration_s * 4 + 60)
    finally:
        pools.shutdown()
    return runtime, playhead, slowed_at[0]


def test_a_worker_slowed_mid_episode_does_not_stall_playback():
    runtime, playhead, slowed_at = run_async(_episode_with_a_slowed_worker("adaptive"))
    assert playhead.ended and playhead.stats.played_samples > 15 * CLOCK_RATE
    # The failure this guards against stalls for 8-11 s (module docstring). A stall well
    # under a second is this 2-core machine being busy with other things (seen 1 run in
    # ~10 under the full suite), not a job stuck on the slowed worker.
    stalled_s = playhead.stats.stalled_samples / CLOCK_RATE
    assert stalled_s < MAX_STALLED_S, f"playback stalled {playhead.stats.stalls}x ({stalled_s:.2f} s)"
    slowed = runtime.pools.video.slots[0]
    after = [s for s in runtime.timeline.spans() if s.stage == "video" and s.segment is not None and s.finished > slowed_at]
    assert after, "segments were drawn after the slowdown"
    # Either the slowed worker's speed was measured, or its straggling job was backed up by the other.
    backed_up = [s for s in after if "backup run" in s.note]
    assert slowed.speed < 0.5 or backed_up, (slowed.speed, [(s.segment, s.worker, s.note) for s in after])
