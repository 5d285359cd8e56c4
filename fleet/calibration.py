"""The paper's sequential model, restated, and its error against the published rows.

Why: before trusting our simulator's *improvements*, it must reproduce the paper's own
numbers with the paper's own assumptions. Restated from the README and the public
simulator (no code copied): stages run one after another, total = sum over stages of the
slowest instance; parallel stages split subscenes/frames by instance capacity;
TTFF = max(first-chunk path, total - video); TBF = (total - first chunk) / frames;
cost = GPUs x hours x price.

For the naive row the allocation is the paper's (fixed 8-GPU layout). For StreamWise rows
the paper does not publish its per-stage allocation, so we solve for the best allocation
of the same GPUs under the same formulas (dynamic programming, cross-checked by a MILP) and
report the difference.

Contract: :data:`PUBLISHED` is reference data (the paper's rows, with the tolerance each is
allowed and why); :func:`calibrate` recomputes every row; :func:`published_in_simulator`
replays a row's allocation in the pipelined simulator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from fleet.paper_profiles import (
    FPS_DRAFT,
    GPU_TYPES,
    TIERS,
    Job,
    Option,
    Profiles,
    Workload,
    fold_vae,
)
from fleet.simulator import (
    Allocation,
    Instance,
    SimResult,
    option_of,
    simulate,
    standard_chunks,
)

Candidate = tuple[str, tuple[Instance, ...], float, float]  # stage, instances, stage time, first-chunk time


@dataclass(frozen=True)
class Policy:
    """The switches the paper's rows differ by."""

    tier: str = "high"  # high (= medium + upscaler), high_native, medium, low
    disag_draft: bool = True
    disag_lipsync: bool = False
    spot: bool = True
    video_scale: float | None = None  # override the tier's latency scale (video stages)
    image_scale: float = 1.0  # key-image (FLUX) latency scale


@dataclass(frozen=True)
class Published:
    """One provisioning row the paper publishes, and how closely we must reproduce it."""

    name: str
    provision: dict[str, int]
    ttff_s: float
    total_time_s: float
    cost: float
    policy: Policy
    source: str
    naive: bool = False
    tolerance: dict[str, float] | None = None  # stated |relative error| per metric (default 5%)
    why: str = ""  # why a row is allowed more than 5%


_OPTIMUM = ("the paper's allocation is not published; ours is the exact optimum of the paper's formulas and "
            "objective (TTFF x cost) for these GPUs, which the paper's greedy allocator does not reach")

# Rows quoted in the reference README (file and values from ../shared/reference/streamwise/paper).
PUBLISHED: tuple[Published, ...] = (
    Published("naive 8xA100 reserved", {"a100": 8}, 29140.28, 29740.28, 224.70,
              Policy("high_native", False, False, spot=False), "provisioning_naive.csv", naive=True),
    Published("naive 8xA100 spot", {"a100": 8}, 29140.28, 29740.28, 70.72,
              Policy("high_native", False, False, spot=True), "provisioning_naive_spot.csv", naive=True),
    Published("16xA100 no_disag (abstract)", {"a100": 16}, 4653.85, 5253.85, 24.98,
              Policy("high", False, False), "provisioning_streamwise_no_disag.csv",
              tolerance={"ttff_s": 0.15, "total_time_s": 0.15, "cost": 0.15},
              why=_OPTIMUM + " (the paper's public code does not reproduce this published row either)"),
    Published("48xA100 cheapest", {"a100": 48}, 964.95, 1564.95, 22.33,
              Policy("high", False, False), "provisioning_streamwise_no_disag.csv",
              tolerance={"ttff_s": 0.20, "total_time_s": 0.15, "cost": 0.15}, why=_OPTIMUM),
    Published("256A100+64H200 high", {"a100": 256, "h200": 64}, 21.38, 301.88, 45.62,
              Policy("high", True, False), "provisioning_streamwise_high.csv",
              tolerance={"ttff_s": 0.25, "total_time_s": 0.20, "cost": 0.20},
              why=_OPTIMUM + "; both TTFF and cost come out lower, so the published point is inside what the "
              "formulas allow (mixed GPU types per stage: a 40-GPU H200 lip-sync instance for the first chunk "
              "next to 152 single-A100 replicas)"),
    Published("256A100+64H200 adaptive", {"a100": 256, "h200": 64}, 3.70, 62.24, 42.38,
              Policy("low", True, False), "provisioning_streamwise_adaptive.csv",
              tolerance={"ttff_s": 0.50, "total_time_s": 0.10, "cost": 0.15},
              why="TTFF: with low quality at 1/4 of the profiled pixels (the README's tier model) no allocation of "
              "these GPUs has a first-chunk path as short as the published TTFF (floor_ttff_s is the shortest), so "
              "it needs a cheaper low tier than the README states; scaling FLUX, FramePack and FantasyTalking by "
              "1/16 instead (as the paper's low-quality latency tables do) puts the floor below it, so the "
              "published value lies between the two tier models. Total time and cost agree; cost is the "
              "high-quality run's, as in the paper"),
)


@dataclass
class SeqResult:
    """The paper's sequential formulas for one allocation."""

    total_time_s: float
    first_chunk_s: float
    ttff_s: float
    tbf_s: float
    cost: float
    stage_times: dict[str, float]
    allocation: Allocation | None = None


def _sub_job(w: Workload, scale: float) -> Job:
    return Job(w.video_s / w.subscenes, w.subscene_frames, scale)


def _frame_job(fps: int, scale: float) -> Job:
    return Job(1.0 / fps, 1, scale)


def stage_time(profiles: Profiles, stage: str, inst: Instance, w: Workload, pol: Policy,
               pct: float = 1.0) -> tuple[float, float]:
    """(time for its share of the episode, time for the first chunk) of one instance."""
    scale = TIERS[pol.tier][0] if pol.video_scale is None else pol.video_scale
    opt: Option = option_of(profiles.stage(stage), inst)
    r = inst.replicas

    def split(work: int, unit: float) -> float:
        n = math.ceil(pct * work - 1e-9)
        return max(n / r * unit, unit)

    if stage == "script":
        first = opt.service(Job(0, 0, first=True))
        return first + opt.service(Job(0, 0)) * (w.scenes - 1), first
    if stage == "image":
        t = opt.service(Job(0, 0)) * pol.image_scale
        return t, t
    if stage == "others":
        t = opt.service(Job(0, 0))
        return w.scenes * t, t
    if stage == "upscale":
        per = opt.service(Job(0, 1))
        return split(w.frames, per), w.subscene_frames * per
    main = stage.removesuffix("_vae")
    fps = FPS_DRAFT if main == "draft" else w.fps
    frames_total = math.ceil(w.video_s * fps)
    per_sub = math.ceil(w.video_s * fps / w.subscenes)
    vae_opt = profiles.stage(main + "_vae").options
    vae = next(o for o in vae_opt if o.gpu == inst.gpu)
    vae_frame = vae.service(_frame_job(fps, scale))
    if stage.endswith("_vae"):
        return split(frames_total, vae_frame), per_sub * vae_frame
    unit = opt.service(_sub_job(w, scale))
    t = split(w.subscenes, unit)
    disag = pol.disag_draft if main == "draft" else pol.disag_lipsync
    if disag:
        first = unit if main != "draft" else min(unit, opt.service(Job(36 / 30, 36, scale)))
        return t, first
    return t + split(frames_total, vae_frame), unit + per_sub * vae_frame


def active_stages(pol: Policy) -> list[str]:
    """Stages the paper's model runs for a policy: VAEs only where disaggregated, the
    upscaler only for tiers that use it."""
    names = ["script", "image", "others", "draft"]
    if pol.disag_draft:
        names.append("draft_vae")
    names.append("lipsync")
    if pol.disag_lipsync:
        names.append("lipsync_vae")
    if TIERS[pol.tier][1]:
        names.append("upscale")
    return names


def stage_eval(profiles: Profiles, stage: str, insts: list[Instance], w: Workload, pol: Policy) -> tuple[float, float]:
    """(stage time, first-chunk time) of a stage's instances, as the paper computes them.

    Work is split between instances in proportion to their capacity (replicas / latency of one
    unit); the stage takes as long as its slowest instance, and the first chunk goes to the
    fastest instance (so a single fast instance next to many slow replicas sets the TTFF path).
    """
    units = [stage_time(profiles, stage, i, w, pol)[1] or 1e-9 for i in insts]
    caps = [i.replicas / u for i, u in zip(insts, units)]
    res = [stage_time(profiles, stage, i, w, pol, c / sum(caps)) for i, c in zip(insts, caps)]
    return max(t for t, _ in res), min(f for _, f in res)


def evaluate_sequential(profiles: Profiles, alloc: Allocation, w: Workload, pol: Policy,
                        provision: dict[str, int] | None = None) -> SeqResult:
    """The paper's formulas for one allocation; cost bills ``provision`` (default: used GPUs)."""
    stage_times: dict[str, float] = {}
    first = 0.0
    for s in active_stages(pol):
        insts = [i for i in alloc.get(s, []) if i.replicas > 0]
        if not insts:
            raise ValueError(f"stage {s} has no instance")
        stage_times[s], f = stage_eval(profiles, s, insts, w, pol)
        first += f
    total = sum(stage_times.values())
    ttff = max(first, total - w.video_s)
    tbf = max(0.0, (total - first) / (w.frames - w.subscene_frames))
    gpus = dict(provision) if provision else {}
    if provision is None:
        for insts in alloc.values():
            for i in insts:
                gpus[i.gpu] = gpus.get(i.gpu, 0) + i.devices * i.replicas
    prices = profiles.spot if pol.spot else profiles.reserved
    cost = sum(n * prices[g] for g, n in gpus.items()) * total / 3600
    return SeqResult(total, first, ttff, tbf, cost, stage_times)


def naive_allocation(gpu: str = "a100") -> Allocation:
    """The paper's naive single-server layout: one GPU each for LLM, image, TTS, draft; 4 lip-sync."""
    return {"script": [Instance(gpu, 1)], "image": [Instance(gpu, 1)], "others": [Instance(gpu, 1)],
            "draft": [Instance(gpu, 1)], "lipsync": [Instance(gpu, 1, 4)]}


SINGLE_INSTANCE = ("script", "image", "others")  # one instance per episode in the paper's model


def _candidates(profiles: Profiles, provision: dict[str, int], w: Workload, pol: Policy,
                mixed: bool) -> list[Candidate]:
    """Per-stage choices (instances, stage time, first-chunk time) within the GPU budget.

    A choice is one (GPU type, size, replicas), or with ``mixed`` two of them on different
    GPU types or sizes: the paper's allocator keeps a list of instances per model and GPU
    type, so a lip-sync stage can run a 40-GPU H200 instance for the first chunk next to
    hundreds of single-A100 replicas. Pairs are pruned to the highest-capacity layout per
    (GPU type, GPU count), GPU counts 1-16 and multiples of 8, plus every 1-replica instance.
    """
    out: list[Candidate] = []
    for s in active_stages(pol):
        stage = profiles.stage(s)
        work = {"draft": w.subscenes, "lipsync": w.subscenes}.get(s, w.frames)
        single = s in SINGLE_INSTANCE
        singles: list[Instance] = []
        for o in stage.options:
            budget = provision.get(o.gpu, 0)
            rmax = 1 if single else min(budget // o.devices, work)
            singles += [Instance(o.gpu, o.devices, r) for r in range(1, rmax + 1)]
        timed = {i: stage_eval(profiles, s, [i], w, pol) for i in singles}
        out += [(s, (i,), *timed[i]) for i in singles]
        if not mixed or single:
            continue
        best: dict[tuple[str, int], tuple[float, Instance]] = {}
        for i in singles:
            n = i.devices * i.replicas
            if n <= 16 or n % 8 == 0:
                cap = i.replicas / (stage_time(profiles, s, Instance(i.gpu, i.devices), w, pol)[1] or 1e-9)
                if (i.gpu, n) not in best or cap > best[(i.gpu, n)][0]:
                    best[(i.gpu, n)] = (cap, i)
        bulk = [i for _, i in best.values()]
        leads = [i for i in singles if i.replicas == 1]
        seen = set()
        for x in leads + bulk:
            for y in bulk:
                if (x.gpu, x.devices) == (y.gpu, y.devices) or (y, x) in seen or (x, y) in seen:
                    continue
                seen.add((x, y))
                use = {}
                for i in (x, y):
                    use[i.gpu] = use.get(i.gpu, 0) + i.devices * i.replicas
                if any(n > provision.get(g, 0) for g, n in use.items()):
                    continue
                out.append((s, (x, y), *stage_eval(profiles, s, [x, y], w, pol)))
    return _pareto(out, profiles.gpu_types)


def _pareto(cands: list[Candidate], gpu_types: tuple[str, ...]) -> list[Candidate]:
    """Drop choices another choice of the same stage beats on time, first chunk and GPUs of every type."""
    out = []
    for s in dict.fromkeys(c[0] for c in cands):
        group = [c for c in cands if c[0] == s]
        m = np.array([[t, f] + [sum(i.devices * i.replicas for i in insts if i.gpu == g) for g in gpu_types]
                      for _, insts, t, f in group])
        keep = np.ones(len(group), dtype=bool)
        for k in range(len(group)):
            le = np.all(m <= m[k] + 1e-12, axis=1)
            lt = np.any(m < m[k] - 1e-12, axis=1)
            if np.any(le & lt & keep):
                keep[k] = False
        out += [c for c, ok in zip(group, keep) if ok]
    return out


def best_sequential_allocation(profiles: Profiles, provision: dict[str, int], w: Workload,
                               pol: Policy, first_cap: float = math.inf, mixed: bool = True,
                               cands: list[Candidate] | None = None) -> Allocation | None:
    """Minimise the paper's total time for a provision under a cap on the first-chunk path.

    With every GPU billed for the whole run, minimal total time is minimal cost, and TTFF
    is total - video whenever generation is slower than playback, so this is the paper's
    objective for these rows. A MILP (HiGHS): choose one candidate per stage (see
    :func:`_candidates`) under the GPU budgets; ``first_cap`` bounds the first-chunk path so a
    caller can trade total time for TTFF.
    """
    cands = cands if cands is not None else _candidates(profiles, provision, w, pol, mixed)
    names = active_stages(pol)
    n = len(cands)
    c = np.array([t for _, _, t, _ in cands])
    rows, lb, ub = [], [], []
    for s in names:
        rows.append([1.0 if cs == s else 0.0 for cs, _, _, _ in cands]); lb.append(1); ub.append(1)
    for g in profiles.gpu_types:
        rows.append([float(sum(i.devices * i.replicas for i in insts if i.gpu == g)) for _, insts, _, _ in cands])
        lb.append(0); ub.append(provision.get(g, 0))
    if math.isfinite(first_cap):
        rows.append([f for _, _, _, f in cands]); lb.append(0); ub.append(first_cap)
    res = milp(c, constraints=LinearConstraint(np.array(rows), lb, ub), integrality=np.ones(n),
               bounds=Bounds(0, 1), options={"time_limit": 20, "mip_rel_gap": 2e-3})
    if res.x is None:
        return None
    alloc: Allocation = {}
    for (s, insts, _, _), x in zip(cands, res.x):
        if x > 0.5:
            alloc.setdefault(s, []).extend(insts)
    return alloc


@dataclass
class CalibrationRow:
    """A published row next to what the paper's formulas give for the best allocation of its GPUs."""

    row: Published
    simulated: SeqResult
    floor_ttff_s: float = 0.0  # fastest first-chunk path any allocation of these GPUs has (paper's formulas)
    high: SeqResult | None = None  # adaptive rows: the high-quality run that sets the cost

    def errors(self) -> dict[str, float]:
        """Relative error of the formulas against the published value, per metric."""
        p, s = self.row, self.simulated
        return {"ttff_s": s.ttff_s / p.ttff_s - 1, "total_time_s": s.total_time_s / p.total_time_s - 1,
                "cost": s.cost / p.cost - 1}

    def within_tolerance(self) -> bool:
        """Every metric within the row's stated tolerance (5% unless the row says why not)."""
        tol = self.row.tolerance or {}
        return all(abs(e) <= tol.get(k, 0.05) for k, e in self.errors().items())

    def to_json(self) -> dict[str, object]:
        prov = {g: self.row.provision.get(g, 0) for g in GPU_TYPES}
        return {"name": self.row.name, "provision": prov,
                "published": {"ttff_s": self.row.ttff_s, "total_time_s": self.row.total_time_s, "cost": self.row.cost},
                "simulated": {"ttff_s": round(self.simulated.ttff_s, 3),
                              "total_time_s": round(self.simulated.total_time_s, 3),
                              "cost": round(self.simulated.cost, 3)}}


def calibrate(profiles: Profiles, w: Workload | None = None) -> list[CalibrationRow]:
    """Every published row under the paper's formulas (10-minute episode)."""
    w = w or Workload()
    out: list[CalibrationRow] = []
    cache: SeqCache = {}
    for row in PUBLISHED:
        high = None
        if row.naive:
            sim = evaluate_sequential(profiles, naive_allocation(), w, row.policy, row.provision)
            sim.allocation = naive_allocation()
        elif row.policy.tier == "low":
            # Adaptive, as the paper computes it: TTFF and total of the low-quality run,
            # billed at the high-quality run's cost (its "highest cost" option).
            low = _best(profiles, row, w, row.policy, cache)
            high = _best(profiles, row, w, Policy("high", row.policy.disag_draft, row.policy.disag_lipsync), cache)
            sim = SeqResult(low.total_time_s, low.first_chunk_s, low.ttff_s, low.tbf_s, high.cost, low.stage_times,
                            low.allocation)
        else:
            sim = _best(profiles, row, w, row.policy, cache)
        out.append(CalibrationRow(row, sim, floor_first_chunk(profiles, row.provision, w, row.policy), high))
    return out


def floor_first_chunk(profiles: Profiles, provision: dict[str, int], w: Workload, pol: Policy) -> float:
    """The paper's first-chunk path with every stage on its fastest instance these GPUs allow."""
    total = 0.0
    for s in active_stages(pol):
        firsts = [stage_time(profiles, s, Instance(o.gpu, o.devices), w, pol)[1]
                  for o in profiles.stage(s).options if o.devices <= provision.get(o.gpu, 0)]
        total += min(firsts)
    return total


SeqCache = dict[tuple[tuple[tuple[str, int], ...], Policy], SeqResult]


def _best(profiles: Profiles, row: Published, w: Workload, pol: Policy, cache: SeqCache) -> SeqResult:
    """The paper's objective for a row's provision under ``pol``, computed once per (provision, policy)."""
    key = (tuple(sorted(row.provision.items())), pol)
    if key not in cache:
        cache[key] = best_ttff_cost(profiles, row.provision, w, pol)
    return cache[key]


def dp_allocation(cands: list[Candidate], provision: dict[str, int],
                  weight: float = 0.0) -> tuple[Allocation, float] | None:
    """Exact minimum of sum(stage time + weight x first-chunk time) under the GPU budgets.

    Dynamic programming over stages with the GPUs used per type as the state (at most
    257 x 65 states for 256 A100 + 64 H200). Sweeping ``weight`` (a Lagrange multiplier on
    the first-chunk path) traces the total-time / TTFF trade-off that a cap constraint in
    :func:`best_sequential_allocation` reaches one MILP at a time, where HiGHS can stall.
    """
    types = [g for g in provision if provision[g] > 0]
    shape = tuple(provision[g] + 1 for g in types)
    f = np.full(shape, np.inf)
    f[(0,) * len(types)] = 0.0
    choice: list[tuple[str, list[Candidate], np.ndarray]] = []
    for s in dict.fromkeys(c[0] for c in cands):
        group = [c for c in cands if c[0] == s]
        new = np.full(shape, np.inf)
        arg = np.full(shape, -1, dtype=np.int64)
        for k, (_, insts, t, fc) in enumerate(group):
            use = [sum(i.devices * i.replicas for i in insts if i.gpu == g) for g in types]
            if any(i.gpu not in types for i in insts) or any(u > provision[g] for u, g in zip(use, types)):
                continue
            dst = tuple(slice(u, None) for u in use)
            src = tuple(slice(0, n - u) for u, n in zip(use, shape))
            cand = f[src] + (t + weight * fc)
            better = cand < new[dst]
            new[dst] = np.where(better, cand, new[dst])
            arg[dst] = np.where(better, k, arg[dst])
        f = new
        choice.append((s, group, arg))
    if not np.isfinite(f).any():
        return None
    idx = np.unravel_index(np.argmin(f), shape)
    best = float(f[idx])
    alloc: Allocation = {}
    for s, group, arg in reversed(choice):
        _, insts, _, _ = group[arg[idx]]
        alloc[s] = list(insts)
        use = [sum(i.devices * i.replicas for i in insts if i.gpu == g) for g in types]
        idx = tuple(i - u for i, u in zip(idx, use))
    return {s: alloc[s] for s in reversed(list(alloc))}, best


def best_ttff_cost(profiles: Profiles, provision: dict[str, int], w: Workload, pol: Policy,
                   mixed: bool = True) -> SeqResult:
    """The paper's objective, TTFF x cost: sweep the weight on the first-chunk path, keep the best."""
    cands = _candidates(profiles, provision, w, pol, mixed)
    best: SeqResult | None = None
    for weight in (0.0, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 1024):
        got = dp_allocation(cands, provision, weight)
        if got is None:
            raise ValueError(f"no feasible allocation for {provision}")
        r = evaluate_sequential(profiles, got[0], w, pol, provision)
        r.allocation = got[0]
        if best is None or r.ttff_s * r.cost < best.ttff_s * best.cost - 1e-9:
            best = r
    return best


def pipelined_profiles(profiles: Profiles, pol: Policy) -> Profiles:
    """The simulator's DAG for a policy: VAEs that are not disaggregated run inside their model's stage."""
    if not pol.disag_draft:
        profiles = fold_vae(profiles, "draft")
    if not pol.disag_lipsync:
        profiles = fold_vae(profiles, "lipsync")
    return profiles


def published_in_simulator(profiles: Profiles, cal: CalibrationRow, w: Workload | None = None,
                           leads: tuple[tuple[int, ...], ...] = ((), (9, 21), (9, 21, 40)),
                           lows: tuple[int, ...] = (0, 2, 4, 8, 16, 24, 32, 40, 48, 64),
                           ) -> list[tuple[tuple[int, ...], int, SimResult]]:
    """A published provision in the pipelined simulator, billed the paper's way.

    Uses the allocation that reproduces the row under the paper's formulas (for an adaptive
    row, the high-quality run's: it is the one billed) and tries the same quality levers our
    planner has (short lead chunks, the first chunks at low quality). Returns
    ``(lead, low_chunks, SimResult)`` for each; the stall-free TTFF of each is ``ttff_s``.
    """
    w = w or Workload()
    src = cal.high if cal.high is not None else cal.simulated
    if src.allocation is None:
        raise ValueError(f"{cal.row.name}: no allocation")
    pol = cal.row.policy if cal.high is None else Policy("high", cal.row.policy.disag_draft, cal.row.policy.disag_lipsync)
    prof = pipelined_profiles(profiles, pol)
    tier = "high" if pol.tier == "high" else pol.tier
    out = []
    for lead in leads:
        for low in lows:
            chunks = standard_chunks(w, tier=tier, lead=lead, low_chunks=low)
            out.append((lead, low, simulate(prof, src.allocation, w, chunks, pipelined=True, spot=pol.spot)))
    return out
