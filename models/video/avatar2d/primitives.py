"""Drawing primitives shared by every layer of the studio: colours, shapes, compositing.

Shapes are drawn anti-aliased with sub-pixel coordinates (OpenCV's fixed-point
``shift``), so slow motion glides instead of stepping a whole pixel at a time.
Nothing here knows about hosts, layout or caching: it is a leaf of the package.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np
from numpy.typing import ArrayLike

#: Fractional bits of the fixed-point coordinates handed to OpenCV.
SHIFT = 4
#: Scale from float pixels to fixed-point coordinates.
F = float(1 << SHIFT)
AA = cv2.LINE_AA

RGB = tuple[int, int, int]
#: A drawing colour: an RGB triple, or one value for a single-channel mask.
Colour = RGB | int


# ----------------------------------------------------------------------------- colours
def hex_rgb(c: str | Sequence[int]) -> RGB:
    """``"#rgb"``, ``"#rrggbb"`` or a sequence of three ints -> an (r, g, b) tuple."""
    if isinstance(c, str):
        s = c.strip().lstrip("#")
        if len(s) == 3:
            s = "".join(ch * 2 for ch in s)
        return int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16)
    return int(c[0]), int(c[1]), int(c[2])


def mix(a: Sequence[float], b: Sequence[float], t: float) -> RGB:
    """Linear blend from colour ``a`` (t = 0) to ``b`` (t = 1), rounded."""
    return (int(a[0] + (b[0] - a[0]) * t + 0.5), int(a[1] + (b[1] - a[1]) * t + 0.5), int(a[2] + (b[2] - a[2]) * t + 0.5))


def mul(a: Sequence[float], f: float) -> RGB:
    """Colour ``a`` scaled by ``f`` (dimming or brightening), rounded and clipped at 255."""
    return (min(255, int(a[0] * f + 0.5)), min(255, int(a[1] * f + 0.5)), min(255, int(a[2] * f + 0.5)))


# ----------------------------------------------------------------------------- compositing
def blit_rgba(dst: np.ndarray, src: np.ndarray, x: int, y: int, opacity: float = 1.0) -> None:
    """Alpha-composite RGBA ``src`` onto RGB ``dst`` at (x, y), clipped."""
    h, w = src.shape[:2]
    H, W = dst.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x1 <= x0 or y1 <= y0:
        return
    s = src[y0 - y:y1 - y, x0 - x:x1 - x]
    a = s[..., 3:4].astype(np.float32) * (opacity / 255.0)
    d = dst[y0:y1, x0:x1]
    d[:] = (d.astype(np.float32) * (1.0 - a) + s[..., :3].astype(np.float32) * a + 0.5).astype(np.uint8)


def overlay(dst: np.ndarray, draw: Callable[[np.ndarray], None], alpha: float) -> None:
    """Draw with ``draw(layer)`` on a copy and blend it in with opacity ``alpha``."""
    layer = dst.copy()
    draw(layer)
    cv2.addWeighted(layer, alpha, dst, 1.0 - alpha, 0.0, dst=dst)


def fit_width(im: np.ndarray, maxw: float) -> np.ndarray:
    """``im`` shrunk (aspect kept) to at most ``maxw`` pixels wide; unchanged when it fits."""
    if im.shape[1] <= maxw:
        return im
    return cv2.resize(im, (int(maxw), max(1, int(im.shape[0] * maxw / im.shape[1]))), interpolation=cv2.INTER_AREA)


# ----------------------------------------------------------------------------- shapes
def _corner_points(x0: float, y0: float, x1: float, y1: float, r: float, n: int) -> list[tuple[float, float]]:
    pts = []
    for cx, cy, a0 in ((x1 - r, y0 + r, -90), (x1 - r, y1 - r, 0), (x0 + r, y1 - r, 90), (x0 + r, y0 + r, 180)):
        for i in range(n + 1):
            a = math.radians(a0 + 90 * i / n)
            pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return pts


def rrect(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, r: float, col: Colour,
          thickness: int = -1) -> None:
    """Anti-aliased rounded rectangle (pixel coords, floats ok)."""
    r = max(0.0, min(r, (x1 - x0) / 2, (y1 - y0) / 2))
    p = (np.array(_corner_points(x0, y0, x1, y1, r, 8)) * F).round().astype(np.int32)
    if thickness < 0:
        cv2.fillPoly(img, [p], col, AA, SHIFT)
    else:
        cv2.polylines(img, [p], True, col, thickness, AA, SHIFT)


def rounded_box(x0: float, y0: float, x1: float, y1: float, r: float, n: int = 5) -> np.ndarray:
    """Rounded-rectangle outline points (any units)."""
    return np.array(_corner_points(x0, y0, x1, y1, r, n))


def radial(h: int, w: int, cx: float, cy: float, rx: float, ry: float, power: float = 2.0) -> np.ndarray:
    """(h, w) float32 glow: 1 at (cx, cy) falling to 0 on the (rx, ry) ellipse, shaped by ``power``."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
    return np.clip(1.0 - np.sqrt(d), 0.0, 1.0) ** power


def arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 12) -> np.ndarray:
    """``n`` points along an elliptical arc from ``a0`` to ``a1`` degrees."""
    a = np.radians(np.linspace(a0, a1, n))
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], axis=1)


# ----------------------------------------------------------------------------- transforms
class Xf:
    """Host-local (normalised) -> pixel transform: origin, pixels per unit, roll.

    Hosts are described in units of the frame height around a local origin, so the
    same shapes serve every tier, the speaker's scale-up and the title-card portraits.
    """

    __slots__ = ("c", "deg", "k", "m", "o", "ox", "oy", "s")

    def __init__(self, ox: float, oy: float, k: float, ang: float = 0.0):
        self.ox, self.oy, self.k = ox, oy, k
        self.c, self.s = math.cos(ang), math.sin(ang)
        self.deg = math.degrees(ang)
        kf = k * F
        self.m = np.array([[self.c * kf, self.s * kf], [-self.s * kf, self.c * kf]])
        self.o = np.array([ox * F + 0.5, oy * F + 0.5])

    def p(self, u: float, v: float) -> tuple[int, int]:
        """One local point in fixed-point pixels."""
        x = self.ox + self.k * (u * self.c - v * self.s)
        y = self.oy + self.k * (u * self.s + v * self.c)
        return int(x * F + 0.5), int(y * F + 0.5)

    def pts(self, uv: ArrayLike) -> np.ndarray:
        """Many local points (N, 2) in fixed-point pixels."""
        return (np.asarray(uv, dtype=np.float64) @ self.m + self.o).astype(np.int32)

    def ell(self, img: np.ndarray, u: float, v: float, au: float, av: float, col: Colour, ang: float = 0.0,
            a0: float = 0, a1: float = 360, th: float = -1.0) -> None:
        """Ellipse (or arc from ``a0`` to ``a1``) with half-axes (au, av); filled unless ``th`` >= 0."""
        t = -1 if th < 0 else max(1, round(th * self.k))
        cv2.ellipse(img, self.p(u, v), (max(1, int(au * self.k * F + 0.5)), max(1, int(av * self.k * F + 0.5))),
                    self.deg + ang, a0, a1, col, t, AA, SHIFT)

    def poly(self, img: np.ndarray, uv: ArrayLike, col: Colour) -> None:
        """Filled polygon."""
        cv2.fillPoly(img, [self.pts(uv)], col, AA, SHIFT)

    def line(self, img: np.ndarray, uv: ArrayLike, col: Colour, th: float, closed: bool = False) -> None:
        """Polyline ``th`` units thick."""
        cv2.polylines(img, [self.pts(uv)], closed, col, max(1, round(th * self.k)), AA, SHIFT)

    def circ(self, img: np.ndarray, u: float, v: float, r: float, col: Colour, th: float = -1.0) -> None:
        """Circle of radius ``r`` units; filled unless ``th`` >= 0."""
        t = -1 if th < 0 else max(1, round(th * self.k))
        cv2.circle(img, self.p(u, v), max(1, int(r * self.k * F + 0.5)), col, t, AA, SHIFT)
