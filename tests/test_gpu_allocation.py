"""Per-scene GPU allocation: pools that draw only some tiers, the planner's choice among them."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest
import yaml
from conftest import run_async

from models.protocols import Quality
from pipelines.config import CONFIG_DIR, ConfigError, Deployment, load_deployment
from pipelines.plan.tier_planner import CostModel, TierPlanner, TierView
from pipelines.stages.pools import Slot, StagePool

FLOOR, NEURAL = "portrait-360p", "neural-360p"


def two_pools() -> StagePool:
    """A fast GPU slot that draws only the neural tier, a slow CPU slot that draws only the floor."""
    return StagePool("video", slots=[Slot("gpu-0", "gpu", speed=4.0, tiers=frozenset({NEURAL})),
                                     Slot("cpu-0", "cpu", speed=1.0, tiers=frozenset({FLOOR}))])


def test_each_job_runs_on_a_slot_of_a_pool_that_draws_its_tier() -> None:
    pool = two_pools()

    async def run() -> list[tuple[str, str]]:
        now = time.monotonic()
        who = lambda tier: (tier, threading.current_thread().name)
        # The floor job would miss its deadline on the slow slot: it must not wait for the GPU.
        jobs = [pool.run(who, tier, tier=tier, deadline=now + 0.01, cost_s=1.0) for tier in (FLOOR, NEURAL, FLOOR)]
        return await asyncio.wait_for(asyncio.gather(*jobs), 10)

    ran = run_async(run())
    pool.shutdown()
    assert sorted(ran) == sorted([(FLOOR, "cpu-0"), (FLOOR, "cpu-0"), (NEURAL, "gpu-0")])


def test_views_count_only_the_slots_of_a_tier() -> None:
    pool = two_pools()
    try:
        assert pool.restricted
        assert pool.view(NEURAL) == TierView(capacity=4.0, fastest=4.0, workers=1, backlog_s=0.0)
        assert pool.view(FLOOR).fastest == 1.0
    finally:
        pool.shutdown()


def planner() -> TierPlanner:
    ladder = [Quality(FLOOR, 360, 25), Quality(NEURAL, 360, 25)]
    return TierPlanner(ladder, "adaptive", FLOOR, FLOOR, CostModel({FLOOR: 0.05, NEURAL: 2.0}))


def test_the_neural_tier_when_the_gpus_have_room_split_when_one_would_be_late() -> None:
    idle_gpus = {FLOOR: TierView(1.0, 1.0, 1, 0.0), NEURAL: TierView(8.0, 4.0, 2, 0.0)}
    decision = planner().plan(0, 5.0, slack_s=3.0, per_tier=idle_gpus)
    assert (decision.tier, decision.parts) == (NEURAL, 2), decision  # on one GPU: 5 x 2 / 4 = 2.5 s, x1.5 headroom
    decision = planner().plan(0, 1.0, slack_s=3.0, per_tier=idle_gpus)
    assert (decision.tier, decision.parts) == (NEURAL, 1), decision


def test_saturated_gpus_fall_back_to_the_floor_of_the_look() -> None:
    busy_gpus = {FLOOR: TierView(1.0, 1.0, 1, 0.0), NEURAL: TierView(8.0, 4.0, 2, 60.0)}
    decision = planner().plan(0, 3.0, slack_s=3.0, per_tier=busy_gpus)
    assert decision.tier == FLOOR, decision


def _portrait() -> dict:
    return yaml.safe_load((CONFIG_DIR / "deploy" / "portrait.yaml").read_text())


def test_pools_must_draw_the_whole_ladder(tmp_path) -> None:
    data = _portrait()
    data["tasks"]["video"]["pools"] = [{"name": "gpu", "workers": 1, "device": "cuda:0", "tiers": [NEURAL]}]
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=rf"no video pool draws \['{FLOOR}'\]"):
        load_deployment(path)
    data["tasks"]["video"]["pools"][0]["tiers"] = ["1080p"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"pools.gpu.tiers: unknown tier\(s\) \['1080p'\]"):
        load_deployment(path)
    data["tasks"]["video"]["pools"] = [{"name": "gpu", "workers": 2, "device": "cuda:0", "tiers": [NEURAL]},
                                       {"name": "cpu", "workers": 1, "tiers": [FLOOR]}]
    path.write_text(yaml.safe_dump(data))
    pools = load_deployment(path).video_pools()
    assert [(p.device, p.draws(NEURAL), p.draws(FLOOR)) for p in pools] == [("cuda:0", True, False), ("cpu", False, True)]
    assert isinstance(load_deployment(path), Deployment)


def test_admission_counts_the_gpu_workers() -> None:
    from types import SimpleNamespace

    from server.episodes.admission_loop import AdmissionLoop

    video = StagePool("video", slots=[Slot("gpu-0", "gpu", speed=4.0, tiers=frozenset({NEURAL}), device="cuda:0"),
                                      Slot("gpu-1", "gpu", speed=4.0, tiers=frozenset({NEURAL}), device="cuda:0"),
                                      Slot("cpu-0", "cpu", speed=1.0, tiers=frozenset({FLOOR}))])
    try:
        loop = SimpleNamespace(pools=SimpleNamespace(video=video, video_costs=CostModel({FLOOR: 0.05, NEURAL: 2.0})),
                               tier_names=[FLOOR, NEURAL],
                               episodes={"a": SimpleNamespace(status="generating"), "b": SimpleNamespace(status="finished")})
        gpu = AdmissionLoop.gpu_load(loop)
        assert gpu == {"workers": 2, "capacity": 8.0, "demand": 2.0, "episodes_at_neural_tier": 4}
        loop.pools.video = StagePool("video", 1)
        assert AdmissionLoop.gpu_load(loop) is None, "no GPU pools: nothing to count"
        loop.pools.video.shutdown()
    finally:
        video.shutdown()
