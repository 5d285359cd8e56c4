"""WebRTC viewers (aiortc): one audio and one video track per viewer, both reading one playhead.

The audio track paces itself at 20 ms a frame and advances the viewer's playhead;
the video track shows the frame under that playhead. Output timestamps of both run
from the same viewer start instant, so the browser lip-syncs them; content time
pauses during a stall (filler plays) and resumes where it stopped.
"""
from __future__ import annotations

import asyncio
import fractions
import json
import logging
import math
import re
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import SessionDescription

from models.protocols import CLOCK_RATE
from pipelines.playout.buffer import Playhead, PlayheadStats
from pipelines.playout.encoding import AUDIO_FRAME, silence_packet
from pipelines.playout.pixels import resize_i420
from server.transport.asking import QuestionChannel, QuestionDesk
from server.transport.listening import VoiceListener
from server.transport.live_transcript import TranscriptFeed
from server.transport.shared_video import (
    Pick,
    SharedCursor,
    card_keyframe,
    keyframe_requested,
)

log = logging.getLogger(__name__)

#: Samples a viewer's audio moves by at a time: one shared Opus packet.
AUDIO_SAMPLES = AUDIO_FRAME
VIDEO_CLOCK = 90_000
#: Frames per second of the title card sent while a viewer waits for its episode to start
#: (in the admission queue, or for the first words): a still picture, so encoding it at the
#: stream's rate would cost as much as a stream and show nothing more.
WAITING_FPS = 2
#: Viewers kept after they leave until their last figures are read (metrics read them often).
CLOSED_KEPT = 1000
#: The caption loop's ticks (0.1 s each) between looks at a waiting episode's place in the
#: admission queue (each look asks admission when room frees up).
QUEUE_STATUS_TICKS = 10


def allow_loopback_candidates() -> None:
    """Let aioice offer 127.0.0.1: a loopback-only server (and its tests) then needs no network."""
    from aioice import ice

    if getattr(ice.get_host_addresses, "_streamwise", False):
        return
    original = ice.get_host_addresses

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = original(use_ipv4, use_ipv6)
        if use_ipv4 and "127.0.0.1" not in addresses:
            addresses.append("127.0.0.1")
        return addresses

    get_host_addresses._streamwise = True  # type: ignore[attr-defined]
    ice.get_host_addresses = get_host_addresses


_MDNS_CANDIDATE = re.compile(r"^a=candidate:.* [0-9a-fA-F-]+\.local .*\r?\n", re.MULTILINE)


def strip_mdns_candidates(sdp: str) -> str:
    """Drop the browser's ``.local`` candidates: resolving them costs aioice a 1 s wait.

    The browser still checks the server's host candidates, and aioice learns the
    browser's real address from those checks as a peer-reflexive candidate.
    """
    return _MDNS_CANDIDATE.sub("", sdp)


class InvalidOffer(ValueError):
    """The SDP offer could not be used; the message says why."""


@dataclass
class ViewerClock:
    """The wall-clock instant this viewer's output timeline started, shared by both tracks,
    and how far the audio has gone on it."""

    start: float | None = None
    #: Samples the audio track has sent (content and filler); None without an audio track.
    audio_sent: int | None = None

    def begin(self) -> float:
        if self.start is None:
            self.start = time.monotonic()
        return self.start

    def stream_position(self, playhead: int, position: int) -> int:
        """Where episode-clock ``position`` falls on this viewer's output timeline (samples),
        given the playhead is at ``playhead`` now: the audio sent so far, less what is still
        to play up to the playhead (wall time without an audio track)."""
        now = self.audio_sent if self.audio_sent is not None else int((time.monotonic() - self.begin()) * CLOCK_RATE)
        return max(0, now - (playhead - position))


class PlayheadAudioTrack(MediaStreamTrack):
    """Advances the viewer's playhead 20 ms at a time, in real time.

    What it plays is sent as the episode's shared Opus packets where they exist (and a
    shared silent packet while waiting or stalled); otherwise (a replay, or shared
    encoding off) as samples for the sender's own encoder.
    """

    kind = "audio"

    def __init__(self, playhead: Playhead, clock: ViewerClock, counts: Counter[tuple[str, str]] | None = None) -> None:
        super().__init__()
        self.playhead = playhead
        self.clock = clock
        self.counts: Counter[tuple[str, str]] = Counter() if counts is None else counts
        self._sent = 0

    async def recv(self) -> av.AudioFrame | av.Packet:
        start = self.clock.begin()
        due = start + self._sent / CLOCK_RATE
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if self.playhead.ended:
            self.stop()  # the episode is over: stop sending (and encoding) silence
            raise MediaStreamError
        position = self.playhead.position
        pcm = self.playhead.next_audio(AUDIO_SAMPLES)
        opus = self.playhead.buffer.opus
        if opus is not None:
            played = self.playhead.position == position + AUDIO_SAMPLES
            data = opus.packet_at(position) if played else silence_packet()
            if data is not None:
                return self._stamped(av.Packet(data))
        samples = np.clip(pcm * 32767.0, -32768, 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = CLOCK_RATE
        return self._stamped(frame)

    def _stamped(self, media: av.AudioFrame | av.Packet) -> av.AudioFrame | av.Packet:
        self.counts["audio", "shared" if isinstance(media, av.Packet) else "own"] += 1
        media.pts = self._sent
        media.time_base = fractions.Fraction(1, CLOCK_RATE)
        self._sent += AUDIO_SAMPLES
        self.clock.audio_sent = self._sent
        return media


class PlayheadVideoTrack(MediaStreamTrack):
    """The frame under the viewer's playhead, at the stream's rate.

    Segments encoded once for every viewer are sent as those encoded frames, in order
    (shared_video.py); the waiting card is one keyframe encoded once; anything else (a
    replay's frames, or shared encoding off) goes through the sender's own encoder, its
    first frame after shared ones a keyframe.
    """

    kind = "video"

    def __init__(self, playhead: Playhead, clock: ViewerClock, fps: int, filler: Callable[[], np.ndarray],
                 size: tuple[int, int] | None = None, counts: Counter[tuple[str, str]] | None = None) -> None:
        super().__init__()
        #: Frames sent, by (track, "shared" or "own" encoder).
        self.counts: Counter[tuple[str, str]] = Counter() if counts is None else counts
        self.playhead = playhead
        self.clock = clock
        self.fps = fps
        self.filler = filler
        self.size = size  # (width, height) sent to this viewer
        self.cursor = SharedCursor(playhead)
        #: The RTP sender (set once attached): its keyframe requests are read from it.
        self.sender: Any = None
        self._n = 0  # index of the next frame on the stream's clock
        self._last = -1  # index of the frame sent last
        self._waiting = False  # the frame sent last was the still card of a viewer waiting to start
        self._hurry = False  # behind the playhead in the shared frames: do not wait
        self._pts = -1  # timestamp of the frame sent last
        self._shared = False  # the frame sent last did not come from the sender's encoder

    async def recv(self) -> av.VideoFrame | av.Packet:
        start = self.clock.begin()
        while True:
            await self._pace(start)
            if self.playhead.ended:
                self.stop()
                raise MediaStreamError
            if not (self.playhead.started and self.cursor.available()):
                return self._own_frame()
            pick = self.cursor.next(keyframe_requested(self.sender))
            if pick is not None:
                return self._picked(pick)
            # Sent every frame there is: the playhead is on the last one (a stall). Wait.
            self._hurry = False
            self._n += 1

    async def _pace(self, start: float) -> None:
        """Sleep until the next frame is due on the stream's clock (not when catching up)."""
        due = start + self._n / self.fps
        while not self._hurry and (wait := due - time.monotonic()) > 0:
            if self._waiting and self.playhead.started:
                # The first words are playing: resume at the stream's rate with the frame due now.
                self._waiting = False
                self._n = max(self._last + 1, math.ceil((time.monotonic() - start) * self.fps))
                due = start + self._n / self.fps
                continue
            await asyncio.sleep(min(wait, 1 / self.fps) if self._waiting else wait)

    def _stamp(self, pts: int) -> int:
        """``pts``, or one past the last timestamp if it would not move forward."""
        self._pts = max(pts, self._pts + 1)
        self._last = self._n
        return self._pts

    def _picked(self, pick: Pick) -> av.VideoFrame | av.Packet:
        """A frame from the shared frames, timed by where it sits on the episode's clock."""
        self._hurry = pick.behind
        if not pick.behind:
            # Catch-up frames go out between two ticks of the stream's clock; counting them
            # as ticks would put the next frame's due time that far in the future (a freeze).
            self._n += 1
        pts = self._stamp(self.clock.stream_position(self.playhead.position, pick.position) * VIDEO_CLOCK // CLOCK_RATE)
        if pick.data is not None:
            return self._packet(pick.data, pts)
        return self._frame(pick.raw, pts)  # type: ignore[arg-type]

    def _own_frame(self) -> av.VideoFrame | av.Packet:
        """The playhead's frame (or the waiting card) on the stream's clock."""
        current = self.playhead.frame()
        pts = self._stamp(round(self._n * VIDEO_CLOCK / self.fps))
        self._waiting = not self.playhead.started
        # Waiting to start: the next frame is due a whole filler interval later, on the same clock.
        self._n += max(1, self.fps // WAITING_FPS) if self._waiting else 1
        if current is None:
            return self._packet(card_keyframe(self.filler(), self.fps), pts)
        image = current[0]
        if self.size is not None and image.shape != (self.size[1] * 3 // 2, self.size[0]):
            # Frames arrive at the stream's size (scaled on the drawing worker); this only
            # catches a frame that did not, so the viewer's resolution never changes.
            image = resize_i420(image, *self.size)
        return self._frame(image, pts)

    def _packet(self, data: bytes, pts: int) -> av.Packet:
        """Shared encoded bytes, timed for this viewer."""
        self._shared = True
        self.counts["video", "shared"] += 1
        packet = av.Packet(data)
        packet.pts, packet.time_base = pts, fractions.Fraction(1, VIDEO_CLOCK)
        return packet

    def _frame(self, image: np.ndarray, pts: int) -> av.VideoFrame:
        """A raw frame for the sender's own encoder; a keyframe after shared frames, whose
        references that encoder does not have."""
        self.counts["video", "own"] += 1
        frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
        frame.pts, frame.time_base = pts, fractions.Fraction(1, VIDEO_CLOCK)
        if self._shared:
            frame.pict_type = av.video.frame.PictureType.I
            self._shared = False
        return frame


@dataclass
class Viewer:
    id: str
    episode_id: str
    pc: RTCPeerConnection
    playhead: Playhead
    created: float = field(default_factory=time.monotonic)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    #: Its questions over the data channel, once the page opened one (asking.py).
    questions: QuestionChannel | None = None
    #: Its questions by voice, when it takes questions (listening.py).
    listening: VoiceListener | None = None


class WebRTCGateway:
    """Owns every peer connection; a viewer that leaves or fails frees what it held."""

    def __init__(self, ice_servers: list[dict[str, Any]] | None = None, include_loopback: bool = True) -> None:
        self.viewers: dict[str, Viewer] = {}
        #: Frames sent to every viewer so far, by (track, "shared" or "own" encoder).
        self.frames_sent: Counter[tuple[str, str]] = Counter()
        #: Playback figures of viewers that left lately (id, playhead figures), still to be read;
        #: only the figures, so nothing a connection held is kept.
        self.recently_closed: deque[tuple[str, PlayheadStats]] = deque(maxlen=CLOSED_KEPT)
        self.ice_servers = [RTCIceServer(**s) for s in (ice_servers or [])]
        if include_loopback:
            allow_loopback_candidates()

    async def answer(
        self,
        episode_id: str,
        offer_sdp: str,
        offer_type: str,
        playhead: Playhead,
        fps: int,
        filler: Callable[[], np.ndarray],
        on_close: Callable[[Viewer], None],
        size: tuple[int, int] | None = None,
        queue_status: Callable[[], dict[str, Any] | None] | None = None,
        questions: QuestionDesk | None = None,
    ) -> tuple[Viewer, RTCSessionDescription]:
        """Answer a viewer's SDP offer. ``queue_status`` tells a waiting viewer its place in the
        admission queue; ``questions`` lets the viewer ask the hosts over its data channel, and
        by voice on an audio transceiver it offers to send on (listening.py)."""
        if offer_type != "offer":
            raise InvalidOffer(f"type must be 'offer', got {offer_type!r}")
        if "m=" not in offer_sdp:
            raise InvalidOffer("sdp has no media sections (m= lines)")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=self.ice_servers, bundlePolicy=_bundle_policy(offer_sdp)))
        viewer = Viewer(id=uuid.uuid4().hex, episode_id=episode_id, pc=pc, playhead=playhead)
        self.viewers[viewer.id] = viewer
        clock = ViewerClock()

        @pc.on("connectionstatechange")
        async def _state() -> None:
            log.debug("viewer %s: %s", viewer.id, pc.connectionState)
            if pc.connectionState in ("failed", "closed"):
                await self.close(viewer.id, on_close)

        @pc.on("datachannel")
        def _channel(channel: Any) -> None:
            if questions is not None and viewer.questions is None:  # one channel per viewer takes questions
                viewer.questions = QuestionChannel(channel, questions, viewer.id)
                channel.on("message", viewer.questions.on_message)
                channel.on("close", viewer.questions.close)
                if viewer.listening is not None:
                    viewer.listening.attach(viewer.questions)
                    channel.on("message", viewer.listening.on_message)
            asyncio.ensure_future(_captions(channel, playhead, viewer, queue_status))

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=strip_mdns_candidates(offer_sdp), type="offer"))
            microphone = _microphone(pc, offer_sdp)
            kinds = {t.kind for t in pc.getTransceivers() if t is not microphone}
            if "video" not in kinds and "audio" not in kinds:
                raise InvalidOffer("the offer must receive audio and/or video")
            heard = microphone is not None and questions is not None and questions.hear is not None
            if microphone is not None:
                # Received only while the viewer asks by voice; never sent to.
                microphone.direction = "recvonly" if heard else "inactive"
            if questions is not None:
                viewer.listening = VoiceListener(microphone.receiver.track if heard else None, questions.hear)
            for transceiver in pc.getTransceivers():
                if transceiver is microphone:
                    continue
                if transceiver.kind == "audio":
                    transceiver.sender.replaceTrack(PlayheadAudioTrack(playhead, clock, self.frames_sent))
                    transceiver.direction = "sendonly"
                elif transceiver.kind == "video":
                    video = PlayheadVideoTrack(playhead, clock, fps, filler, size, self.frames_sent)
                    video.sender = transceiver.sender
                    transceiver.sender.replaceTrack(video)
                    transceiver.direction = "sendonly"
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except InvalidOffer:
            await self.close(viewer.id, on_close)
            raise
        except Exception as exc:
            await self.close(viewer.id, on_close)
            raise InvalidOffer(f"could not use this SDP offer: {exc}") from exc
        return viewer, pc.localDescription

    async def close(self, viewer_id: str, on_close: Callable[[Viewer], None] | None = None) -> None:
        viewer = self.viewers.pop(viewer_id, None)
        if viewer is None:
            return
        viewer.closed.set()
        if viewer.questions is not None:
            viewer.questions.close()
        if viewer.listening is not None:
            viewer.listening.close()
        self.recently_closed.append((viewer.id, viewer.playhead.stats))
        try:
            await viewer.pc.close()
        finally:
            if on_close:
                on_close(viewer)

    async def close_episode(self, episode_id: str) -> None:
        for viewer in [v for v in self.viewers.values() if v.episode_id == episode_id]:
            await self.close(viewer.id)

    async def shutdown(self) -> None:
        for viewer_id in list(self.viewers):
            await self.close(viewer_id)


def _bundle_policy(offer_sdp: str) -> RTCBundlePolicy:
    """``max-bundle`` when the offer bundles all its media on one transport (browsers do), else
    aiortc's default. With ``balanced``, aiortc (1.16) leaves a second m-line of one kind (the
    viewer's microphone next to the show's audio) on a transport it then closes: that
    transceiver never receives (aiortc issue 1414)."""
    try:
        description = SessionDescription.parse(offer_sdp)
    except Exception:  # noqa: BLE001 - setRemoteDescription reports a malformed offer
        return RTCBundlePolicy.BALANCED
    mids = {media.rtp.muxId for media in description.media}
    bundles = any(group.semantic == "BUNDLE" and set(group.items) >= mids for group in description.group)
    return RTCBundlePolicy.MAX_BUNDLE if mids and bundles else RTCBundlePolicy.BALANCED


def _microphone(pc: RTCPeerConnection, offer_sdp: str) -> Any:
    """The audio transceiver the viewer offered to send on only (its microphone, for questions
    by voice: listening.py), or None; the viewer receives the show on the others."""
    offered = {media.rtp.muxId: media.direction for media in SessionDescription.parse(offer_sdp).media}
    return next((t for t in pc.getTransceivers() if t.kind == "audio" and offered.get(t.mid) == "sendonly"), None)


async def _captions(channel: Any, playhead: Playhead, viewer: Viewer,
                    queue_status: Callable[[], dict[str, Any] | None] | None = None) -> None:
    """Send the caption under the viewer's playhead whenever it changes (synced with the audio).

    While the episode waits in the admission queue, its place in line goes first
    (``{"type": "queue", ...}`` whenever it changes, then ``"position": null`` once it
    starts): a viewer looking at a still title card is told why, and for how long.
    """
    last: Any = object()
    transcript = TranscriptFeed()
    place: dict[str, Any] | None = None  # the queue status sent last
    waiting, tick = queue_status is not None, 0
    while not viewer.closed.is_set() and channel.readyState != "closed":
        if channel.readyState == "open":
            if waiting and tick % QUEUE_STATUS_TICKS == 0:
                status = queue_status()  # type: ignore[misc]
                if status != place:
                    channel.send(json.dumps({"type": "queue", **(status or {"position": None, "starts_in_s": None})}))
                    place = status
                waiting = status is not None
            tick += 1
            caption = playhead.buffer.caption_at(max(0, playhead.position - 1))
            if caption != last:
                last = caption
                message = {"type": "caption", "speaker": caption[0], "text": caption[1]} if caption else {"type": "caption", "speaker": None, "text": ""}
                channel.send(json.dumps(message))
            for message in transcript.messages(playhead.buffer, playhead.position):
                channel.send(json.dumps(message))
            if playhead.ended:
                channel.send(json.dumps({"type": "ended"}))
                break
        await asyncio.sleep(0.1)
