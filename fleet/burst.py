"""Burst plans: generate ahead of playback, release every server when the episode is done.

The paper bills every GPU for the whole run (request to last frame generated), so finishing
early is what its rule rewards. Chunk k is due at ``min(T + offset_k, horizon)``; each
chunk's window gets the cheapest chain of options that fits (:func:`~fleet.chains.chain_choice`),
so the first chunks run on fast multi-GPU instances (often of a faster GPU type) and the bulk
on single-GPU replicas; the simulator then repairs (adds replicas where the latest chunk
queued) and a hill-climb removes or downsizes replicas while every chunk stays on time. The
covering proxy with the same windows (greedy or MILP) is a second starting point.

Contract: :func:`plan_burst` returns the best stall-free plan it finds for ``target`` under
the paper's billing (no startup pool, no job ranges), or ``None``.
"""
from __future__ import annotations

import math
from collections.abc import Callable

from fleet.chains import (
    chain_choice,
    chunk_job,
    lead_job,
    per_job_cost,
    runs_for,
    split_budget,
    standard_job,
)
from fleet.covering import build_problem, solve_greedy, solve_milp, to_allocation
from fleet.local_search import improve, repair, trim_replicas
from fleet.paper_profiles import Job, Option, ProfileError, Profiles, Stage, Workload
from fleet.plan_result import Plan, PlanKey
from fleet.simulator import (
    Allocation,
    Chunk,
    Instance,
    SimResult,
    chunk_offsets,
    high_share,
    standard_chunks,
    within_counts,
)

BURST_LEADS: tuple[tuple[int, ...], ...] = ((9, 21), (9, 21, 40))
BURST_LOW: tuple[int, ...] = (0, 2, 4, 6, 8, 12, 16, 24, 32)
BURST_HORIZONS: tuple[float, ...] = (0.8, 1.0, 1.3, 1.7, 2.2)  # x the cheapest chain's latency
BURST_THETAS: tuple[float, ...] = (0.9, 0.7)
BURST_POLISH = 3  # hill-climb the best few initial plans


def _fixed_stages(active: list[Stage], lead_jobs: dict[str, Job], budgets: dict[str, float],
                  prices: dict[str, float]) -> tuple[Allocation, float]:
    """One replica per scene/once stage, the cheapest per hour that fits its TTFF share; and
    the time they take before the first chunk can start."""
    alloc: Allocation = {}
    t_fixed = 0.0
    for s in active:
        if s.per == "chunk":
            continue
        ok = [o for o in s.options if o.service(lead_jobs[s.name]) <= budgets[s.name] + 1e-9]
        o = min(ok, key=lambda o: (o.devices * prices[o.gpu], o.service(lead_jobs[s.name])))
        alloc[s.name] = [Instance(o.gpu, o.devices, 1)]
        t_fixed += o.service(lead_jobs[s.name])
    return alloc, t_fixed


def _chunk_stage_needs(cstages: list[Stage], w: Workload, chunks: list[Chunk], prices: dict[str, float],
                       target: float, horizon: float | None, theta: float, t_fixed: float,
                       early_share: float) -> dict[tuple[str, Option], int] | None:
    """Replicas per (chunk stage, option): each chunk's chain is chosen for its window, and an
    option gets enough replicas to do the work of its chunks within their windows.

    A window not capped by the horizon is rounded down to a ladder of windows (x2 apart from
    the first chunk's), keeping ``theta`` for queueing, so few distinct chains are used.
    Early chunks (windows under ``early_share`` of the horizon) price options per hour.
    """
    offsets = chunk_offsets(chunks, w.fps)
    lead_window = target - t_fixed
    need: dict[tuple[str, Option], int] = {}
    work: dict[tuple[str, Option], float] = {}
    for k, c in enumerate(chunks):
        due = target + offsets[k] if horizon is None else min(target + offsets[k], max(horizon, target))
        window = due - t_fixed
        capped = horizon is not None and due < target + offsets[k]
        if capped:
            window *= theta
        elif k and theta * window >= lead_window:
            window = lead_window * 2 ** math.floor(math.log2(theta * window / lead_window))
        run = [s for s in cstages if runs_for(s, c)]
        jobs = [chunk_job(s, c, w) for s in run]
        early = window < early_share * (horizon or w.video_s)
        got = (chain_choice(run, jobs, prices, window, early)
               or chain_choice(run, jobs, prices, due - t_fixed, early))
        if got is None:
            return None
        lat = [o.service(j) for o, j in zip(got, jobs)]
        for n, (s, o, j) in enumerate(zip(run, got, jobs)):
            key = (s.name, o)
            work[key] = work.get(key, 0.0) + o.service(j)
            room = max(window - sum(lat) + lat[n], lat[n]) / theta
            need[key] = max(need.get(key, 1), math.ceil(work[key] / room - 1e-9))
    return need


def burst_allocation(profiles: Profiles, w: Workload, chunks: list[Chunk], target: float, horizon: float | None,
                     theta: float = 0.8, spot: bool = True, max_iter: int = 400,
                     trim: bool = True, early_share: float = 0.25) -> tuple[Allocation, SimResult] | None:
    """One pool, every server held until the episode is generated (the paper's cost rule).

    * Fixed stages (script LLM, key image, TTS) and the first chunk share the TTFF target on
      the cheapest $/hour options that fit (:func:`~fleet.chains.split_budget`).
    * Chunk k is due at ``min(target + offset_k, horizon)``: playback order for the first
      chunks, the whole episode by the horizon, so every server is released early (a burst).
    * Each chunk's window gets the cheapest chain of options that fits ``theta`` x the window
      (:func:`_chunk_stage_needs`): the first chunks land on fast multi-GPU instances, later
      ones on cheaper, slower ones, the bulk on single-GPU replicas. No job ranges: a fast
      instance that is free takes the next chunk (the simulator sends each job to the replica
      that finishes it first).
    * The simulator then adds replicas where the latest chunk queued longest until no chunk
      stalls (TTFF <= target), or gives up when a chunk is late without queueing;
      ``trim`` then removes replicas while the plan stays stall-free and gets cheaper.
    """
    prices = profiles.spot if spot else profiles.reserved
    active = [s for s in profiles.stages if any(runs_for(s, c) for c in chunks) or s.per != "chunk"]
    lead_jobs = {s.name: lead_job(s, chunks[0], w) for s in active}
    if sum(min(o.service(lead_jobs[s.name]) for o in s.options) for s in active) > target:
        return None
    budgets = split_budget(active, lead_jobs, prices, target)
    alloc, t_fixed = _fixed_stages(active, lead_jobs, budgets, prices)
    cstages = [s for s in active if s.per == "chunk"]
    need = _chunk_stage_needs(cstages, w, chunks, prices, target, horizon, theta, t_fixed, early_share)
    if need is None:
        return None
    for s in cstages:
        alloc[s.name] = [Instance(o.gpu, o.devices, n) for (name, o), n in need.items() if name == s.name]
    got = repair(profiles, w, chunks, alloc, target, spot, max_iter)
    if got is not None and trim:
        got = trim_replicas(profiles, w, chunks, got[0], got[1], lambda r: r.ttff_s > target + 1e-9, spot)
    return got


def burst_initial(profiles: Profiles, w: Workload, chunks: list[Chunk], target: float, horizon: float, theta: float,
                  solver: str, spot: bool) -> tuple[Allocation, SimResult] | None:
    """A first stall-free burst plan: the ladder heuristic, or the covering proxy (greedy / MILP)."""
    if solver == "ladder":
        return burst_allocation(profiles, w, chunks, target, horizon, theta, spot)
    try:
        prob = build_problem(profiles, w, chunks, target, spot, horizon=horizon, theta=theta)
    except ProfileError:
        return None
    sol = solve_milp(prob, time_limit=5.0) if solver == "milp" else solve_greedy(prob)
    if sol is None:
        return None
    got = repair(profiles, w, chunks, to_allocation(prob, sol), target, spot)
    return got and trim_replicas(profiles, w, chunks, got[0], got[1], lambda r: r.ttff_s > target + 1e-9, spot)


def _cheapest_chain_latency(profiles: Profiles, w: Workload, prices: dict[str, float]) -> float:
    """Latency of one standard chunk on every chunk stage's cheapest-per-job option: the unit
    the burst horizons are measured in."""
    std = standard_job(w)
    return sum(min(s.options, key=lambda o: (per_job_cost(o, std, prices), o.service(std))).service(std)
               for s in profiles.stages if s.per == "chunk")


def _burst_candidates(profiles: Profiles, w: Workload, target: float, spot: bool, tier: str, min_high: float,
                      solvers: tuple[str, ...], on_step: Callable[[], None] | None,
                      thetas: tuple[float, ...]) -> list[Plan]:
    """Every initial burst plan over lead chunks, low-quality first chunks, horizons, slack and
    starting-point solvers (one progress step each)."""
    prices = profiles.spot if spot else profiles.reserved
    chain = _cheapest_chain_latency(profiles, w, prices)
    cands: list[Plan] = []
    for lead in BURST_LEADS:
        for low in BURST_LOW:
            chunks = standard_chunks(w, tier=tier, lead=lead, low_chunks=low)
            if high_share(chunks) < min_high - 1e-9:
                continue
            for h in BURST_HORIZONS:
                for theta in thetas:
                    for solver in solvers:
                        if on_step:
                            on_step()
                        got = burst_initial(profiles, w, chunks, target, h * chain, theta, solver, spot)
                        if got is None:
                            continue
                        cands.append(Plan("cost", got[0], chunks, got[1], f"burst/{solver}", target,
                                          notes={"lead": lead, "low_chunks": low, "horizon_s": round(h * chain, 1),
                                                 "theta": theta, "init": solver}))
    return cands


def plan_burst(profiles: Profiles, w: Workload, target: float, spot: bool = True, tier: str = "high",
               min_high: float = 0.0, solvers: tuple[str, ...] = ("ladder", "heuristic"),
               on_step: Callable[[], None] | None = None, key: PlanKey | None = None, polish: int = BURST_POLISH,
               counts: dict[str, int] | None = None, thetas: tuple[float, ...] = BURST_THETAS) -> Plan | None:
    """Burst plans (every server billed until the episode is generated, as the paper bills):
    search lead chunks, low-quality first chunks (at least ``min_high`` of the frames stay high
    quality), horizons and queueing slack; hill-climb the best few with the simulator.

    Only the best of each (lead chunks, low-quality chunks) setting is polished, so the few
    hill-climbs start from different chunkings rather than near-copies of one.
    """
    key = key or (lambda p: p.result.cost)
    cands = _burst_candidates(profiles, w, target, spot, tier, min_high, solvers, on_step, thetas)
    cands = [c for c in cands if within_counts(c.allocation, counts)]
    cands.sort(key=key)
    picked: list[Plan] = []
    seen: set[tuple[object, object]] = set()
    for cand in cands:
        tag = (cand.notes["lead"], cand.notes["low_chunks"])
        if tag not in seen and len(picked) < polish:
            seen.add(tag)
            picked.append(cand)
    best: Plan | None = None
    for cand in picked:
        cand.notes["initial_cost"] = round(cand.result.cost, 3)
        alloc, res = improve(profiles, w, cand.chunks, cand.allocation, cand.result, target, spot, counts=counts)
        cand.allocation, cand.result = alloc, res
        if best is None or key(cand) < key(best):
            best = cand
    return best
