"""Paced two-pool plans: a startup pool billed until its last job, a bulk pool for the episode.

Not the paper's billing rule (it bills every server for the whole run), so these plans are
only searched with ``billing="startup-pool"`` and never used for the headline comparison.
They model a service where back-to-back episode starts share the fast startup servers.

Contract: :func:`paced_allocation` returns a stall-free allocation and its simulation, or
``None`` when adding replicas cannot make every chunk meet its playout deadline;
:func:`plan_paced` returns the cheapest such plan (by ``key``) over its search grid.
"""
from __future__ import annotations

import math
from collections.abc import Callable

from fleet.chains import chunk_job, first_scene_job, standard_job
from fleet.local_search import latest_chunk, most_waited
from fleet.paper_profiles import TIERS, Job, Option, Profiles, Stage, Workload
from fleet.plan_result import Plan, PlanKey
from fleet.simulator import (
    Allocation,
    Chunk,
    Instance,
    SimResult,
    chunk_offsets,
    chunk_scenes,
    high_share,
    simulate,
    standard_chunks,
)

PACED_LOW: tuple[int, ...] = (2, 4, 8, 16, 32)
PACED_LEADS: tuple[tuple[int, ...], ...] = ((9, 21), (9, 21, 40))
PACED_CAPS: tuple[int, ...] = (8, 16)
# A middle instance class between the fast and the bulk one (a latency such as 12.0 or 30.0 s
# per standard chunk) is supported by paced_allocation; the search leaves it out because each
# value multiplies the grid.
PACED_MID: tuple[float | None, ...] = (None,)

ALL_JOBS = 10**9  # upper end of a job range that covers the rest of the episode


def _cheapest(stage: Stage, job: Job, prices: dict[str, float], max_devices: int = 8) -> Option:
    """Bulk option: least $ per job (devices x price x service), small instances only."""
    opts = [o for o in stage.options if o.devices <= max_devices] or list(stage.options)
    return min(opts, key=lambda o: (o.devices * prices[o.gpu] * o.service(job), o.service(job)))


def _fastest(stage: Stage, job: Job, gpu: str, cap: int) -> Option | None:
    """The fastest option of ``gpu`` with at most ``cap`` devices (fewest devices on ties)."""
    opts = [o for o in stage.options if o.gpu == gpu and o.devices <= cap]
    return min(opts, key=lambda o: (o.service(job), o.devices)) if opts else None


def _pool_split(profiles: Profiles, w: Workload, chunks: list[Chunk], target: float, prices: dict[str, float],
                n_start: int, slack: float, mid_latency: float | None) -> tuple[int, int, dict[str, Option]]:
    """How many first chunks the startup pool serves, how many of those its fast class does
    (the rest go to the middle class), and the middle class per chunk stage (may be empty).

    The bulk pool's cheapest replicas are slow, so the startup pool keeps serving chunks until
    the bulk chain's latency (with ``slack``) fits a chunk's deadline.
    """
    std = standard_job(w)
    offsets = chunk_offsets(chunks, w.fps)
    cstages = [s for s in profiles.stages if s.per == "chunk"]
    chain = sum(_cheapest(s, std, prices).service(std) for s in cstages)
    n_mid = next((k for k, o in enumerate(offsets) if target + o >= slack * chain), len(chunks))
    n_pool = max(n_start, n_mid)
    if mid_latency is None:
        return n_pool, n_pool, {}
    mids: dict[str, Option] = {}
    for s in cstages:
        ok = [o for o in s.options if o.service(std) <= mid_latency and o.devices <= 16]
        if ok:
            mids[s.name] = min(ok, key=lambda o: (o.devices * prices[o.gpu] * o.service(std), o.service(std)))
    if len(mids) != len(cstages):
        return n_pool, n_pool, {}
    mchain = sum(mids[s.name].service(std) for s in cstages)
    n_fast = min(n_pool, max(n_start, next((k for k, o in enumerate(offsets) if target + o >= slack * mchain),
                                           n_pool)))
    return n_pool, n_fast, mids


def _chunk_stage_pools(s: Stage, w: Workload, chunks: list[Chunk], target: float, fast: Option | None,
                       bulk: Option, n_pool: int, n_fast: int, mids: dict[str, Option]) -> list[Instance] | None:
    """A chunk stage's instances: fast (and middle) startup classes for the first ``n_pool``
    chunks, bulk replicas sized by throughput for the rest (None: no fast option exists)."""
    insts = []
    needs_fast = any(not s.optional or TIERS[c.tier][1] for c in chunks[:n_pool])
    if n_pool > 0 and needs_fast:
        if fast is None:
            return None
        insts.append(Instance(fast.gpu, fast.devices, 1, (0, n_fast), True))
        if n_fast < n_pool:
            m = mids[s.name]
            insts.append(Instance(m.gpu, m.devices, 1, (n_fast, n_pool), True))
    work = sum(bulk.service(chunk_job(s, c, w)) for c in chunks[n_pool:] if not s.optional or TIERS[c.tier][1])
    if work > 0:
        insts.append(Instance(bulk.gpu, bulk.devices, max(1, math.ceil(work / (w.video_s + target))),
                              (n_pool, ALL_JOBS)))
    return insts


def _initial_pools(profiles: Profiles, w: Workload, chunks: list[Chunk], target: float, prices: dict[str, float],
                   fast_gpu: str, cap: int, n_pool: int, n_fast: int,
                   mids: dict[str, Option]) -> Allocation | None:
    """Both pools at one replica per startup class and the throughput lower bound for bulk."""
    scene_s = w.video_s / w.scenes
    first = chunks[0]
    alloc: Allocation = {}
    for s in profiles.stages:
        if s.per == "chunk" and s.optional and not any(TIERS[c.tier][1] for c in chunks):
            continue
        lead = chunk_job(s, first, w) if s.per == "chunk" else first_scene_job(w)
        fast = _fastest(s, lead, fast_gpu, cap if s.name != "script" else 8)
        if s.per != "chunk" and fast is None:
            return None
        if s.name in ("script", "image") or s.per == "once":
            alloc[s.name] = [Instance(fast.gpu, fast.devices, 1, None, True)]
            continue
        bulk = _cheapest(s, standard_job(w) if s.per == "chunk" else Job(scene_s, 1), prices)
        if s.per == "scene":
            alloc[s.name] = [Instance(fast.gpu, fast.devices, 1, (0, 1), True),
                             Instance(bulk.gpu, bulk.devices, 1, (1, ALL_JOBS))]
            continue
        insts = _chunk_stage_pools(s, w, chunks, target, fast, bulk, n_pool, n_fast, mids)
        if insts is None:
            return None
        alloc[s.name] = insts
    return alloc


def _grow_until_on_time(profiles: Profiles, w: Workload, chunks: list[Chunk], alloc: Allocation, target: float,
                        spot: bool, max_iter: int) -> tuple[Allocation, SimResult] | None:
    """Add a replica to the class that served the job where the worst late chunk queued longest
    (one for a startup class, 1/16 more for bulk), until every chunk meets its deadline."""
    offsets = chunk_offsets(chunks, w.fps)
    chunk_scene = chunk_scenes(offsets, w)
    for _ in range(max_iter):
        res = simulate(profiles, alloc, w, chunks, pipelined=True, spot=spot)
        k = latest_chunk(res, offsets, target)
        if k is None:
            return alloc, res
        where = most_waited(profiles, alloc, res, k, chunk_scene)
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
    n_pool, n_fast, mids = _pool_split(profiles, w, chunks, target, prices, n_start, slack, mid_latency)
    alloc = _initial_pools(profiles, w, chunks, target, prices, fast_gpu, cap, n_pool, n_fast, mids)
    if alloc is None:
        return None
    return _grow_until_on_time(profiles, w, chunks, alloc, target, spot, max_iter)


def plan_paced(profiles: Profiles, w: Workload, target: float, spot: bool = True, tier: str = "high",
               on_step: Callable[[], None] | None = None, key: PlanKey | None = None,
               min_high: float = 0.0) -> Plan | None:
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
                                notes={"lead": lead, "low_chunks": low, "mid_latency": mid,
                                       "startup": f"{fast_gpu}<= {cap}",
                                       "startup_window_s": round(res.startup_window_s, 1),
                                       "cost_strict": round(res.cost_strict, 2)})
                    if best is None or key(cand) < key(best):
                        best = cand
    return best
