"""Which shared encoded frame a viewer is sent next: in order, joining each segment at its keyframe,
its own encoder after a keyframe request until the next segment."""
from __future__ import annotations

import numpy as np
import pytest
from aiortc import RTCPeerConnection
from conftest import run_async

from models.protocols import Quality
from pipelines.playout.buffer import Playhead, PlayoutBuffer
from pipelines.playout.encoding import encode_vp8, is_keyframe
from pipelines.playout.frames import FrameList
from pipelines.segments import ReadySegment
from server.transport.shared_video import (
    SharedCursor,
    card_keyframe,
    keyframe_requested,
)

Q = Quality("t", 180, 25)
SPF = Q.samples_per_frame


def segment(start: int, n_frames: int, shade: int, encoded: bool = True) -> ReadySegment:
    frames = [np.full((270, 320), (shade + 3 * k) % 256, np.uint8) for k in range(n_frames)]
    stored = FrameList.raw(frames)
    if encoded:
        stored = stored.encoded(encode_vp8(frames, 25))
    n = n_frames * SPF
    return ReadySegment(kind="speech", index=0, start=start, n_samples=n, pcm=np.zeros(n, np.float32), quality=Q,
                        frames=stored, speech_samples=n)


@pytest.fixture
def playhead() -> Playhead:
    buffer = PlayoutBuffer()
    buffer.append(segment(0, 10, 40))
    buffer.append(segment(10 * SPF, 10, 120))
    head = Playhead(buffer)
    head.next_audio(960)  # starts playing
    return head


def test_a_segment_is_sent_in_order_from_its_keyframe(playhead: Playhead) -> None:
    cursor = SharedCursor(playhead)
    picks = []
    while (pick := cursor.next(False)) is not None:
        picks.append(pick)
    assert len(picks) == 10, "every frame of the segment, then nothing while the playhead stays in it"
    assert is_keyframe(picks[0].data) and not any(is_keyframe(p.data) for p in picks[1:])
    assert [p.position for p in picks] == [k * SPF for k in range(10)]
    assert not picks[0].behind and picks[0].raw is None


def test_a_viewer_behind_the_playhead_catches_up_in_order(playhead: Playhead) -> None:
    cursor = SharedCursor(playhead)
    playhead.position = 6 * SPF
    picks = [cursor.next(False) for _ in range(7)]
    assert [p.position // SPF for p in picks] == list(range(7)), "no frame skipped: each decodes after the last"
    assert [p.behind for p in picks] == [True] * 6 + [False]


def test_the_next_segment_is_joined_at_its_keyframe(playhead: Playhead) -> None:
    cursor = SharedCursor(playhead)
    cursor.next(False)
    playhead.position = 12 * SPF  # the playhead moved on while frames of the first were left
    pick = cursor.next(False)
    assert pick.position == 10 * SPF and is_keyframe(pick.data) and pick.behind


def test_a_keyframe_request_switches_to_its_own_encoder_until_the_next_segment(playhead: Playhead) -> None:
    cursor = SharedCursor(playhead)
    cursor.next(False)
    own = [cursor.next(k == 0) for k in range(3)]
    assert all(p.data is None and p.raw is not None for p in own)
    assert np.array_equal(own[0].raw, playhead.buffer.segments[0].frames[1])
    playhead.position = 10 * SPF
    back = cursor.next(False)
    assert back.data is not None and is_keyframe(back.data), "shared again from the next keyframe"


def test_segments_without_shared_frames_are_not_available() -> None:
    buffer = PlayoutBuffer()
    buffer.append(segment(0, 5, 40, encoded=False))
    head = Playhead(buffer)
    head.next_audio(960)
    cursor = SharedCursor(head)
    assert not cursor.available() and cursor.next(False) is None


def test_the_waiting_card_is_one_keyframe_encoded_once() -> None:
    card = np.full((270, 320), 90, np.uint8)
    first = card_keyframe(card, 25)
    assert is_keyframe(first) and card_keyframe(card, 25) is first


def test_aiortc_keeps_the_keyframe_request_where_it_is_read() -> None:
    async def check() -> tuple[bool, bool]:
        pc = RTCPeerConnection()
        sender = pc.addTransceiver("video").sender
        before = keyframe_requested(sender)
        sender._send_keyframe()  # what aiortc does on an RTCP PLI or FIR
        after = keyframe_requested(sender)
        await pc.close()
        return before, after

    assert run_async(check()) == (False, True)


def test_shared_frames_are_timed_on_the_episode_clock_as_the_audio_is(playhead: Playhead) -> None:
    """A packet's timestamp is where its frame falls on the viewer's timeline: the audio sent
    so far, less what is still to play up to the frame's place on the episode's clock."""
    import time

    import av

    from server.transport.webrtc import VIDEO_CLOCK, PlayheadVideoTrack, ViewerClock

    clock = ViewerClock(start=time.monotonic() - 60.0, audio_sent=3 * 48_000)  # every frame already due
    track = PlayheadVideoTrack(playhead, clock, 25, lambda: None)

    async def two() -> list:
        return [await track.recv(), await track.recv()]

    first, second = run_async(two())
    assert isinstance(first, av.Packet) and is_keyframe(bytes(first))
    lead = playhead.position - 0  # the playhead is this far past the first frame
    assert first.pts == (3 * 48_000 - lead) * VIDEO_CLOCK // 48_000
    assert second.pts - first.pts == VIDEO_CLOCK // 25
    assert track.counts["video", "shared"] == 2
