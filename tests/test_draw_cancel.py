"""A draw nobody waits for any more stops at its next frame, and its worker is free for the next job.

A splice drops the segments after it while workers are drawing them; without
cancelling, the answer's first segment would wait for frames nobody will see.
"""
from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
from conftest import run_async

from models.protocols import Quality, SceneInfo, VisualSegment
from pipelines.stages.drawers import ProcessDrawer, ThreadDrawer
from pipelines.stages.drawing import DrawCancelled, DrawJob, Drawn
from pipelines.stages.pools import Slot, StagePool, current_slot


def job(seconds: float = 60.0, index: int = 0) -> DrawJob:
    """A long segment: drawn whole it takes far longer than any test waits."""
    n = int(48_000 * seconds)
    visual = VisualSegment(index, 0, n, 0, "hello there", np.zeros(n, dtype=np.float32), ())
    return DrawJob(SceneInfo("Tides", ("Alex", "Sam")), visual, Quality("240p", 240, 25), 90)


class _BlockingDrawer:
    """Draws until cancelled (or ``limit_s`` passes): records which happened."""

    def __init__(self, limit_s: float = 5.0) -> None:
        self.stop = threading.Event()
        self.limit_s = limit_s
        self.cancels = 0

    def draw(self, _job: DrawJob) -> Drawn:
        if not self.stop.wait(self.limit_s):
            raise AssertionError("never cancelled")
        raise DrawCancelled("stopped")

    def cancel(self) -> None:
        self.cancels += 1
        self.stop.set()


def _pool(*drawers: object, backup_runs: bool = False) -> StagePool:
    slots = [Slot(f"w{i}", "video", drawer=d) for i, d in enumerate(drawers)]  # type: ignore[arg-type]
    return StagePool("video", slots=slots, backup_runs=backup_runs)


def _draw_on_slot() -> str:
    slot = current_slot()
    assert slot is not None and slot.drawer is not None
    slot.drawer.draw(job())
    return slot.name


def test_a_cancelled_caller_stops_the_drawer_running_its_job():
    drawer = _BlockingDrawer()
    pool = _pool(drawer)

    async def scenario() -> None:
        task = asyncio.create_task(pool.run(_draw_on_slot, deadline=time.monotonic() + 5, cost_s=0.1))
        while pool.slots[0].job is None:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The slot is free again (it would be blocked for 5 s otherwise): the next job runs on it.
        assert await pool.run(lambda: current_slot().name, deadline=time.monotonic() + 5) == "w0"

    try:
        run_async(scenario())
        assert drawer.cancels == 1
    finally:
        pool.shutdown()


def test_a_queued_job_that_is_cancelled_stops_nobody():
    drawer = _BlockingDrawer(limit_s=0.5)
    pool = _pool(drawer)

    async def scenario() -> None:
        running = asyncio.create_task(pool.run(_draw_on_slot, deadline=time.monotonic() + 5))
        while pool.slots[0].job is None:
            await asyncio.sleep(0.01)
        queued = asyncio.create_task(pool.run(_draw_on_slot, deadline=time.monotonic() + 6))
        await asyncio.sleep(0.05)
        queued.cancel()
        with pytest.raises(AssertionError, match="never cancelled"):
            await running

    try:
        run_async(scenario())
        assert drawer.cancels == 0, "only the drawer of the job that was cancelled is stopped"
    finally:
        pool.shutdown()


def test_the_straggler_of_a_backup_run_is_stopped_when_the_backup_finishes():
    stuck, quick = _BlockingDrawer(), _BlockingDrawer()
    pool = _pool(stuck, quick, backup_runs=True)

    def draw() -> str:
        slot = current_slot()
        if slot.name == "w0":
            slot.drawer.draw(job())  # stuck far past the 0.1 s predicted, until cancelled
        return slot.name

    async def scenario() -> str:
        return await pool.run(draw, deadline=time.monotonic() + 5, cost_s=0.1)

    try:
        assert run_async(scenario()) == "w1"
        deadline = time.monotonic() + 5
        while pool.slots[0].job is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stuck.cancels == 1 and quick.cancels == 0
        assert pool.slots[0].job is None, "the straggling slot is free again"
    finally:
        pool.shutdown()


def _cancel_once_started(drawer: ThreadDrawer | ProcessDrawer) -> None:
    """Cancel the draw another thread has just started (once it has its token)."""
    deadline = time.monotonic() + 30
    while drawer._token == 0:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    drawer.cancel()


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_a_real_drawer_stops_mid_segment_and_draws_the_next_job_whole(backend):
    drawer = ThreadDrawer("avatar2d", {}) if backend == "thread" else ProcessDrawer("avatar2d", {})
    try:
        drawer.warm_up()
        canceller = threading.Thread(target=_cancel_once_started, args=(drawer,))
        canceller.start()
        with pytest.raises(DrawCancelled, match="segment 0"):
            drawer.draw(job(seconds=600))
        canceller.join()
        drawer.cancel()  # late: the draw is over; the next one must not be stopped by it
        drawn = drawer.draw(job(seconds=0.4, index=1))
        assert len(drawn.frames) == 10
    finally:
        drawer.shutdown()


class _Frames:
    """An animator that draws ``n`` grey frames at once: what takes the time is what follows."""

    def __init__(self, n: int) -> None:
        self.n = n

    def render(self, scene, visual, quality, frames=None, size=None):  # the Animator protocol
        for _ in range(self.n):
            yield np.full((quality.height, quality.height * 16 // 9, 3), 128, dtype=np.uint8)


@pytest.mark.parametrize("phase", ["compressing", "encoding"])
def test_a_draw_cancelled_after_its_frames_stops_while_they_are_compressed_or_encoded(phase: str) -> None:
    """Compressing and encoding a long segment take as long as drawing it on a busy machine:
    a cancel that comes then stops them too, so the worker is free at once."""
    from pipelines.stages.drawing import draw_with

    n = 10
    asked = 0

    def cancelled() -> bool:
        nonlocal asked
        asked += 1
        # n checks while drawing, n while compressing, then the encoder's.
        return asked > (n if phase == "compressing" else 2 * n) + 2

    segment = DrawJob(job().scene, job(1.0).visual, Quality("240p", 240, 25), 90, encode=True)
    with pytest.raises(DrawCancelled):
        draw_with(_Frames(n), segment, cancelled)
    assert asked <= 2 * n + 3, "stopped where it was asked to"
    drawn = draw_with(_Frames(n), segment)
    assert len(drawn.frames) == n, "nothing asks to stop: every frame is stored"
