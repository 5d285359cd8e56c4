"""The face detector finds a real face and places the crop square the lip-sync network repaints."""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("dlib", reason="the neural extra: pip install -e '.[neural]'")
skimage_data = pytest.importorskip("skimage.data")

from models.video.lipsync import faces
from models.video.lipsync.faces import detect_face, face_square
from models.video.lipsync.portraits import default_box, load_portrait

#: Points of the photograph's face (x, y), read off the picture: the eyes and the mouth.
EYES = ((196, 112), (244, 112))
MOUTH = (222, 147)


def inside(point: tuple[int, int], box: tuple[int, int, int, int], upper: bool) -> bool:
    x, y, w, h = box
    mid = y + h / 2
    return x <= point[0] < x + w and (y <= point[1] < mid if upper else mid <= point[1] < y + h)


def test_a_photographed_face_is_found_with_the_mouth_in_the_lower_half() -> None:
    box = detect_face(skimage_data.astronaut())
    assert box is not None
    _, _, w, h = box
    assert w == h and 100 <= w <= 160, box
    assert all(inside(eye, box, upper=True) for eye in EYES), box
    assert inside(MOUTH, box, upper=False), box


def test_noise_and_drawings_have_no_face() -> None:
    noise = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    assert detect_face(noise) is None
    assert detect_face(np.full((256, 256, 3), 128, np.uint8)) is None


@pytest.mark.parametrize("box", [(0, 0, 40, 40), (220, 220, 36, 36), (100, 5, 80, 60)])
def test_the_square_stays_inside_the_image(box: tuple[int, int, int, int]) -> None:
    x, y, w, h = face_square(box, 256, 240)
    assert w == h and x >= 0 and y >= 0 and x + w <= 256 and y + h <= 240


def test_a_portrait_without_a_box_gets_the_detected_one(tmp_path: Path) -> None:
    photo = skimage_data.astronaut()
    path = tmp_path / "host.png"
    cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    assert load_portrait(path).box == detect_face(photo)


def test_without_a_face_the_default_square_is_used_and_the_file_named(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "drawing.png"
    cv2.imwrite(str(path), np.full((320, 256, 3), 90, np.uint8))
    with caplog.at_level(logging.WARNING):
        assert load_portrait(path).box == default_box(256, 320)
    assert "drawing.png: no face found" in caplog.text and "face_boxes" in caplog.text


def test_without_dlib_the_default_square_is_used_and_the_extra_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    def missing() -> None:
        raise faces.DetectorMissing("the face detector needs dlib: pip install -e '.[neural]'")

    monkeypatch.setattr(faces, "_get_detector", missing)
    path = tmp_path / "host.png"
    cv2.imwrite(str(path), cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR))
    with caplog.at_level(logging.WARNING):
        assert load_portrait(path).box == default_box(512, 512)
    assert "[neural]" in caplog.text
