"""Fallback for clients without WebRTC: the episode as one fragmented MP4 over HTTP.

It reads the same playout buffer as the WebRTC viewers and sends each segment as
soon as it exists; the browser's <video> element buffers and plays it progressively.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from models.protocols import Quality
from pipelines.playout.archive import Mp4Writer
from pipelines.playout.buffer import PlayoutBuffer

_encoders = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sw-fmp4")


class _Chunks:
    """A write-only sink: PyAV writes fragments here, the response drains them."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


async def fragmented_mp4(buffer: PlayoutBuffer, quality: Quality) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    sink = _Chunks()
    writer = await loop.run_in_executor(_encoders, lambda: Mp4Writer(sink, quality, fragmented=True))
    sent = 0
    try:
        while True:
            while sent < len(buffer.segments):
                await loop.run_in_executor(_encoders, writer.write, buffer.segments[sent])
                sent += 1
                data = sink.drain()
                if data:
                    yield data
            if buffer.finished:
                break
            await buffer.wait_change(timeout=1.0)
        await loop.run_in_executor(_encoders, writer.close)
        data = sink.drain()
        if data:
            yield data
    finally:
        if not writer._closed:
            await loop.run_in_executor(_encoders, writer.abort)
