"""Option chains per chunk and the fastest possible first chunk."""
from __future__ import annotations

import pytest

from fleet.chains import (
    chain_choice,
    chunk_job,
    fastest_first_chunk,
    per_job_cost,
    split_budget,
)
from fleet.paper_profiles import Workload
from fleet.planner import plan
from fleet.simulator import standard_chunks


def test_fastest_first_chunk_is_a_floor(ref):
    prof = ref.restrict(["a100", "h200"])
    # script H200 tp8 0.751 + FLUX 16 x H200 0.467 + TTS 0.28, then a 9-frame low-quality chunk:
    # FramePack 12 frames 0.027 + its VAE 0.025 + FantasyTalking 40 x H200 0.314 + VAE 0.042
    assert fastest_first_chunk(prof, Workload()) == pytest.approx(1.906, abs=2e-3)
    assert plan(prof, Workload(), 1.85, "cost", "heuristic") is None


def test_chain_choice_fits_and_is_cheapest_at_the_edges(ref):
    prof, w = ref.restrict(["a100", "h200"]), Workload()
    c = standard_chunks(w)[5]
    stages = [s for s in prof.stages if s.per == "chunk"]
    jobs = [chunk_job(s, c, w) for s in stages]
    fastest = sum(min(o.service(j) for o in s.options) for s, j in zip(stages, jobs))
    assert chain_choice(stages, jobs, prof.spot, fastest - 0.01) is None
    for avail in (fastest, 40.0, 100.0, 1e6):
        got = chain_choice(stages, jobs, prof.spot, avail)
        assert sum(o.service(j) for o, j in zip(got, jobs)) <= avail + 1e-9
    cheapest = chain_choice(stages, jobs, prof.spot, 1e6)
    for s, o, j in zip(stages, cheapest, jobs):
        assert per_job_cost(o, j, prof.spot) == pytest.approx(min(per_job_cost(x, j, prof.spot) for x in s.options))


def test_split_budget_shares_the_whole_target(ref):
    prof, w = ref.restrict(["a100", "h200"]), Workload()
    first = standard_chunks(w, lead=(9,), low_chunks=1)[0]
    stages = [s for s in prof.stages if s.per != "chunk" or not s.optional]
    jobs = {s.name: chunk_job(s, first, w) for s in stages}
    budgets = split_budget(stages, jobs, prof.spot, 10.0)
    assert list(budgets) == [s.name for s in stages]
    assert sum(budgets.values()) == pytest.approx(10.0)
    for s in stages:  # every share fits the stage's fastest option
        assert budgets[s.name] >= min(o.service(jobs[s.name]) for o in s.options) - 1e-9
