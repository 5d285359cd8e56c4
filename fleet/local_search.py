"""Simulation-driven repair and local search over allocations.

Starting points from the covering proxy or the chain heuristic ignore queueing, so the
simulator judges them: :func:`repair` adds replicas where the latest chunk queued until no
chunk stalls, :func:`trim_replicas` and :func:`improve` then remove or move replicas while every
chunk stays on time and the simulated cost falls.

Contract: each function returns a new allocation (never mutates its argument) together with
its :class:`~fleet.simulator.SimResult`, or ``None`` where :func:`repair` gives up.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

from fleet.chains import chunk_job, frontier, runs_for, standard_job
from fleet.paper_profiles import Option, Profiles, Stage, Workload
from fleet.simulator import (
    Allocation,
    Chunk,
    Instance,
    SimResult,
    chunk_offsets,
    chunk_scenes,
    option_of,
    simulate,
    within_counts,
)

Move = tuple[str, int, list[Instance]]  # stage, index of the instance class, what replaces it


def repair(profiles: Profiles, w: Workload, chunks: list[Chunk], alloc: Allocation, target: float,
           spot: bool = True, max_iter: int = 400) -> tuple[Allocation, SimResult] | None:
    """Simulate; while some chunk is late for playback (TTFF > target), add replicas (+10%) where
    the latest chunk queued longest, or, when it did not queue, one replica of the next faster
    option where its chain is slowest. None when nothing helps within ``max_iter`` steps."""
    offsets = chunk_offsets(chunks, w.fps)
    chunk_scene = chunk_scenes(offsets, w)
    alloc = {s: list(v) for s, v in alloc.items()}
    cstages = [s for s in profiles.stages if s.per == "chunk" and s.name in alloc]
    for _ in range(max_iter):
        res = simulate(profiles, alloc, w, chunks, pipelined=True, spot=spot)
        k = latest_chunk(res, offsets, target)
        if k is None:
            return alloc, res
        where = most_waited(profiles, alloc, res, k, chunk_scene)
        if where is None:  # late without queueing: speed up the slowest step of its chain
            if not _speed_up(alloc, cstages, chunks[k], w):
                return None
            continue
        name, ci = where[0], res.served[where[0]][where[1]]
        live = [n for n, i in enumerate(alloc[name]) if i.replicas > 0]
        n = live[ci]
        inst = alloc[name][n]
        alloc[name][n] = Instance(inst.gpu, inst.devices, inst.replicas + max(1, inst.replicas // 10),
                                  inst.jobs, inst.startup)
    return None


def latest_chunk(res: SimResult, offsets: list[float], target: float) -> int | None:
    """The chunk that misses its playback time (TTFF + its start) by the most, or None if none does."""
    late = [d - o - target for d, o in zip(res.chunk_done, offsets)]
    k = max(range(len(late)), key=lambda j: late[j])
    return k if late[k] > 1e-9 else None


def most_waited(profiles: Profiles, alloc: Allocation, res: SimResult, k: int,
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


def _speed_up(alloc: Allocation, cstages: list[Stage], chunk: Chunk, w: Workload) -> bool:
    """Add one replica of the next faster option at the chunk stage where ``chunk`` is slowest."""
    best: tuple[float, Stage, Option] | None = None
    for s in cstages:
        if not runs_for(s, chunk) or s.name not in alloc:
            continue
        job = chunk_job(s, chunk, w)
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


def _by_spend(alloc: Allocation, prices: dict[str, float]) -> list[tuple[str, int]]:
    """(stage, index) of every instance class, the most expensive per hour first."""
    def spend(sn: tuple[str, int]) -> float:
        i = alloc[sn[0]][sn[1]]
        return -i.devices * prices[i.gpu] * i.replicas
    return sorted(((s, n) for s, insts in alloc.items() for n in range(len(insts))), key=spend)


def _moves(alloc: Allocation, prices: dict[str, float], ladders: dict[str, list[Option]]) -> Iterator[Move]:
    """Candidate changes, most expensive class first: fewer replicas (a quarter, or one), the
    whole class on the next slower or faster option of its ladder, or one replica moved there."""
    for s, n in _by_spend(alloc, prices):
        inst = alloc[s][n]
        for step in sorted({max(1, inst.replicas // 4), 1}, reverse=True):
            if inst.replicas - step >= (0 if len(alloc[s]) > 1 else 1):
                yield s, n, [Instance(inst.gpu, inst.devices, inst.replicas - step, inst.jobs, inst.startup)]
        ladder = ladders.get(s, [])
        here = [k for k, o in enumerate(ladder) if (o.gpu, o.devices) == (inst.gpu, inst.devices)]
        if not here:
            continue
        for k in (here[0] + 1, here[0] - 1):
            if 0 <= k < len(ladder):
                o = ladder[k]
                yield s, n, [Instance(o.gpu, o.devices, inst.replicas, inst.jobs, inst.startup)]
                if inst.replicas > 1:
                    yield s, n, [Instance(inst.gpu, inst.devices, inst.replicas - 1, inst.jobs, inst.startup),
                                 Instance(o.gpu, o.devices, 1, inst.jobs, inst.startup)]


def _simulate_or_none(profiles: Profiles, alloc: Allocation, w: Workload, chunks: list[Chunk],
                      spot: bool) -> SimResult | None:
    """A simulation, or None for an allocation that leaves some job without an instance."""
    try:
        return simulate(profiles, alloc, w, chunks, pipelined=True, spot=spot)
    except ValueError:
        return None


def improve(profiles: Profiles, w: Workload, chunks: list[Chunk], alloc: Allocation, res: SimResult,
            target: float, spot: bool = True, max_evals: int = 1500,
            counts: dict[str, int] | None = None) -> tuple[Allocation, SimResult]:
    """Hill-climb on the simulated cost: fewer replicas, or an instance class moved to the next
    slower/faster option of its stage (cost-per-job frontier), first improvement that keeps every
    chunk on time. Each move is one simulation; stops at a local optimum or after ``max_evals``."""
    prices = profiles.spot if spot else profiles.reserved
    std = standard_job(w)
    ladders = {s.name: frontier(s, std, prices) for s in profiles.stages if s.per == "chunk"}
    alloc = {s: [i for i in insts if i.replicas > 0] for s, insts in alloc.items()}
    evals = 0
    improved = True
    while improved and evals < max_evals:
        improved = False
        for s, n, new in _moves(alloc, prices, ladders):
            old = list(alloc[s])
            alloc[s] = merge(old[:n] + new + old[n + 1:])
            r = _simulate_or_none(profiles, alloc, w, chunks, spot)
            evals += 1
            if r is not None and r.ttff_s <= target + 1e-9 and r.cost < res.cost - 1e-9 and within_counts(alloc, counts):
                res, improved = r, True
                break
            alloc[s] = old
            if evals >= max_evals:
                break
    alloc = {s: [i for i in insts if i.replicas > 0] for s, insts in alloc.items()}
    return alloc, res


def merge(insts: list[Instance]) -> list[Instance]:
    """One instance class per (GPU, size, job range, pool); drop empty ones."""
    out: dict[tuple[str, int, tuple[int, int] | None, bool], Instance] = {}
    for i in insts:
        if i.replicas <= 0:
            continue
        key = (i.gpu, i.devices, i.jobs, i.startup)
        if key in out:
            i = Instance(i.gpu, i.devices, out[key].replicas + i.replicas, i.jobs, i.startup)
        out[key] = i
    return list(out.values())


def trim_replicas(profiles: Profiles, w: Workload, chunks: list[Chunk], alloc: Allocation, res: SimResult,
         bad: Callable[[SimResult], bool], spot: bool) -> tuple[Allocation, SimResult]:
    """Remove replicas, most expensive class first, while the plan stays valid and gets cheaper.

    Per class a bisection on the replica count (whole servers freed matter most), then the
    next class; a class keeps at least one replica unless another class of its stage remains.
    """
    prices = profiles.spot if spot else profiles.reserved
    alloc = {s: list(v) for s, v in alloc.items()}
    for s, n in _by_spend(alloc, prices):
        inst = alloc[s][n]
        others = sum(i.replicas for m, i in enumerate(alloc[s]) if m != n)
        lo, hi = (0 if others else 1), inst.replicas  # hi is known to be valid
        while lo < hi:
            mid = (lo + hi) // 2
            alloc[s][n] = Instance(inst.gpu, inst.devices, mid, inst.jobs, inst.startup)
            r = _simulate_or_none(profiles, alloc, w, chunks, spot)
            if r is not None and not bad(r) and r.cost <= res.cost + 1e-12:
                hi, res = mid, r
            else:
                lo = mid + 1
        alloc[s][n] = Instance(inst.gpu, inst.devices, hi, inst.jobs, inst.startup)
    alloc = {s: [i for i in insts if i.replicas > 0] for s, insts in alloc.items()}
    return alloc, simulate(profiles, alloc, w, chunks, pipelined=True, spot=spot)
