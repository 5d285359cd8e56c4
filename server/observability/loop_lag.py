"""How late the event loop runs what is due.

The loop paces every viewer's WebRTC tracks (a 20 ms audio packet, a video frame every
frame interval). When it wakes late, frames leave late and browsers report a freeze
although the server had the content: stalls that the playheads never see. A ticker
that asks to wake at a fixed interval measures it, as seen from inside the loop.
"""
from __future__ import annotations

import asyncio
import time

from server.observability.histogram import Hist

#: Bucket bounds (seconds): a video frame interval is 33-40 ms; Chromium counts a freeze
#: from about 150 ms past the usual interval.
LAG_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0)


class LoopLag:
    """Asks to wake every ``interval_s`` and records by how much each wake-up was late.

    ``run`` is a task for the life of the server (cancel it to stop); ``hist`` holds
    the lags in seconds.
    """

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.hist = Hist(LAG_BUCKETS)

    async def run(self) -> None:
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(self.interval_s)
            self.hist.observe(max(0.0, time.monotonic() - t0 - self.interval_s))
