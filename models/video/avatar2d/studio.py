"""The studio behind the hosts (wall, lights, shelves, desk, mugs) and its disk cache.

The studio depends only on the look (colours, host styles), the canvas size and
who is speaking (the spotlights), never on the episode, so it is built once per
(look, tier, state) and kept on disk across processes and runs. Building it is
the slowest step of drawing a segment, and the first segment of an episode must
not wait for it.
"""
from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from models.protocols import Quality
from models.video.avatar2d.hosts import HostStyle
from models.video.avatar2d.layout import DESK_Y, HEAD_Y, HOST_X, canvas_key, canvas_size
from models.video.avatar2d.primitives import AA, RGB, SHIFT, F, mix, mul, radial, rrect

#: Where studios are kept across processes; "" disables the disk cache.
STUDIO_CACHE_DIR = os.environ.get("STREAMWISE_STUDIO_CACHE", str(Path.home() / ".cache" / "streamwise" / "studio"))

#: Host state of a picture: "idle" (nobody speaks) or the speaking host, 0 or 1.
State = str | int


def _code_digest() -> str:
    """Digest of every module of this package: a change to any drawing code invalidates stored studios."""
    h = hashlib.sha1()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


_CODE_DIGEST = _code_digest()


def stored_studio(cache_dir: str, look: str, build: Callable[[], np.ndarray]) -> np.ndarray:
    """The studio described by ``look`` from the disk cache, or ``build()`` and then stored (atomically).

    ``look`` must name everything the picture depends on besides the code. A
    missing, unreadable or unwritable cache only costs a rebuild.
    """
    if not cache_dir:
        return build()
    path = Path(cache_dir) / f"{_CODE_DIGEST}-{hashlib.sha1(look.encode()).hexdigest()[:16]}.npy"
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        pass
    img = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".studio-", suffix=".npy", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.save(f, img, allow_pickle=False)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only or full disk only costs the rebuild next time
    return img


def studio_look(bg_top: RGB, bg_bottom: RGB, styles: Sequence[HostStyle], quality: Quality, state: State) -> str:
    """The disk-cache description of one studio picture."""
    return repr((bg_top, bg_bottom, styles, canvas_key(quality), state))


def make_studio(quality: Quality, state: State, bg_top: RGB, bg_bottom: RGB, styles: Sequence[HostStyle]) -> np.ndarray:
    """The studio at ``quality``'s canvas size, lit for ``state`` ("idle", 0 or 1)."""
    H, W = canvas_size(quality)
    u = H / 1000.0
    img = _backdrop(H, W, state, bg_top, bg_bottom, styles)
    img = _logo_wall(img, u, styles)
    _draw_plant_shelf(img, 0.055 * W, 0.47 * H, u)
    _draw_lamp_shelf(img, W - 0.055 * W, 0.47 * H, u)
    img = _host_shadows(img, u)
    img = _desk(img, u, styles)
    _draw_mugs(img, u, styles)
    return img


def _backdrop(H: int, W: int, state: State, bg_top: RGB, bg_bottom: RGB, styles: Sequence[HostStyle]) -> np.ndarray:
    """Wall gradient, a spotlight behind each host (brighter on the speaker), centre glow and vignette."""
    top = np.array(bg_top, np.float32)
    bot = np.array(bg_bottom, np.float32)
    t = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    img = (top * (1 - t) + bot * t) * np.ones((1, W, 1), np.float32)
    for h in (0, 1):
        if state == "idle":
            inten = 0.38
        else:
            inten = 0.62 if h == state else 0.16
        g = radial(H, W, HOST_X[h] * W, HEAD_Y * H + 0.02 * H, 0.40 * H, 0.40 * H, 1.6)[..., None]
        acc = np.array(styles[h].accent, np.float32)
        img = img + g * inten * (acc * 0.55 - img * 0.25)
    g = radial(H, W, 0.5 * W, 0.30 * H, 0.45 * W, 0.55 * H, 2.0)[..., None]
    img = img + g * 22.0
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    v = ((xx / W - 0.5) ** 2 * 1.2 + (yy / H - 0.45) ** 2) * 1.25
    img = img * np.clip(1.0 - v, 0.55, 1.0)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def _logo_wall(img: np.ndarray, u: float, styles: Sequence[HostStyle]) -> np.ndarray:
    """The slat wall between the hosts with the show's neon ring and waveform logo."""
    H, W = img.shape[:2]
    x0, x1 = 0.435 * W, 0.565 * W
    y0, y1 = 0.13 * H, DESK_Y * H
    panel = img.copy()
    rrect(panel, x0, y0, x1, y1 + 10 * u, 14 * u, (70, 50, 44))
    nsl = 9
    for i in range(nsl):
        sx0 = x0 + (x1 - x0) * (i + 0.18) / nsl
        sx1 = x0 + (x1 - x0) * (i + 0.82) / nsl
        rrect(panel, sx0, y0 + 8 * u, sx1, y1, 5 * u, (112, 80, 60) if i % 2 == 0 else (104, 74, 56))
    cv2.addWeighted(panel, 0.85, img, 0.15, 0, dst=img)
    cx, cy, r = 0.5 * W, 0.34 * H, 0.062 * H
    glow = np.zeros_like(img)
    neon = mix(styles[0].accent, styles[1].accent, 0.5)
    cv2.circle(glow, (int(cx * F), int(cy * F)), int(r * F), neon, max(1, int(9 * u)), AA, SHIFT)
    glow = cv2.GaussianBlur(glow, (0, 0), max(1.0, 14 * u))
    img = cv2.add(img, glow)
    cv2.circle(img, (int(cx * F), int(cy * F)), int(r * F), mix(neon, (255, 255, 255), 0.55), max(1, int(4 * u)), AA, SHIFT)
    bars = [0.35, 0.7, 1.0, 0.55, 0.85, 0.4, 0.65]
    bw = r * 0.13
    for i, b in enumerate(bars):
        bx = cx + (i - (len(bars) - 1) / 2) * bw * 1.75
        hh = r * 0.95 * b
        col = mix(styles[0].accent, styles[1].accent, i / (len(bars) - 1))
        rrect(img, bx - bw / 2, cy - hh / 2, bx + bw / 2, cy + hh / 2, bw / 2, mix(col, (255, 255, 255), 0.25))
    return img


def _draw_books(img: np.ndarray, bx: float, y: float, u: float, books: Sequence[tuple[float, float, RGB]]) -> None:
    """Books (width, height in frame heights, colour) standing side by side on a shelf at ``y`` from ``bx``."""
    H = img.shape[0]
    for bw, bh, col in books:
        rrect(img, bx, y - bh * H, bx + bw * H, y, 2 * u, col)
        bx += (bw + 0.003) * H


def _draw_plant_shelf(img: np.ndarray, x: float, y: float, u: float) -> None:
    """Left wall shelf at (x, y): a potted plant and three books."""
    H = img.shape[0]
    w = 0.12 * H
    xs = x - 0.02 * H
    rrect(img, xs - 0.02 * H, y, xs + w + 0.02 * H, y + 0.012 * H, 3 * u, (120, 88, 66))
    px = xs + 0.05 * H
    leaf = (72, 150, 104)
    leaf2 = (52, 122, 86)
    for ang, ln, col in ((-60, 0.085, leaf2), (-100, 0.1, leaf), (-125, 0.09, leaf2), (-30, 0.07, leaf), (-150, 0.065, leaf),
                         (-80, 0.11, leaf2)):
        a = math.radians(ang)
        cx_ = px + math.cos(a) * ln * H * 0.5
        cy_ = y - 0.045 * H + math.sin(a) * ln * H * 0.5
        cv2.ellipse(img, (int(cx_ * F), int(cy_ * F)), (int(ln * H * 0.5 * F), int(0.016 * H * F)), ang, 0, 360, col, -1, AA, SHIFT)
    rrect(img, px - 0.035 * H, y - 0.05 * H, px + 0.035 * H, y, 5 * u, (214, 120, 92))
    _draw_books(img, xs + 0.1 * H, y, u, ((0.016, 0.07, (88, 110, 180)), (0.014, 0.06, (230, 190, 90)),
                                          (0.018, 0.075, (200, 96, 90))))


def _draw_lamp_shelf(img: np.ndarray, x: float, y: float, u: float) -> None:
    """Right wall shelf ending at x, at height y: four books and a small glowing lamp."""
    H = img.shape[0]
    w = 0.12 * H
    xs = x - w
    rrect(img, xs - 0.02 * H, y, xs + w + 0.02 * H, y + 0.012 * H, 3 * u, (120, 88, 66))
    _draw_books(img, xs, y, u, ((0.016, 0.072, (210, 110, 90)), (0.013, 0.06, (96, 170, 160)),
                                (0.017, 0.08, (240, 200, 120)), (0.014, 0.066, (120, 120, 200))))
    lx = xs + 0.1 * H
    glow = np.zeros_like(img)
    cv2.circle(glow, (int(lx), int(y - 0.075 * H)), int(0.05 * H), (255, 200, 120), -1, AA)
    glow = cv2.GaussianBlur(glow, (0, 0), max(1.0, 18 * u))
    img[:] = cv2.add(img, (glow * 0.45).astype(np.uint8))
    cv2.line(img, (int(lx), int(y)), (int(lx), int(y - 0.06 * H)), (60, 56, 64), max(1, int(4 * u)), AA)
    cv2.ellipse(img, (int(lx * F), int((y - 0.068 * H) * F)), (int(0.03 * H * F), int(0.022 * H * F)), 0, 180, 360,
                (255, 214, 150), -1, AA, SHIFT)
    cv2.rectangle(img, (int(lx - 0.03 * H), int(y - 0.069 * H)), (int(lx + 0.03 * H), int(y - 0.066 * H)), (240, 190, 120), -1)


def _host_shadows(img: np.ndarray, u: float) -> np.ndarray:
    """Soft shadows of the hosts on the wall."""
    H, W = img.shape[:2]
    sh = np.zeros((H, W), np.float32)
    for h in (0, 1):
        cv2.ellipse(sh, (int(HOST_X[h] * W + 0.02 * H), int(0.62 * H)), (int(0.25 * H), int(0.2 * H)), 0, 0, 360, 1.0, -1, AA)
        cv2.ellipse(sh, (int(HOST_X[h] * W + 0.015 * H), int(0.41 * H)), (int(0.12 * H), int(0.14 * H)), 0, 0, 360, 1.0, -1, AA)
    sh = cv2.GaussianBlur(sh, (0, 0), 18 * u)
    return (img.astype(np.float32) * (1.0 - 0.32 * sh[..., None])).astype(np.uint8)


def _desk(img: np.ndarray, u: float, styles: Sequence[HostStyle]) -> np.ndarray:
    """The desk top, its dark front and the LED strip along its edge in the hosts' accents."""
    H, W = img.shape[:2]
    dy = DESK_Y * H
    rrect(img, -20 * u, dy, W + 20 * u, dy + 0.05 * H, 6 * u, (150, 108, 78))
    img[int(dy + 0.045 * H):] = (40, 34, 52)
    d2 = img[int(dy + 0.045 * H):]
    tt = np.linspace(0, 1, d2.shape[0], dtype=np.float32)[:, None, None]
    d2[:] = (np.array((50, 42, 64), np.float32) * (1 - tt) + np.array((26, 22, 36), np.float32) * tt).astype(np.uint8)
    cv2.rectangle(img, (0, int(dy)), (W, int(dy + 3 * u)), (190, 146, 110), -1)
    ly = int(dy + 0.05 * H)
    led = np.zeros_like(img)
    for i in range(64):
        xa, xb = W * i / 64, W * (i + 1) / 64
        col = mix(styles[0].accent, styles[1].accent, (i + 0.5) / 64)
        cv2.rectangle(led, (int(xa), ly), (int(xb) + 1, ly + max(1, int(3 * u))), col, -1)
    img = cv2.add(img, cv2.GaussianBlur(led, (0, 0), max(1.0, 5 * u)))
    return cv2.add(img, (led * 0.8).astype(np.uint8))


def _draw_mugs(img: np.ndarray, u: float, styles: Sequence[HostStyle]) -> None:
    """A mug in each host's accent colour on the desk, beside the host."""
    H, W = img.shape[:2]
    dy = DESK_Y * H
    for h, mxf in ((0, HOST_X[0] - 0.165), (1, HOST_X[1] + 0.165)):
        mx = mxf * W
        mcol = styles[h].accent
        cv2.ellipse(img, (int(mx), int(dy + 0.012 * H)), (int(0.032 * H), int(0.008 * H)), 0, 0, 360, (60, 44, 36), -1, AA)
        rrect(img, mx - 0.024 * H, dy - 0.062 * H, mx + 0.024 * H, dy + 0.01 * H, 6 * u, mcol)
        cv2.ellipse(img, (int((mx + (0.03 if h == 0 else -0.03) * H) * F), int((dy - 0.028 * H) * F)),
                    (int(0.014 * H * F), int(0.017 * H * F)), 0, 0, 360, mul(mcol, 0.8), max(1, int(5 * u)), AA, SHIFT)
        cv2.ellipse(img, (int(mx * F), int((dy - 0.062 * H) * F)), (int(0.024 * H * F), int(0.006 * H * F)), 0, 0, 360,
                    mul(mcol, 0.6), -1, AA, SHIFT)
