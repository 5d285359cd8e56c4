"""The title card: shown before the first segment and as filler, with an animated equaliser.

Its static part (backdrop, title, host portraits and names) depends only on the
episode and the tier and is built once; each card frame adds the equaliser.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from models.protocols import Quality, SceneInfo
from models.video.avatar2d.captions import host_name
from models.video.avatar2d.hosts import HostStyle, draw_host
from models.video.avatar2d.layout import canvas_size
from models.video.avatar2d.motion import Pose
from models.video.avatar2d.primitives import (
    AA,
    RGB,
    SHIFT,
    F,
    blit_rgba,
    mix,
    mul,
    radial,
    rrect,
)
from models.video.avatar2d.text import Text


def make_title(scene: SceneInfo, quality: Quality, bg_top: RGB, bg_bottom: RGB, styles: Sequence[HostStyle],
               text: Text) -> np.ndarray:
    """The card without its equaliser at ``quality``'s canvas size."""
    H, W = canvas_size(quality)
    img = _card_backdrop(H, W, bg_top, bg_bottom, styles)
    lab = text.runs([("● ON AIR  ·  PODCAST", (255, 255, 255), True)], round(0.028 * H))
    pw, ph = lab.shape[1] + 0.05 * H, 0.05 * H
    rrect(img, W / 2 - pw / 2, 0.12 * H, W / 2 + pw / 2, 0.12 * H + ph, ph / 2, (226, 54, 74))
    blit_rgba(img, lab, int(W / 2 - lab.shape[1] / 2), int(0.12 * H + (ph - lab.shape[0]) / 2 + 0.002 * H))
    y = _draw_title(img, scene.title.strip() or "StreamWise", text)
    # accent underline
    rrect(img, W / 2 - 0.06 * H, y + 0.012 * H, W / 2 - 0.004 * H, y + 0.022 * H, 0.005 * H, styles[0].accent)
    rrect(img, W / 2 + 0.004 * H, y + 0.012 * H, W / 2 + 0.06 * H, y + 0.022 * H, 0.005 * H, styles[1].accent)
    _draw_host_row(img, scene, styles, text)
    return img


def _card_backdrop(H: int, W: int, bg_top: RGB, bg_bottom: RGB, styles: Sequence[HostStyle]) -> np.ndarray:
    """A darker studio gradient with accent glows in two corners and concentric rings."""
    u = H / 1000.0
    top = np.array(bg_top, np.float32) * 0.8
    bot = np.array(bg_bottom, np.float32) * 0.9
    t = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    img = (top * (1 - t) + bot * t) * np.ones((1, W, 1), np.float32)
    for h, (gx, gy) in enumerate(((0.18, 0.2), (0.85, 0.85))):
        g = radial(H, W, gx * W, gy * H, 0.6 * H, 0.6 * H, 1.8)[..., None]
        img = img + g * 0.5 * (np.array(styles[h].accent, np.float32) * 0.6 - img * 0.3)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for i, r in enumerate((0.30, 0.42, 0.56, 0.72)):
        cv2.circle(img, (int(W / 2 * F), int(0.44 * H * F)), int(r * H * F), mul(bg_bottom, 1.35 - 0.07 * i),
                   max(1, int(2 * u)), AA, SHIFT)
    return img


def _draw_title(img: np.ndarray, title: str, text: Text) -> float:
    """The title centred in at most three balanced lines, the font shrunk for long titles; returns its bottom."""
    H, W = img.shape[:2]
    maxw_em_px = 0.84 * W
    fsn = 0.085
    while True:
        fs = round(fsn * H)
        lines = wrap(text, title, maxw_em_px / (fsn * H), bold=True)
        if len(lines) <= 3 or fsn < 0.045:
            break
        fsn *= 0.88
    lines = lines[:3]
    imgs = [text.runs([(ln, (255, 255, 255), True)], fs) for ln in lines]
    lh = max(im.shape[0] for im in imgs)
    total = lh * len(imgs)
    y = 0.38 * H - total / 2
    for im in imgs:
        if im.shape[1] > 0.9 * W:
            im = cv2.resize(im, (int(0.9 * W), max(1, int(im.shape[0] * 0.9 * W / im.shape[1]))), interpolation=cv2.INTER_AREA)
        blit_rgba(img, im, int(W / 2 - im.shape[1] / 2), int(y))
        y += lh
    return y


def _draw_host_row(img: np.ndarray, scene: SceneInfo, styles: Sequence[HostStyle], text: Text) -> None:
    """The word "with", then each host's portrait medallion and name."""
    H, W = img.shape[:2]
    with_lab = text.runs([("with", (200, 200, 215), False)], round(0.032 * H))
    my = 0.715 * H
    blit_rgba(img, with_lab, int(W / 2 - with_lab.shape[1] / 2), int(my - with_lab.shape[0] / 2))
    for h in (0, 1):
        cx = W / 2 + (-1 if h == 0 else 1) * 0.22 * H
        r = 0.095 * H
        _draw_medallion(img, h, styles[h], cx, my - 0.02 * H, r)
        nm = text.runs([(host_name(scene, h), (255, 255, 255), True)], round(0.042 * H))
        blit_rgba(img, nm, int(cx - nm.shape[1] / 2), int(my + r - 0.005 * H))


def _draw_medallion(img: np.ndarray, h: int, st: HostStyle, cx: float, cy: float, r: float) -> None:
    """Host ``h``'s smiling head and shoulders in a round frame of radius ``r`` centred on (cx, cy)."""
    H = img.shape[0]
    size = int(2 * r + 4)
    tile = np.zeros((size, size, 3), np.uint8)
    tile[:] = mix(st.accent, (30, 28, 48), 0.55)
    k = r * 6.4
    side = 1 if h == 0 else -1
    pose = Pose(cx=size / 2, cy=size / 2 + 0.035 * k, k=k, roll=0.0, bx=size / 2, by=size / 2 + 0.035 * k,
                turn=0.15 * side, gaze_x=0.3 * side, gaze_y=0.0, eye_open=1.0, brow=0.3, smile=0.9, nod=0.0,
                mouth=(0.0, 0.55, 0.0, 0.0, 0.0), dim=1.0)
    draw_host(tile, st, pose)
    mask = np.zeros((size, size), np.uint8)
    cv2.circle(mask, (int(size / 2 * F), int(size / 2 * F)), int(r * F), 255, -1, AA, SHIFT)
    rgba = np.dstack([tile, mask])
    cv2.circle(img, (int(cx * F), int(cy * F)), int((r + 0.012 * H) * F), st.accent, -1, AA, SHIFT)
    blit_rgba(img, rgba, int(cx - size / 2), int(cy - size / 2))


def draw_equaliser(img: np.ndarray, seed: int, styles: Sequence[HostStyle], t_s: float) -> None:
    """The animated equaliser bars under the host names at card time ``t_s`` seconds."""
    H, W = img.shape[:2]
    n = 21
    bw = 0.0062 * H
    gap = 0.0048 * H
    total = n * bw + (n - 1) * gap
    x = W / 2 - total / 2
    yb = 0.925 * H
    for i in range(n):
        ph = seed * 0.37 + i * 0.61
        a = 0.5 + 0.5 * math.sin(t_s * 5.1 + ph) * math.sin(t_s * 1.7 + i * 0.33 + 1.1)
        hh = (0.012 + 0.038 * abs(a) * (1.0 - abs(i - n // 2) / (n * 0.75))) * H
        col = mix(styles[0].accent, styles[1].accent, i / (n - 1))
        rrect(img, x, yb - hh, x + bw, yb, bw / 2, col)
        x += bw + gap


def wrap(text: Text, s: str, width_em: float, bold: bool) -> list[str]:
    """Greedy wrap, then shrink the width while the line count stays the same (balanced lines)."""
    lines = _wrap_greedy(text, s, width_em, bold)
    if len(lines) > 1:
        lo, hi = 0.3 * width_em, width_em
        for _ in range(12):
            mid = (lo + hi) / 2
            if len(_wrap_greedy(text, s, mid, bold)) <= len(lines):
                hi = mid
            else:
                lo = mid
        lines = _wrap_greedy(text, s, hi, bold)
    return lines


def _wrap_greedy(text: Text, s: str, width_em: float, bold: bool) -> list[str]:
    words = s.split()
    lines: list[str] = []
    cur: list[str] = []
    for w in words:
        if cur and text.width_em(" ".join(cur + [w]), bold) > width_em:
            lines.append(" ".join(cur))
            cur = [w]
        else:
            cur.append(w)
    if cur:
        lines.append(" ".join(cur))
    return lines or [""]
