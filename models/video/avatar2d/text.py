"""Text runs rendered to RGBA images, cached: Pillow/FreeType when available, OpenCV otherwise.

Widths are also measured in ems (size-independent), so captions and titles wrap
the same way at every quality tier. A leaf of the package.
"""
from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

try:  # Pillow gives much nicer text; everything still works without it.
    from PIL import Image, ImageDraw, ImageFont

    _HAVE_PIL = True
except ImportError:  # pragma: no cover - exercised only where Pillow is missing
    _HAVE_PIL = False

#: System fonts tried in order, regular (False) and bold (True).
_FONT_CANDIDATES = {
    False: [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
    ],
    True: [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
        "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
    ],
}

#: One piece of a line: (text, rgb colour, bold).
Run = tuple[str, tuple, bool]

#: Rendered lines kept; a frame reuses the same few lines many times.
_CACHE_LINES = 256


class Text:
    """Renders text runs to RGBA images; cached and thread-safe.

    Uses the given or a system TrueType font through Pillow; a missing bold face
    is imitated with a stroke, a missing font with Pillow's bundled one, and a
    missing Pillow with OpenCV's Hershey font.
    """

    def __init__(self, font_path: str = "", bold_font_path: str = ""):
        self._lock = threading.Lock()
        self._fonts: dict[tuple[int, bool], Any] = {}
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.paths: dict[bool, str | None] = {False: None, True: None}
        self.fake_bold = False
        self.pil = _HAVE_PIL
        if self.pil:
            for bold, explicit in ((False, font_path), (True, bold_font_path or "")):
                self.paths[bold] = _first_loadable(([explicit] if explicit else []) + _FONT_CANDIDATES[bold])
            if self.paths[True] is None and self.paths[False] is not None:
                self.paths[True] = self.paths[False]
                self.fake_bold = True

    def font(self, px: int, bold: bool) -> Any:
        """The Pillow font at ``px`` pixels (at least 6)."""
        px = max(6, int(px))
        key = (px, bold)
        f = self._fonts.get(key)
        if f is None:
            p = self.paths[bold]
            if p is not None:
                f = ImageFont.truetype(p, px)
            else:
                try:
                    f = ImageFont.load_default(size=px)  # Pillow >= 10.1 bundles a FreeType font
                except TypeError:  # pragma: no cover - very old Pillow
                    f = ImageFont.load_default()
            self._fonts[key] = f
        return f

    def _bold_stroke(self, px: int, bold: bool) -> int:
        if not bold:
            return 0
        if self.paths[True] is not None and not self.fake_bold:
            return 0
        return max(1, round(px / 28))

    def width_em(self, text: str, bold: bool) -> float:
        """Advance width of ``text`` in ems (size-independent, for tier-independent wrapping)."""
        if not self.pil:
            face = cv2.FONT_HERSHEY_DUPLEX
            (w, _), _ = cv2.getTextSize(text, face, 1.0, 2 if bold else 1)
            return w / 30.0
        ref = 200
        f = self.font(ref, bold)
        return (f.getlength(text) + 2 * self._bold_stroke(ref, bold)) / ref

    def runs(self, runs: Sequence[Run], px: int) -> np.ndarray:
        """One line made of (text, rgb, bold) runs -> RGBA uint8, height = line height."""
        key = (tuple(runs), int(px))
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        img = self._render_runs(runs, int(px))
        with self._lock:
            self._cache[key] = img
            while len(self._cache) > _CACHE_LINES:
                self._cache.popitem(last=False)
        return img

    def _render_runs(self, runs: Sequence[Run], px: int) -> np.ndarray:
        px = max(6, px)
        if not self.pil:
            return _render_runs_cv(runs, px)
        asc_desc = self.font(px, False).getmetrics()
        lh = math.ceil((asc_desc[0] + asc_desc[1]) * 1.0) + 2
        widths = []
        for text, _, bold in runs:
            f = self.font(px, bold)
            widths.append(math.ceil(f.getlength(text)) + 2 * self._bold_stroke(px, bold))
        w = max(1, sum(widths) + 4)
        im = Image.new("RGBA", (w, lh), (0, 0, 0, 0))
        d = ImageDraw.Draw(im)
        x = 2
        for (text, col, bold), tw in zip(runs, widths):
            f = self.font(px, bold)
            sw = self._bold_stroke(px, bold)
            d.text((x + sw, 1), text, font=f, fill=tuple(col) + (255,), stroke_width=sw, stroke_fill=tuple(col) + (255,))
            x += tw
        return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def _first_loadable(paths: Sequence[str]) -> str | None:
    """The first of ``paths`` that exists and loads as a TrueType font."""
    for p in paths:
        if p and os.path.isfile(p):
            try:
                ImageFont.truetype(p, 12)
                return p
            except (OSError, ValueError):  # not a font Pillow can read: try the next one
                continue
    return None


def _render_runs_cv(runs: Sequence[Run], px: int) -> np.ndarray:
    """OpenCV Hershey fallback of ``Text.runs`` (no Pillow)."""
    face = cv2.FONT_HERSHEY_DUPLEX
    scale = px / 30.0
    sizes = [cv2.getTextSize(t, face, scale, max(1, round(px / (12 if b else 18))))[0] for t, _, b in runs]
    lh = int(px * 1.3) + 2
    w = max(1, sum(s[0] for s in sizes) + 4)
    rgb = np.zeros((lh, w, 3), np.uint8)
    a = np.zeros((lh, w), np.uint8)
    x = 2
    base = int(px * 0.95)
    for (t, col, b), s in zip(runs, sizes):
        th = max(1, round(px / (12 if b else 18)))
        cv2.putText(rgb, t, (x, base), face, scale, tuple(int(c) for c in col), th, cv2.LINE_AA)
        cv2.putText(a, t, (x, base), face, scale, 255, th, cv2.LINE_AA)
        x += s[0]
    return np.dstack([rgb, a])
