"""The static picture of one episode behind the hosts, for one host state and one camera.

Everything that does not move during a segment (studio, microphones, forearms,
name plates, title banner, speaker highlight, caption box) is composed once per
(tier, state, episode, camera) into a *base* picture; each frame is drawn on a copy
of it, so a frame costs only the hosts. Through a closer camera (camera.py) the studio
is the two-shot's picture enlarged and softened, like a background out of focus
behind a close subject, and the microphones and forearms are drawn at the camera's
scale; the banner and caption box are laid over the hosts then (overlay.py).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from models.protocols import SceneInfo
from models.video.avatar2d.camera import WIDE, Camera
from models.video.avatar2d.captions import draw_caption_box, host_name
from models.video.avatar2d.hosts import HostStyle, draw_arms
from models.video.avatar2d.layout import DESK_Y, HEAD_Y, HOST_X
from models.video.avatar2d.occluders import MicLayers, composite_mics
from models.video.avatar2d.primitives import (
    AA,
    SHIFT,
    F,
    blit_rgba,
    fit_width,
    mix,
    overlay,
    rrect,
)
from models.video.avatar2d.text import Text

#: How soft the studio is behind a close-up: the blur's sigma as a fraction of the frame height.
DEPTH_BLUR = 0.003


def make_base(studio: np.ndarray, mics: MicLayers | None, state: str | int, scene: SceneInfo, box: bool,
              styles: Sequence[HostStyle], text: Text) -> np.ndarray:
    """The picture without hosts for ``state`` ("idle", 0 or 1), with the caption box when ``box``;
    with the microphones and the cartoon hosts' forearms when ``mics`` are given."""
    H = studio.shape[0]
    u = H / 1000.0
    img = composite_mics(studio, mics) if mics is not None else studio.copy()
    if mics is not None:
        _draw_forearms(img, styles, state, WIDE)
    for h in (0, 1):
        _draw_name_plate(img, host_name(scene, h).upper(), h, styles[h].accent, state == h, text)
    draw_banner(img, scene.title, text)
    if state in (0, 1):
        img = _speaker_ring(img, styles[state].accent, state, u)
    if box:
        draw_caption_box(img, state, styles)
    return img


def studio_view(studio: np.ndarray, state: str | int, styles: Sequence[HostStyle], camera: Camera) -> np.ndarray:
    """The two-shot ``studio`` lit for ``state`` (with the speaker's ring) as ``camera`` sees it,
    softened so it reads as the background of a close subject, not as a blurry enlargement.

    Only the part the camera sees (and the reach of the blurs around it) is lit and blurred,
    before it is enlarged: the same picture as blurring the enlargement, for a fraction of the work.
    """
    H, W = studio.shape[:2]
    u = H / 1000.0
    sigma = max(0.5, DEPTH_BLUR * H)
    reach = math.ceil(4 * max(sigma, 8 * u)) + 2  # of the depth blur and of the ring's glow
    x0, y0 = max(0, math.floor(camera.x0) - reach), max(0, math.floor(camera.y0) - reach)
    x1 = min(W, math.ceil(camera.x0 + W / camera.zoom) + reach)
    y1 = min(H, math.ceil(camera.y0 + H / camera.zoom) + reach)
    img = studio[y0:y1, x0:x1]
    if state in (0, 1):
        img = _speaker_ring(img, styles[state].accent, state, u, origin=(x0, y0), frame=(H, W))
    img = cv2.GaussianBlur(img, (0, 0), sigma)
    seen = Camera(camera.x0 - x0, camera.y0 - y0, camera.zoom)
    return cv2.warpAffine(img, seen.matrix(), (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def make_view_base(view: np.ndarray, mics: MicLayers | None, state: str | int, styles: Sequence[HostStyle],
                   camera: Camera) -> np.ndarray:
    """The picture without hosts for a camera closer than the two-shot's, over ``studio_view``'s
    picture: the microphones and forearms when ``mics`` are given, seen through ``camera``. The title
    banner and caption box go over the hosts instead (overlay.py), and the name plates on the desk
    front are below a close-up's frame."""
    img = composite_mics(view, mics, tight=True) if mics is not None else view.copy()
    if mics is not None:
        _draw_forearms(img, styles, state, camera)
    return img


def _draw_forearms(img: np.ndarray, styles: Sequence[HostStyle], state: str | int, camera: Camera) -> None:
    """Both hosts' forearms and hands resting on the desk (restored over the hosts, see occluders),
    the listener's dimmed."""
    for h in (0, 1):
        dim = 0.95 if state == "idle" else (1.0 if state == h else 0.86)
        draw_arms(img, styles[h], h, dim, camera=camera)


def _draw_name_plate(img: np.ndarray, name: str, h: int, accent: tuple, active: bool, text: Text) -> None:
    """Host ``h``'s name on a pill on the desk front, in its accent colour (muted unless speaking)."""
    H, W = img.shape[:2]
    fs = max(7, round(0.024 * H))
    t = text.runs([(name, (255, 255, 255), True)], fs)
    pw = t.shape[1] + 0.032 * H
    ph = 0.034 * H
    cx = HOST_X[h] * W
    y0 = DESK_Y * H + 0.058 * H
    col = accent if active else mix(accent, (40, 36, 56), 0.45)
    rrect(img, cx - pw / 2, y0, cx + pw / 2, y0 + ph, ph / 2, col)
    blit_rgba(img, t, int(cx - t.shape[1] / 2), int(y0 + (ph - t.shape[0]) / 2 + 0.002 * H))


def _speaker_ring(img: np.ndarray, acc: tuple, state: int, u: float, origin: tuple[int, int] = (0, 0),
                  frame: tuple[int, int] | None = None) -> np.ndarray:
    """A glowing arc on the wall behind the speaker's head; ``img`` may be the part of a ``frame``
    (height, width) picture whose top left is at ``origin``."""
    H, W = frame or img.shape[:2]
    ring = np.zeros_like(img)
    cx, cy = HOST_X[state] * W - origin[0], HEAD_Y * H - 0.01 * H - origin[1]
    cv2.ellipse(ring, (int(cx * F), int(cy * F)), (int(0.185 * H * F), int(0.205 * H * F)), 0, 200, 340, acc,
                max(1, int(6 * u)), AA, SHIFT)
    img = cv2.add(img, cv2.GaussianBlur(ring, (0, 0), max(1.0, 8 * u)))
    return cv2.add(img, (ring * 0.7).astype(np.uint8))


def _banner_title(title: str, maxw: float, fs: int, text: Text) -> np.ndarray:
    """The title line at ``fs`` pixels, shortened word by word (with an ellipsis), then squeezed to ``maxw``."""
    t = text.runs([(title, (245, 245, 250), True)], fs)
    if t.shape[1] > maxw:
        words = title.split()
        while len(words) > 1:
            words = words[:-1]
            t = text.runs([(" ".join(words) + "…", (245, 245, 250), True)], fs)
            if t.shape[1] <= maxw:
                break
        t = fit_width(t, maxw)
    return t


def draw_banner(img: np.ndarray, title: str, text: Text) -> None:
    """The episode banner at the top: a LIVE pill and the title on a dark translucent pill."""
    H, W = img.shape[:2]
    fs = round(0.036 * H)
    t = _banner_title(title.strip() or "StreamWise", 0.62 * W, fs, text)
    live = text.runs([("LIVE", (255, 255, 255), True)], round(0.026 * H))
    ph = 0.058 * H
    live_w = live.shape[1] + 0.05 * H
    pw = t.shape[1] + live_w + 0.05 * H
    x0 = W / 2 - pw / 2
    y0 = 0.03 * H

    def draw(layer: np.ndarray) -> None:
        rrect(layer, x0, y0, x0 + pw, y0 + ph, ph / 2, (12, 12, 22))
    overlay(img, draw, 0.72)
    lx0 = x0 + 0.012 * H
    rrect(img, lx0, y0 + 0.011 * H, lx0 + live_w - 0.01 * H, y0 + ph - 0.011 * H, (ph - 0.022 * H) / 2, (226, 54, 74))
    cv2.circle(img, (int((lx0 + 0.016 * H) * F), int((y0 + ph / 2) * F)), int(0.0065 * H * F), (255, 255, 255), -1, AA, SHIFT)
    blit_rgba(img, live, int(lx0 + 0.028 * H), int(y0 + (ph - live.shape[0]) / 2 + 0.002 * H))
    blit_rgba(img, t, int(lx0 + live_w + 0.008 * H), int(y0 + (ph - t.shape[0]) / 2 + 0.002 * H))
