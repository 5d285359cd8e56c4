"""Burst plans: stall-free under the paper's billing, and no worse than their starting point."""
from __future__ import annotations

import pytest

from fleet.burst import burst_allocation, plan_burst
from fleet.paper_profiles import Workload
from fleet.simulator import chunk_offsets, high_share, simulate, standard_chunks


@pytest.mark.parametrize("target,min_high", [(4.0, 0.75), (8.0, 0.8)])
def test_burst_plan_never_violates_its_constraints(ref, target, min_high):
    w = Workload.minutes(2)
    prof = ref.restrict(["a100", "h200"])
    p = plan_burst(prof, w, target, min_high=min_high, polish=1)
    assert p is not None
    r = p.result
    assert r.ttff_s <= target + 1e-9 and r.high_share >= min_high and high_share(p.chunks) == pytest.approx(r.high_share)
    assert r.cost == pytest.approx(r.cost_strict) and r.startup_window_s == 0.0  # the paper's billing
    assert not any(i.startup or i.jobs for insts in p.allocation.values() for i in insts)
    again = simulate(prof, p.allocation, w, p.chunks)
    assert again.cost == pytest.approx(r.cost) and again.ttff_s == pytest.approx(r.ttff_s)
    offsets = [sum(c.frames for c in p.chunks[:k]) / w.fps for k in range(len(p.chunks))]
    assert all(d <= target + o + 1e-9 for d, o in zip(again.chunk_done, offsets))  # no stall


def test_burst_allocation_finishes_by_the_horizon(ref):
    w = Workload.minutes(2)
    prof = ref.restrict(["a100", "h200"])
    chunks = standard_chunks(w, lead=(9, 21, 40), low_chunks=8)
    alloc, res = burst_allocation(prof, w, chunks, 5.0, 150.0, 0.8)
    assert res.ttff_s <= 5.0 + 1e-9
    assert all(d <= 5.0 + o + 1e-9 for d, o in zip(res.chunk_done, chunk_offsets(chunks, w.fps)))
    assert set(alloc) == {s.name for s in prof.stages}
    assert all(len(alloc[s]) == 1 and alloc[s][0].replicas == 1 for s in ("script", "image", "others"))
