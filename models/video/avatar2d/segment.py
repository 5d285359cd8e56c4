"""What one segment's frames are drawn on: a base picture per caption chunk, and the canvas.

The base changes when the caption moves on to its next chunk; during the first
moments of a turn the frame is a cross-fade from the previous speaker's base.
Supersampled canvases are large, so one canvas is kept and only the hosts'
regions are restored from the base between frames; the result is the same
picture as a fresh copy.
"""
from __future__ import annotations

import bisect
from collections.abc import Callable

import cv2
import numpy as np

from models.video.avatar2d.captions import Captions, Chunk
from models.video.avatar2d.primitives import RGB

Box = tuple[int, int, int, int]


class Bases:
    """Base pictures of one segment by (caption chunk, host state), built on first use.

    Chunk ``i`` is shown from the fraction ``bounds[i]`` of the segment on; the
    fractions follow the chunks' lengths, so each is read for about as long.
    """

    def __init__(self, bg: Callable[[str | int], np.ndarray], chunks: list[Chunk], captions: Captions, accent: RGB):
        self._bg = bg
        self._chunks = chunks
        self._captions = captions
        self._accent = accent
        self._bases: dict[tuple[int, str | int], np.ndarray] = {}
        self._bounds: list[float] = []
        if chunks:
            weights = np.array([max(1, c[1]) for c in chunks], dtype=np.float64)
            self._bounds = list(np.concatenate([[0.0], np.cumsum(weights)[:-1] / weights.sum()]))

    def chunk_at(self, frac: float) -> int:
        """Index of the caption chunk shown at ``frac`` (0..1) of the segment, -1 without captions."""
        return bisect.bisect_right(self._bounds, frac) - 1 if self._chunks else -1

    def get(self, chunk_i: int, state: str | int) -> np.ndarray:
        """The base for caption chunk ``chunk_i`` (-1: none) with host state ``state``; not to be drawn on."""
        key = (chunk_i, state)
        b = self._bases.get(key)
        if b is None:
            bg = self._bg(state)
            if chunk_i >= 0:
                b = bg.copy()
                self._captions.draw(b, self._chunks[chunk_i][0], self._accent)
            else:
                b = bg
            self._bases[key] = b
        return b


class Canvas:
    """Hands out the picture to draw each frame on, and the reference that occluders are restored from."""

    def __init__(self, persistent: bool, rois: list[Box]):
        self.persistent = persistent
        self.rois = rois
        self._img: np.ndarray | None = None
        self._base: np.ndarray | None = None

    def frame(self, base: np.ndarray, prev: np.ndarray | None, ramp: float) -> tuple[np.ndarray, np.ndarray]:
        """(canvas, reference) for a frame on ``base``, cross-faded from ``prev`` by ``ramp`` when given."""
        if prev is not None:
            ref = cv2.addWeighted(prev, 1.0 - ramp, base, ramp, 0.0)
            self._base = None
            return ref.copy(), ref
        if not self.persistent:
            return base.copy(), base
        if self._img is None or self._base is not base:
            self._img = base.copy()
            self._base = base
        else:
            for x0, y0, x1, y1 in self.rois:
                self._img[y0:y1, x0:x1] = base[y0:y1, x0:x1]
        return self._img, base
