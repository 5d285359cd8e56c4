"""Worker pools per stage, shared by every episode in the process, earliest deadline first.

Stages call model adapters that are loaded once and shared, so the pool size is
also the adapter's concurrency: the script writer (one llama.cpp context) gets
exactly one thread and episodes interleave line by line on it.

Queued tasks run in order of their deadline (the segment's playout time minus a
margin), across all episodes: the first segment of a new episode overtakes a
segment of an older one that is not due yet. ``order="fifo"`` runs them in
arrival order instead (for comparison).
"""
from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar

from pipelines.spans import Span, Timeline

T = TypeVar("T")
Order = Literal["edf", "fifo"]


@dataclass(order=True)
class _Job:
    key: tuple[float, int]
    call: Callable[[], Any] = field(compare=False)
    loop: asyncio.AbstractEventLoop = field(compare=False)
    future: asyncio.Future = field(compare=False)


class StagePool:
    def __init__(self, stage: str, workers: int, order: Order = "edf") -> None:
        self.stage = stage
        self.workers = workers
        self.order = order
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"sw-{stage}-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

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

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._heap and not self._closed:
                    self._cv.wait()
                if self._closed and not self._heap:
                    return
                job = heapq.heappop(self._heap)
            if job.future is None:  # a setup job (on_each_worker): no caller awaits it
                job.call()
                continue
            if job.future.cancelled():
                continue  # its episode went away while it waited
            try:
                result = job.call()
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                job.loop.call_soon_threadsafe(_settle, job.future, None, exc)
            else:
                job.loop.call_soon_threadsafe(_settle, job.future, result, None)

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
    ) -> T:
        """Run ``fn`` on a worker, in deadline order, and record a span (queued / started / finished).

        ``deadline`` is a ``time.monotonic()`` instant; tasks without one go after
        every task that has one, in arrival order.
        """
        loop = asyncio.get_running_loop()
        queued = timeline.now() if timeline else 0.0
        started: list[float] = []
        worker: list[str] = []

        def call() -> T:
            started.append(timeline.now() if timeline else 0.0)
            worker.append(threading.current_thread().name)
            return fn(*args)

        ctx = contextvars.copy_context()
        future: asyncio.Future = loop.create_future()
        rank = deadline if (deadline is not None and self.order == "edf") else math.inf
        job = _Job((rank, next(self._seq)), lambda: ctx.run(call), loop, future)
        with self._cv:
            if self._closed:
                raise RuntimeError(f"the {self.stage} pool is shut down")
            heapq.heappush(self._heap, job)
            self._cv.notify()
        result = await future
        if timeline is not None:
            timeline.add(
                Span(
                    stage=self.stage,
                    segment=segment,
                    tier=tier,
                    worker=worker[0] if worker else self.stage,
                    queued=queued,
                    started=started[0] if started else queued,
                    finished=timeline.now(),
                    media_s=media_s(result) if media_s else 0.0,
                    note=note,
                )
            )
        return result

    def shutdown(self) -> None:
        with self._cv:
            self._closed = True
            for job in self._heap:
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
    def __init__(self, script: int = 1, speech: int = 1, video: int = 1, order: Order = "edf",
                 video_costs: dict[str, float] | None = None, drawing: Any = None) -> None:
        from pipelines.planner import CostModel

        #: Drawing cost per tier as the video workers measure it, shared by every episode.
        self.video_costs = CostModel(video_costs or {})
        #: Worker processes the video threads hand segments to (None: draw in the thread).
        self.drawing = drawing
        self.script = StagePool("script", script, order)
        self.speech = StagePool("speech", speech, order)
        self.video = StagePool("video", video, order)

    @classmethod
    def for_deployment(cls, deployment: Any) -> "StagePools":
        """Pools sized and ordered as the deployment says, with its measured drawing costs."""
        video = deployment.tasks["video"].workers if "video" in deployment.tasks else 1
        drawing = None
        if deployment.runtime.video_workers == "process" and "video" in deployment.tasks:
            from pipelines.workers import DrawingProcesses

            spec = deployment.tasks["video"]
            drawing = DrawingProcesses(spec.adapter, spec.params)
        costs = {t.name: t.rtf for t in deployment.quality.ladder}
        if deployment.quality.profile:
            from pipelines.config import REPO_ROOT
            from pipelines.profiles import load_profile

            path = Path(deployment.quality.profile)
            costs.update(load_profile(path if path.is_absolute() else REPO_ROOT / path).video_rtf())
        pools = cls(video=video, order=deployment.runtime.scheduling, video_costs=costs, drawing=drawing)
        if drawing is not None:
            # Start every worker process now (spawn takes a second), not on the first request.
            pools.video.on_each_worker(drawing.warm_up)
        return pools

    def shutdown(self) -> None:
        for pool in (self.script, self.speech, self.video):
            pool.shutdown()
        if self.drawing is not None:
            self.drawing.shutdown()
