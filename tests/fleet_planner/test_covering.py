"""The covering proxy: the MILP is optimal, the greedy close to it, both cover every deadline."""
from __future__ import annotations

from fleet.covering import (
    Problem,
    Solution,
    build_problem,
    proxy_cost,
    solve_greedy,
    solve_milp,
    supply,
)
from fleet.paper_profiles import Workload
from fleet.simulator import standard_chunks


def _covers(prob: Problem, sol: Solution) -> bool:
    return all(sum(r * supply(t, sp.per_job[i], wk) for i, r in sol[sp.name].items()) >= d - 1e-6
               for sp in prob.stages for t, wk, d in sp.checkpoints)


def test_supply_counts_whole_jobs():
    assert supply(10.0, 3.0, 1.0) == 3.0  # three 3-second jobs by t = 10
    assert supply(10.0, 3.0, 2.0) == 2.0  # one job of weight 2 (6 s)
    assert supply(0.0, 3.0, 1.0) == 0.0 and supply(10.0, 3.0, 0.0) == 0.0


def test_milp_and_greedy_agree_on_small_instances(ref):
    w = Workload.minutes(1)
    prof = ref.restrict(["a100", "h200"])
    for lead, low in (((), 0), ((21,), 2)):
        chunks = standard_chunks(w, lead=lead, low_chunks=low)
        prob = build_problem(prof, w, chunks, 30.0)
        g, m = solve_greedy(prob), solve_milp(prob)
        assert g is not None and m is not None
        assert proxy_cost(prob, m) <= proxy_cost(prob, g) + 1e-6
        assert proxy_cost(prob, g) <= 1.25 * proxy_cost(prob, m)
        assert _covers(prob, g) and _covers(prob, m)  # both satisfy every proxy deadline


def test_burst_milp_and_greedy_agree_on_small_instances(ref):
    prof = ref.restrict(["a100", "h200"])
    for minutes, low, horizon in ((1, 12, 150.0), (2, 8, 150.0), (2, 12, 200.0)):
        w = Workload.minutes(minutes)
        chunks = standard_chunks(w, lead=(9, 21, 40), low_chunks=low)
        prob = build_problem(prof, w, chunks, 5.0, horizon=horizon, theta=0.8)
        g, m = solve_greedy(prob), solve_milp(prob)
        assert g is not None and m is not None
        assert proxy_cost(prob, m) <= proxy_cost(prob, g) + 1e-6
        assert proxy_cost(prob, g) <= 1.3 * proxy_cost(prob, m)
        assert _covers(prob, g) and _covers(prob, m)
