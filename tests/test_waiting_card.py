"""A viewer waiting for its episode to start is sent the still title card at a low rate, then the stream at full rate."""
import asyncio
import time

import numpy as np
from conftest import run_async

from server.webrtc import VIDEO_CLOCK, WAITING_FPS, PlayheadVideoTrack, ViewerClock

FPS = 25
CARD = np.zeros((360 * 3 // 2, 640), dtype=np.uint8)


class FakePlayhead:
    def __init__(self) -> None:
        self.started = False
        self.ended = False

    def frame(self):
        return (CARD, None) if self.started else None


def _index(frame) -> int:
    return round(frame.pts * FPS / VIDEO_CLOCK)


def test_the_card_goes_at_the_waiting_rate_on_the_streams_clock():
    playhead, clock = FakePlayhead(), ViewerClock()
    clock.start = time.monotonic() - 60.0  # every frame is already due: no sleeping in this test
    track = PlayheadVideoTrack(playhead, clock, FPS, lambda: CARD)

    async def frames(n):
        return [_index(await track.recv()) for _ in range(n)]

    step = FPS // WAITING_FPS
    assert run_async(frames(3)) == [0, step, 2 * step]
    playhead.started = True
    assert run_async(frames(3)) == [3 * step, 3 * step + 1, 3 * step + 2]


def test_the_stream_resumes_when_the_first_words_play_not_at_the_next_card():
    playhead, clock = FakePlayhead(), ViewerClock()
    track = PlayheadVideoTrack(playhead, clock, FPS, lambda: CARD)

    async def scenario():
        assert _index(await track.recv()) == 0  # the card, at once; the next is due in 0.48 s
        pending = asyncio.ensure_future(track.recv())
        await asyncio.sleep(0.1)
        playhead.started = True
        return _index(await pending)

    index = run_async(scenario())
    assert 1 <= index < FPS // WAITING_FPS  # the frame due when content began, not the next card
