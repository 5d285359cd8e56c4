"""Both looks draw the shot a segment is given: the two-shot as before, or one host close up.

A close-up is the same scene through a closer camera: the chosen host's face fills a good
part of the frame, the other host is out of it, the same poses and mouth shapes are drawn,
and the title banner and captions read as in the two-shot.

    python -m tests.test_shots_drawing   # prints the two-shot fingerprint and hashes to record
"""
from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.protocols import (
    CLOCK_RATE,
    TWO_SHOT,
    Quality,
    SceneInfo,
    Shot,
    TimedPhoneme,
    VisualSegment,
)
from models.video.avatar2d import CAP_Y0, Avatar2D
from models.video.avatar2d import animator as avatar_module
from models.video.avatar2d.camera import shot_camera
from models.video.avatar2d.primitives import mul
from models.video.avatar2d.text import Text

SCENE = SceneInfo(title="Why Octopuses Are Basically Aliens", hosts=("Alex", "Sam"))
CAPTION = "So here's the thing about octopuses: they have three hearts and blue blood."
Q360, Q240 = Quality("360p", 360, 25), Quality("240p", 240, 25)
#: A frame well after the turn's cross-fade, where the listener is fully dimmed.
SETTLED = 12


def segment(speaker: int = 0, shot: Shot = TWO_SHOT, caption: str = CAPTION, loud: bool = True,
            n: int = CLOCK_RATE, index: int = 3, sounds: str = "haloʊmi") -> VisualSegment:
    t = np.arange(n) / CLOCK_RATE
    pcm = (0.2 * np.sin(2 * np.pi * 180 * t) * loud).astype(np.float32)
    phonemes = tuple(TimedPhoneme(sounds[i % len(sounds)], i * 2400, (i + 1) * 2400) for i in range(n // 2400))
    return VisualSegment(index, 10 * CLOCK_RATE, n, speaker, caption, pcm, phonemes, shot)


def frame(animator, seg: VisualSegment, quality: Quality, n: int = SETTLED, **kw) -> np.ndarray:
    return next(iter(animator.render(SCENE, seg, quality, frames=(n, n + 1), **kw)))


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).max(axis=-1) > 0


def blob_height(img: np.ndarray, colour: tuple) -> int:
    """Height of the largest region of exactly ``colour``: a cartoon face is filled with its skin colour."""
    mask = np.all(img == np.array(colour, np.uint8), axis=-1).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    return int(stats[1:, cv2.CC_STAT_HEIGHT][np.argmax(stats[1:, cv2.CC_STAT_AREA])]) if n > 1 else 0


def skins(av: Avatar2D, host: int) -> list[tuple]:
    """A host's face colours as speaker and as dimmed listener."""
    return [mul(av.styles[host].skin, dim) for dim in (1.0, 0.86)]


@pytest.fixture(scope="module")
def av() -> Avatar2D:
    return Avatar2D(studio_cache="")


# ------------------------------------------------------------------ the cartoon look
@pytest.mark.parametrize("speaker,host", [(0, 0), (0, 1), (1, 1)], ids=["speaker", "reaction", "other-speaker"])
def test_a_close_up_fills_the_frame_with_the_chosen_host(av: Avatar2D, speaker: int, host: int) -> None:
    two = frame(av, segment(speaker), Q360)
    close = frame(av, segment(speaker, Shot("close_up", host)), Q360)
    skin = skins(av, host)[0 if host == speaker else 1]
    face_two, face_close = blob_height(two, skin), blob_height(close, skin)
    assert face_close >= 0.4 * Q360.height, (face_close, "the face is readable at 360p")
    assert face_close >= 1.7 * face_two, (face_two, face_close)
    other = 1 - host
    assert sum(int(np.all(two == np.array(c, np.uint8), axis=-1).sum()) for c in skins(av, other)) > 1000
    assert sum(int(np.all(close == np.array(c, np.uint8), axis=-1).sum()) for c in skins(av, other)) < 50, \
        "the other host is out of frame"


def test_a_close_up_moves_exactly_as_the_two_shot(av: Avatar2D, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same poses (mouth shape, blinks, sway, nods) are drawn, only moved and scaled by the camera."""
    drawn: list = []
    real = avatar_module.draw_host
    monkeypatch.setattr(avatar_module, "draw_host", lambda img, style, pose: (drawn.append((style, pose)),
                                                                              real(img, style, pose)))
    for host in (0, 1):
        drawn.clear()
        list(av.render(SCENE, segment(0), Q240, frames=(0, 25)))
        wide = [pose for style, pose in drawn if style is av.styles[host]]
        drawn.clear()
        shot = Shot("close_up", host)
        list(av.render(SCENE, segment(0, shot), Q240, frames=(0, 25)))
        assert {id(style) for style, _ in drawn} == {id(av.styles[host])}, "only the chosen host is drawn"
        camera = shot_camera(Q240, shot)
        assert camera.zoom > 1.5
        assert [pose for _, pose in drawn] == [camera.pose(p) for p in wide]


def test_a_close_up_shows_the_mouth_larger(av: Avatar2D) -> None:
    """The same voice with other sounds changes only the mouth: four times the pixels in a close-up."""
    def mouth_change(shot: Shot) -> tuple[np.ndarray, np.ndarray]:
        return np.nonzero(changed(frame(av, segment(0, shot, sounds="a"), Q360),
                                  frame(av, segment(0, shot, sounds="m"), Q360)))
    rows_two, _ = mouth_change(TWO_SHOT)
    rows, cols = mouth_change(Shot("close_up", 0))
    assert rows.size > 3 * rows_two.size > 0
    assert 0.4 * Q360.height < rows.mean() < 0.7 * Q360.height and abs(cols.mean() - Q360.width / 2) < 40, \
        "below the middle of the frame, where the close-up puts the mouth"


def test_a_close_up_keeps_the_banner_and_the_captions(av: Avatar2D) -> None:
    shot = Shot("close_up", 0)
    a = frame(av, segment(0, shot), Q360)
    b = frame(av, segment(0, shot, caption="An entirely different line of dialogue here."), Q360)
    rows = np.nonzero(changed(a, b))[0]
    assert rows.size and rows.min() >= int(CAP_Y0 * Q360.height) - 1, "only the caption differs"
    # the caption's letters sit where the two-shot has them, at the same size
    y = int(CAP_Y0 * Q360.height)
    white_two = np.all(frame(av, segment(0), Q360)[y:] >= 235, axis=-1)
    white_close = np.all(a[y:] >= 235, axis=-1)
    overlap = (white_two & white_close).sum() / max(1, (white_two | white_close).sum())
    assert white_two.sum() > 300 and overlap > 0.8, overlap
    live = np.all(np.abs(a[: Q360.height // 10].astype(int) - (226, 54, 74)) <= 2, axis=-1)
    assert live.sum() > 50, "the LIVE pill of the title banner"


@pytest.mark.parametrize("quality,size", [(Quality("t", 240, 25, 2), None), (Quality("t", 480, 25, 2), (426, 240)),
                                          (Quality("t", 360, 30, 1), (640, 360))], ids=["240x2", "480x2-sized", "360"])
def test_close_ups_at_every_tier_are_deterministic_and_tile(quality: Quality, size) -> None:
    seg = segment(1, Shot("close_up", 1), n=CLOCK_RATE // 2)
    whole = list(Avatar2D(studio_cache="").render(SCENE, seg, quality, size=size))
    width, height = size or (quality.width, quality.height)
    assert {f.shape for f in whole} == {(height, width, 3)}
    # Another worker that drew other segments first (any worker draws any part, in any order).
    redrawn = Avatar2D(studio_cache="")
    redrawn._reuse_canvas = False
    list(redrawn.render(SCENE, segment(0, index=1, n=CLOCK_RATE * 3), quality, frames=(60, 62), size=size))
    parts = [f for a, b in ((0, 4), (4, 99)) for f in redrawn.render(SCENE, seg, quality, frames=(a, b), size=size)]
    assert all(np.array_equal(x, y) for x, y in zip(whole, parts, strict=True))


# ------------------------------------------------------------------ the two-shot, unchanged
#: What the drawing's pixels depend on besides the code; hashes recorded under another are skipped.
def fingerprint() -> str:
    import PIL
    from PIL import features

    fonts = [f"{Path(p).name}:{os.path.getsize(p)}" for p in Text().paths.values() if p]
    return "|".join([np.__version__, cv2.__version__, PIL.__version__, str(features.version("freetype2")),
                     platform.machine(), *fonts])


RECORDED = {
    "fingerprint": "2.4.6|5.1.0|13.0.0|2.14.3|x86_64|DejaVuSans.ttf:759720|DejaVuSans-Bold.ttf:708920",
    "hashes": {"240p/0": "80afa7f53b37b7f9", "240p/5": "6d410327987700ae", "240p/19": "b85996f81074d984",
               "240x2/0": "5313f2b6e07bc73f", "240x2/5": "079ea23e4450ac42", "240x2/19": "36abff7a5c4f9867",
               "360x2/0": "1575763f719807d4", "360x2/5": "ee25e8839bba0fa1", "360x2/19": "f6326ffbce643819"},
}


def two_shot_hashes() -> dict[str, str]:
    """Hashes of two-shot frames of the cartoon look: plain, supersampled (a kept canvas) and sized."""
    av = Avatar2D(studio_cache="")
    out = {}
    for quality, size in ((Q240, None), (Quality("240x2", 240, 25, 2), None), (Quality("360x2", 360, 25, 2), (426, 240))):
        frames = list(av.render(SCENE, segment(1, caption=CAPTION * 2), quality, frames=(0, 20), size=size))
        for n in (0, 5, 19):
            out[f"{quality.name}/{n}"] = hashlib.sha1(frames[n].tobytes()).hexdigest()[:16]
    return out


def test_the_two_shot_is_drawn_as_before() -> None:
    if fingerprint() != RECORDED["fingerprint"]:
        pytest.skip(f"recorded with {RECORDED['fingerprint']}, this is {fingerprint()}: "
                    "re-record with python -m tests.test_shots_drawing")
    assert two_shot_hashes() == RECORDED["hashes"], "the two-shot changed: if on purpose, re-record the hashes"


# ------------------------------------------------------------------ the portrait look
FLOOR, NEURAL = Quality("portrait", 360, 25), Quality("neural", 360, 25)
#: The test portraits' face colour (tests/support/tiny_weights.py draws it in BGR).
PORTRAIT_FACE = (220, 180, 150)


@pytest.fixture(scope="module")
def pa(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("diffusers", reason="the neural extra: pip install -e '.[neural]'")
    os.environ["HF_HUB_OFFLINE"] = "1"
    from models.video.lipsync.animator import PortraitAnimator
    from tests.support.tiny_weights import PORTRAITS, write

    weights = write(tmp_path_factory.mktemp("weights"))
    return PortraitAnimator(portraits=list(PORTRAITS), weights=str(weights), neural_tiers=["neural"], batch=4,
                            studio_cache="")


def face_height(img: np.ndarray, colour: tuple, tolerance: int = 3) -> int:
    mask = np.all(np.abs(img.astype(int) - colour) <= tolerance, axis=-1).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    return int(stats[1:, cv2.CC_STAT_HEIGHT][np.argmax(stats[1:, cv2.CC_STAT_AREA])]) if n > 1 else 0


@pytest.mark.parametrize("speaker,host", [(0, 0), (0, 1)], ids=["speaker", "reaction"])
def test_a_portrait_close_up_fills_the_frame_with_the_face(pa, speaker: int, host: int) -> None:
    from models.video.lipsync.composition import LISTENER_DIM

    shot = Shot("close_up", host)
    colour = PORTRAIT_FACE if host == speaker else tuple(round(c * LISTENER_DIM) for c in PORTRAIT_FACE)
    two, close = frame(pa, segment(speaker, loud=False), FLOOR), frame(pa, segment(speaker, shot, loud=False), FLOOR)
    assert face_height(close, colour) >= 0.4 * FLOOR.height
    assert face_height(close, colour) >= 1.6 * face_height(two, colour)
    box_two, box_close = pa.mouth_box(FLOOR, host), pa.mouth_box(FLOOR, host, shot)
    assert box_close[3] - box_close[1] >= 1.6 * (box_two[3] - box_two[1])
    assert not pa.stage.in_frame(FLOOR, 1 - host, pa.stage.camera(FLOOR, shot)), "the other host is out of frame"


def test_a_reaction_close_up_does_not_compute_the_speakers_face(pa, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pa, "_faces_for", lambda *a: pytest.fail("the speaker is out of frame"))
    assert len(list(pa.render(SCENE, segment(0, Shot("close_up", 1)), NEURAL))) == 25


def test_a_portrait_close_up_speaks_the_same_face(pa, monkeypatch: pytest.MonkeyPatch) -> None:
    """The face drawn in a close-up is the two-shot's, frame for frame; the jaw moves in the close-up's mouth box."""
    faces: list = []
    real = pa.stage.compose
    monkeypatch.setattr(pa.stage, "compose", lambda *a, **kw: (faces.append(kw["face"]), real(*a, **kw))[1])
    shot = Shot("close_up", 0)
    list(pa.render(SCENE, segment(0), FLOOR))
    wide, faces[:] = list(faces), []
    close = list(pa.render(SCENE, segment(0, shot), FLOOR))
    assert len(faces) == len(wide) == 25 and all(np.array_equal(a, b) for a, b in zip(faces, wide, strict=True))
    quiet = frame(pa, segment(0, shot, loud=False), FLOOR)
    rows, cols = np.nonzero(changed(close[SETTLED], quiet))
    x0, y0, x1, y1 = pa.mouth_box(FLOOR, 0, shot)
    assert rows.size and y0 - 2 <= rows.min() and rows.max() <= y1 + 2 and x0 - 2 <= cols.min() <= cols.max() <= x1 + 2


def test_a_portrait_close_up_keeps_the_banner_and_the_captions(pa) -> None:
    shot = Shot("close_up", 1)
    a = frame(pa, segment(1, shot), FLOOR)
    b = frame(pa, segment(1, shot, caption="An entirely different line of dialogue here."), FLOOR)
    rows = np.nonzero(changed(a, b))[0]
    assert rows.size and rows.min() >= int(CAP_Y0 * FLOOR.height) - 1, "only the caption differs"
    live = np.all(np.abs(a[: FLOOR.height // 10].astype(int) - (226, 54, 74)) <= 2, axis=-1)
    assert live.sum() > 50, "the LIVE pill of the title banner"


@pytest.mark.parametrize("quality,size", [(NEURAL, None), (FLOOR, (426, 240)), (Quality("p", 480, 25, 2), None)],
                         ids=["neural", "floor-sized", "480x2"])
def test_portrait_close_ups_at_every_tier_are_deterministic_and_tile(pa, quality: Quality, size) -> None:
    seg = segment(1, Shot("close_up", 1), n=CLOCK_RATE // 2)
    whole = list(pa.render(SCENE, seg, quality, size=size))
    width, height = size or (quality.width, quality.height)
    assert len(whole) == 13 and {f.shape for f in whole} == {(height, width, 3)}
    parts = [f for a, b in ((0, 4), (4, 99)) for f in pa.render(SCENE, seg, quality, frames=(a, b), size=size)]
    assert all(np.array_equal(x, y) for x, y in zip(whole, parts, strict=True))


if __name__ == "__main__":
    print({"fingerprint": fingerprint(), "hashes": two_shot_hashes()})
