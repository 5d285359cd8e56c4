"""The covering proxy: replica counts per stage option as a linear problem, and its solvers.

Every stage gets a share of the TTFF target; chunk k must leave stage s by
``T + offset_k - (later stages' shares)``. Replicas supply whole jobs at ``1/service`` per
second, so "cumulative supply >= cumulative demand at every deadline" is linear in the
replica counts. :func:`solve_milp` solves it exactly (scipy.optimize.milp / HiGHS, including
whole servers per GPU type); :func:`solve_greedy` adds the best supply-per-dollar replica at
the earliest violated deadline, then trims.

Why a proxy: it ignores queueing order and the chain between stages, so it is cheap to solve
for many chunkings; the simulator judges (and repairs) what it proposes.

Contract: :func:`build_problem` raises :class:`~fleet.paper_profiles.ProfileError` when the
target is below the fastest first-chunk path; the solvers return ``None`` when infeasible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from fleet.chains import (
    chain_choice,
    chunk_job,
    lead_job,
    runs_for,
    split_budget,
    standard_job,
)
from fleet.paper_profiles import (
    TIERS,
    Job,
    Option,
    ProfileError,
    Profiles,
    Stage,
    Workload,
)
from fleet.simulator import Allocation, Chunk, Instance, chunk_offsets

Checkpoint = tuple[float, float, float]  # (time since first input, job weight, cumulative work) in std jobs


@dataclass(frozen=True)
class StageProblem:
    """One stage's columns and covering rows; ``single`` stages get exactly one replica."""

    name: str
    options: tuple[Option, ...]
    rate: tuple[float, ...]  # $/hour of one replica
    lead_latency: tuple[float, ...]  # first job on one replica
    per_job: tuple[float, ...]  # standard job (for supply)
    budget: float
    checkpoints: tuple[Checkpoint, ...]
    single: bool  # scene/once stages: exactly one replica


@dataclass(frozen=True)
class Problem:
    """The whole proxy: stages, whole-server sizes, prices and (local profiles) device limits."""

    stages: tuple[StageProblem, ...]
    server_size: dict[str, int]
    prices: dict[str, float]
    counts: dict[str, int] | None = None  # device limits (local profiles)


Solution = dict[str, dict[int, int]]  # stage -> option index -> replicas


def build_problem(profiles: Profiles, w: Workload, chunks: list[Chunk], ttff: float, spot: bool = True,
                  counts: dict[str, int] | None = None, horizon: float | None = None,
                  theta: float = 0.8) -> Problem:
    """Turn profiles + chunk plan + TTFF target into the proxy covering problem.

    Chunk k is due at ``ttff + offset_k`` (playback, no stall). By default a stage must hand
    chunk k on by that time less the later stages' shares of the TTFF budget.

    With ``horizon`` (a burst plan) chunk k is also due by ``horizon``: the episode is
    generated ahead of playback and every server is released at the end, which is how the
    paper bills (GPUs x total time). Each chunk's window is then shared between its stages
    by the cheapest chain of options that fits ``theta`` x the window (:func:`chain_choice`),
    so a stage's deadline for chunk k leaves room for the later stages of that chunk.
    """
    prices = profiles.spot if spot else profiles.reserved
    scene_s = w.video_s / w.scenes
    offsets = chunk_offsets(chunks, w.fps)
    active = [s for s in profiles.stages if not s.optional or any(TIERS[c.tier][1] for c in chunks)]
    lead_jobs = {s.name: lead_job(s, chunks[0], w) for s in active}
    total_fast = sum(min(o.service(lead_jobs[s.name]) for o in s.options) for s in active)
    if total_fast > ttff:
        raise ProfileError(f"TTFF target {ttff:g} s is below the fastest first-chunk path ({total_fast:.2f} s)")
    budgets = split_budget(active, lead_jobs, prices, ttff)
    chains = (_chain_windows(active, chunks, w, budgets, prices, offsets, ttff, horizon, theta)
              if horizon is not None else None)
    names = [s.name for s in active]
    stages = []
    for i, s in enumerate(active):
        before = sum(budgets[n] for n in names[:i])
        after = sum(budgets[n] for n in names[i + 1:])
        checkpoints: tuple[Checkpoint, ...] = ()
        if s.per == "chunk":
            checkpoints, per_job = _chunk_checkpoints(s, chunks, w, offsets, ttff, before, after, horizon, chains)
        else:
            per_job = tuple(o.service(Job(scene_s, 1)) for o in s.options)
        lead = tuple(o.service(lead_jobs[s.name]) for o in s.options)
        rate = tuple(o.devices * prices[o.gpu] for o in s.options)
        stages.append(StageProblem(s.name, s.options, rate, lead, per_job, budgets[s.name] + 1e-9,
                                   checkpoints, s.per != "chunk"))
    return Problem(tuple(stages), profiles.server_size, prices, counts)


ChainWindows = tuple[dict[str, list[float]], dict[str, list[float]]]


def _chain_windows(active: list[Stage], chunks: list[Chunk], w: Workload, budgets: dict[str, float],
                   prices: dict[str, float], offsets: list[float], ttff: float, horizon: float,
                   theta: float) -> ChainWindows:
    """Per chunk stage and chunk it runs: the latency its later stages need (``after``) and
    the time its earlier stages take (``before``), on the chunk's cheapest fitting chain.

    The first chunk uses the TTFF budget shares; a later chunk the cheapest chain that fits
    ``theta`` x its window, else the whole window, else every stage's fastest option.
    """
    cst = [s for s in active if s.per == "chunk"]
    t_fixed = sum(budgets[s.name] for s in active if s.per != "chunk")
    chain_after: dict[str, list[float]] = {s.name: [] for s in cst}
    chain_before: dict[str, list[float]] = {s.name: [] for s in cst}
    for k, c in enumerate(chunks):
        run = [s for s in cst if runs_for(s, c)]
        jobs = [chunk_job(s, c, w) for s in run]
        due = min(ttff + offsets[k], max(horizon, ttff))
        if k == 0:
            lat = [budgets[s.name] for s in run]
        else:
            got = (chain_choice(run, jobs, prices, theta * (due - t_fixed))
                   or chain_choice(run, jobs, prices, due - t_fixed)
                   or [min(s.options, key=lambda o, j=j: o.service(j)) for s, j in zip(run, jobs)])
            lat = [o.service(j) for o, j in zip(got, jobs)]
        for n, s in enumerate(run):
            chain_after[s.name].append(sum(lat[n + 1:]))
            chain_before[s.name].append(t_fixed + sum(lat[:n]))
    return chain_after, chain_before


def _chunk_checkpoints(s: Stage, chunks: list[Chunk], w: Workload, offsets: list[float], ttff: float,
                       before: float, after: float, horizon: float | None,
                       chains: ChainWindows | None) -> tuple[tuple[Checkpoint, ...], tuple[float, ...]]:
    """A chunk stage's covering rows and its service time per standard job on each option.

    Paced (no ``horizon``): chunk k's deadline is its playback time less the later stages'
    budget shares. Burst: its deadline is capped by the horizon and shifted by its own chain
    (``chains``), and the rows cover every interval between release and due times.
    """
    std = standard_job(w)
    std_t = [o.service(std) for o in s.options]
    checkpoints: list[Checkpoint] = []
    cum = 0.0
    for k, c in enumerate(chunks):
        if not runs_for(s, c):
            continue
        wk = s.options[0].service(chunk_job(s, c, w)) / std_t[0]
        cum += wk
        if horizon is None or chains is None:
            due = ttff + offsets[k] - after
        else:
            due = min(ttff + offsets[k], max(horizon, ttff)) - chains[0][s.name][len(checkpoints)]
        checkpoints.append((due - before, wk, cum))
    if horizon is not None and chains is not None:
        return (interval_checkpoints([t + before for t, _, _ in checkpoints], chains[1][s.name],
                                     [wk for _, wk, _ in checkpoints]), tuple(std_t))
    return tuple(checkpoints), tuple(std_t)


def interval_checkpoints(dues: list[float], releases: list[float], weights: list[float],
                         quantiles: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 0.9)) -> tuple[Checkpoint, ...]:
    """Covering rows for jobs with release and due times: for a start ``a`` among release
    quantiles and every due ``b``, the work released at or after ``a`` and due by ``b`` must fit
    in ``b - a`` (the rows read ``(b - a, weight of the job due at b, work)``)."""
    rel = sorted(releases)
    starts = sorted({rel[min(len(rel) - 1, int(q * len(rel)))] for q in quantiles})
    order = sorted(range(len(dues)), key=lambda k: dues[k])
    rows = []
    for a in starts:
        work = 0.0
        for k in order:
            if releases[k] >= a - 1e-9:
                work += weights[k]
                rows.append((dues[k] - a, weights[k], work))
    return tuple(rows)


def supply(t: float, per_job: float, weight: float) -> float:
    """Work (in standard jobs) one replica finishes by ``t`` in jobs of ``weight``: whole jobs only."""
    if t <= 0 or weight <= 0:
        return 0.0
    return math.floor(t / (per_job * weight) + 1e-9) * weight


def _lead_options(sp: StageProblem) -> list[int]:
    """Options whose first job fits the stage's share of the TTFF target."""
    return [i for i, lat in enumerate(sp.lead_latency) if lat <= sp.budget]


def _deficit(sp: StageProblem, n: dict[int, int]) -> list[float]:
    """Per checkpoint: work due minus what replicas ``n`` supply by then (> 0: violated)."""
    return [d - sum(r * supply(t, sp.per_job[i], wk) for i, r in n.items()) for t, wk, d in sp.checkpoints]


def _greedy_stage(sp: StageProblem, lead: int) -> dict[int, int] | None:
    """Cover one stage's rows: add the best supply-per-dollar replica at the earliest violated
    deadline, then remove replicas, most expensive first, while every row stays covered."""
    n = {lead: 1}
    for _ in range(100000):
        defs = _deficit(sp, n)
        j = next((j for j, d in enumerate(defs) if d > 1e-9), None)  # earliest violated deadline
        if j is None:
            break
        t, wk, _ = sp.checkpoints[j]
        gain = [min(supply(t, sp.per_job[i], wk), defs[j]) / (sp.rate[i] + 1e-6 * sp.options[i].devices)
                for i in range(len(sp.options))]  # free devices (local profiles): fewest devices
        best = max(range(len(sp.options)), key=lambda i: gain[i])
        if gain[best] <= 0:
            return None
        n[best] = n.get(best, 0) + 1
    for i in sorted(n, key=lambda i: -sp.rate[i]):
        while n[i] > (1 if i == lead else 0):
            n[i] -= 1
            if max(_deficit(sp, n)) > 1e-9:
                n[i] += 1
                break
    return {i: r for i, r in n.items() if r > 0}


def solve_greedy(p: Problem) -> Solution | None:
    """Cheapest-supply-first covering, then trim; fast enough for large grids."""
    sol: Solution = {}
    for sp in p.stages:
        ok = _lead_options(sp)
        if not ok:
            return None
        lead = min(ok, key=lambda i: (sp.rate[i], sp.lead_latency[i]))
        if sp.single:
            sol[sp.name] = {lead: 1}
            continue
        got = _greedy_stage(sp, lead)
        if got is None:
            return None
        sol[sp.name] = got
    return sol


def solve_milp(p: Problem, time_limit: float = 10.0) -> Solution | None:
    """Exact optimum of the proxy: integer replicas, lead binaries, whole servers per GPU type.

    Columns: per stage option a replica count ``n`` and a binary ``y`` (this option serves the
    first job, so it must fit the stage's budget), then one server count per GPU type. The
    objective is whole servers x price, with tiny tie-breaks towards fewer GPUs.
    """
    cols: list[tuple[str, str, int]] = []  # (kind, stage, option)
    for sp in p.stages:
        for i in range(len(sp.options)):
            cols.append(("n", sp.name, i))
            cols.append(("y", sp.name, i))
    gpus = sorted({o.gpu for sp in p.stages for o in sp.options})
    col = {c: k for k, c in enumerate(cols)}
    nserv = {g: len(cols) + k for k, g in enumerate(gpus)}
    nvar = len(cols) + len(gpus)
    c = np.zeros(nvar)
    for g in gpus:
        c[nserv[g]] = p.server_size[g] * p.prices[g] + 1e-6
    for sp in p.stages:
        for i, o in enumerate(sp.options):
            c[col[("n", sp.name, i)]] = 1e-4 * o.devices
    rows: list[np.ndarray] = []
    lb: list[float] = []
    ub: list[float] = []

    def add(coef: dict[int, float], lo: float, hi: float) -> None:
        r = np.zeros(nvar)
        for k, v in coef.items():
            r[k] = v
        rows.append(r)
        lb.append(lo)
        ub.append(hi)

    upper = np.full(nvar, np.inf)
    for sp in p.stages:
        add({col[("y", sp.name, i)]: 1 for i in range(len(sp.options))}, 1, 1)
        for i, lat in enumerate(sp.lead_latency):
            upper[col[("y", sp.name, i)]] = 1 if lat <= sp.budget else 0
            add({col[("n", sp.name, i)]: 1, col[("y", sp.name, i)]: -1}, 0, np.inf)
        if sp.single:
            add({col[("n", sp.name, i)]: 1 for i in range(len(sp.options))}, 1, 1)
            continue
        for t, wk, d in sp.checkpoints:
            add({col[("n", sp.name, i)]: supply(t, sp.per_job[i], wk) for i in range(len(sp.options))}, d, np.inf)
    for g in gpus:
        coef = {col[("n", sp.name, i)]: o.devices for sp in p.stages for i, o in enumerate(sp.options) if o.gpu == g}
        coef[nserv[g]] = -p.server_size[g]
        add(coef, -np.inf, 0)
        if p.counts is not None:
            upper[nserv[g]] = p.counts.get(g, 0) // p.server_size[g]
    res = milp(c, constraints=LinearConstraint(np.array(rows), lb, ub), integrality=np.ones(nvar),
               bounds=Bounds(np.zeros(nvar), upper), options={"time_limit": time_limit})
    if res.x is None:
        return None
    sol: Solution = {}
    for (kind, s, i), x in zip(cols, res.x):
        if kind == "n" and x > 0.5:
            sol.setdefault(s, {})[i] = round(x)
    return sol


def to_allocation(p: Problem, sol: Solution, scale: float = 1.0) -> Allocation:
    """Replica counts to instances; ``scale`` grows bulk replicas when the simulator says so."""
    alloc: Allocation = {}
    for sp in p.stages:
        for i, r in sol.get(sp.name, {}).items():
            if not sp.single and scale > 1.0:
                r = max(r, math.ceil(r * scale))
            o = sp.options[i]
            alloc.setdefault(sp.name, []).append(Instance(o.gpu, o.devices, r))
    return alloc


def proxy_cost(p: Problem, sol: Solution) -> float:
    """$/hour of a solution, billed per whole server."""
    used: dict[str, int] = {}
    for sp in p.stages:
        for i, r in sol.get(sp.name, {}).items():
            o = sp.options[i]
            used[o.gpu] = used.get(o.gpu, 0) + o.devices * r
    return sum(math.ceil(n / p.server_size[g]) * p.server_size[g] * p.prices[g] for g, n in used.items())
