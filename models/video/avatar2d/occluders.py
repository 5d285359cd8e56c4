"""What stands in front of the hosts (desk, microphones, forearms) and how it is put back.

Hosts are drawn over the finished static picture; the parts of that picture
that should hide them are then restored from it: whole rows below the desk
line, and the microphones and forearms blended in by their alpha masks. Each
tier keeps one set of mic layers and precomputed blend weights.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from models.protocols import Quality
from models.video.avatar2d.camera import WIDE, Camera, shot_rois
from models.video.avatar2d.hosts import HostStyle, draw_arms
from models.video.avatar2d.layout import DESK_Y, HOST_X, canvas_size
from models.video.avatar2d.primitives import AA, RGB, SHIFT, F, Xf, rounded_box

Box = tuple[int, int, int, int]
#: A region to blend back: its box, the occluder's weight there and one minus it.
BlendPart = tuple[Box, np.ndarray, np.ndarray]
#: Mic colours (rgb), their alpha mask (mics and forearms) and the blend parts.
MicLayers = tuple[np.ndarray, np.ndarray, list[BlendPart]]


def make_mics(quality: Quality, styles: Sequence[HostStyle], camera: Camera = WIDE) -> MicLayers:
    """Both microphones as colour + alpha layers, and the weights that restore mics and forearms,
    seen through ``camera`` (parts out of its frame are left out).

    The forearms' colours depend on who is speaking, so they live in the static
    picture and only their alpha is kept here.
    """
    H, W = canvas_size(quality)
    u = H / 1000.0
    rgb = np.zeros((H, W, 3), np.uint8)
    a = np.zeros((H, W), np.uint8)
    boxes = [_draw_mic(rgb, a, h, styles[h].accent, u, camera) for h in (0, 1)]
    arms = np.zeros((H, W), np.uint8)
    dyi = math.ceil(camera.y(DESK_Y * H))
    for h in (0, 1):
        draw_arms(arms, styles[h], h, 1.0, mask=True, camera=camera)
        cx = HOST_X[h] * W
        boxes.append((max(0, int(camera.x(cx - 0.25 * H))), max(0, int(camera.y(DESK_Y * H - 0.05 * H))),
                      min(W, int(camera.x(cx + 0.25 * H))), min(H, dyi)))
    a = np.maximum(a, arms)
    # float weights per box, once per tier (rows below the desk are copied whole)
    parts = []
    for (x0, y0, x1, y1) in boxes:
        y1 = min(y1, dyi)
        if x1 <= x0 or y1 <= y0:
            continue  # out of the camera's frame
        # a close-up's boxes are large and mostly empty: blend only strips where there is a mic
        for bx0, by0, bx1, by1 in [(x0, y0, x1, y1)] if camera.wide else _strips(a, (x0, y0, x1, y1)):
            w = a[by0:by1, bx0:bx1].astype(np.float32) / 255.0
            parts.append(((bx0, by0, bx1, by1), np.ascontiguousarray(w), np.ascontiguousarray(1.0 - w)))
    return rgb, a, parts


def _strips(a: np.ndarray, box: Box, n: int = 8) -> list[Box]:
    """``box`` cut into ``n`` bands of rows, each narrowed to the columns where ``a`` is not zero;
    bands with nothing in them left out. Blending where the weight is zero changes nothing, so the
    strips restore the same pixels as the box."""
    x0, y0, x1, y1 = box
    out = []
    step = max(1, -(-(y1 - y0) // n))
    for r0 in range(y0, y1, step):
        r1 = min(y1, r0 + step)
        cols = np.nonzero(a[r0:r1, x0:x1].max(axis=0))[0]
        if cols.size:
            out.append((x0 + int(cols[0]), r0, x0 + int(cols[-1]) + 1, r1))
    return out


def _draw_mic(rgb: np.ndarray, a: np.ndarray, h: int, accent: RGB, u: float, camera: Camera) -> Box:
    """Host ``h``'s mic on its boom, tilted towards the mouth, into ``rgb`` and ``a`` through ``camera``;
    returns its box, clipped to the canvas."""
    H, W = a.shape[:2]
    d = 1.0 if h == 0 else -1.0
    hxp = HOST_X[h] * W
    mx, my = hxp + d * 0.118 * H, 0.585 * H  # mic capsule centre
    p0 = (hxp + d * 0.255 * H, DESK_Y * H)
    p1 = (hxp + d * 0.225 * H, 0.60 * H)
    p2 = (mx + d * 0.016 * H, my + 0.039 * H)  # the mic stem
    c0, c1, c2 = ((camera.x(p[0]) * F, camera.y(p[1]) * F) for p in (p0, p1, p2))
    zu = u * camera.zoom
    for layer, c in ((rgb, (48, 50, 60)), (a, 255)):
        cv2.line(layer, (int(c0[0]), int(c0[1])), (int(c1[0]), int(c1[1])), c, max(1, int(7 * zu)), AA, SHIFT)
        cv2.line(layer, (int(c1[0]), int(c1[1])), (int(c2[0]), int(c2[1])), c, max(1, int(6 * zu)), AA, SHIFT)
        cv2.circle(layer, (int(c1[0]), int(c1[1])), int(8 * zu * F), c, -1, AA, SHIFT)
    xf = Xf(camera.x(mx), camera.y(my), H * camera.zoom, math.radians(-d * 22.0))
    _draw_capsule(rgb, xf, accent)
    # the mask: body, accent band and mount
    xf.poly(a, rounded_box(-0.021, -0.056, 0.021, 0.03, 0.02), 255)
    xf.poly(a, rounded_box(-0.0225, -0.006, 0.0225, 0.003, 0.002), 255)
    xf.poly(a, rounded_box(-0.012, 0.03, 0.012, 0.042, 0.003), 255)
    x0 = int(camera.x(min(mx, p0[0], p1[0]) - 0.06 * H))
    x1 = int(camera.x(max(mx, p0[0], p1[0]) + 0.06 * H))
    y0 = int(camera.y(my - 0.08 * H))
    y1 = int(camera.y(DESK_Y * H)) + 1
    return max(0, x0), max(0, y0), min(W, x1), min(H, y1)


def _draw_capsule(rgb: np.ndarray, xf: Xf, accent: RGB) -> None:
    """The mic capsule in its local frame: body, grille head with a glint, accent band, mount."""
    xf.poly(rgb, rounded_box(-0.021, -0.056, 0.021, 0.03, 0.02), (40, 42, 52))
    xf.poly(rgb, rounded_box(-0.019, -0.054, 0.019, -0.008, 0.018), (96, 100, 116))
    for j in range(5):
        v = -0.046 + j * 0.0085
        xf.line(rgb, [(-0.017, v), (0.017, v)], (70, 73, 88), 0.0022)
    xf.line(rgb, [(0.0, -0.052), (0.0, -0.01)], (70, 73, 88), 0.0022)
    xf.ell(rgb, -0.009, -0.04, 0.004, 0.01, (150, 154, 170))  # glint
    xf.poly(rgb, rounded_box(-0.0225, -0.006, 0.0225, 0.003, 0.002), accent)
    xf.poly(rgb, rounded_box(-0.012, 0.03, 0.012, 0.042, 0.003), (60, 62, 74))


def composite_mics(img: np.ndarray, mics: MicLayers, tight: bool = False) -> np.ndarray:
    """``img`` with the microphones alpha-blended over it (a new array). ``tight`` blends only the box
    around them: the same picture, less work where they are small on a large canvas."""
    rgb, a, _ = mics
    if tight:
        out = img.copy()
        rows, cols = np.flatnonzero(a.any(axis=1)), np.flatnonzero(a.any(axis=0))
        if rows.size:
            ys, xs = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
            out[ys, xs] = composite_mics(img[ys, xs], (rgb[ys, xs], a[ys, xs], []))
        return out
    af = a.astype(np.float32)[..., None] / 255.0
    return (img.astype(np.float32) * (1 - af) + rgb.astype(np.float32) * af + 0.5).astype(np.uint8)


def restore_occluders(img: np.ndarray, base: np.ndarray, quality: Quality, mics: MicLayers,
                      camera: Camera = WIDE) -> None:
    """Put back what hides the hosts: ``base``'s rows below the desk, then mics and forearms by alpha;
    ``mics`` and ``base`` are seen through ``camera``."""
    H = img.shape[0]
    dy = max(0, math.ceil(camera.y(DESK_Y * H)))
    for x0, _, x1, y1 in shot_rois(quality, camera):
        img[dy:y1, x0:x1] = base[dy:y1, x0:x1]
    for (x0, y0, x1, y1), w, iw in mics[2]:
        d = img[y0:y1, x0:x1]
        s = base[y0:y1, x0:x1]
        d[:] = cv2.blendLinear(s, d, w, iw)
