"""Option menus for one chunk's chain of stages, and the first chunk's share of the TTFF target.

A chunk passes every chunk stage in turn, so what it costs and how long it takes is a
*chain* of options, one per stage. These helpers pick options along such chains by price:
per job (an instance that works through the episode is paid by the work it does) or per
hour (an instance that exists for a few early chunks is paid for however little it works).
Every planner family (covering proxy, burst, startup pool, local search) shares them.

Contract: pure functions of profiles, chunks and prices; nothing here simulates.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence

from fleet.paper_profiles import TIERS, Job, Option, Profiles, Stage, Workload
from fleet.simulator import Chunk, standard_chunks


def chunk_job(stage: Stage, c: Chunk, w: Workload) -> Job:
    """The job a chunk stage runs for chunk ``c`` (tiered stages scale with its quality)."""
    return Job(c.frames / w.fps, c.frames, TIERS[c.tier][0] if stage.tiered else 1.0)


def runs_for(stage: Stage, c: Chunk) -> bool:
    """Whether chunk ``c`` passes through ``stage`` (optional stages run only for tiers that need them)."""
    return not stage.optional or TIERS[c.tier][1]


def standard_job(w: Workload) -> Job:
    """The standard chunk job, one subscene at the profiled resolution: the unit of work and
    of supply the planners count in."""
    return Job(w.video_s / w.subscenes, w.subscene_frames, 1.0)


def first_scene_job(w: Workload) -> Job:
    """The first job of a per-scene or per-episode stage: one scene, with the LLM's prefill."""
    scene_s = w.video_s / w.scenes
    return Job(scene_s, math.ceil(scene_s * w.fps), first=True)


def lead_job(stage: Stage, first: Chunk, w: Workload) -> Job:
    """What ``stage`` does on the path to the first frame: the first chunk's job, the first
    scene's job, or nothing (an empty job) when the first chunk skips the stage."""
    if stage.per != "chunk":
        return first_scene_job(w)
    return chunk_job(stage, first, w) if runs_for(stage, first) else Job(0.0, 0, 0.0)


def per_job_cost(o: Option, job: Job, prices: dict[str, float]) -> float:
    """$ x 3600 one job costs on option ``o`` (devices x price per hour x service seconds)."""
    return o.devices * prices[o.gpu] * o.service(job)


def frontier(stage: Stage, job: Job, prices: dict[str, float]) -> list[Option]:
    """Options no faster option beats on $ per job, fastest first (so slower = cheaper per job)."""
    return _frontier_cached(stage, job, tuple(sorted(prices.items())))


@functools.lru_cache(maxsize=4096)
def _frontier_cached(stage: Stage, job: Job, price_items: tuple[tuple[str, float], ...]) -> list[Option]:
    # Cached: the burst search asks for the same (stage, job, prices) menus thousands of times.
    prices = dict(price_items)
    out, best = [], math.inf
    for o in sorted(stage.options, key=lambda o: (o.service(job), per_job_cost(o, job, prices))):
        c = per_job_cost(o, job, prices)
        if c < best - 1e-12:
            out.append(o)
            best = c
    return out


def frontier_rate(stage: Stage, job: Job, prices: dict[str, float]) -> list[Option]:
    """Options no faster option beats on $/hour, fastest first."""
    out, best = [], math.inf
    for o in sorted(stage.options, key=lambda o: (o.service(job), o.devices * prices[o.gpu])):
        if o.devices * prices[o.gpu] < best - 1e-12:
            out.append(o)
            best = o.devices * prices[o.gpu]
    return out


def chain_choice(stages: Sequence[Stage], jobs: Sequence[Job], prices: dict[str, float], avail: float,
                 by_rate: bool = False) -> list[Option] | None:
    """Cheapest option per stage for one chunk whose chain latency fits ``avail`` seconds.

    Starts every stage on its cheapest option and speeds up the stage that buys the most
    seconds per extra $ until the chain fits (None: even the fastest chain does not). Cheap
    means $ per job (throughput-bound instances), or with ``by_rate`` $ per hour: an instance
    that exists for a few early chunks is paid for by the hour, however little it works.
    """
    menus = [(frontier_rate if by_rate else frontier)(s, j, prices) for s, j in zip(stages, jobs)]

    def cost(o: Option, job: Job) -> float:
        return o.devices * prices[o.gpu] if by_rate else per_job_cost(o, job, prices)

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


def split_budget(active: Sequence[Stage], lead_jobs: dict[str, Job], prices: dict[str, float],
                 ttff: float) -> dict[str, float]:
    """Share the TTFF target between the stages on the first frame's path where speed is cheap.

    Start every stage on its cheapest option, then repeatedly upgrade the stage whose next
    faster option buys the most seconds per extra $/hour, until the first chunk fits;
    leftover time is shared pro rata. Speed is very unequally priced (a multi-GPU key image
    saves seconds for many GPUs, a multi-GPU lip-sync saves minutes), so a proportional
    split would waste money.
    """
    menus: dict[str, list[tuple[float, float]]] = {}
    for s in active:
        pts = sorted((o.devices * prices[o.gpu], o.service(lead_jobs[s.name])) for o in s.options)
        frontier_pts, best = [], math.inf
        for rate, lat in pts:
            if lat < best - 1e-12:
                frontier_pts.append((rate, lat))
                best = lat
        menus[s.name] = frontier_pts
    pick = {k: 0 for k in menus}

    def latency() -> float:
        return sum(menus[k][pick[k]][1] for k in menus)

    def gain(k: str) -> float:
        if pick[k] + 1 >= len(menus[k]):
            return -1.0
        (r0, l0), (r1, l1) = menus[k][pick[k]], menus[k][pick[k] + 1]
        return (l0 - l1) / max(r1 - r0, 1e-9)

    while latency() > ttff:
        k = max(menus, key=gain)
        if gain(k) < 0:
            break
        pick[k] += 1
    chosen = {k: menus[k][pick[k]][1] for k in menus}
    total = sum(chosen.values())
    return {k: v * ttff / total if total else 0.0 for k, v in chosen.items()}


def fastest_first_chunk(profiles: Profiles, w: Workload, lead: int = 9) -> float:
    """Lower bound on any plan's TTFF: the first scene's script, key image and TTS, then a
    ``lead``-frame low-quality first chunk, every stage on its fastest option, no queueing.
    (9 frames is the shortest clip FantasyTalking was profiled for.)"""
    first = standard_chunks(w, lead=(lead,), low_chunks=1)[0]
    total = 0.0
    for s in profiles.stages:
        if s.per != "chunk" or runs_for(s, first):
            total += min(o.service(lead_job(s, first, w)) for o in s.options)
    return total
