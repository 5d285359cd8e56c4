"""What the broadcast lays over the picture (title banner, caption box, captions), for shots
in which the hosts reach under it.

In the two-shot the hosts end at the desk, above the caption box, so the overlay lives in
the base picture. A close-up's host fills the frame down past the caption box, so there
the overlay goes over each finished frame, as a broadcast keys its graphics over the
picture: drawn once per (caption chunk, host state) at the size the frame is delivered
at, so captions are as large as in the two-shot and sharp (never enlarged), and cost
pixels of the delivered size, not of a supersampled canvas. The existing drawing
functions draw onto a picture; drawing them on black and on white recovers the overlay's
colour and opacity (they blend linearly with what is under them), so each frame only
blends two small boxes.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from models.protocols import SceneInfo
from models.video.avatar2d.captions import Captions, Chunk, draw_caption_box
from models.video.avatar2d.hosts import HostStyle
from models.video.avatar2d.layout import CAP_Y0, CAP_Y1
from models.video.avatar2d.primitives import RGB
from models.video.avatar2d.stage import draw_banner
from models.video.avatar2d.text import Text

Box = tuple[int, int, int, int]
#: One box of an overlay: the box, its colour, its opacity and one minus it.
Part = tuple[Box, np.ndarray, np.ndarray, np.ndarray]
#: The title banner lies within this top fraction of the frame (stage.draw_banner).
BANNER_BAND = 0.1


def bands(height: int, width: int) -> list[Box]:
    """The full-width rows an overlay may cover: the banner's and the caption box's."""
    return [(0, 0, width, math.ceil(BANNER_BAND * height)),
            (0, max(0, math.floor(CAP_Y0 * height) - 1), width, min(height, math.ceil(CAP_Y1 * height) + 1))]


def make_overlay(height: int, width: int, draw: Callable[[np.ndarray], None]) -> list[Part]:
    """What ``draw`` (a function that draws onto an RGB picture) lays over a picture, as colour and
    opacity in the boxes of ``bands`` that it touches."""
    black = np.zeros((height, width, 3), np.uint8)
    white = np.full((height, width, 3), 255, np.uint8)
    draw(black)
    draw(white)
    parts: list[Part] = []
    for _, y0, _, y1 in bands(height, width):
        lo = black[y0:y1].astype(np.float32)
        alpha = np.clip(1.0 - (white[y0:y1].astype(np.float32) - lo).mean(axis=2) / 255.0, 0.0, 1.0)
        cols = np.nonzero(alpha.max(axis=0) > 0.0)[0]
        if cols.size == 0:
            continue
        x0, x1 = int(cols[0]), int(cols[-1]) + 1
        a = np.ascontiguousarray(alpha[:, x0:x1])
        colour = np.clip(lo[:, x0:x1] / np.maximum(a, 1.0 / 255.0)[..., None] + 0.5, 0, 255).astype(np.uint8)
        parts.append(((x0, y0, x1, y1), colour, a, np.ascontiguousarray(1.0 - a)))
    return parts


def apply_overlay(img: np.ndarray, parts: Sequence[Part]) -> None:
    """Blend an overlay over ``img`` in place."""
    for (x0, y0, x1, y1), colour, a, ia in parts:
        d = img[y0:y1, x0:x1]
        d[:] = cv2.blendLinear(colour, d, a, ia)


class Overlays:
    """A segment's overlays for frames of ``shape`` (height, width) by (caption chunk, host state),
    built on first use: the banner, and with ``box`` the caption box and the chunk's caption
    (chunk -1: the box alone)."""

    def __init__(self, shape: tuple[int, int], scene: SceneInfo, box: bool, chunks: list[Chunk], captions: Captions,
                 accent: RGB, styles: Sequence[HostStyle], text: Text) -> None:
        self.shape = shape
        self._scene, self._box, self._chunks = scene, box, chunks
        self._captions, self._accent, self._styles, self._text = captions, accent, styles, text
        self._made: dict[tuple[int, str | int], list[Part]] = {}

    def apply(self, img: np.ndarray, chunk_i: int, state: str | int) -> None:
        """Blend the overlay of caption chunk ``chunk_i`` for host state ``state`` over ``img``."""
        key = (chunk_i, state)
        parts = self._made.get(key)
        if parts is None:
            def draw(layer: np.ndarray) -> None:
                draw_banner(layer, self._scene.title, self._text)
                if self._box:
                    draw_caption_box(layer, state, self._styles)
                    if chunk_i >= 0:
                        self._captions.draw(layer, self._chunks[chunk_i][0], self._accent)
            parts = self._made[key] = make_overlay(self.shape[0], self.shape[1], draw)
        apply_overlay(img, parts)
