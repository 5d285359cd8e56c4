"""Which encoded video frame a WebRTC viewer is sent next: the episode's shared VP8 frames.

Every viewer is sent the same encoded frames (pipelines/playout/encoding.py), each from
its own start. A VP8 frame other than a keyframe decodes only after the frame before it,
so within a segment a viewer is sent every frame in order, catching up in a burst when it
fell behind (their timestamps say when each is shown, so the browser keeps them in sync
with the audio); a viewer joins a segment only at its first frame, a keyframe.

A viewer that lost packets and asks for a keyframe (PLI or FIR) gets one from an encoder
of its own (aiortc's, in the sender) until the next segment boundary, where it rejoins
the shared frames at their keyframe.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.playout.buffer import Playhead
from pipelines.playout.encoding import encode_vp8
from pipelines.segments import ReadySegment

#: Waiting cards kept encoded (one per episode being watched).
CARDS_KEPT = 64
_cards: OrderedDict[int, tuple[np.ndarray, bytes]] = OrderedDict()
_cards_lock = threading.Lock()


def card_keyframe(image: np.ndarray, fps: int) -> bytes:
    """A still I420 card as one VP8 keyframe, encoded once per card for every viewer.

    Keyed by the array itself (kept with its keyframe, so its id is not reused meanwhile):
    a card is drawn once per episode and handed to each of its viewers.
    """
    with _cards_lock:
        hit = _cards.get(id(image))
        if hit is not None and hit[0] is image:
            _cards.move_to_end(id(image))
            return hit[1]
    data = encode_vp8([image], fps)[0]
    with _cards_lock:
        _cards[id(image)] = (image, data)
        while len(_cards) > CARDS_KEPT:
            _cards.popitem(last=False)
    return data


def keyframe_requested(sender: Any) -> bool:
    """Whether the viewer asked for a keyframe (RTCP PLI or FIR) since the sender last encoded one.

    aiortc keeps that request in a private flag of its ``RTCRtpSender`` and honours it only
    when it encodes; tests/test_shared_video.py fails if a new aiortc moves it.
    """
    return bool(getattr(sender, "_RTCRtpSender__force_keyframe", False))


@dataclass(frozen=True)
class Pick:
    """The next frame for one viewer: shared encoded bytes or, for its own encoder, raw I420."""

    data: bytes | None
    raw: np.ndarray | None
    #: The frame's place on the episode's clock (samples), which sets its timestamp.
    position: int
    #: The viewer is behind the playhead: send this one without waiting.
    behind: bool


class SharedCursor:
    """One viewer's place in the shared encoded frames."""

    def __init__(self, playhead: Playhead) -> None:
        self.playhead = playhead
        self._segment: ReadySegment | None = None
        self._next = 0  # index in ``_segment`` of the next frame to send
        self._own = False  # this viewer's own encoder until the segment ends

    def available(self) -> bool:
        """Whether the segment under the playhead has shared frames."""
        return _packets(self._current()) is not None

    def _current(self) -> ReadySegment | None:
        buffer = self.playhead.buffer
        return buffer.segment_at(min(self.playhead.position, buffer.end - 1))

    def next(self, keyframe_wanted: bool) -> Pick | None:
        """The frame to send now, or None when there is none yet (a stall past the last frame
        sent, or a segment without shared frames: the caller then sends the playhead's frame)."""
        seg = self._current()
        packets = _packets(seg)
        if seg is None or packets is None:
            return None
        if seg is not self._segment and not _cut_from(seg, self._segment):
            self._segment, self._next, self._own = seg, 0, False  # join at its keyframe
        elif seg is not self._segment:
            self._segment = seg  # cut short by a splice: its frames so far are the same ones
        elif self._next >= len(seg.frames):
            return None  # sent it all; the playhead is on its last frame (a stall)
        if keyframe_wanted:
            self._own = True
        spf = seg.quality.samples_per_frame
        k = self._next
        self._next += 1
        playing = min(len(seg.frames) - 1, (self.playhead.position - seg.start) // spf)
        if self._own:
            return Pick(None, seg.frames[k], seg.start + k * spf, k < playing)
        return Pick(packets[k], None, seg.start + k * spf, k < playing)


def _cut_from(seg: ReadySegment, before: ReadySegment | None) -> bool:
    """``seg`` is ``before`` cut short (``ReadySegment.cut``): the same start and number."""
    return before is not None and seg.start == before.start and seg.index == before.index and seg.kind == before.kind


def _packets(seg: ReadySegment | None) -> list[bytes] | None:
    return getattr(seg.frames, "packets", None) if seg is not None else None
