"""Frames leave the drawing worker at the episode's stream size, whatever tier drew them."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.protocols import CLOCK_RATE, Quality, SceneInfo, TimedPhoneme, VisualSegment
from models.video.avatar2d import Avatar2D
from pipelines.config import load_deployment
from pipelines.stages.drawing import DrawJob, draw_with

SCENE = SceneInfo(title="Why the Sky Is Blue", hosts=("Alex", "Sam"))
STREAM = (640, 360)


def _segment(n: int = CLOCK_RATE // 2) -> VisualSegment:
    t = np.arange(n) / CLOCK_RATE
    pcm = (0.2 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
    phonemes = tuple(TimedPhoneme("haloʊ"[i % 5], i * 2400, (i + 1) * 2400) for i in range(n // 2400))
    return VisualSegment(1, 5 * CLOCK_RATE, n, 0, "Light scatters off the air itself.", pcm, phonemes)


@pytest.fixture(scope="module")
def animator() -> Avatar2D:
    return Avatar2D(studio_cache="")


def test_a_supersampled_tier_is_scaled_once_to_the_stream_size(animator):
    tier = Quality("720p", 720, 25, 2)
    seg = _segment()
    direct = list(animator.render(SCENE, seg, tier, size=STREAM))
    at_tier = list(animator.render(SCENE, seg, tier))
    assert all(f.shape == (360, 640, 3) and f.flags.c_contiguous for f in direct)
    assert at_tier[0].shape == (720, 1280, 3)
    # One resize from the canvas is the same picture as two (tier, then stream).
    two_step = cv2.resize(at_tier[3], STREAM, interpolation=cv2.INTER_AREA)
    assert np.abs(direct[3].astype(int) - two_step.astype(int)).mean() < 2.0
    # Split drawing still matches a whole render at the stream size.
    parts = [f for a, b in ((0, 5), (5, 99)) for f in animator.render(SCENE, seg, tier, frames=(a, b), size=STREAM)]
    assert all(np.array_equal(x, y) for x, y in zip(direct, parts))


def test_draw_with_delivers_i420_at_the_stream_size_for_every_tier(animator):
    for tier in (Quality("240p", 240, 25), Quality("720p", 720, 25, 2)):
        drawn = draw_with(animator, DrawJob(SCENE, _segment(), tier, 90, size=STREAM))
        assert len(drawn.frames) == 13
        assert drawn.frames[0].shape == (360 * 3 // 2, 640)
    unsized = draw_with(animator, DrawJob(SCENE, _segment(), Quality("240p", 240, 25), None))
    assert unsized.frames[0].shape == (240 * 3 // 2, 426)


class _FixedSizeAnimator:
    """An animator that ignores ``size`` (allowed by the protocol): the worker scales for it."""

    def render(self, scene, seg, quality, frames=None, size=None):
        for _ in range(3):
            yield np.full((quality.height, quality.width, 3), 90, dtype=np.uint8)


def test_frames_of_an_animator_that_ignores_size_are_scaled_by_the_worker():
    drawn = draw_with(_FixedSizeAnimator(), DrawJob(SCENE, _segment(), Quality("480p", 480, 25, 2), None, size=STREAM))
    assert [f.shape for f in drawn.frames] == [(540, 640)] * 3


def test_the_stream_tier_is_the_requested_tier_or_the_default():
    quality = load_deployment().quality
    assert quality.stream_tier(None) == quality.tier(quality.default)
    assert quality.stream_tier("720p").height == 720
