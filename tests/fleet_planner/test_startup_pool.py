"""Paced two-pool plans: on time, and billed less than every server for the whole episode."""
from __future__ import annotations

import pytest

from fleet.paper_profiles import Workload
from fleet.simulator import simulate, standard_chunks
from fleet.startup_pool import paced_allocation


def test_paced_plan_meets_deadlines_and_beats_strict_billing(ref):
    w = Workload.minutes(2)
    prof = ref.restrict(["a100", "h200"])
    chunks = standard_chunks(w, lead=(9, 21, 40), low_chunks=32)
    alloc, res = paced_allocation(prof, w, chunks, 6.0, "h200", 8, 32)
    assert res.ttff_s <= 6.0 + 1e-9 and res.cost <= res.cost_strict
    again = simulate(prof, alloc, w, chunks)  # deterministic, same billing
    assert again.cost == pytest.approx(res.cost) and again.ttff_s == pytest.approx(res.ttff_s)
    for insts in alloc.values():  # startup instances only serve the first chunks / scene
        assert all(i.jobs is None or i.jobs[0] == 0 for i in insts if i.startup)
    assert {i.gpu for insts in alloc.values() for i in insts if i.startup} == {"h200"}
    assert all(i.devices <= 8 for insts in alloc.values() for i in insts if i.startup)  # the cap
