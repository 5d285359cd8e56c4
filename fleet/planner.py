"""Provision planner: which GPUs, how many, split how between stages, for a TTFF target.

Every candidate plan is judged by the discrete-event simulator (:func:`simulator.simulate`):
TTFF is the stall-free one (every chunk done by TTFF + its start in the video) and cost is the
paper's billing unless asked otherwise: every GPU, rounded up to whole 8-GPU servers per type,
for the whole run (request to last frame generated), at the paper's prices.

Two families of plans:

* Paced single-pool plans from a *proxy* covering model: every stage gets a share of the TTFF
  target; chunk k must leave stage s by ``T + offset_k - (later stages' shares)``. Replicas
  supply whole jobs at ``1/service`` per second, so "cumulative supply >= cumulative demand at
  every deadline" is linear in the replica counts. ``solve_milp`` solves it exactly
  (scipy.optimize.milp / HiGHS, including whole servers per GPU type); ``solve_greedy`` adds the
  best supply-per-dollar replica at the most violated deadline, then trims (:func:`_try`).
* Burst plans (:func:`plan_burst`): generate ahead of playback and release every server when
  the episode is done, which is what the paper's rule rewards. Chunk k is due at
  ``min(T + offset_k, horizon)``; each chunk's window gets the cheapest chain of options that
  fits (:func:`chain_choice`), so the first chunks run on fast multi-GPU instances (often of a
  faster GPU type) and the bulk on single-GPU replicas; the simulator then repairs (adds
  replicas where the latest chunk queued) and a hill-climb removes or downsizes replicas while
  every chunk stays on time. The covering proxy with the same windows (greedy or MILP) is a
  second starting point.

The outer search tries short lead chunks and low-quality first chunks (keeping at least
``min_high`` of the frames at high quality), horizons and queueing slack, and keeps the best
simulated plan for the objective. ``billing="startup-pool"`` adds :func:`plan_paced`, whose
startup servers are billed only until their last job: a variant, not the paper's rule.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from fleet.paper_profiles import TIERS, Job, Option, ProfileError, Profiles, Workload
from fleet.simulator import (
    Allocation,
    Chunk,
    Instance,
    SimResult,
    option_of,
    simulate,
    standard_chunks,
)


@dataclass(frozen=True)
class StageProblem:
    name: str
    options: tuple[Option, ...]
    rate: tuple[float, ...]  # $/hour of one replica
    lead_latency: tuple[float, ...]  # first job on one replica
    per_job: tuple[float, ...]  # standard job (for supply)
    budget: float
    checkpoints: tuple[tuple[float, float, float], ...]  # (time since first input, job weight, cumulative work) in std jobs
    single: bool  # scene/once stages: exactly one replica


@dataclass(frozen=True)
class Problem:
    stages: tuple[StageProblem, ...]
    server_size: dict[str, int]
    prices: dict[str, float]
    counts: dict[str, int] | None = None  # device limits (local profiles)


Solution = dict[str, dict[int, int]]  # stage -> option index -> replicas


@dataclass
class Plan:
    objective: str
    allocation: Allocation
    chunks: list[Chunk]
    result: SimResult
    solver: str
    ttff_target: float
    pipelined: bool = True
    notes: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        prov = {g: self.result.billed_gpus.get(g, 0) for g in ("a100", "h100", "h200", "gb200")}
        for g, n in self.result.billed_gpus.items():
            prov.setdefault(g, n)
        return {"objective": self.objective, "provision": prov, "ttff_s": round(self.result.ttff_s, 3),
                "tbf_s": round(self.result.tbf_s, 4), "total_time_s": round(self.result.total_time_s, 2),
                "cost": round(self.result.cost, 3), "energy_kwh": round(self.result.energy_kwh, 3),
                "pipelined": self.pipelined}


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
    offsets = np.cumsum([0.0] + [c.frames / w.fps for c in chunks[:-1]])
    std = Job(w.video_s / w.subscenes, w.subscene_frames, 1.0)
    active = [s for s in profiles.stages if not s.optional or any(TIERS[c.tier][1] for c in chunks)]
    first_chunk = chunks[0]
    lead_jobs, fastest = {}, {}
    for s in active:
        if s.per == "chunk":
            lead_jobs[s.name] = Job(first_chunk.frames / w.fps, first_chunk.frames,
                                    TIERS[first_chunk.tier][0] if s.tiered else 1.0)
        else:
            lead_jobs[s.name] = Job(scene_s, math.ceil(scene_s * w.fps), first=True)
        if s.optional and not TIERS[first_chunk.tier][1]:
            lead_jobs[s.name] = Job(0.0, 0, 0.0)  # the first chunk skips this stage
        fastest[s.name] = min(o.service(lead_jobs[s.name]) for o in s.options)
    total_fast = sum(fastest.values())
    if total_fast > ttff:
        raise ProfileError(f"TTFF target {ttff:g} s is below the fastest first-chunk path ({total_fast:.2f} s)")
    budgets = _split_budget(active, lead_jobs, prices, ttff)
    names = [s.name for s in active]
    chain_after: dict[str, list[float]] = {}
    chain_before: dict[str, list[float]] = {}
    if horizon is not None:  # per chunk: the latency its later stages need, on its cheapest fitting chain
        cst = [s for s in active if s.per == "chunk"]
        t_fixed = sum(budgets[s.name] for s in active if s.per != "chunk")
        chain_after = {s.name: [] for s in cst}
        chain_before = {s.name: [] for s in cst}
        for k, c in enumerate(chunks):
            run = [s for s in cst if _runs(s, c)]
            jobs = [_chunk_job(s, c, w) for s in run]
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
    stages = []
    for i, s in enumerate(active):
        before = sum(budgets[n] for n in names[:i])
        after = sum(budgets[n] for n in names[i + 1:])
        checkpoints: list[tuple[float, float, float]] = []
        if s.per == "chunk":
            std_t = [o.service(std) for o in s.options]
            cum = 0.0
            for k, c in enumerate(chunks):
                if s.optional and not TIERS[c.tier][1]:
                    continue
                job = Job(c.frames / w.fps, c.frames, TIERS[c.tier][0] if s.tiered else 1.0)
                wk = s.options[0].service(job) / std_t[0]
                cum += wk
                if horizon is None:
                    due = ttff + offsets[k] - after
                else:
                    due = min(ttff + offsets[k], max(horizon, ttff)) - chain_after[s.name][len(checkpoints)]
                checkpoints.append((due - before, wk, cum))
            if horizon is not None:
                checkpoints = _interval_checkpoints([t + before for t, _, _ in checkpoints], chain_before[s.name],
                                                    [wk for _, wk, _ in checkpoints])
            per_job = tuple(std_t)
        else:
            per_job = tuple(o.service(Job(scene_s, 1)) for o in s.options)
        lead = tuple(o.service(lead_jobs[s.name]) for o in s.options)
        rate = tuple(o.devices * prices[o.gpu] for o in s.options)
        stages.append(StageProblem(s.name, s.options, rate, lead, per_job, budgets[s.name] + 1e-9,
                                   tuple(checkpoints), s.per != "chunk"))
    return Problem(tuple(stages), profiles.server_size, prices, counts)


def _interval_checkpoints(dues: list[float], releases: list[float], weights: list[float],
                          quantiles: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 0.9)) -> tuple:
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


def _split_budget(active, lead_jobs, prices, ttff: float) -> dict[str, float]:
    """Share the TTFF target between stages where speed is cheap.

    Start every stage on its cheapest option, then repeatedly upgrade the stage whose next
    faster option buys the most seconds per extra $/hour, until the first chunk fits;
    leftover time is shared pro rata. Speed is very unequally priced (a 16-GPU FLUX saves
    9 s for 15 GPUs; a 32-GPU lip-sync saves minutes), so a proportional split wastes money.
    """
    menus = {}
    for s in active:
        pts = sorted((o.devices * prices[o.gpu], o.service(lead_jobs[s.name])) for o in s.options)
        frontier, best = [], math.inf
        for rate, lat in pts:
            if lat < best - 1e-12:
                frontier.append((rate, lat)); best = lat
        menus[s.name] = frontier
    pick = {k: 0 for k in menus}
    lat = lambda: sum(menus[k][pick[k]][1] for k in menus)
    while lat() > ttff:
        def gain(k: str) -> float:
            if pick[k] + 1 >= len(menus[k]):
                return -1.0
            (r0, l0), (r1, l1) = menus[k][pick[k]], menus[k][pick[k] + 1]
            return (l0 - l1) / max(r1 - r0, 1e-9)
        k = max(menus, key=gain)
        if gain(k) < 0:
            break
        pick[k] += 1
    chosen = {k: menus[k][pick[k]][1] for k in menus}
    total = sum(chosen.values())
    return {k: v * ttff / total if total else 0.0 for k, v in chosen.items()}


def supply(t: float, per_job: float, weight: float) -> float:
    """Work (in standard jobs) one replica finishes by ``t`` in jobs of ``weight``: whole jobs only."""
    if t <= 0 or weight <= 0:
        return 0.0
    return math.floor(t / (per_job * weight) + 1e-9) * weight


def _feasible_single(sp: StageProblem, scene_s: float = math.inf) -> list[int]:
    return [i for i, l in enumerate(sp.lead_latency) if l <= sp.budget]


def solve_greedy(p: Problem) -> Solution | None:
    """Cheapest-supply-first covering, then trim; fast enough for large grids."""
    sol: Solution = {}
    for sp in p.stages:
        ok = _feasible_single(sp)
        if not ok:
            return None
        if sp.single:
            sol[sp.name] = {min(ok, key=lambda i: (sp.rate[i], sp.lead_latency[i])): 1}
            continue
        lead = min(ok, key=lambda i: (sp.rate[i], sp.lead_latency[i]))
        n = {lead: 1}

        def deficit(n: dict[int, int], sp: StageProblem = sp) -> list[float]:
            return [d - sum(r * supply(t, sp.per_job[i], wk) for i, r in n.items()) for t, wk, d in sp.checkpoints]

        for _ in range(100000):
            defs = deficit(n)
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
        for i in sorted(n, key=lambda i: -sp.rate[i]):  # trim the expensive ones first
            while n[i] > (1 if i == lead else 0):
                n[i] -= 1
                if max(deficit(n)) > 1e-9:
                    n[i] += 1
                    break
        sol[sp.name] = {i: r for i, r in n.items() if r > 0}
    return sol


def solve_milp(p: Problem, time_limit: float = 10.0) -> Solution | None:
    """Exact optimum of the proxy: integer replicas, lead binaries, whole servers per GPU type."""
    cols: list[tuple[str, str, int]] = []  # (kind, stage, option)
    for sp in p.stages:
        for i in range(len(sp.options)):
            cols.append(("n", sp.name, i))
            cols.append(("y", sp.name, i))
    gpus = sorted({o.gpu for sp in p.stages for o in sp.options})
    col_index = {c: k for k, c in enumerate(cols)}
    nserv = {g: len(cols) + k for k, g in enumerate(gpus)}
    nvar = len(cols) + len(gpus)
    c = np.zeros(nvar)
    for g in gpus:
        c[nserv[g]] = p.server_size[g] * p.prices[g] + 1e-6
    for sp in p.stages:  # tiny tie-break towards fewer GPUs
        for i, o in enumerate(sp.options):
            c[col_index[("n", sp.name, i)]] = 1e-4 * o.devices
    A, lb, ub = [], [], []

    def row() -> np.ndarray:
        return np.zeros(nvar)

    upper = np.full(nvar, np.inf)
    for sp in p.stages:
        r = row()
        for i, l in enumerate(sp.lead_latency):
            r[col_index[("y", sp.name, i)]] = 1
            upper[col_index[("y", sp.name, i)]] = 1 if l <= sp.budget else 0
        A.append(r); lb.append(1); ub.append(1)
        for i in range(len(sp.options)):
            r = row(); r[col_index[("n", sp.name, i)]] = 1; r[col_index[("y", sp.name, i)]] = -1
            A.append(r); lb.append(0); ub.append(np.inf)
        if sp.single:
            r = row()
            for i in range(len(sp.options)):
                r[col_index[("n", sp.name, i)]] = 1
            A.append(r); lb.append(1); ub.append(1)
            continue
        for t, wk, d in sp.checkpoints:
            r = row()
            for i in range(len(sp.options)):
                r[col_index[("n", sp.name, i)]] = supply(t, sp.per_job[i], wk)
            A.append(r); lb.append(d); ub.append(np.inf)
    for g in gpus:
        r = row()
        for sp in p.stages:
            for i, o in enumerate(sp.options):
                if o.gpu == g:
                    r[col_index[("n", sp.name, i)]] = o.devices
        r[nserv[g]] = -p.server_size[g]
        A.append(r); lb.append(-np.inf); ub.append(0)
        if p.counts is not None:
            upper[nserv[g]] = p.counts.get(g, 0) // p.server_size[g]
    res = milp(c, constraints=LinearConstraint(np.array(A), lb, ub), integrality=np.ones(nvar),
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


def within_counts(alloc: Allocation, counts: dict[str, int] | None) -> bool:
    if counts is None:
        return True
    used: dict[str, int] = {}
    for insts in alloc.values():
        for i in insts:
            used[i.gpu] = used.get(i.gpu, 0) + i.devices * i.replicas
    return all(n <= counts.get(g, 0) for g, n in used.items())


LEADS: tuple[tuple[int, ...], ...] = ((), (21,), (9, 21))
LOW_CHUNKS: tuple[int, ...] = (0, 1, 2, 4, 8, 16)


BILLING = ("paper", "startup-pool")


def plan(profiles: Profiles, w: Workload, ttff: float, objective: str = "cost", solver: str = "heuristic",
         spot: bool = True, counts: dict[str, int] | None = None, tier: str = "high",
         on_step: Callable[[], None] | None = None, ttff_grid: tuple[float, ...] | None = None,
         billing: str = "paper", min_high: float = 0.0, burst: bool = True) -> Plan | None:
    """Best simulated plan: min cost with TTFF <= target (no stalls), or min TTFF x cost.

    Every candidate is judged by :func:`simulator.simulate`; ``min_high`` is the least share
    of frames at high quality. Candidates under the paper's billing (every server for the
    whole run): single-pool plans paced to playback from the proxy solvers (:func:`_try`),
    and burst plans that generate ahead of playback and release every server at the end
    (:func:`plan_burst`). ``billing="startup-pool"`` adds the paced two-pool plans whose
    startup pool is billed only until its last job ends (:func:`plan_paced`): not the
    paper's rule, so never the headline comparison.
    """
    if billing not in BILLING:
        raise ValueError(f"billing must be one of {BILLING}")
    targets = (ttff,) if objective == "cost" else (ttff_grid or tuple(ttff * f for f in (1, 1.5, 2, 4, 8, 16)))
    key = (lambda p: p.result.cost) if objective == "cost" else (lambda p: p.result.ttff_s * p.result.cost)
    best: Plan | None = None

    def consider(cand: Plan | None) -> None:
        nonlocal best
        if cand is None or (objective == "cost" and cand.result.ttff_s > ttff + 1e-6):
            return
        if cand.result.high_share < min_high - 1e-9 or not within_counts(cand.allocation, counts):
            return
        cand.objective = objective
        if best is None or key(cand) < key(best):
            best = cand

    for target in targets:
        for lead in LEADS:
            for low in LOW_CHUNKS:
                for slack in (1.0, 0.8):
                    if on_step:
                        on_step()
                    if high_share(standard_chunks(w, tier=tier, lead=lead, low_chunks=low)) >= min_high - 1e-9:
                        consider(_try(profiles, w, target, slack, lead, low, solver, spot, counts, tier))
        if burst:
            if objective == "cost":
                solvers, thetas, polish = ("ladder", "milp" if solver == "milp" else "heuristic"), BURST_THETAS, BURST_POLISH
            else:  # several targets: a lighter search per target
                solvers, thetas, polish = ("ladder",), BURST_THETAS[:1], 2
            consider(plan_burst(profiles, w, target, spot, tier, min_high, solvers, on_step, key=key, counts=counts,
                                thetas=thetas, polish=polish))
        if billing == "startup-pool" and counts is None:
            consider(plan_paced(profiles, w, target, spot, tier, on_step, key=key, min_high=min_high))
    return best


def search_steps(objective: str, ttff_grid: tuple[float, ...] | None = None, n_gpu_types: int = 4,
                 billing: str = "paper") -> int:
    """Progress-bar length for :func:`plan` (one step per candidate configuration)."""
    n = 1 if objective == "cost" else len(ttff_grid or (1, 2, 3, 4, 5, 6))
    paced = n_gpu_types * len(PACED_CAPS) * len(PACED_LEADS) * len(PACED_LOW) * len(PACED_MID)
    burst = len(BURST_LEADS) * len(BURST_LOW) * len(BURST_HORIZONS) * (len(BURST_THETAS) * 2 if n == 1 else 1)
    return n * (len(LEADS) * len(LOW_CHUNKS) * 2 + burst + (paced if billing == "startup-pool" else 0))


def _try(profiles: Profiles, w: Workload, target: float, slack: float, lead: tuple[int, ...], low: int,
         solver: str, spot: bool, counts: dict[str, int] | None, tier: str) -> Plan | None:
    chunks = standard_chunks(w, tier=tier, lead=lead, low_chunks=low)
    try:
        prob = build_problem(profiles, w, chunks, target * slack, spot, counts)
    except ProfileError:
        return None
    sol = solve_milp(prob) if solver == "milp" else solve_greedy(prob)
    if sol is None:
        return None
    for scale in (1.0, 1.15, 1.35, 1.7, 2.2):
        alloc = to_allocation(prob, sol, scale)
        if not within_counts(alloc, counts):
            return None
        res = simulate(profiles, alloc, w, chunks, pipelined=True, spot=spot)
        if res.ttff_s <= target + 1e-6:
            return Plan("cost", alloc, chunks, res, solver, target, notes={"lead": lead, "low_chunks": low, "scale": scale})
    return None


# --------------------------------------------------------------------------- paced two-pool plans

PACED_LOW: tuple[int, ...] = (2, 4, 8, 16, 32)
PACED_LEADS: tuple[tuple[int, ...], ...] = ((9, 21), (9, 21, 40))
PACED_CAPS: tuple[int, ...] = (8, 16)
PACED_MID: tuple[float | None, ...] = (None,)  # 12.0, 30.0: a middle class; never won, 3x the search


def _cheapest(stage, job: Job, prices: dict[str, float], max_devices: int = 8) -> Option:
    """Bulk option: least $ per job (devices x price x service), small instances only."""
    opts = [o for o in stage.options if o.devices <= max_devices] or list(stage.options)
    return min(opts, key=lambda o: (o.devices * prices[o.gpu] * o.service(job), o.service(job)))


def _fastest(stage, job: Job, gpu: str, cap: int) -> Option | None:
    opts = [o for o in stage.options if o.gpu == gpu and o.devices <= cap]
    return min(opts, key=lambda o: (o.service(job), o.devices)) if opts else None


def paced_allocation(profiles: Profiles, w: Workload, chunks: list[Chunk], target: float, fast_gpu: str,
                     cap: int, n_start: int, spot: bool = True, max_iter: int = 400,
                     slack: float = 1.05, mid_latency: float | None = None) -> tuple[Allocation, SimResult] | None:
    """Two pools, generation paced to playback (chunk k is due at TTFF + its start in the video).

    * Startup pool on ``fast_gpu``: the script LLM, the key image, the first scene's TTS and the
      first ``n_start`` chunks (low quality, short), on fast instances of at most ``cap`` GPUs.
      Billed only until its last job ends.
    * Bulk pool: the other chunks on each stage's cheapest-per-job option, held for the episode.
    Replicas start at the throughput lower bound; the simulator then adds one replica where the
    worst late chunk queued longest, until every chunk meets its playout deadline (or gives up).
    """
    prices = profiles.spot if spot else profiles.reserved
    scene_s = w.video_s / w.scenes
    std = Job(w.video_s / w.subscenes, w.subscene_frames, 1.0)
    first = chunks[0]
    offsets = np.cumsum([0.0] + [c.frames / w.fps for c in chunks[:-1]])
    # The bulk pool's cheap replicas are slow (a 128 s lip-sync per chunk on one A100): the
    # startup pool keeps serving chunks until the bulk chain's latency fits a chunk's deadline.
    chain = sum(_cheapest(s, std, prices).service(std) for s in profiles.stages if s.per == "chunk")
    n_mid = next((k for k, o in enumerate(offsets) if target + o >= slack * chain), len(chunks))
    n_pool = max(n_start, n_mid)
    mids: dict[str, Option] = {}
    n_fast = n_pool
    if mid_latency is not None:  # a cost-efficient middle class between the fast and the bulk one
        for s in profiles.stages:
            if s.per == "chunk":
                ok = [o for o in s.options if o.service(std) <= mid_latency and o.devices <= 16]
                if ok:
                    mids[s.name] = min(ok, key=lambda o: (o.devices * prices[o.gpu] * o.service(std), o.service(std)))
        if len(mids) == sum(1 for s in profiles.stages if s.per == "chunk"):
            mchain = sum(mids[s.name].service(std) for s in profiles.stages if s.per == "chunk")
            n_fast = min(n_pool, max(n_start, next((k for k, o in enumerate(offsets) if target + o >= slack * mchain), n_pool)))
        else:
            mids = {}
    alloc: Allocation = {}
    for s in profiles.stages:
        if s.per == "chunk" and s.optional and not any(TIERS[c.tier][1] for c in chunks):
            continue
        lead_job = (Job(first.frames / w.fps, first.frames, TIERS[first.tier][0] if s.tiered else 1.0)
                    if s.per == "chunk" else Job(scene_s, math.ceil(scene_s * w.fps), first=True))
        fast = _fastest(s, lead_job, fast_gpu, cap if s.name != "script" else 8)
        if s.per != "chunk" and fast is None:
            return None
        if s.name in ("script", "image") or s.per == "once":
            alloc[s.name] = [Instance(fast.gpu, fast.devices, 1, None, True)]
            continue
        bulk = _cheapest(s, std if s.per == "chunk" else Job(scene_s, 1), prices)
        if s.per == "scene":
            alloc[s.name] = [Instance(fast.gpu, fast.devices, 1, (0, 1), True), Instance(bulk.gpu, bulk.devices, 1, (1, 10**9))]
            continue
        insts = []
        needs_fast = any(not s.optional or TIERS[c.tier][1] for c in chunks[:n_pool])
        if n_pool > 0 and needs_fast:
            if fast is None:
                return None
            insts.append(Instance(fast.gpu, fast.devices, 1, (0, n_fast), True))
            if n_fast < n_pool:
                m = mids[s.name]
                insts.append(Instance(m.gpu, m.devices, 1, (n_fast, n_pool), True))
        work = sum(bulk.service(Job(c.frames / w.fps, c.frames, TIERS[c.tier][0] if s.tiered else 1.0))
                   for c in chunks[n_pool:] if not s.optional or TIERS[c.tier][1])
        if work > 0:
            insts.append(Instance(bulk.gpu, bulk.devices, max(1, math.ceil(work / (w.video_s + target))), (n_pool, 10**9)))
        alloc[s.name] = insts
    chunk_scene = [min(w.scenes - 1, int((o + 1e-9) // scene_s)) for o in offsets]
    for _ in range(max_iter):
        res = simulate(profiles, alloc, w, chunks, pipelined=True, spot=spot)
        k = _latest_chunk(res, offsets, target)
        if k is None:
            return alloc, res
        where = _most_waited(profiles, alloc, res, k, chunk_scene)
        if where is None:  # pure latency: more replicas cannot help
            return None
        name, j = where
        insts = alloc[name]
        for n, inst in enumerate(insts):
            if inst.jobs is None or inst.jobs[0] <= j < inst.jobs[1]:
                step = 1 if inst.startup else max(1, inst.replicas // 16)
                insts[n] = Instance(inst.gpu, inst.devices, inst.replicas + step, inst.jobs, inst.startup)
                break
    return None


def plan_paced(profiles: Profiles, w: Workload, target: float, spot: bool = True, tier: str = "high",
               on_step: Callable[[], None] | None = None, key=None, min_high: float = 0.0) -> Plan | None:
    """Search the paced two-pool plans (fast GPU type, instance cap, low-quality lead chunks)."""
    key = key or (lambda p: p.result.cost)
    best: Plan | None = None
    for fast_gpu in profiles.gpu_types:
        for cap in PACED_CAPS:
            for lead in PACED_LEADS:
                for low, mid in ((lo, m) for lo in PACED_LOW for m in PACED_MID):
                    if on_step:
                        on_step()
                    chunks = standard_chunks(w, tier=tier, lead=lead, low_chunks=low)
                    if high_share(chunks) < min_high - 1e-9:
                        continue
                    try:
                        got = paced_allocation(profiles, w, chunks, target, fast_gpu, cap, low, spot, mid_latency=mid)
                    except (ValueError, KeyError):
                        got = None
                    if got is None:
                        continue
                    alloc, res = got
                    cand = Plan("cost", alloc, chunks, res, "paced", target,
                                notes={"lead": lead, "low_chunks": low, "mid_latency": mid, "startup": f"{fast_gpu}<= {cap}",
                                       "startup_window_s": round(res.startup_window_s, 1),
                                       "cost_strict": round(res.cost_strict, 2)})
                    if best is None or key(cand) < key(best):
                        best = cand
    return best


# --------------------------------------------------------------------------- burst plans (the paper's billing)

def _chunk_job(stage, c: Chunk, w: Workload) -> Job:
    return Job(c.frames / w.fps, c.frames, TIERS[c.tier][0] if stage.tiered else 1.0)


def _runs(stage, c: Chunk) -> bool:
    return not stage.optional or TIERS[c.tier][1]


def _per_job_cost(o: Option, job: Job, prices: dict[str, float]) -> float:
    return o.devices * prices[o.gpu] * o.service(job)


def _frontier(stage, job: Job, prices: dict[str, float]) -> list[Option]:
    """Options no faster option beats on $ per job, fastest first (so slower = cheaper per job)."""
    return _frontier_cached(stage, job, tuple(sorted(prices.items())))


@functools.lru_cache(maxsize=4096)
def _frontier_cached(stage, job: Job, price_items: tuple) -> list[Option]:
    prices = dict(price_items)
    out, best = [], math.inf
    for o in sorted(stage.options, key=lambda o: (o.service(job), _per_job_cost(o, job, prices))):
        c = _per_job_cost(o, job, prices)
        if c < best - 1e-12:
            out.append(o)
            best = c
    return out


def _frontier_rate(stage, job: Job, prices: dict[str, float]) -> list[Option]:
    """Options no faster option beats on $/hour, fastest first."""
    out, best = [], math.inf
    for o in sorted(stage.options, key=lambda o: (o.service(job), o.devices * prices[o.gpu])):
        if o.devices * prices[o.gpu] < best - 1e-12:
            out.append(o)
            best = o.devices * prices[o.gpu]
    return out


def chain_choice(stages: list, jobs: list[Job], prices: dict[str, float], avail: float,
                 by_rate: bool = False) -> list[Option] | None:
    """Cheapest option per stage for one chunk whose chain latency fits ``avail`` seconds.

    Starts every stage on its cheapest option and speeds up the stage that buys the most
    seconds per extra $ until the chain fits (None: even the fastest chain does not). Cheap
    means $ per job (throughput-bound instances), or with ``by_rate`` $ per hour: an instance
    that exists for a few early chunks is paid for by the hour, however little it works.
    """
    menus = [(_frontier_rate if by_rate else _frontier)(s, j, prices) for s, j in zip(stages, jobs)]

    def cost(o: Option, job: Job) -> float:
        return o.devices * prices[o.gpu] if by_rate else _per_job_cost(o, job, prices)

    pick = [len(m) - 1 for m in menus]
    while sum(m[p].service(j) for m, p, j in zip(menus, pick, jobs)) > avail + 1e-12:
        best, gain = None, 0.0
        for i, (m, p, j) in enumerate(zip(menus, pick, jobs)):
            if p == 0:
                continue
            slow, fast = m[p], m[p - 1]
            g = (slow.service(j) - fast.service(j)) / max(cost(fast, j) - cost(slow, j), 1e-12)
            if g > gain:
                best, gain = i, g
        if best is None:
            return None
        pick[best] -= 1
    return [m[p] for m, p in zip(menus, pick)]


def burst_allocation(profiles: Profiles, w: Workload, chunks: list[Chunk], target: float, horizon: float | None,
                     theta: float = 0.8, spot: bool = True, max_iter: int = 400,
                     trim: bool = True, early_share: float = 0.25) -> tuple[Allocation, SimResult] | None:
    """One pool, every server held until the episode is generated (the paper's cost rule).

    * Fixed stages (script LLM, key image, TTS) and the first chunk share the TTFF target on
      the cheapest $/hour options that fit (:func:`_split_budget`).
    * Chunk k is due at ``min(target + offset_k, horizon)``: playback order for the first
      chunks, the whole episode by the horizon, so every server is released early (a burst).
    * Each chunk's window is rounded down to a ladder of windows (x2 apart) and gets the
      cheapest chain of options that fits ``theta`` x the window (:func:`chain_choice`): the
      first chunks land on fast multi-GPU instances, later ones on cheaper, slower ones, the
      bulk on single-GPU replicas. An option's first replica count covers the work of its chunks
      by their windows. No job ranges: a fast instance that is free takes the next chunk
      (the simulator sends each job to the replica that finishes it first).
    * The simulator then adds replicas where the latest chunk queued longest until no chunk
      stalls (TTFF <= target), or gives up when a chunk is late without queueing; ``trim``
      then removes replicas while the plan stays stall-free and gets cheaper.
    """
    prices = profiles.spot if spot else profiles.reserved
    scene_s = w.video_s / w.scenes
    offsets = [0.0]
    for c in chunks[:-1]:
        offsets.append(offsets[-1] + c.frames / w.fps)
    active = [s for s in profiles.stages if any(_runs(s, c) for c in chunks) or s.per != "chunk"]
    first = chunks[0]
    lead_jobs = {s.name: (_chunk_job(s, first, w) if s.per == "chunk" else Job(scene_s, math.ceil(scene_s * w.fps), first=True))
                 for s in active}
    for s in active:
        if s.per == "chunk" and not _runs(s, first):
            lead_jobs[s.name] = Job(0.0, 0, 0.0)
    if sum(min(o.service(lead_jobs[s.name]) for o in s.options) for s in active) > target:
        return None
    budgets = _split_budget(active, lead_jobs, prices, target)
    alloc: Allocation = {}
    t_fixed = 0.0
    for s in active:
        if s.per == "chunk":
            continue
        ok = [o for o in s.options if o.service(lead_jobs[s.name]) <= budgets[s.name] + 1e-9]
        o = min(ok, key=lambda o: (o.devices * prices[o.gpu], o.service(lead_jobs[s.name])))
        alloc[s.name] = [Instance(o.gpu, o.devices, 1)]
        t_fixed += o.service(lead_jobs[s.name])
    cstages = [s for s in active if s.per == "chunk"]
    lead_window = target - t_fixed
    need: dict[tuple[str, Option], int] = {}
    work: dict[tuple[str, Option], float] = {}
    for k, c in enumerate(chunks):
        due = target + offsets[k] if horizon is None else min(target + offsets[k], max(horizon, target))
        window = due - t_fixed
        capped = horizon is not None and due < target + offsets[k]
        if capped:
            window *= theta
        elif k and theta * window >= lead_window:  # round down to the ladder, keep theta for queueing
            window = lead_window * 2 ** math.floor(math.log2(theta * window / lead_window))
        run = [s for s in cstages if _runs(s, c)]
        jobs = [_chunk_job(s, c, w) for s in run]
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
    for s in cstages:
        alloc[s.name] = [Instance(o.gpu, o.devices, n) for (name, o), n in need.items() if name == s.name]
    got = repair(profiles, w, chunks, alloc, target, spot, max_iter)
    if got is not None and trim:
        got = _trim(profiles, w, chunks, got[0], got[1], lambda r: r.ttff_s > target + 1e-9, spot)
    return got


def repair(profiles: Profiles, w: Workload, chunks: list[Chunk], alloc: Allocation, target: float,
           spot: bool = True, max_iter: int = 400) -> tuple[Allocation, SimResult] | None:
    """Simulate; while some chunk is late for playback (TTFF > target), add replicas (+10%) where
    the latest chunk queued longest, or, when it did not queue, one replica of the next faster
    option where its chain is slowest. None when nothing helps within ``max_iter`` steps."""
    scene_s = w.video_s / w.scenes
    offsets = [0.0]
    for c in chunks[:-1]:
        offsets.append(offsets[-1] + c.frames / w.fps)
    chunk_scene = [min(w.scenes - 1, int((o + 1e-9) // scene_s)) for o in offsets]
    alloc = {s: list(v) for s, v in alloc.items()}
    cstages = [s for s in profiles.stages if s.per == "chunk" and s.name in alloc]
    for _ in range(max_iter):
        res = simulate(profiles, alloc, w, chunks, pipelined=True, spot=spot)
        k = _latest_chunk(res, offsets, target)
        if k is None:
            return alloc, res
        where = _most_waited(profiles, alloc, res, k, chunk_scene)
        if where is None:  # late without queueing: speed up the slowest step of its chain
            if not _speed_up(alloc, cstages, chunks[k], w):
                return None
            continue
        name, ci = where[0], res.served[where[0]][where[1]]
        live = [n for n, i in enumerate(alloc[name]) if i.replicas > 0]
        n = live[ci]
        inst = alloc[name][n]
        alloc[name][n] = Instance(inst.gpu, inst.devices, inst.replicas + max(1, inst.replicas // 10), inst.jobs, inst.startup)
    return None


def _latest_chunk(res: SimResult, offsets: list[float], target: float) -> int | None:
    """The chunk that misses its playback time (TTFF + its start) by the most, or None if none does."""
    late = [d - o - target for d, o in zip(res.chunk_done, offsets)]
    k = max(range(len(late)), key=lambda j: late[j])
    return k if late[k] > 1e-9 else None


def _most_waited(profiles: Profiles, alloc: Allocation, res: SimResult, k: int,
                 chunk_scene: list[int]) -> tuple[str, int] | None:
    """The stage where late chunk ``k`` (or its scene) queued longest, and that job's index."""
    best, where = 1e-9, None
    for s in profiles.stages:
        if s.name not in alloc or s.name == "script" or s.per == "once":
            continue
        j = k if s.per == "chunk" else chunk_scene[k]
        wt = res.waits.get(s.name, [])
        if j < len(wt) and wt[j] > best:
            best, where = wt[j], (s.name, j)
    return where


def _speed_up(alloc: Allocation, cstages: list, chunk: Chunk, w: Workload) -> bool:
    """Add one replica of the next faster option at the chunk stage where ``chunk`` is slowest."""
    best = None
    for s in cstages:
        if not _runs(s, chunk) or s.name not in alloc:
            continue
        job = _chunk_job(s, chunk, w)
        fastest = min(option_of(s, i).service(job) for i in alloc[s.name] if i.replicas > 0)
        faster = [o for o in s.options if o.service(job) < fastest - 1e-9]
        if faster and (best is None or fastest > best[0]):
            best = (fastest, s, max(faster, key=lambda o: (o.service(job), -o.devices)))
    if best is None:
        return False
    _, s, o = best
    for n, i in enumerate(alloc[s.name]):
        if (i.gpu, i.devices) == (o.gpu, o.devices):
            alloc[s.name][n] = Instance(i.gpu, i.devices, i.replicas + 1, i.jobs, i.startup)
            return True
    alloc[s.name].append(Instance(o.gpu, o.devices, 1))
    return True


def improve(profiles: Profiles, w: Workload, chunks: list[Chunk], alloc: Allocation, res: SimResult,
            target: float, spot: bool = True, max_evals: int = 1500,
            counts: dict[str, int] | None = None) -> tuple[Allocation, SimResult]:
    """Hill-climb on the simulated cost: fewer replicas, or an instance class moved to the next
    slower/faster option of its stage (cost-per-job frontier), first improvement that keeps every
    chunk on time. Each move is one simulation (milliseconds); stops at a local optimum."""
    prices = profiles.spot if spot else profiles.reserved
    std = Job(w.video_s / w.subscenes, w.subscene_frames, 1.0)
    ladders = {s.name: _frontier(s, std, prices) for s in profiles.stages if s.per == "chunk"}
    alloc = {s: [i for i in insts if i.replicas > 0] for s, insts in alloc.items()}
    evals = 0

    def moves():
        order = sorted(((s, n) for s, insts in alloc.items() for n in range(len(insts))),
                       key=lambda sn: -alloc[sn[0]][sn[1]].devices * prices[alloc[sn[0]][sn[1]].gpu] * alloc[sn[0]][sn[1]].replicas)
        for s, n in order:
            inst = alloc[s][n]
            for step in sorted({max(1, inst.replicas // 4), 1}, reverse=True):
                if inst.replicas - step >= (0 if len(alloc[s]) > 1 else 1):
                    yield s, n, [Instance(inst.gpu, inst.devices, inst.replicas - step, inst.jobs, inst.startup)]
            ladder = ladders.get(s, [])
            here = [k for k, o in enumerate(ladder) if (o.gpu, o.devices) == (inst.gpu, inst.devices)]
            if here:
                for k in (here[0] + 1, here[0] - 1):
                    if 0 <= k < len(ladder):
                        o = ladder[k]
                        yield s, n, [Instance(o.gpu, o.devices, inst.replicas, inst.jobs, inst.startup)]
                        if inst.replicas > 1:  # move one replica to the neighbouring option
                            yield s, n, [Instance(inst.gpu, inst.devices, inst.replicas - 1, inst.jobs, inst.startup),
                                         Instance(o.gpu, o.devices, 1, inst.jobs, inst.startup)]

    improved = True
    while improved and evals < max_evals:
        improved = False
        for s, n, new in moves():
            old = list(alloc[s])
            alloc[s] = _merge(old[:n] + new + old[n + 1:])
            try:
                r = simulate(profiles, alloc, w, chunks, pipelined=True, spot=spot)
            except ValueError:
                r = None
            evals += 1
            if r is not None and r.ttff_s <= target + 1e-9 and r.cost < res.cost - 1e-9 and within_counts(alloc, counts):
                res, improved = r, True
                break
            alloc[s] = old
            if evals >= max_evals:
                break
    alloc = {s: [i for i in insts if i.replicas > 0] for s, insts in alloc.items()}
    return alloc, res


def _merge(insts: list[Instance]) -> list[Instance]:
    """One instance class per (GPU, size, job range); drop empty ones."""
    out: dict[tuple, Instance] = {}
    for i in insts:
        if i.replicas <= 0:
            continue
        key = (i.gpu, i.devices, i.jobs, i.startup)
        if key in out:
            i = Instance(i.gpu, i.devices, out[key].replicas + i.replicas, i.jobs, i.startup)
        out[key] = i
    return list(out.values())


def _trim(profiles: Profiles, w: Workload, chunks: list[Chunk], alloc: Allocation, res: SimResult,
          bad: Callable[[SimResult], bool], spot: bool) -> tuple[Allocation, SimResult]:
    """Remove replicas, most expensive class first, while the plan stays valid and gets cheaper.

    Per class a bisection on the replica count (whole servers freed matter most), then the
    next class; a class keeps at least one replica unless another class of its stage remains.
    """
    prices = profiles.spot if spot else profiles.reserved
    order = sorted(((s, n) for s, insts in alloc.items() for n in range(len(insts))),
                   key=lambda sn: -alloc[sn[0]][sn[1]].devices * prices[alloc[sn[0]][sn[1]].gpu] * alloc[sn[0]][sn[1]].replicas)
    for s, n in order:
        inst = alloc[s][n]
        others = sum(i.replicas for m, i in enumerate(alloc[s]) if m != n)
        lo, hi = (0 if others else 1), inst.replicas  # hi is known to be valid
        while lo < hi:
            mid = (lo + hi) // 2
            alloc[s][n] = Instance(inst.gpu, inst.devices, mid, inst.jobs, inst.startup)
            try:
                r = simulate(profiles, alloc, w, chunks, pipelined=True, spot=spot)
            except ValueError:
                r = None
            if r is not None and not bad(r) and r.cost <= res.cost + 1e-12:
                hi, res = mid, r
            else:
                lo = mid + 1
        alloc[s][n] = Instance(inst.gpu, inst.devices, hi, inst.jobs, inst.startup)
    alloc = {s: [i for i in insts if i.replicas > 0] for s, insts in alloc.items()}
    return alloc, simulate(profiles, alloc, w, chunks, pipelined=True, spot=spot)


BURST_LEADS: tuple[tuple[int, ...], ...] = ((9, 21), (9, 21, 40))
BURST_LOW: tuple[int, ...] = (0, 2, 4, 6, 8, 12, 16, 24, 32)
BURST_HORIZONS: tuple[float, ...] = (0.8, 1.0, 1.3, 1.7, 2.2)  # x the cheapest chain's latency
BURST_THETAS: tuple[float, ...] = (0.9, 0.7)
BURST_POLISH = 3  # hill-climb the best few initial plans


def fastest_first_chunk(profiles: Profiles, w: Workload, lead: int = 9) -> float:
    """Lower bound on any plan's TTFF: the first scene's script, key image and TTS, then a
    ``lead``-frame low-quality first chunk, every stage on its fastest option, no queueing.
    (9 frames is the shortest clip FantasyTalking was profiled for.)"""
    first = standard_chunks(w, lead=(lead,), low_chunks=1)[0]
    scene_s = w.video_s / w.scenes
    total = 0.0
    for s in profiles.stages:
        if s.per == "chunk":
            if _runs(s, first):
                total += min(o.service(_chunk_job(s, first, w)) for o in s.options)
        else:
            total += min(o.service(Job(scene_s, math.ceil(scene_s * w.fps), first=True)) for o in s.options)
    return total


def high_share(chunks: list[Chunk]) -> float:
    return sum(c.frames for c in chunks if c.tier.startswith("high")) / max(1, sum(c.frames for c in chunks))


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
    return got and _trim(profiles, w, chunks, got[0], got[1], lambda r: r.ttff_s > target + 1e-9, spot)


def plan_burst(profiles: Profiles, w: Workload, target: float, spot: bool = True, tier: str = "high",
               min_high: float = 0.0, solvers: tuple[str, ...] = ("ladder", "heuristic"),
               on_step: Callable[[], None] | None = None, key=None, polish: int = BURST_POLISH,
               counts: dict[str, int] | None = None, thetas: tuple[float, ...] = BURST_THETAS) -> Plan | None:
    """Burst plans (every server billed until the episode is generated, as the paper bills):
    search lead chunks, low-quality first chunks (at least ``min_high`` of the frames stay high
    quality), horizons and queueing slack; hill-climb the best few with the simulator."""
    key = key or (lambda p: p.result.cost)
    prices = profiles.spot if spot else profiles.reserved
    std = Job(w.video_s / w.subscenes, w.subscene_frames, 1.0)
    chain = sum(min(s.options, key=lambda o: (_per_job_cost(o, std, prices), o.service(std))).service(std)
                for s in profiles.stages if s.per == "chunk")  # cheapest chain for one chunk
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
    cands = [c for c in cands if within_counts(c.allocation, counts)]
    cands.sort(key=key)
    picked, seen = [], set()  # the best few of distinct (lead, low-quality chunks) settings
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
