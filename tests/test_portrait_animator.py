"""The portrait look (adapter ``lipsync``) on tiny random-weight networks: floor and neural tiers."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="the neural extra: pip install -e '.[neural]'")
os.environ["HF_HUB_OFFLINE"] = "1"

from models.protocols import Quality, SceneInfo, VisualSegment
from models.registry import adapter_class
from models.video.avatar2d import CAP_Y0
from models.video.lipsync.animator import PortraitAnimator, frame_count
from models.video.lipsync.weights import WeightsError
from tests.support.tiny_weights import PORTRAITS, write

SCENE = SceneInfo(title="Why the sky is blue", hosts=("Alex", "Sam"))
FLOOR, NEURAL = Quality("portrait", 360, 25), Quality("neural", 360, 25)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def animator(weights: Path) -> PortraitAnimator:
    cls = adapter_class("video", "lipsync")
    return cls(portraits=list(PORTRAITS), weights=str(weights), neural_tiers=["neural"], batch=4, studio_cache="")


def segment(loud_from: float, seconds: float = 1.0, speaker: int = 0) -> VisualSegment:
    """Silence, then a loud tone from ``loud_from`` seconds on."""
    n = int(48_000 * seconds)
    pcm = np.zeros(n, np.float32)
    t = np.arange(n - int(48_000 * loud_from)) / 48_000
    pcm[int(48_000 * loud_from):] = 0.5 * np.sin(2 * np.pi * 220 * t)
    return VisualSegment(index=0, start=0, n_samples=n, speaker=speaker, caption="the sky scatters blue light",
                         pcm=pcm, phonemes=())


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).max(axis=-1) > 0


@pytest.mark.parametrize("quality", [FLOOR, NEURAL], ids=["floor", "neural"])
def test_a_segment_has_every_frame_at_the_tier_size(animator: PortraitAnimator, quality: Quality) -> None:
    seg = segment(0.5)
    frames = list(animator.render(SCENE, seg, quality))
    assert len(frames) == frame_count(seg.n_samples, quality.fps) == 25
    assert {f.shape for f in frames} == {(360, 640, 3)}
    parts = list(animator.render(SCENE, seg, quality, frames=(10, 20)))
    assert all(np.array_equal(a, b) for a, b in zip(parts, frames[10:20], strict=True)), "a range is the same frames"


def test_the_floor_tier_opens_the_jaw_with_the_voice(animator: PortraitAnimator) -> None:
    quiet = list(animator.render(SCENE, segment(1.0), FLOOR))[20]  # silent throughout
    loud = list(animator.render(SCENE, segment(0.5), FLOOR))[20]
    diff = changed(quiet, loud)
    assert diff.any(), "the mouth moves when the voice starts"
    rows, cols = np.nonzero(diff)
    # Only the lower half of the speaking (left) host's face changes, where the frame places it
    # (give or take the picture's sway, the same in both frames).
    x0, y0, x1, y1 = animator.mouth_box(FLOOR, 0)
    assert y0 - 2 <= rows.min() and rows.max() <= y1 + 2, (rows.min(), rows.max(), y0, y1)
    assert x0 - 2 <= cols.min() and cols.max() <= x1 + 2, (cols.min(), cols.max(), x0, x1)


def test_the_frame_is_the_studio_with_captions_and_the_speaker_framed(animator: PortraitAnimator) -> None:
    seg = segment(0.5)
    other = VisualSegment(index=0, start=0, n_samples=seg.n_samples, speaker=0, caption="a different line entirely",
                          pcm=seg.pcm, phonemes=())
    a, b = next(animator.render(SCENE, seg, FLOOR)), next(animator.render(SCENE, other, FLOOR))
    rows = np.nonzero(changed(a, b))[0]
    assert rows.size and rows.min() >= int(360 * CAP_Y0), "only the caption differs"
    left, right = (animator.stage.frame(FLOOR, h) for h in (0, 1))
    accent = tuple(animator.styles[0].accent)
    assert tuple(a[left.y + left.h // 2, left.x - 2]) == accent, "the speaker framed in its accent"
    assert tuple(a[right.y + right.h // 2, right.x - 2]) != tuple(animator.styles[1].accent)
    idle = animator.idle_frame(SCENE, FLOOR, 0)
    listener = (slice(right.y + 4, right.y + right.h - 4), slice(right.x + 4, right.x + right.w - 4))
    assert a[listener].mean() < idle[listener].mean() * 0.95, "the listener dimmed"


def test_the_neural_tier_repaints_only_the_speakers_face(animator: PortraitAnimator) -> None:
    a = list(animator.render(SCENE, segment(0.2), NEURAL))[15]
    b = list(animator.render(SCENE, segment(0.8), NEURAL))[15]
    diff = changed(a, b)
    assert diff.any()
    assert np.nonzero(diff)[1].max() < 320, "the listener is untouched"


def test_title_and_idle_frames(animator: PortraitAnimator) -> None:
    assert animator.title_card(SCENE, FLOOR, 0.0).shape == (360, 640, 3)
    idle = animator.idle_frame(SCENE, FLOOR, 0)
    assert idle.shape == (360, 640, 3) and not np.array_equal(idle, animator.idle_frame(SCENE, FLOOR, 36_000))


def test_missing_portraits_and_weights_fail_at_load(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(WeightsError, match=r"portraits/nobody\.png: missing or not an image"):
        PortraitAnimator(portraits=["alex.png", "nobody.png"], weights=str(weights))
    monkeypatch.delenv("STREAMWISE_WEIGHTS", raising=False)
    with pytest.raises(WeightsError, match="--weights DIR"):
        PortraitAnimator(portraits=list(PORTRAITS))
    with pytest.raises(WeightsError, match=r"face box \[0, 0, 999, 999\]"):
        PortraitAnimator(portraits=list(PORTRAITS), weights=str(weights), face_boxes=[[0, 0, 999, 999], [0, 0, 64, 64]])


def test_the_floor_tier_follows_the_phonemes(animator: PortraitAnimator) -> None:
    """With phoneme timings, the jaw opens wide on an open vowel and little on a closed consonant."""
    from models.protocols import TimedPhoneme

    seg = segment(0.0)  # loud throughout
    timed = VisualSegment(index=0, start=0, n_samples=seg.n_samples, speaker=0, caption=seg.caption, pcm=seg.pcm,
                          phonemes=(TimedPhoneme("m", 0, 19_200), TimedPhoneme("a", 19_200, 48_000)))
    frames = list(animator.render(SCENE, timed, FLOOR))
    shut = list(animator.render(SCENE, segment(1.0), FLOOR))  # silent: the portrait's own mouth
    x0, y0, x1, y1 = animator.mouth_box(FLOOR, 0)
    moved = [int(changed(f[y0:y1, x0:x1], s[y0:y1, x0:x1]).sum()) for f, s in zip(frames, shut, strict=True)]
    assert moved[20] > 0, "an open 'a': the jaw opens"
    assert moved[5] < moved[20], "a closed 'm' at the same loudness: less"


def test_both_hosts_blink_now_and_then(animator: PortraitAnimator, monkeypatch: pytest.MonkeyPatch) -> None:
    from models.video.lipsync import composition as module
    from models.video.lipsync.composition import blink

    times = range(0, 48_000 * 12, 480)  # 12 s in 10 ms steps
    for host in (0, 1):
        closed = [t for t in times if blink(t, host) > 0.5]
        assert closed, f"host {host} never blinks"
        assert len(closed) < len(times) * 0.1, "blinks are short"
    t = next(t for t in times if blink(t, 0) > 0.9)
    blinking = animator.idle_frame(SCENE, FLOOR, t)
    monkeypatch.setattr(module, "blink", lambda clock, host: 0.0)
    open_eyes = animator.idle_frame(SCENE, FLOOR, t)  # the same instant, eyes open
    rows = np.nonzero(changed(open_eyes, blinking)[:, :320])[0]
    y0 = animator.mouth_box(FLOOR, 0)[1]
    assert rows.size and rows.max() < y0, "the eyes close above the mouth"
