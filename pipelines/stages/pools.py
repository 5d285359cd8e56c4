"""Worker pools per stage, shared by every episode in the process, earliest deadline first.

Stages call model adapters that are loaded once and shared, so the pool size is
also the adapter's concurrency (``workers`` of the task in the deployment): the
script writer keeps a llama.cpp context per writing episode, so episodes
interleave line by line on its threads without re-evaluating each other's prompts.

Queued tasks run in order of their deadline (the segment's playout time minus a
margin), across all episodes: the first segment of a new episode overtakes a
segment of an older one that is not due yet. ``order="fifo"`` runs them in
arrival order instead (for comparison).

The video pool is made of slots from one or more declared pools (PoolSpec): each
slot has a speed class and a drawer (thread, process or Ray actor). When several
slots are free, the fastest takes the most urgent job: the i-th fastest free slot
takes the i-th job in deadline order. Jobs carry a predicted cost, so the planner
can ask how much work is queued ahead of a deadline.
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import itertools
import math
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pipelines.plan.cpu import CpuMeter
from pipelines.plan.tier_planner import CostModel, TierView
from pipelines.spans import Span, Timeline

if TYPE_CHECKING:
    from pipelines.config import Deployment
    from pipelines.plan.stage_profiles import Profile
    from pipelines.stages.drawing import Drawer

T = TypeVar("T")
Order = Literal["edf", "fifo"]


@dataclass(order=True)
class _Job:
    key: tuple[float, int]
    call: Callable[[], Any] = field(compare=False)
    loop: asyncio.AbstractEventLoop = field(compare=False)
    future: asyncio.Future = field(compare=False)
    #: Predicted seconds of work at speed 1 (0 when unknown).
    cost_s: float = field(default=0.0, compare=False)
    #: A second slot has started it too, because the first one straggled.
    hedged: bool = field(default=False, compare=False)
    #: The tier it draws at (None: any slot may run it).
    tier: str | None = field(default=None, compare=False)


@dataclass
class Slot:
    """One worker: a thread of the pool, its speed and where it draws.

    ``speed`` starts at the pool's declared speed class and then follows what the
    slot measures (predicted speed-1 seconds over seconds taken): it drops at
    once to a slower measurement and climbs back by a moving average, so a worker
    that slows down, or a machine that gets busy, is seen as slower by the
    planner and by the dispatch rule from its very next job.
    """

    name: str
    pool: str
    speed: float = 1.0
    drawer: Drawer | None = None
    #: (predicted seconds at speed 1, monotonic start) of the job it runs, if any.
    running: tuple[float, float] | None = None
    job: _Job | None = None
    alpha: float = 0.5
    #: The tiers it draws (its pool's); None: every tier.
    tiers: frozenset[str] | None = None
    #: Where its drawer runs (its pool's device).
    device: str = "cpu"

    def draws(self, tier: str | None) -> bool:
        return tier is None or self.tiers is None or tier in self.tiers

    def observe(self, predicted_s: float, took_s: float) -> None:
        if predicted_s <= 0 or took_s <= 0:
            return
        sample = predicted_s / took_s
        self.speed = sample if sample < self.speed else (1 - self.alpha) * self.speed + self.alpha * sample

    def speed_now(self, now: float) -> float:
        """Its speed, lowered already while a job runs longer than that speed predicts."""
        if self.running is None:
            return self.speed
        cost, t0 = self.running
        elapsed = now - t0
        return min(self.speed, cost / elapsed) if cost > 0 and elapsed > cost / self.speed else self.speed

    def left_s(self, now: float) -> float:
        """Predicted speed-1 seconds its job has left (0: idle, or past its prediction)."""
        if self.running is None:
            return 0.0
        cost, t0 = self.running
        return max(0.0, cost - (now - t0) * self.speed_now(now))

    def free_in(self, now: float) -> float:
        """Seconds until its job is predicted to end (0: idle, or past its prediction)."""
        return self.left_s(now) / self.speed_now(now)

    def straggling(self, now: float) -> bool:
        """Its job has run half again as long as its speed predicted (and a quarter second more)."""
        if self.running is None:
            return False
        cost, t0 = self.running
        return cost > 0 and now - t0 > 1.5 * cost / self.speed + 0.25


_current = threading.local()


def current_slot() -> Slot | None:
    """The slot whose thread is calling (None outside a pool's workers)."""
    return getattr(_current, "slot", None)


class StagePool:
    def __init__(self, stage: str, workers: int = 1, order: Order = "edf", slots: list[Slot] | None = None,
                 backup_runs: bool = True) -> None:
        self.stage = stage
        self.backup_runs = backup_runs
        self.slots = slots or [Slot(f"sw-{stage}-{i}", stage) for i in range(workers)]
        self.workers = len(self.slots)
        self.order = order
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._closed = False
        self._idle: set[int] = set()
        self._threads = [
            threading.Thread(target=self._work, args=(i,), name=slot.name, daemon=True)
            for i, slot in enumerate(self.slots)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def capacity(self) -> float:
        """Work done per second, in speed-1 seconds: the sum of the slots' speeds."""
        now = time.monotonic()
        return sum(s.speed_now(now) for s in self.slots)

    @property
    def fastest(self) -> float:
        now = time.monotonic()
        return max(s.speed_now(now) for s in self.slots)

    def backlog_s(self, deadline: float | None = None, tier: str | None = None) -> float:
        """Predicted speed-1 seconds of work queued ahead of ``deadline`` (all queued work if None)
        plus what the busy slots have left; with ``tier``, only what the slots drawing it share."""
        now = time.monotonic()
        slots = [s for s in self.slots if s.draws(tier)]
        with self._cv:
            queued = sum(j.cost_s for j in self._heap if (deadline is None or j.key[0] <= deadline)
                         and (tier is None or any(s.draws(j.tier) for s in slots)))
            running = sum(s.left_s(now) for s in slots)
        return queued + running

    @property
    def restricted(self) -> bool:
        """Some slot draws only some tiers (a GPU pool next to a CPU one)."""
        return any(s.tiers is not None for s in self.slots)

    def view(self, tier: str, deadline: float | None = None) -> TierView:
        """The slots that draw ``tier`` as the planner sees them: their capacity, the fastest, how
        many, and the work queued for them ahead of ``deadline``."""
        now = time.monotonic()
        speeds = [s.speed_now(now) for s in self.slots if s.draws(tier)]
        return TierView(sum(speeds), max(speeds, default=0.0), len(speeds), self.backlog_s(deadline, tier))

    def on_each_worker(self, fn: Callable[[], Any], timeout_s: float = 120.0) -> None:
        """Run ``fn`` once on every worker thread (each holds its own resources), and wait."""
        barrier = threading.Barrier(self.workers + 1, timeout=timeout_s)
        errors: list[BaseException] = []

        def job() -> None:
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                errors.append(exc)
            barrier.wait()  # hold this thread until every worker has run fn once

        with self._cv:
            for _ in range(self.workers):
                heapq.heappush(self._heap, _Job((-math.inf, next(self._seq)), job, None, None))  # type: ignore[arg-type]
            self._cv.notify_all()
        barrier.wait()
        if errors:
            raise errors[0]

    @property
    def queued(self) -> int:
        with self._cv:
            return len(self._heap)

    def _take(self, index: int) -> _Job | None:
        """The job slot ``index`` should run now, or None to leave the queue to others.

        The i-th fastest free slot takes the i-th job in deadline order, so the most
        urgent work goes to the fastest worker. A slot that is not the fastest of
        those that draw a job's tier skips it if it would finish after its deadline
        while a faster slot, busy now, is predicted to finish it in time, and takes
        the next one it can finish in time. A job no slot can finish in time any
        more is late wherever it goes: the first free slot takes it. A slot never
        takes a job at a tier its pool does not draw.
        """
        now = time.monotonic()
        me = self.slots[index]
        speed = me.speed_now(now)
        straggler = self._straggler(index, now)
        speeds = [(s.speed_now(now), s) for s in self.slots]
        for job in self._left_for(index, now):
            # The fastest of the slots that draw it: no faster one will come for it.
            fastest = all(speed >= v for v, s in speeds if s.draws(job.tier))
            deadline = job.key[0]
            if straggler is not None and straggler.key < job.key:
                break  # the straggling job is due first
            if (fastest or job.future is None or not math.isfinite(deadline) or now + job.cost_s / speed <= deadline
                    or not self._in_time_elsewhere(job, speed, now)):
                self._heap.remove(job)
                heapq.heapify(self._heap)
                return job
        if straggler is not None:
            straggler.hedged = True
            return straggler
        return None

    def _in_time_elsewhere(self, job: _Job, speed: float, now: float) -> bool:
        """Whether a slot faster than ``speed`` that draws ``job``'s tier is predicted to
        finish it by its deadline once its own job is done."""
        for slot in self.slots:
            v = slot.speed_now(now)
            if v > speed and slot.draws(job.tier) and now + slot.free_in(now) + job.cost_s / v <= job.key[0]:
                return True
        return False

    def _left_for(self, index: int, now: float) -> list[_Job]:
        """Queued jobs in deadline order that slot ``index`` may draw, less those the faster
        idle slots take first (each the first job it draws that no faster one took)."""
        me = self.slots[index]
        rank_key = (me.speed_now(now), -index)
        faster = sorted((i for i in self._idle if i != index and (self.slots[i].speed_now(now), -i) > rank_key),
                        key=lambda i: (-self.slots[i].speed_now(now), i))
        ordered = sorted(self._heap)
        taken: set[int] = set()
        for i in faster:
            slot = self.slots[i]
            first = next((k for k, job in enumerate(ordered) if k not in taken and slot.draws(job.tier)), None)
            if first is not None:
                taken.add(first)
        return [job for k, job in enumerate(ordered) if k not in taken and me.draws(job.tier)]

    def _straggler(self, index: int, now: float) -> _Job | None:
        """The most urgent job another slot runs far past its prediction, if this slot is no slower.

        Running it here too (a backup, as MapReduce does) and keeping the first
        result bounds what one slowed or stuck worker costs an episode."""
        if not self.backup_runs:
            return None
        me = self.slots[index].speed_now(now)
        mine = self.slots[index]
        late = [s.job for s in self.slots
                if s.job is not None and mine.draws(s.job.tier)
                and s.job.future is not None and not s.job.hedged and not s.job.future.done()
                and math.isfinite(s.job.key[0]) and s.straggling(now) and me >= s.speed_now(now)]
        return min(late, default=None)

    def _work(self, index: int) -> None:
        slot = self.slots[index]
        _current.slot = slot
        while True:
            with self._cv:
                self._idle.add(index)
                while True:
                    if self._closed and not self._heap:
                        self._idle.discard(index)
                        return
                    job = self._take(index)
                    if job is not None:
                        break
                    # Skipped jobs become takeable, and running ones may straggle, as time passes.
                    busy = self._heap or any(s.job is not None for s in self.slots)
                    self._cv.wait(0.25 if busy else None)
                self._idle.discard(index)
                slot.running = (job.cost_s, time.monotonic())
                slot.job = job
                self._cv.notify_all()  # the others' ranks changed
            try:
                if job.future is None:  # a setup job (on_each_worker): no caller awaits it
                    job.call()
                    continue
                if job.future.done():
                    continue  # its episode went away while it waited, or a backup run finished it
                try:
                    outcome: tuple[Any, BaseException | None] = (job.call(), None)
                except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                    outcome = (None, exc)
                # Free the slot before the caller wakes: what it plans next must not count this job.
                with self._cv:
                    slot.running = None
                    slot.job = None
                try:
                    job.loop.call_soon_threadsafe(_settle, job.future, *outcome)
                except RuntimeError:
                    pass  # the loop is closed: nobody waits for this any more
            finally:
                with self._cv:
                    slot.running = None
                    slot.job = None

    async def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        timeline: Timeline | None = None,
        segment: int | None = None,
        tier: str | None = None,
        media_s: Callable[[T], float] | None = None,
        note: str = "",
        deadline: float | None = None,
        cost_s: float = 0.0,
    ) -> T:
        """Run ``fn`` on a worker, in deadline order, and record a span (queued / started / finished).

        ``deadline`` is a ``time.monotonic()`` instant; tasks without one go after
        every task that has one, in arrival order. ``cost_s`` is the predicted work
        (speed-1 seconds) the planner counts as queued while the task waits.
        """
        loop = asyncio.get_running_loop()
        queued = timeline.now() if timeline else 0.0
        started: list[float] = []
        worker: list[str] = []
        finished_by: list[str] = []

        def call() -> T:
            started.append(timeline.now() if timeline else 0.0)
            worker.append(threading.current_thread().name)
            result = fn(*args)
            finished_by.append(threading.current_thread().name)
            return result

        ctx = contextvars.copy_context()
        future: asyncio.Future = loop.create_future()
        rank = deadline if (deadline is not None and self.order == "edf") else math.inf
        # A copy per run: a backup run of a straggling job enters the context concurrently.
        job = _Job((rank, next(self._seq)), lambda: ctx.copy().run(call), loop, future, cost_s, tier=tier)
        future.add_done_callback(lambda _f: self._stop_running(job))
        with self._cv:
            if self._closed:
                raise RuntimeError(f"the {self.stage} pool is shut down")
            heapq.heappush(self._heap, job)
            self._cv.notify_all()
        result = await future
        if timeline is not None:
            # With a backup run (at most one), the span is the run that finished first.
            winner = finished_by[0] if finished_by else (worker[0] if worker else self.stage)
            first = worker.index(winner) if winner in worker else 0
            if len(worker) > 1:
                note = f"{note} (backup run: {worker[1 - first]} straggled)".strip()
            timeline.add(
                Span(
                    stage=self.stage,
                    segment=segment,
                    tier=tier,
                    worker=winner,
                    queued=queued,
                    started=started[first] if len(started) > first else queued,
                    finished=timeline.now(),
                    media_s=media_s(result) if media_s else 0.0,
                    note=note,
                )
            )
        return result

    def _stop_running(self, job: _Job) -> None:
        """Stop the drawers still running ``job``: its caller went away (a splice dropped the
        segment), or a backup run finished it first. Their slots are free again within a frame."""
        with self._cv:
            # Under the lock: a slot whose job is this one cannot have moved on to the next.
            for slot in self.slots:
                if slot.job is job and slot.drawer is not None:
                    slot.drawer.cancel()

    def shutdown(self) -> None:
        with self._cv:
            self._closed = True
            for job in self._heap:
                if job.future is None or job.future.done():
                    continue  # a setup job, or one whose caller went away while it waited
                with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits for it
                    job.loop.call_soon_threadsafe(job.future.cancel)
            self._heap.clear()
            self._cv.notify_all()


def _settle(future: asyncio.Future, result: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


class StagePools:
    def __init__(self, script: int = 1, speech: int = 1, video: int | list[Slot] = 1, order: Order = "edf",
                 video_costs: dict[str, float] | None = None, cold_costs: dict[str, float] | None = None,
                 backup_runs: bool = True, split_speedup: dict[str, dict[int, float]] | None = None) -> None:
        #: Drawing cost per tier at speed 1 (the profile); slots measure their own speed against it.
        self.video_costs = CostModel(video_costs or {}, cold_costs, split_speedup)
        #: The measured profile the deployment names, if any.
        self.profile: Profile | None = None

        #: How busy the machine is, shared by every episode's planner.
        self.cpu = CpuMeter()
        #: Episodes generating on these pools (anything with ``lead_s()``), for min_lead_s.
        self.generating: weakref.WeakSet = weakref.WeakSet()
        self.script = StagePool("script", script, order)
        self.speech = StagePool("speech", speech, order)
        slots = video if isinstance(video, list) else None
        self.video = StagePool("video", video if isinstance(video, int) else len(video), order, slots=slots,
                               backup_runs=backup_runs)

    def min_lead_s(self) -> float:
        """The thinnest buffer among generating episodes: seconds of content ready ahead of viewers."""
        return min((episode.lead_s() for episode in list(self.generating)), default=math.inf)

    @property
    def drawers(self) -> list[Drawer]:
        return [s.drawer for s in self.video.slots if s.drawer is not None]

    @classmethod
    def for_deployment(cls, deployment: Deployment) -> StagePools:
        """Pools sized and ordered as the deployment says, with its measured drawing costs."""
        costs = {t.name: t.rtf for t in deployment.quality.ladder}
        cold: dict[str, float] = {}
        profile = None
        if deployment.quality.profile:
            from pipelines.config import REPO_ROOT
            from pipelines.plan.stage_profiles import load_profile

            path = Path(deployment.quality.profile)
            profile = load_profile(path if path.is_absolute() else REPO_ROOT / path)
            costs.update(profile.video_rtf())
            cold = {tier: fit.fixed_s for tier, fit in profile.video.items()}
        slots: list[Slot] = []
        spec = deployment.tasks.get("video")
        if spec is not None:
            from pipelines.stages.drawers import make_drawer

            for pool in deployment.video_pools():
                for i in range(pool.workers):
                    drawer = make_drawer(pool, spec.adapter, spec.params, deployment, i)
                    slots.append(Slot(f"sw-video-{pool.name}-{i}", pool.name, pool.speed, drawer,
                                      tiers=frozenset(pool.tiers) if pool.tiers is not None else None,
                                      device=pool.device))
        workers = {kind: spec.workers for kind, spec in deployment.tasks.items()}
        pools = cls(script=workers.get("script", 1), speech=workers.get("speech", 1), video=slots or 1,
                    order=deployment.runtime.scheduling, video_costs=costs, cold_costs=cold,
                    backup_runs=deployment.runtime.backup_runs,
                    split_speedup=profile.parallel if profile is not None else None)
        pools.profile = profile
        if slots:
            # Start every worker here (spawning a process is slow), not on the first request.
            pools.video.on_each_worker(lambda: current_slot().drawer.warm_up())  # type: ignore[union-attr]
        return pools

    def shutdown(self) -> None:
        for pool in (self.script, self.speech, self.video):
            pool.shutdown()
        for drawer in self.drawers:
            drawer.shutdown()
