"""Host portraits: image files the operator names, read once, each with the box of its face.

Portraits live in ``<weights>/portraits/`` (or are given as absolute paths). The face
box, ``[x, y, w, h]`` in the image's pixels, says which square the lip-sync network
repaints; without one the face detector (faces.py) finds it, and where it finds none (or
dlib is not installed) the upper-middle square of the image is used, with a warning that
names the file.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.video.lipsync.faces import DetectorMissing, detect_face
from models.video.lipsync.weights import WeightsError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Portrait:
    image: np.ndarray  # RGB uint8
    box: tuple[int, int, int, int]  # x, y, size, size: a square

    def crop(self) -> np.ndarray:
        x, y, w, h = self.box
        return self.image[y:y + h, x:x + w]


def default_box(width: int, height: int) -> tuple[int, int, int, int]:
    """The upper-middle square of a portrait: where a head-and-shoulders picture has its face."""
    size = min(width, height) // 2
    return (width - size) // 2, height // 8, size, size


def load_portrait(path: Path, box: list[int] | None = None) -> Portrait:
    """Read an image file as a portrait; WeightsError naming the file if it cannot be used."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise WeightsError(f"{path}: missing or not an image; name a PNG or JPEG portrait of the host")
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    if box is None:
        return Portrait(rgb, _found_box(path, rgb))
    if len(box) != 4:
        raise WeightsError(f"{path}: face box {box} must be [x, y, w, h]")
    x, y, bw, bh = (int(v) for v in box)
    side = min(bw, bh)
    if side < 16 or x < 0 or y < 0 or x + side > w or y + side > h:
        raise WeightsError(f"{path}: face box {box} must be a square of at least 16 px inside the {w}x{h} image")
    return Portrait(rgb, (x, y, side, side))


def _found_box(path: Path, rgb: np.ndarray) -> tuple[int, int, int, int]:
    """The detected face's square, or the default one with a warning saying how to place it."""
    h, w = rgb.shape[:2]
    try:
        found = detect_face(rgb)
    except DetectorMissing as e:
        log.warning("%s: %s; using the upper-middle square (or give face_boxes in the deployment)", path, e)
        return default_box(w, h)
    if found is None:
        log.warning("%s: no face found; using the upper-middle square (give face_boxes in the deployment "
                    "to place it)", path)
        return default_box(w, h)
    return found
