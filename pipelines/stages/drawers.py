"""Where a video worker slot draws: in its thread, in a process of its own, or on a Ray actor.

Drawing is CPU-bound Python: in threads it competes for the GIL with the event
loop that paces WebRTC. So by default each video worker slot owns one process
holding its own animator; the slot's thread sends the segment (or a range of its
frames), the process sends back compressed frames. If the process dies
mid-segment, the slot starts a fresh one and draws the piece again, so the
episode plays on (at most one short stall). Every backend has the same calls,
``warm_up``, ``draw`` and ``cancel``, so the scheduler never knows where work runs.
"""
from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from models.protocols import Animator, Quality
from pipelines.child_process import die_with_parent
from pipelines.config import Deployment, PoolSpec
from pipelines.stages.drawing import Drawer, DrawJob, Drawn, draw_with, prepare

log = logging.getLogger(__name__)


class ThreadDrawer:
    """Draws in the calling thread with the process-wide animator."""

    def __init__(self, adapter: str, params: dict[str, Any], qualities: Sequence[Quality] = ()) -> None:
        from models.registry import load_adapter

        self.animator = load_adapter("video", adapter, params)
        self.qualities = tuple(qualities)
        # Each draw gets a token; cancel() names the one to stop, so a late cancel never stops the next.
        self._tokens = itertools.count(1)
        self._token = self._stop = 0

    def warm_up(self) -> None:
        prepare(self.animator, self.qualities)

    def draw(self, job: DrawJob) -> Drawn:
        token = self._token = next(self._tokens)
        return draw_with(self.animator, job, lambda: self._stop == token)

    def cancel(self) -> None:
        self._stop = self._token

    def shutdown(self) -> None:
        pass


_animator: Animator | None = None
#: Shared with the parent: the token of the draw it wants stopped (ProcessDrawer.cancel).
_stop: Any = None
#: Test hook: this worker process sleeps this many times its drawing time after each job (0: none).
_slowdown = 0.0


def _init_worker(adapter: str, params: dict[str, Any], nice: int, qualities: tuple[Quality, ...],
                 stop: Any) -> None:
    global _animator, _stop
    from models.registry import load_adapter

    die_with_parent()
    if nice:
        os.nice(nice)
    _animator = load_adapter("video", adapter, params)
    _stop = stop
    prepare(_animator, qualities)


def _draw_in_process(job: DrawJob, token: int) -> Drawn:
    drawn = draw_with(_animator, job, lambda: _stop.value == token)
    if _slowdown:
        pause = _slowdown * drawn.elapsed_s
        time.sleep(pause)
        drawn.elapsed_s += pause
    return drawn


def _set_slowdown(factor: float) -> int:
    global _slowdown
    _slowdown = factor
    return os.getpid()


def _ping() -> int:
    return os.getpid()


class ProcessDrawer:
    """One worker process for one slot, replaced when it dies."""

    def __init__(self, adapter: str, params: dict[str, Any], nice: int = 0, qualities: Sequence[Quality] = ()) -> None:
        self.adapter = adapter
        self.params = params
        self.nice = nice
        self.qualities = tuple(qualities)
        self.restarts = 0
        # spawn, not fork: the parent runs llama.cpp and onnxruntime threads.
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        # Shared memory the worker reads between frames; it outlives a replaced worker.
        self._stop = self._ctx.RawValue("q", 0)
        self._tokens = itertools.count(1)
        self._token = 0

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                initargs = (self.adapter, self.params, self.nice, self.qualities, self._stop)
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=self._ctx, initializer=_init_worker,
                                                 initargs=initargs)
            return self._pool

    def warm_up(self) -> None:
        self._current().submit(_ping).result()

    def pid(self) -> int | None:
        pool = self._pool
        procs = list((pool._processes or {}).values()) if pool is not None else []
        return procs[0].pid if procs else None

    def set_slowdown(self, factor: float) -> int:
        """Make this worker ``1 + factor`` times slower (tests: a worker that degrades mid-episode).

        The call waits for the job the worker is drawing; returns its pid."""
        return self._current().submit(_set_slowdown, factor).result()

    def draw(self, job: DrawJob) -> Drawn:
        retries = 0
        token = self._token = next(self._tokens)
        while True:
            pool = self._current()
            try:
                drawn = pool.submit(_draw_in_process, job, token).result()
                drawn.retries = retries
                return drawn
            except BrokenProcessPool:
                if retries >= 2:
                    raise
                retries += 1
                self.restarts += 1
                log.warning("a drawing process died on segment %d; starting a new one and drawing it again",
                            job.visual.index)
                with self._lock:
                    if self._pool is pool:
                        self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)

    def cancel(self) -> None:
        self._stop.value = self._token

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            processes = list((pool._processes or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:  # the executor's own shutdown may not finish before exit
                process.terminate()


def make_drawer(pool: PoolSpec, adapter: str, params: dict[str, Any], deployment: Deployment, index: int) -> Drawer:
    """The drawer for worker ``index`` of ``pool``, on the pool's device, warmed for the tiers it draws."""
    qualities = [q for q in deployment.quality.qualities() if pool.draws(q.name)]
    if pool.device != "cpu":
        params = {**params, "device": pool.device}
    if pool.backend == "thread":
        return ThreadDrawer(adapter, params, qualities)
    if pool.backend == "ray":
        from pipelines.stages.ray_drawers import RayDrawer

        return RayDrawer(pool, adapter, params, deployment.ray, index, tuple(qualities))
    return ProcessDrawer(adapter, params, nice=pool.nice, qualities=qualities)
