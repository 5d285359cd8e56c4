"""Provision planner: which GPUs, how many, split how between stages, for a TTFF target.

Two solvers on one *proxy* model, then the discrete-event simulator as the judge:

* Proxy: every stage gets a latency budget (its share of the TTFF target, proportional to
  its fastest option); chunk k must leave stage s by ``T + offset_k - (budgets of later
  stages)``. Replicas supply work at ``1/service`` per second from the time the first input
  can arrive, so "cumulative supply >= cumulative demand at every deadline" is linear in the
  replica counts. One replica per stage must also be fast enough for the first chunk.
* ``solve_milp`` solves that exactly (scipy.optimize.milp / HiGHS), including rounding to
  whole servers; ``solve_greedy`` adds the best supply-per-dollar replica at the most
  violated deadline, then trims. Both are checked by :func:`simulator.simulate`; if the
  simulation misses the target (queueing the proxy ignores), bulk replicas are scaled up.
* The outer search tries short lead chunks and low-quality first chunks (the levers a
  streaming system has) and keeps the best simulated plan for the objective.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from .profiles import TIERS, Job, Option, Profiles, ProfileError, Workload
from .simulator import Allocation, Chunk, Instance, SimResult, simulate, standard_chunks


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
                  counts: dict[str, int] | None = None) -> Problem:
    """Turn profiles + chunk plan + TTFF target into the proxy covering problem."""
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
                checkpoints.append((ttff + offsets[k] - after - before, wk, cum))
            per_job = tuple(std_t)
        else:
            per_job = tuple(o.service(Job(scene_s, 1)) for o in s.options)
        lead = tuple(o.service(lead_jobs[s.name]) for o in s.options)
        rate = tuple(o.devices * prices[o.gpu] for o in s.options)
        stages.append(StageProblem(s.name, s.options, rate, lead, per_job, budgets[s.name] + 1e-9,
                                   tuple(checkpoints), s.per != "chunk"))
    return Problem(tuple(stages), profiles.server_size, prices, counts)


def _split_budget(active, lead_jobs, prices, ttff: float) -> dict[str, float]:
    """Share the TTFF target between stages where speed is cheap.

    Start every stage on its cheapest option, then repeatedly upgrade the stage whose next
    faster option buys the most seconds per extra $/hour, until the first chunk fits;
    leftover time is shared pro rata. Speed is very unequally priced (a 16-GPU FLUX saves
    9 s for 15 GPUs; a 32-GPU lip-sync saves minutes), so a proportional split wastes money.
    """
    menus = {}
    for s in active:
        pts = sorted(((o.devices * prices[o.gpu], o.service(lead_jobs[s.name])) for o in s.options))
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

        def deficit(n: dict[int, int]) -> list[float]:
            return [d - sum(r * supply(t, sp.per_job[i], wk) for i, r in n.items()) for t, wk, d in sp.checkpoints]

        for _ in range(100000):
            defs = deficit(n)
            j = next((j for j, d in enumerate(defs) if d > 1e-9), None)  # earliest violated deadline
            if j is None:
                break
            t, wk, _ = sp.checkpoints[j]
            gain = [min(supply(t, sp.per_job[i], wk), defs[j]) / sp.rate[i] for i in range(len(sp.options))]
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
            sol.setdefault(s, {})[i] = int(round(x))
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


def plan(profiles: Profiles, w: Workload, ttff: float, objective: str = "cost", solver: str = "heuristic",
         spot: bool = True, counts: dict[str, int] | None = None, tier: str = "high",
         on_step: Callable[[], None] | None = None, ttff_grid: tuple[float, ...] | None = None,
         paced: bool = True) -> Plan | None:
    """Best simulated plan: min cost with TTFF <= target (no stalls), or min TTFF x cost.

    Candidates: single-pool plans from the proxy solvers (every server billed for the whole
    episode), and paced two-pool plans (:func:`plan_paced`) whose startup pool is billed until
    its last job ends; ``paced=False`` keeps only the first kind.
    """
    targets = (ttff,) if objective == "cost" else (ttff_grid or tuple(ttff * f for f in (1, 1.5, 2, 4, 8, 16)))
    best: Plan | None = None
    key = (lambda p: p.result.cost) if objective == "cost" else (lambda p: p.result.ttff_s * p.result.cost)
    for target in targets:
        for lead in LEADS:
            for low in LOW_CHUNKS:
                for slack in (1.0, 0.8):
                    if on_step:
                        on_step()
                    cand = _try(profiles, w, target, slack, lead, low, solver, spot, counts, tier)
                    if cand is None or (objective == "cost" and cand.result.ttff_s > ttff + 1e-6):
                        continue
                    cand.objective = objective
                    key = (lambda p: p.result.cost) if objective == "cost" else (lambda p: p.result.ttff_s * p.result.cost)
                    if best is None or key(cand) < key(best):
                        best = cand
        if paced and counts is None:  # device limits (local profiles) keep the single-pool search
            cand = plan_paced(profiles, w, target, spot, tier, on_step, key=key)
            if cand is not None and not (objective == "cost" and cand.result.ttff_s > ttff + 1e-6):
                cand.objective = objective
                if best is None or key(cand) < key(best):
                    best = cand
    return best


def search_steps(objective: str, ttff_grid: tuple[float, ...] | None = None, n_gpu_types: int = 4) -> int:
    n = 1 if objective == "cost" else len(ttff_grid or (1, 2, 3, 4, 5, 6))
    paced = n_gpu_types * len(PACED_CAPS) * len(PACED_LEADS) * len(PACED_LOW) * len(PACED_MID)
    return n * (len(LEADS) * len(LOW_CHUNKS) * 2 + paced)


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
        late = [d - o - target for d, o in zip(res.chunk_done, offsets)]
        k = max(range(len(late)), key=lambda j: late[j])
        if late[k] <= 1e-9:
            return alloc, res
        best, where = 1e-9, None
        for s in profiles.stages:
            if s.name not in alloc or s.per == "once" or s.name == "script":
                continue
            j = k if s.per == "chunk" else chunk_scene[k]
            wt = res.waits.get(s.name, [])
            if j < len(wt) and wt[j] > best:
                best, where = wt[j], (s.name, j)
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
               on_step: Callable[[], None] | None = None, key=None) -> Plan | None:
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
