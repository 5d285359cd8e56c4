"""The discrete-event simulator on DAGs small enough to compute by hand, and against the paper's formulas."""
from __future__ import annotations

import pytest

from fleet.calibration import Policy, evaluate_sequential, naive_allocation
from fleet.paper_profiles import Workload, fold_vae
from fleet.simulator import (
    Chunk,
    Instance,
    chunk_offsets,
    high_share,
    simulate,
    standard_chunks,
)


def test_tiny_chain_pipelined_vs_sequential(tiny_chain):
    prof, _ = tiny_chain(2)
    w = Workload(video_s=4.0, scenes=1, subscenes=2, fps=1)  # two 2-second chunks
    chunks = [Chunk(2, "medium"), Chunk(2, "medium")]
    alloc = {"voice": [Instance("cpu", 1)], "render": [Instance("cpu", 1)]}
    r = simulate(prof, alloc, w, chunks, pipelined=True)
    # voice: 0-1, 1-2; render: 1-3, 3-5. Chunk 2 plays at TTFF+2: TTFF = max(3-0, 5-2) = 3.
    assert r.chunk_done == [3.0, 5.0] and r.ttff_s == 3.0 and r.total_time_s == 5.0
    assert r.cost == pytest.approx(2 * 3.6 * 5 / 3600)  # 2 devices billed for 5 s
    assert r.energy_kwh == pytest.approx(100 * (2 + 4) / 3.6e6)
    s = simulate(prof, alloc, w, chunks, pipelined=False)
    assert s.total_time_s == 6.0  # barrier: voice ends at 2, render 2-4, 4-6


def test_replicas_split_work(tiny_chain):
    prof, _ = tiny_chain(3)
    w = Workload(video_s=4.0, scenes=1, subscenes=2, fps=1)
    alloc = {"voice": [Instance("cpu", 1)], "render": [Instance("cpu", 1, 2)]}
    r = simulate(prof, alloc, w, [Chunk(2, "medium"), Chunk(2, "medium")])
    assert r.chunk_done == [3.0, 4.0]


def test_startup_pool_billed_until_its_last_job(tiny_chain):
    prof, _ = tiny_chain(4)
    w = Workload(video_s=4.0, scenes=1, subscenes=2, fps=1)
    chunks = [Chunk(2, "medium"), Chunk(2, "medium")]
    alloc = {"voice": [Instance("cpu", 1, 1, (0, 1), True), Instance("cpu", 1, 1, (1, 10))],
             "render": [Instance("cpu", 1, 1, (0, 1), True), Instance("cpu", 1, 1, (1, 10))]}
    r = simulate(prof, alloc, w, chunks)
    # startup: voice 0-1, render 1-3 (window 3 s); bulk: voice 0-1, render 1-3; makespan 3
    assert r.chunk_done == [3.0, 3.0]
    assert r.cost == pytest.approx(4 * 3.6 * 3 / 3600) == pytest.approx(r.cost_strict)
    alloc["render"][1] = Instance("cpu", 1, 1, (1, 10))
    alloc["voice"][1] = Instance("cpu", 1, 1, (1, 10))
    w2 = Workload(video_s=8.0, scenes=1, subscenes=4, fps=1)  # bulk renders to 7 s, startup stops at 3 s
    r = simulate(prof, alloc, w2, [Chunk(2, "medium")] * 4)
    assert r.startup_window_s == 3.0 and r.total_time_s == 7.0
    assert r.cost == pytest.approx((2 * 3 + 2 * 7) * 3.6 / 3600) and r.cost_strict == pytest.approx(4 * 7 * 3.6 / 3600)
    assert r.waits["render"] == [0.0, 0.0, 1.0, 2.0]  # bulk render queues chunks 2 and 3


def test_simulator_records_serving_instance(tiny_chain):
    prof, _ = tiny_chain(3)
    w = Workload(video_s=4.0, scenes=1, subscenes=2, fps=1)
    alloc = {"voice": [Instance("cpu", 1)], "render": [Instance("cpu", 1), Instance("cpu", 1)]}
    r = simulate(prof, alloc, w, [Chunk(2, "medium"), Chunk(2, "medium")])
    assert r.served["render"] == [0, 1] and r.chunk_done == [3.0, 4.0]


def test_stage_without_instances_is_an_error(tiny_chain):
    prof, _ = tiny_chain(2)
    w = Workload(video_s=4.0, scenes=1, subscenes=2, fps=1)
    with pytest.raises(ValueError, match="render"):
        simulate(prof, {"voice": [Instance("cpu", 1)]}, w, [Chunk(2, "medium"), Chunk(2, "medium")])


def test_chunk_offsets_and_high_share():
    chunks = [Chunk(9, "low"), Chunk(21, "low"), Chunk(46), Chunk(46, "high_native")]
    assert chunk_offsets(chunks, 23) == pytest.approx([0.0, 9 / 23, 30 / 23, 76 / 23])
    assert high_share(chunks) == pytest.approx(92 / 122)


def test_sequential_des_matches_paper_formula_roughly(ref):
    w = Workload()
    prof = fold_vae(fold_vae(ref, "draft"), "lipsync")
    r = simulate(prof, naive_allocation(), w, standard_chunks(w, tier="high_native"), pipelined=False, spot=False)
    s = evaluate_sequential(ref, naive_allocation(), w, Policy("high_native", False, False, spot=False), {"a100": 8})
    assert abs(r.total_time_s / s.total_time_s - 1) < 0.03
