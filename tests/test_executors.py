import asyncio
import threading
import time

import pytest
from conftest import run_async

from pipelines.executors import StagePool


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
