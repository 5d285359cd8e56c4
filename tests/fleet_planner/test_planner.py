"""The plan search: targets, device limits, quality share, billing, and its progress steps."""
from __future__ import annotations

import pytest

from fleet.paper_profiles import Workload
from fleet.planner import plan, search_steps
from fleet.simulator import chunk_offsets, gpus_used, simulate


def test_plan_respects_constraints_and_limits(tiny_chain):
    prof, counts = tiny_chain(4)
    w = Workload(video_s=20.0, scenes=1, subscenes=5, fps=1)
    for target in (5.0, 8.0):
        p = plan(prof, w, target, "cost", "milp", counts=counts)
        assert p is not None and p.result.ttff_s <= target + 1e-9
        assert sum(p.result.gpus.values()) <= counts["cpu"]
        again = simulate(prof, p.allocation, w, p.chunks)  # every chunk on time for playback
        assert all(d <= target + o + 1e-9 for d, o in zip(again.chunk_done, chunk_offsets(p.chunks, w.fps)))
    assert plan(prof, w, 0.5, "cost", "heuristic", counts=counts) is None  # below the fastest path (5 s)


def test_progress_steps_match_the_search(tiny_chain):
    prof, counts = tiny_chain(4)
    w = Workload(video_s=20.0, scenes=1, subscenes=5, fps=1)
    steps: list[int] = []
    plan(prof, w, 8.0, "cost", "heuristic", counts=counts, on_step=lambda: steps.append(1))
    assert len(steps) == search_steps("cost", n_gpu_types=1)  # min_high 0: nothing skipped


def test_plan_respects_min_high_and_billing(ref):
    w = Workload.minutes(2)  # a short episode: the first high-quality chunk needs ~17 s, so 75% high
    prof = ref.restrict(["a100", "h200"])
    p = plan(prof, w, 6.0, "cost", "heuristic", min_high=0.75)
    assert p is not None and p.result.high_share >= 0.75 and p.result.ttff_s <= 6.0
    assert p.result.cost == pytest.approx(p.result.cost_strict)  # paper billing: no startup pool
    assert gpus_used(p.allocation) == p.result.gpus
    assert all(n % 8 == 0 for n in p.result.billed_gpus.values())  # whole 8-GPU servers
    with pytest.raises(ValueError):
        plan(prof, w, 6.0, billing="free")
