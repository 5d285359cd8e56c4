"""Worker pools per stage, shared by every episode in the process.

Stages call model adapters that are loaded once and shared, so the pool size is
also the adapter's concurrency: the script writer (one llama.cpp context) gets
exactly one thread and episodes interleave line by line on it.
"""
from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from pipelines.spans import Span, Timeline

T = TypeVar("T")


class StagePool:
    def __init__(self, stage: str, workers: int) -> None:
        self.stage = stage
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"sw-{stage}")

    async def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        timeline: Timeline | None = None,
        segment: int | None = None,
        tier: str | None = None,
        media_s: Callable[[T], float] | None = None,
        note: str = "",
    ) -> T:
        """Run ``fn`` on a worker and record a span (queued / started / finished)."""
        loop = asyncio.get_running_loop()
        queued = timeline.now() if timeline else 0.0
        started: list[float] = []
        worker: list[str] = []

        def call() -> T:
            started.append(timeline.now() if timeline else 0.0)
            worker.append(threading.current_thread().name)
            return fn(*args)

        ctx = contextvars.copy_context()
        result = await loop.run_in_executor(self._pool, ctx.run, call)
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
        self._pool.shutdown(wait=False, cancel_futures=True)


class StagePools:
    def __init__(self, script: int = 1, speech: int = 1, video: int = 1) -> None:
        self.script = StagePool("script", script)
        self.speech = StagePool("speech", speech)
        self.video = StagePool("video", video)

    def shutdown(self) -> None:
        for pool in (self.script, self.speech, self.video):
            pool.shutdown()
