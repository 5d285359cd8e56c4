"""A viewer waiting for its episode to start is sent the still title card at a low rate, then the
stream at full rate; while the episode is queued, the data channel says where it stands."""
import asyncio
import json
import time

import numpy as np
from conftest import run_async

from pipelines.playout.buffer import Playhead, PlayoutBuffer
from server.transport import webrtc
from server.transport.webrtc import (
    VIDEO_CLOCK,
    WAITING_FPS,
    PlayheadVideoTrack,
    ViewerClock,
)

FPS = 25
CARD = np.zeros((360 * 3 // 2, 640), dtype=np.uint8)


class FakePlayhead:
    def __init__(self) -> None:
        self.started = False
        self.ended = False
        self.buffer = PlayoutBuffer()  # no segments, so no shared frames: the card and raw frames
        self.position = 0

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


class FakeChannel:
    readyState = "open"

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def send(self, text: str) -> None:
        self.sent.append(json.loads(text))


def test_a_queued_viewer_is_told_its_place_in_line_until_the_episode_starts(monkeypatch):
    """The data channel says where the episode stands in the admission queue, then that it started."""
    monkeypatch.setattr(webrtc, "QUEUE_STATUS_TICKS", 1)
    statuses = [{"position": 2, "starts_in_s": None}, {"position": 2, "starts_in_s": None},
                {"position": 1, "starts_in_s": 40}, None]
    looked: list[int] = []

    def queue_status():
        looked.append(1)
        return statuses[min(len(looked), len(statuses)) - 1]

    channel = FakeChannel()
    viewer = webrtc.Viewer(id="v", episode_id="e", pc=None, playhead=None)  # type: ignore[arg-type]

    async def scenario():
        task = asyncio.ensure_future(webrtc._captions(channel, Playhead(PlayoutBuffer()), viewer, queue_status))
        await asyncio.sleep(0.8)
        viewer.closed.set()
        await task

    run_async(scenario())
    queue = [m for m in channel.sent if m["type"] == "queue"]
    assert queue == [{"type": "queue", "position": 2, "starts_in_s": None},
                     {"type": "queue", "position": 1, "starts_in_s": 40},
                     {"type": "queue", "position": None, "starts_in_s": None}]
    assert len(looked) == len(statuses), "no more looks at the queue once the episode started"


def test_a_viewer_of_an_episode_that_never_queued_gets_no_queue_message():
    channel = FakeChannel()
    viewer = webrtc.Viewer(id="v", episode_id="e", pc=None, playhead=None)  # type: ignore[arg-type]

    async def scenario():
        task = asyncio.ensure_future(webrtc._captions(channel, Playhead(PlayoutBuffer()), viewer, lambda: None))
        await asyncio.sleep(0.3)
        viewer.closed.set()
        await task

    run_async(scenario())
    assert not [m for m in channel.sent if m["type"] == "queue"]
