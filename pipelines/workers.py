"""Video drawing in worker processes: one process per video worker slot, replaced if it dies.

Drawing is CPU-bound Python: in threads it competes for the GIL with the event
loop that paces WebRTC. Each video worker thread owns one process holding its
own animator; the thread sends the segment, the process sends back compressed
frames. If the process dies mid-segment, the slot starts a fresh one and draws
the segment again, so the episode plays on (at most one short stall).
"""
from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from models.protocols import Quality, SceneInfo, VisualSegment
from pipelines.frames import FrameList

log = logging.getLogger(__name__)

_animator: Any = None


def _init_worker(adapter: str, params: dict[str, Any]) -> None:
    global _animator
    from models.registry import load_adapter

    _animator = load_adapter("video", adapter, params)
    _animator.warm_up()


def _draw(scene: SceneInfo, visual: VisualSegment, quality: Quality, jpeg_quality: int | None) -> tuple[FrameList, float]:
    from pipelines.episode import rgb_to_i420

    t0 = time.perf_counter()
    frames = [rgb_to_i420(f) for f in _animator.render(scene, visual, quality)]
    elapsed = time.perf_counter() - t0
    stored = FrameList.raw(frames) if jpeg_quality is None else FrameList.compress(frames, jpeg_quality)
    return stored, elapsed


def _ping() -> int:
    return 1


class DrawingProcesses:
    """One worker process per calling thread (the video pool's threads)."""

    def __init__(self, adapter: str, params: dict[str, Any]) -> None:
        self.adapter = adapter
        self.params = params
        self._local = threading.local()
        self._all: list[ProcessPoolExecutor] = []
        self._lock = threading.Lock()
        self.restarts = 0
        # spawn, not fork: the parent runs llama.cpp and onnxruntime threads.
        self._ctx = multiprocessing.get_context("spawn")

    def _new(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=self._ctx, initializer=_init_worker,
                                   initargs=(self.adapter, self.params))
        with self._lock:
            self._all.append(pool)
        return pool

    def _pool(self) -> ProcessPoolExecutor:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = self._new()
        return pool

    def warm_up(self) -> None:
        self._pool().submit(_ping).result()

    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for pool in self._all for p in (pool._processes or {}).values()]  # noqa: SLF001

    def draw(self, scene: SceneInfo, visual: VisualSegment, quality: Quality, jpeg_quality: int | None) -> tuple[FrameList, float, int]:
        """Frames of one segment, drawing time, and how many times a dead process was replaced."""
        retries = 0
        while True:
            pool = self._pool()
            try:
                frames, elapsed = pool.submit(_draw, scene, visual, quality, jpeg_quality).result()
                return frames, elapsed, retries
            except BrokenProcessPool:
                if retries >= 2:
                    raise
                retries += 1
                self.restarts += 1
                log.warning("a drawing process died on segment %d; starting a new one and drawing it again", visual.index)
                pool.shutdown(wait=False, cancel_futures=True)
                self._local.pool = self._new()

    def shutdown(self) -> None:
        with self._lock:
            for pool in self._all:
                pool.shutdown(wait=False, cancel_futures=True)
            self._all.clear()
