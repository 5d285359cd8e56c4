"""Discrete-event simulator of the podcast DAG on provisioned GPU instances.

Why a simulator and not the paper's formula: the paper sums stage times (every stage waits
for the previous one to finish the whole episode), while the live system streams: a chunk's
video starts as soon as its own audio and image exist. Both are modelled here with the same
profiles: ``pipelined=True`` lets every job start when its own inputs are done;
``pipelined=False`` inserts a barrier between stages (the paper's model, which is how
:mod:`fleet.calibration` cross-checks the simulator).

Scheduling: each stage has a queue served by its replicas in chunk order (earliest chunk
first); a job goes to the replica that would finish it first (replicas differ in GPU type
and size). Deterministic, no randomness, cheap enough to sit inside the planner's loop.

Contract: :func:`simulate` takes profiles, an :data:`Allocation` and a chunk list and returns
a :class:`SimResult`; it never mutates its inputs and raises ``ValueError`` when a stage with
work has no instance that can serve a job. The small helpers here (chunk offsets, GPUs used,
whole-server billing) are the accounting every planner module shares with it.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import NamedTuple

from fleet.paper_profiles import TIERS, Job, Option, Profiles, Stage, Workload


@dataclass(frozen=True)
class Instance:
    """``replicas`` copies of one stage, each on ``devices`` GPUs of type ``gpu``."""

    gpu: str
    devices: int
    replicas: int = 1
    jobs: tuple[int, int] | None = None  # serve only job indices in [lo, hi) (chunk or scene)
    startup: bool = False  # startup pool: billed only until its last job ends (see simulate)


Allocation = dict[str, list[Instance]]


@dataclass(frozen=True)
class Chunk:
    """A piece of the episode streamed as one unit: lip-sync frames and quality tier."""

    frames: int
    tier: str = "high"


@dataclass
class SimResult:
    """One simulated episode: latency, billing and energy, plus per-job logs for repair."""

    ttff_s: float
    tbf_s: float
    total_time_s: float
    first_chunk_s: float
    cost: float
    energy_kwh: float
    gpus: dict[str, int]
    billed_gpus: dict[str, int]
    chunk_done: list[float] = field(repr=False, default_factory=list)
    high_share: float = 1.0  # fraction of frames at a high tier
    cost_strict: float = 0.0  # every server billed for the whole episode (the paper's rule)
    startup_window_s: float = 0.0  # how long the startup pool is held (0: no startup pool)
    waits: dict[str, list[float]] = field(repr=False, default_factory=dict)  # queueing per stage and job
    served: dict[str, list[int]] = field(repr=False, default_factory=dict)  # per stage and job: index among
    # the stage's instances with replicas > 0 (-1: the job skipped the stage)


def standard_chunks(workload: Workload, tier: str = "high", lead: tuple[int, ...] = (),
                    low_chunks: int = 0, low_tier: str = "low") -> list[Chunk]:
    """Split the episode into subscene chunks, optionally preceded by shorter ``lead`` chunks.

    ``low_chunks`` first chunks use ``low_tier``: the adaptive-quality lever.
    """
    total, size = workload.frames, workload.subscene_frames
    frames: list[int] = []
    for f in lead:
        if sum(frames) + f < total:
            frames.append(f)
    while sum(frames) < total:
        frames.append(min(size, total - sum(frames)))
    return [Chunk(f, low_tier if i < low_chunks else tier) for i, f in enumerate(frames)]


def chunk_offsets(chunks: list[Chunk], fps: int) -> list[float]:
    """Where each chunk starts in the video (seconds): chunk k plays at TTFF + offset k."""
    offsets, t = [], 0.0
    for c in chunks:
        offsets.append(t)
        t += c.frames / fps
    return offsets


def chunk_scenes(offsets: list[float], workload: Workload) -> list[int]:
    """The scene each chunk belongs to (its per-scene inputs: script line, voice)."""
    scene_s = workload.video_s / workload.scenes
    return [min(workload.scenes - 1, int((o + 1e-9) // scene_s)) for o in offsets]


def high_share(chunks: list[Chunk]) -> float:
    """Share of the episode's frames generated at a high tier."""
    return sum(c.frames for c in chunks if c.tier.startswith("high")) / max(1, sum(c.frames for c in chunks))


def gpus_used(alloc: Allocation, startup: bool | None = None) -> dict[str, int]:
    """GPUs per type an allocation occupies (only the startup or bulk pool when ``startup`` is set)."""
    out: dict[str, int] = {}
    for insts in alloc.values():
        for i in insts:
            if startup is not None and i.startup != startup:
                continue
            out[i.gpu] = out.get(i.gpu, 0) + i.devices * i.replicas
    return out


def within_counts(alloc: Allocation, counts: dict[str, int] | None) -> bool:
    """Whether an allocation fits the devices a local profile has (``None``: no limit)."""
    if counts is None:
        return True
    return all(n <= counts.get(g, 0) for g, n in gpus_used(alloc).items())


def billed(used: dict[str, int], profiles: Profiles) -> dict[str, int]:
    """Round each GPU type up to whole servers: that is what a cloud bills."""
    return {g: math.ceil(n / profiles.server_size[g]) * profiles.server_size[g] for g, n in used.items() if n > 0}


def option_of(stage: Stage, inst: Instance) -> Option:
    """The profiled option an instance runs (same GPU type and device count)."""
    for o in stage.options:
        if o.gpu == inst.gpu and o.devices == inst.devices:
            return o
    raise ValueError(f"stage {stage.name}: no profile for {inst.devices} x {inst.gpu}")


def stage_jobs(stage: Stage, workload: Workload, chunks: list[Chunk]) -> list[tuple[int, Job]]:
    """(index, job) a stage runs: one per chunk it applies to, one per scene, or one per episode."""
    if stage.per == "chunk":
        return [(k, Job(c.frames / workload.fps, c.frames, TIERS[c.tier][0] if stage.tiered else 1.0))
                for k, c in enumerate(chunks) if not stage.optional or TIERS[c.tier][1]]
    if stage.per == "scene":
        scene_s = workload.video_s / workload.scenes
        return [(k, Job(scene_s, math.ceil(scene_s * workload.fps), first=k == 0)) for k in range(workload.scenes)]
    return [(0, Job(workload.video_s, workload.frames, first=True))]


@dataclass
class _Tally:
    """Totals over every job of the episode, accumulated in dispatch order."""

    busy_j: float = 0.0
    busy_gpu_s: dict[str, float] = field(default_factory=dict)
    window: float = 0.0  # end of the startup pool's last job


class _StageRun(NamedTuple):
    finish: list[float]
    waits: list[float]
    served: list[int]


def _run_stage(stage: Stage, insts: list[Instance], jobs: list[tuple[int, Job]], n_out: int,
               deps: list[tuple[list[float], str]], chunk_scene: list[int], floor: float,
               tally: _Tally) -> _StageRun:
    """Dispatch a stage's jobs in order, each to the replica that finishes it first.

    A job is ready when its inputs are (``deps``: each dependency's finish times and its
    ``per``) and not before ``floor`` (the barrier of the sequential model).
    """
    insts = [i for i in insts if i.replicas > 0]
    if not insts:
        raise ValueError(f"stage {stage.name!r} has jobs but no instances")
    classes = [(option_of(stage, i), [0.0] * i.replicas, i) for i in insts]
    finish = [0.0] * n_out
    waits = [0.0] * n_out
    served = [-1] * n_out
    chained = stage.per == "scene" and not stage.deps  # the script LLM writes scenes in order
    svc_of: dict[Job, list[float]] = {}  # service time per class; jobs repeat (same size and tier)
    for k, job in jobs:
        ready = floor
        for dep_done, dep_per in deps:
            dk = k if dep_per == stage.per else (chunk_scene[k] if dep_per == "scene" and stage.per == "chunk" else 0)
            ready = max(ready, dep_done[dk])
        if chained and k > 0:
            ready = max(ready, finish[k - 1])
        svcs = svc_of.get(job)
        if svcs is None:
            svcs = svc_of[job] = [opt.service(job) for opt, _, _ in classes]
        best = None
        for ci, (_, heap, inst) in enumerate(classes):
            if inst.jobs is not None and not inst.jobs[0] <= k < inst.jobs[1]:
                continue
            end = max(heap[0], ready) + svcs[ci]
            if best is None or end < best[0]:
                best = (end, ci)
        if best is None:
            raise ValueError(f"stage {stage.name!r}: no instance serves job {k}")
        end, ci = best
        opt, heap, inst = classes[ci]
        svc = svcs[ci]
        waits[k] = end - svc - ready
        served[k] = ci
        heapq.heapreplace(heap, end)
        finish[k] = end
        if inst.startup:
            tally.window = max(tally.window, end)
        tally.busy_j += svc * opt.busy_watts
        tally.busy_gpu_s[opt.gpu] = tally.busy_gpu_s.get(opt.gpu, 0.0) + svc * opt.devices
    return _StageRun(finish, waits, served)


class _Bill(NamedTuple):
    cost: float
    cost_strict: float
    billed_gpus: dict[str, int]
    window: float
    energy_j: float


def _bill(profiles: Profiles, alloc: Allocation, spot: bool, makespan: float, tally: _Tally) -> _Bill:
    """The paper's billing rule: GPUs rounded up to whole servers per type x time x price.

    Bulk servers are held for the whole episode. Servers of the startup pool (fast instances
    for the first chunks) are rounded up separately and held from the request until their
    last job ends, as a pool that back-to-back episode starts share would bill them.
    ``cost_strict`` bills every server for the whole episode (one pool, rounded once); the
    cost is the cheaper of the two, since holding everything for the episode is always allowed.
    Energy is the busy energy plus idle power for the time billed but not busy.
    """
    used = gpus_used(alloc)
    prices = profiles.spot if spot else profiles.reserved
    window = tally.window
    main, start = billed(gpus_used(alloc, False), profiles), billed(gpus_used(alloc, True), profiles)
    cost = (sum(n * prices[g] for g, n in main.items()) * makespan
            + sum(n * prices[g] for g, n in start.items()) * window) / 3600.0
    bill = dict(main)
    for g, n in start.items():
        bill[g] = bill.get(g, 0) + n
    cost_strict = sum(n * prices[g] for g, n in billed(used, profiles).items()) * makespan / 3600.0
    if cost_strict <= cost:
        cost, window, bill = cost_strict, 0.0, billed(used, profiles)
        main, start = bill, {}
    held = {g: main.get(g, 0) * makespan + start.get(g, 0) * window for g in bill}
    idle_j = sum(profiles.idle_watts[g] * max(0.0, held[g] - tally.busy_gpu_s.get(g, 0.0)) for g in bill)
    return _Bill(cost, cost_strict, bill, window, tally.busy_j + idle_j)


def simulate(profiles: Profiles, alloc: Allocation, workload: Workload, chunks: list[Chunk],
             pipelined: bool = True, spot: bool = True) -> SimResult:
    """Run one episode; every stage needs at least one instance (the upscaler only if used).

    TTFF is stall-free when pipelined: the least start delay such that every chunk is done
    by TTFF + its start in the video. Sequential (``pipelined=False``) uses the paper's
    definition, max(first chunk, makespan - video length).
    """
    offsets = chunk_offsets(chunks, workload.fps)
    chunk_scene = chunk_scenes(offsets, workload)
    done: dict[str, list[float]] = {}
    tally = _Tally()
    barrier = 0.0
    wait_log: dict[str, list[float]] = {}
    served_log: dict[str, list[int]] = {}
    per_of = {s.name: s.per for s in profiles.stages}
    for stage in profiles.stages:
        jobs = stage_jobs(stage, workload, chunks)
        n_out = len(chunks) if stage.per == "chunk" else workload.scenes if stage.per == "scene" else 1
        if not jobs:
            done[stage.name] = list(done[stage.deps[0]]) if stage.optional else [0.0] * n_out
            continue
        deps = [(done[d], per_of[d]) for d in stage.deps]
        run = _run_stage(stage, alloc.get(stage.name, []), jobs, n_out, deps, chunk_scene,
                         barrier if not pipelined else 0.0, tally)
        finish = run.finish
        if stage.optional:  # chunks that skip the stage pass through with their input time
            ran, prev = {k for k, _ in jobs}, done[stage.deps[0]]
            finish = [finish[k] if k in ran else prev[k] for k in range(len(chunks))]
        done[stage.name] = finish
        wait_log[stage.name] = run.waits
        served_log[stage.name] = run.served
        barrier = max(barrier, max(finish))
    last = [s for s in profiles.stages if s.per == "chunk"][-1].name
    chunk_done = done[last]
    makespan = max(max(v) for v in done.values())
    first = chunk_done[0]
    ttff = max(d - o for d, o in zip(chunk_done, offsets))
    if not pipelined:
        ttff = max(first, makespan - workload.video_s)
    frames_after_first = max(1, workload.frames - chunks[0].frames)
    tbf = max(0.0, (makespan - first) / frames_after_first)
    b = _bill(profiles, alloc, spot, makespan, tally)
    return SimResult(ttff, tbf, makespan, first, b.cost, b.energy_j / 3.6e6, gpus_used(alloc), b.billed_gpus,
                     chunk_done, high_share(chunks), b.cost_strict, b.window, wait_log, served_log)

