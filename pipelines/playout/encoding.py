"""Media encoded once for every WebRTC viewer: video as VP8 starting with a keyframe, audio as Opus.

A segment's frames are encoded once per episode, on the worker that drew them, so a
viewer costs the server packetising and encryption only, not an encoder of its own.
Each encoded run starts with a keyframe, so a viewer can begin, or resume after a
stall, at any segment boundary.

Why VP8: every WebRTC browser decodes it (RFC 7742 requires it), aiortc's sender
packetises pre-encoded VP8 as it is (``Vp8Encoder.pack``), and libvpx ships inside
PyAV's wheel. The MP4 archive stays H.264: browsers' ``<video>`` does not play VP8 in
MP4, and the archive is not latency-bound.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction

import av
import numpy as np

from models.protocols import CLOCK_RATE
from pipelines.playout.clock import AUDIO_PACKET

#: Target bits per second per pixel of a frame at 25 fps: about 1 Mbit/s at 640x360.
BITS_PER_PIXEL = 4.3


def bitrate_for(width: int, height: int) -> int:
    """The target bitrate of a stream of this size, bits per second."""
    return int(width * height * BITS_PER_PIXEL)


def _context(width: int, height: int, fps: int, bitrate: int) -> av.VideoCodecContext:
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, fps)
    codec.framerate = Fraction(fps, 1)
    codec.bit_rate = bitrate
    # One keyframe, at the start: the next run (segment) starts with its own.
    codec.gop_size = 1 << 30
    codec.thread_count = 1
    # The fastest realtime speed, and blocks that barely change (the studio behind the
    # hosts) left as they are: the encoder sits on the segment's critical path.
    codec.options = {
        "deadline": "realtime",
        "cpu-used": "16",
        "static-thresh": "500",
        "lag-in-frames": "0",  # a packet out for every frame in, none held back
        "error-resilient": "1",
        "auto-alt-ref": "0",
        "qmin": "4",
        "qmax": "56",
    }
    return codec


def encode_vp8(frames: Sequence[np.ndarray], fps: int, bitrate: int | None = None,
               check: Callable[[], None] = lambda: None) -> list[bytes]:
    """One VP8 frame per I420 frame (``(h * 3 // 2, w)`` uint8), the first a keyframe.

    Raises ``ValueError`` if the encoder dropped or held back a frame (it is told not to).
    ``check`` is called before each frame: it may raise to stop (a draw nobody waits for).
    """
    if not frames:
        return []
    height, width = frames[0].shape[0] * 2 // 3, frames[0].shape[1]
    codec = _context(width, height, fps, bitrate or bitrate_for(width, height))
    out: list[bytes] = []
    for n, image in enumerate(frames):
        check()
        frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
        frame.pts = n
        out.extend(bytes(p) for p in codec.encode(frame))
    out.extend(bytes(p) for p in codec.encode(None))
    if len(out) != len(frames):
        raise ValueError(f"VP8 encoder gave {len(out)} frames for {len(frames)}")
    return out


def is_keyframe(data: bytes) -> bool:
    """Whether a VP8 frame is a keyframe (bit 0 of its first byte is 0, RFC 6386 section 9.1)."""
    return bool(data) and not data[0] & 1


#: Samples in one Opus packet: every viewer's audio moves in these steps.
AUDIO_FRAME = AUDIO_PACKET
#: Bits per second of the episode's Opus stream (one voice, mono).
AUDIO_BITRATE = 48_000


def _opus() -> av.AudioCodecContext:
    codec = av.CodecContext.create("libopus", "w")
    codec.bit_rate = AUDIO_BITRATE
    codec.format = "s16"
    codec.layout = "mono"
    codec.sample_rate = CLOCK_RATE
    codec.time_base = Fraction(1, CLOCK_RATE)
    codec.options = {"application": "voip"}
    return codec


def _encode_audio(codec: av.AudioCodecContext, pcm: np.ndarray, pts: int) -> list[bytes]:
    samples = np.clip(pcm * 32767.0, -32768, 32767).astype(np.int16).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
    frame.sample_rate, frame.pts = CLOCK_RATE, pts
    return [bytes(p) for p in codec.encode(frame)]


#: One thread encodes every episode's audio, in the order it arrives: off the event loop,
#: which must keep every viewer's packets going out on time.
_audio_encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opus")


class OpusStream:
    """An episode's audio encoded once as it arrives, in 20 ms Opus packets on the episode's
    clock: packet ``i`` carries samples ``[960 i, 960 (i + 1))``.

    ``add`` and ``finish`` hand the work to the audio encoding thread and return at once;
    ``packet_at`` says None for audio not encoded yet (the viewer then encodes it itself).
    One writer; readers on any thread.
    """

    def __init__(self) -> None:
        self._codec = _opus()
        self.packets: list[bytes] = []
        self._pending = np.zeros(0, np.float32)
        self._fed = 0
        self._last: Future | None = None

    def add(self, pcm: np.ndarray) -> None:
        """Encode the next stretch of the episode's audio (float, -1..1); a partial packet waits."""
        self._last = _audio_encoder.submit(self._encode, pcm.astype(np.float32))

    def finish(self) -> None:
        """The audio is complete: the last partial packet, padded with silence."""
        self._last = _audio_encoder.submit(self._close)

    def truncate(self, position: int) -> None:
        """Drop the audio from episode sample ``position`` on (a packet boundary): what comes
        next is encoded from there, by a fresh encoder (the old one has heard the dropped audio)."""
        self._last = _audio_encoder.submit(self._truncate, position)

    def _truncate(self, position: int) -> None:
        self.packets.extend(bytes(p) for p in self._codec.encode(None))  # what the old one held back
        del self.packets[position // AUDIO_FRAME:]
        self._codec = _opus()
        self._pending = np.zeros(0, np.float32)
        self._fed = position

    def wait(self, timeout: float | None = None) -> None:
        """Until what was handed over is encoded."""
        if self._last is not None:
            self._last.result(timeout)

    def _encode(self, pcm: np.ndarray) -> None:
        pending = np.concatenate([self._pending, pcm])
        whole = len(pending) // AUDIO_FRAME * AUDIO_FRAME
        for start in range(0, whole, AUDIO_FRAME):
            self.packets.extend(_encode_audio(self._codec, pending[start:start + AUDIO_FRAME], self._fed))
            self._fed += AUDIO_FRAME
        self._pending = pending[whole:]

    def _close(self) -> None:
        if len(self._pending):
            self._encode(np.zeros(AUDIO_FRAME - len(self._pending), np.float32))

    def packet_at(self, position: int) -> bytes | None:
        """The packet starting at episode sample ``position``, if it is encoded."""
        index, offset = divmod(position, AUDIO_FRAME)
        return self.packets[index] if offset == 0 and index < len(self.packets) else None


_silence: bytes | None = None


def silence_packet() -> bytes:
    """20 ms of silence as one Opus packet, encoded once."""
    global _silence
    if _silence is None:
        codec = _opus()
        zeros = np.zeros(AUDIO_FRAME, np.float32)
        # The encoder holds back its first frame for lookahead: feed until a packet comes out.
        out: list[bytes] = []
        while not out:
            out = _encode_audio(codec, zeros, 0)
        _silence = out[0]
    return _silence
