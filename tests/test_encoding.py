"""Frames encoded once for every WebRTC viewer: one VP8 frame per frame, a keyframe first, decodable."""
from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from pipelines.playout.encoding import bitrate_for, encode_vp8, is_keyframe
from pipelines.playout.pixels import rgb_to_i420


def moving(n: int, width: int = 320, height: int = 180) -> list[np.ndarray]:
    base = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8), (0, 0), 3)
    return [rgb_to_i420(np.roll(base, 3 * i, axis=1)) for i in range(n)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def decode(packets: list[bytes]) -> list[np.ndarray]:
    codec = av.CodecContext.create("libvpx", "r")
    out = []
    for data in packets:
        out.extend(f.to_ndarray(format="yuv420p") for f in codec.decode(av.Packet(data)))
    return out


def test_a_run_is_one_frame_per_frame_with_a_keyframe_first() -> None:
    frames = moving(30)
    packets = encode_vp8(frames, fps=25)
    assert len(packets) == 30
    assert is_keyframe(packets[0]) and not any(is_keyframe(p) for p in packets[1:])


def test_a_run_decodes_from_its_own_start() -> None:
    """Each run (a segment) decodes alone: a viewer can join at any segment boundary."""
    frames = moving(40)
    first, second = encode_vp8(frames[:20], fps=25), encode_vp8(frames[20:], fps=25)
    decoded = decode(second)
    assert len(decoded) == 20
    assert min(psnr(a, b) for a, b in zip(decoded, frames[20:], strict=True)) > 30
    assert len(decode(first + second)) == 40, "runs play back to back"


def test_the_bitrate_follows_the_target() -> None:
    frames = moving(50)
    low, high = (sum(map(len, encode_vp8(frames, fps=25, bitrate=b))) for b in (40_000, 1_500_000))
    assert low < high
    assert bitrate_for(640, 360) == pytest.approx(1_000_000, rel=0.02)


def test_no_frames_no_packets() -> None:
    assert encode_vp8([], fps=25) == []


def test_the_episodes_audio_is_one_opus_packet_per_20_ms_on_its_clock() -> None:
    from pipelines.playout.encoding import AUDIO_FRAME, OpusStream

    tone = (0.4 * np.sin(2 * np.pi * 440 * np.arange(48_000) / 48_000)).astype(np.float32)
    stream = OpusStream()
    stream.add(tone[:30_000])  # segments of any length; a partial packet waits for the next
    stream.add(tone[30_000:])
    stream.finish()
    stream.wait(10)
    assert len(stream.packets) == 50
    assert stream.packet_at(49 * AUDIO_FRAME) is stream.packets[49] and stream.packet_at(100) is None
    codec = av.CodecContext.create("libopus", "r")
    decoded = np.concatenate([f.to_ndarray().reshape(-1) for p in stream.packets for f in codec.decode(av.Packet(p))])
    level = float(np.sqrt(np.mean(np.square(decoded[4800:-4800].astype(np.float32))))) / 32767
    assert level == pytest.approx(0.4 / np.sqrt(2), rel=0.15), "the tone, at its loudness"
