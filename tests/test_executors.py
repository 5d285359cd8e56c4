import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

import pytest
from conftest import run_async

from pipelines.stages.pools import Slot, StagePool, current_slot


async def _order_of(pool: StagePool, deadlines: list[float | None]) -> list[int]:
    """Submit jobs while the single worker is busy; return the order they ran in."""
    ran: list[int] = []
    gate = threading.Event()
    blocker = asyncio.create_task(pool.run(gate.wait))
    await asyncio.sleep(0.05)  # the worker is now inside gate.wait
    jobs = [asyncio.create_task(pool.run(ran.append, i, deadline=d)) for i, d in enumerate(deadlines)]
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(blocker, *jobs)
    return ran


def test_earliest_deadline_first_across_episodes():
    pool = StagePool("video", 1, order="edf")
    now = time.monotonic()
    # An old episode's segments due in 8, 9 and 10 s; a new episode's first segment due in 1 s.
    order = run_async(_order_of(pool, [now + 8, now + 9, None, now + 10, now + 1]))
    pool.shutdown()
    assert order == [4, 0, 1, 3, 2], "the new episode's first segment overtakes; no deadline goes last"


def test_fifo_order_ignores_deadlines():
    pool = StagePool("video", 1, order="fifo")
    now = time.monotonic()
    order = run_async(_order_of(pool, [now + 8, now + 9, now + 1]))
    pool.shutdown()
    assert order == [0, 1, 2]


def test_errors_reach_the_caller_and_the_pool_keeps_working():
    pool = StagePool("speech", 2)

    async def scenario():
        with pytest.raises(ZeroDivisionError):
            await pool.run(lambda: 1 / 0)
        return await pool.run(lambda: 42)

    assert run_async(scenario()) == 42
    pool.shutdown()


def test_the_fastest_free_worker_takes_the_most_urgent_job():
    """Heterogeneous pools: with a fast and a slow worker free, the urgent job goes to the fast one."""
    slots = [Slot("cheap-0", "cheap", speed=0.5), Slot("fast-0", "fast", speed=2.0)]
    pool = StagePool("video", order="edf", slots=slots)

    async def scenario():
        gate = threading.Event()

        def hold() -> str:
            gate.wait()
            return current_slot().name

        now = time.monotonic()
        await asyncio.sleep(0.05)  # both workers idle
        urgent = asyncio.create_task(pool.run(hold, deadline=now + 1))
        await asyncio.sleep(0.05)
        late = asyncio.create_task(pool.run(hold, deadline=now + 9))
        await asyncio.sleep(0.05)
        gate.set()
        return await urgent, await late

    for _ in range(5):  # whichever worker wakes first, the assignment is the same
        assert run_async(scenario()) == ("fast-0", "cheap-0")
    pool.shutdown()


def _slot_name() -> str:
    return current_slot().name


def _with_the_fast_worker_busy(job: Callable[[StagePool, threading.Event], Awaitable[str]]) -> str:
    """Run ``job`` on a pool of a slow worker (``cheap-0``) and a fast one (``fast-0``), while
    the fast one is held by a job predicted to take 2 s until ``job`` lets it go; the slot that ran it."""
    slots = [Slot("cheap-0", "cheap", speed=0.5), Slot("fast-0", "fast", speed=2.0)]
    pool = StagePool("video", order="edf", slots=slots)
    gate = threading.Event()

    async def scenario() -> str:
        busy = asyncio.create_task(pool.run(gate.wait, 10, deadline=time.monotonic() + 60, cost_s=4.0))
        while slots[1].job is None:
            await asyncio.sleep(0.01)
        try:
            return await job(pool, gate)
        finally:
            gate.set()
            await busy

    try:
        return run_async(scenario())
    finally:
        gate.set()
        pool.shutdown()


def test_a_late_job_goes_to_a_free_slow_worker_not_to_a_busy_fast_one():
    """Nobody can draw an overdue segment in time any more: waiting for the fast worker only
    makes it later, so the free slow one takes it at once."""

    async def overdue(pool: StagePool, _gate: threading.Event) -> str:
        return await asyncio.wait_for(pool.run(_slot_name, deadline=time.monotonic() - 1, cost_s=0.1), 2)

    assert _with_the_fast_worker_busy(overdue) == "cheap-0"


def test_a_job_a_busy_fast_worker_can_still_finish_in_time_waits_for_it():
    async def due_in_5_s(pool: StagePool, gate: threading.Event) -> str:
        # 8 s on the slow worker; on the fast one, 2 s once its own job is done.
        job = asyncio.create_task(pool.run(_slot_name, deadline=time.monotonic() + 5, cost_s=4.0))
        await asyncio.sleep(0.6)
        gate.set()
        return await job

    assert _with_the_fast_worker_busy(due_in_5_s) == "fast-0"


def test_backlog_counts_queued_work_ahead_of_a_deadline():
    pool = StagePool("video", 1, order="edf")

    async def scenario():
        gate = threading.Event()
        blocker = asyncio.create_task(pool.run(gate.wait, cost_s=1.0))
        await asyncio.sleep(0.05)
        now = time.monotonic()
        jobs = [asyncio.create_task(pool.run(lambda: None, deadline=now + d, cost_s=c))
                for d, c in ((2, 0.5), (5, 2.0), (9, 4.0))]
        await asyncio.sleep(0.05)
        ahead_of_6 = pool.backlog_s(now + 6)
        everything = pool.backlog_s()
        gate.set()
        await asyncio.gather(blocker, *jobs)
        return ahead_of_6, everything, pool.backlog_s()

    ahead_of_6, everything, after = run_async(scenario())
    pool.shutdown()
    # The running job's remaining second (less the ~0.1 s it has run) plus 0.5 + 2.0 queued before t+6.
    assert 3.3 < ahead_of_6 <= 3.5
    assert 7.3 < everything <= 7.5
    assert after == 0.0


@pytest.mark.parametrize("backup_runs", [True, False])
def test_a_free_worker_backs_up_a_straggling_job(backup_runs):
    slots = [Slot("a", "video"), Slot("b", "video")]
    pool = StagePool("video", order="edf", slots=slots, backup_runs=backup_runs)
    release = threading.Event()

    def draw() -> str:
        if current_slot().name == "a":
            release.wait(2)  # worker a is stuck far past the 0.1 s predicted
        return current_slot().name

    async def scenario():
        return await pool.run(draw, deadline=time.monotonic() + 5, cost_s=0.1)

    try:
        assert run_async(scenario()) == ("b" if backup_runs else "a")
    finally:
        release.set()
        pool.shutdown()


def test_shutdown_after_the_callers_loop_closed_leaves_its_cancelled_jobs_alone():
    """A job still queued, cancelled, when its caller's event loop is gone cannot be
    cancelled again through that loop: shutdown goes on without it."""
    pool = StagePool("video", slots=[Slot("w0", "video")])
    release = threading.Event()

    async def scenario() -> None:
        running = asyncio.create_task(pool.run(release.wait, 5, deadline=time.monotonic() + 5))
        while pool.slots[0].job is None:
            await asyncio.sleep(0.01)
        queued = asyncio.create_task(pool.run(lambda: None, deadline=time.monotonic() + 6))
        await asyncio.sleep(0.05)
        for task in (queued, running):
            task.cancel()
        await asyncio.gather(running, queued, return_exceptions=True)

    try:
        run_async(scenario())
        assert pool.queued == 1, "the worker is still busy: the job waits in the queue"
        pool.shutdown()
        assert pool.queued == 0
    finally:
        release.set()
