"""The episode's archive is written beside the hand-over to viewers, never in its way.

A recording writer stands in for the MP4 writer, with a write that can be held back (as
x264 is on a busy machine): queueing a segment must not wait for it, only content no
splice can replace is written, and closing writes the rest in order.
"""
from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from conftest import run_async

from server.episodes.archiver import Archiver


class _Writer:
    def __init__(self) -> None:
        self.written: list[int] = []
        self.go = threading.Event()
        self.go.set()
        self.closed = self.aborted = False
        self.fail: Exception | None = None

    def write(self, segment) -> None:
        self.go.wait(5.0)
        if self.fail is not None:
            raise self.fail
        self.written.append(segment.start)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


def _seg(start: int, end: int) -> SimpleNamespace:
    return SimpleNamespace(start=start, end=end)


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


@pytest.fixture
def pool():
    pool = ThreadPoolExecutor(max_workers=1)
    yield pool
    pool.shutdown(wait=False, cancel_futures=True)


def test_queueing_does_not_wait_for_a_slow_write_and_only_settled_content_is_written(pool) -> None:
    async def scenario() -> tuple[list[int], list[int], list[int], bool]:
        writer, played = _Writer(), [0]
        archived: list[int] = []
        archive = Archiver(writer, pool, settled=lambda: played[0], on_archived=archived.append)
        writer.go.clear()  # the archive's thread is busy
        played[0] = 10
        archive.add(_seg(0, 10))
        archive.add(_seg(10, 20))  # returns at once although the first write is held
        archive.add(_seg(20, 30))
        await _settle()
        before = list(writer.written)
        writer.go.set()
        await _settle()
        settled_only = list(writer.written)
        archive.truncate(25, _seg(20, 25))  # a splice at 25: the queued 20-30 becomes 20-25
        await archive.close()
        return before, settled_only, writer.written, writer.closed and archived == [10, 20, 25]

    before, settled_only, written, closed = run_async(scenario())
    assert before == [], "nothing is written while the thread is held, and nobody waited for it"
    assert settled_only == [0], "only what a viewer has played past is final"
    assert written == [0, 10, 20] and closed


def test_a_failed_write_fails_the_next_add_and_abort_drops_the_file(pool) -> None:
    async def scenario() -> tuple[bool, _Writer]:
        writer = _Writer()
        writer.fail = OSError(28, "No space left on device")
        archive = Archiver(writer, pool, settled=lambda: None, on_archived=lambda end: None)
        archive.add(_seg(0, 10))
        await _settle()
        raised = False
        try:
            archive.add(_seg(10, 20))
        except OSError:
            raised = True
        await archive.abort()
        return raised, writer

    raised, writer = run_async(scenario())
    assert raised and writer.aborted and not writer.closed
