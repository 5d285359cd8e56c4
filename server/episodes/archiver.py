"""An episode's MP4 archive, written beside the hand-over to viewers, never in its way.

x264-encoding a segment into the archive takes real CPU time. Done in the loop that hands
segments to the viewers, each write would hold the next segment back from them, and stall
them whenever little is ready ahead (right after a viewer's question, a splice). So each
episode's archive is written by a task of its own, its encoding on a worker thread.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

from pipelines.playout.archive import Mp4Writer
from pipelines.segments import ReadySegment


class Archiver:
    """Writes an episode's segments into its MP4 file once no splice can replace them.

    ``add`` queues a segment as it is handed to the viewers and returns at once;
    ``truncate`` drops the queued ones a splice replaced; ``close`` writes what is left
    and publishes the file; ``abort`` discards it. ``settled()`` says where the content
    that can no longer change ends (None: everything handed over is final);
    ``on_archived(end)`` is told before a segment ending at clock sample ``end`` goes into
    the file. Writes run on ``pool``: one thread may serve every episode's archive. A
    write that fails (a full disk) is raised by the next ``add`` or by ``close``.
    """

    def __init__(self, writer: Mp4Writer, pool: Executor, settled: Callable[[], int | None],
                 on_archived: Callable[[int], None]) -> None:
        self.writer = writer
        self._pool = pool
        self._settled = settled
        self._on_archived = on_archived
        self._pending: list[ReadySegment] = []
        self._wake = asyncio.Event()
        self._complete = False
        self._task = asyncio.create_task(self._run(), name="archive")

    def add(self, segment: ReadySegment) -> None:
        if self._task.done() and not self._task.cancelled() and (exc := self._task.exception()) is not None:
            raise exc
        self._pending.append(segment)
        self._wake.set()

    def truncate(self, at: int, cut: ReadySegment | None) -> None:
        """Drop the queued content from clock sample ``at`` on; ``cut`` is the segment the
        splice shortened (it replaces the queued one that starts where it does)."""
        self._pending[:] = [cut if cut is not None and s.start == cut.start else s
                            for s in self._pending if s.start < at]

    async def close(self) -> Path | None:
        """Write everything queued, then publish the file under its final name."""
        self._complete = True
        self._wake.set()
        await self._task
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.writer.close)

    async def abort(self) -> None:
        """Stop writing and drop the file (a write under way finishes first, on the pool)."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(self._pool, self.writer.abort)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        final = False
        while not final:
            await self._wake.wait()
            self._wake.clear()
            final = self._complete
            settled = None if final else self._settled()
            while self._pending and (settled is None or self._pending[0].end <= settled):
                segment = self._pending.pop(0)
                self._on_archived(segment.end)
                await loop.run_in_executor(self._pool, self.writer.write, segment)
