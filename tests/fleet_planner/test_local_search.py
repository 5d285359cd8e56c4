"""Simulation-driven repair and hill-climbing keep plans stall-free and never make them dearer."""
from __future__ import annotations

import pytest

from fleet.burst import burst_allocation
from fleet.local_search import improve, merge, repair
from fleet.paper_profiles import Workload
from fleet.simulator import Chunk, Instance, simulate, standard_chunks


def test_improve_never_makes_a_plan_worse(ref):
    w = Workload.minutes(2)
    prof = ref.restrict(["a100", "h200"])
    chunks = standard_chunks(w, lead=(9, 21, 40), low_chunks=8)
    alloc, res = burst_allocation(prof, w, chunks, 5.0, 150.0, 0.8)
    better_alloc, better = improve(prof, w, chunks, alloc, res, 5.0, max_evals=200)
    assert better.cost <= res.cost + 1e-12 and better.ttff_s <= 5.0 + 1e-9
    assert simulate(prof, better_alloc, w, chunks).cost == pytest.approx(better.cost)


def test_repair_adds_replicas_where_chunks_queue(tiny_chain):
    prof, _ = tiny_chain(8)
    w = Workload(video_s=2.0, scenes=1, subscenes=4, fps=2)
    chunks = [Chunk(1, "medium")] * 4  # half a second each: voice (1 s a chunk) is slower than playback
    alloc = {"voice": [Instance("cpu", 1)], "render": [Instance("cpu", 1)]}
    assert simulate(prof, alloc, w, chunks).ttff_s == 3.0  # chunk 3 waits 3 s for voice, done at 4.5
    fixed, res = repair(prof, w, chunks, alloc, 1.5)
    # a second voice replica: voice done at 1, 1, 2, 2; render at 1.5, 2, 2.5, 3; TTFF 1.5
    assert fixed == {"voice": [Instance("cpu", 1, 2)], "render": [Instance("cpu", 1, 1)]} and res.ttff_s == 1.5
    assert alloc["voice"] == [Instance("cpu", 1)]  # the input is left alone
    assert repair(prof, w, chunks, alloc, 1.4) is None  # below the 1.5 s path: no replica helps


def test_merge_joins_classes_and_drops_empty_ones():
    got = merge([Instance("a100", 1, 2), Instance("h200", 2, 0), Instance("a100", 1, 3), Instance("a100", 1, 1, (0, 1))])
    assert got == [Instance("a100", 1, 5), Instance("a100", 1, 1, (0, 1))]
