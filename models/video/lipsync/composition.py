"""The portrait look's frame: both hosts' portraits in the cartoon look's studio.

The studio, name plates, title banner, speaker ring, caption box and captions are the
cartoon look's (avatar2d ``Backdrops`` and ``Captions``). Each portrait stands on the desk
in a frame where the cartoon host sits: the speaker's framed in its accent colour, the
listener's dimmed. A listener's picture sways slowly inside its frame (idle head motion),
and a new face (the speaker's jaw or repainted mouth) is blended into the portrait
through a feathered mask of the face's lower half, so no seam shows around it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from models.protocols import CLOCK_RATE, Quality
from models.video.avatar2d.backdrops import Backdrops
from models.video.avatar2d.layout import DESK_Y, HOST_X, canvas_size
from models.video.lipsync.generator import mouth_mask
from models.video.lipsync.portraits import Portrait

#: Top of a portrait's frame, as a fraction of the height (below the title banner).
FRAME_TOP = 0.125
#: The widest a frame may be, as a fraction of the width.
FRAME_MAX_W = 0.40
#: A portrait is drawn this much larger than its frame, so it can sway inside it.
ZOOM = 1.05
#: How far (fractions of the margin ZOOM leaves) and how slowly (seconds) a picture sways;
#: the speaker's holds still, its face moving only where the mouth and eyes do.
SWAY, SWAY_PERIODS = 0.6, (5.3, 3.1)
#: The listener's brightness.
LISTENER_DIM = 0.86
#: How long a blink's lids take to close and open again, and the band of the face box
#: where the eyes are (fractions of its height).
BLINK_S = 0.06
EYES = (0.28, 0.46)
BORDER = (58, 54, 80)

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Frame:
    """Where a host's portrait is drawn, in canvas pixels: its frame and the scaled picture."""

    x: int
    y: int
    w: int
    h: int
    scale_x: float  # portrait pixels to scaled-picture pixels
    scale_y: float
    margin_x: int  # the scaled picture's overhang on each side
    margin_y: int


def frame_of(quality: Quality, host: int, image_shape: tuple[int, ...]) -> Frame:
    """The frame of ``host``'s portrait (an image of ``image_shape``) on ``quality``'s canvas."""
    H, W = canvas_size(quality)
    h = int(H * (DESK_Y - FRAME_TOP))
    w = min(int(image_shape[1] * h / image_shape[0]), int(W * FRAME_MAX_W))
    x = int(HOST_X[host] * W - w / 2)
    zw, zh = round(w * ZOOM), round(h * ZOOM)
    return Frame(x, int(H * FRAME_TOP), w, h, zw / image_shape[1], zh / image_shape[0], (zw - w) // 2, (zh - h) // 2)


def blink(clock: int, host: int) -> float:
    """0..1: how closed a host's eyes are at episode time ``clock``; a short blink every few
    seconds, at times that differ per host and never line up across a segment boundary."""
    t = clock / CLOCK_RATE + host * 1.9
    period = 4.3 + 0.7 * host
    phase = (t % period) / BLINK_S
    return float(max(0.0, 1.0 - abs(phase - 1.0))) if phase < 2.0 else 0.0


def sway(clock: int, host: int, frame: Frame) -> tuple[int, int]:
    """The picture's offset inside its frame at episode time ``clock``, in whole pixels."""
    t = clock / CLOCK_RATE
    dx = frame.margin_x * SWAY * math.sin(2 * math.pi * t / SWAY_PERIODS[0] + host * 2.3)
    dy = frame.margin_y * SWAY * math.sin(2 * math.pi * t / SWAY_PERIODS[1] + host * 1.7)
    return round(dx), round(dy)


def close_eyes(image: np.ndarray, box: Box, amount: float) -> np.ndarray:
    """``image`` with the eye band of its face ``box`` drawn shut by ``amount`` (lids from above)."""
    x, y, w, h = box
    top, bottom = y + int(h * EYES[0]), y + int(h * EYES[1])
    lid = round((bottom - top) * amount)
    if amount <= 0.0 or lid <= 0:
        return image
    out = image.copy()
    skin = out[max(0, top - 2):top, x:x + w].mean(axis=0, keepdims=True) if top > 0 else out[top:top + 1, x:x + w]
    out[top:top + lid, x:x + w] = skin.astype(out.dtype)
    return out


class PortraitStage:
    """Composes portrait-look frames; thread-safe, and the same inputs give the same picture."""

    def __init__(self, portraits: list[Portrait], backdrops: Backdrops) -> None:
        self.portraits = portraits
        self.backdrops = backdrops

    def frame(self, quality: Quality, host: int) -> Frame:
        return frame_of(quality, host, self.portraits[host].image.shape)

    def mouth_box(self, quality: Quality, host: int) -> Box:
        """(x0, y0, x1, y1) in output pixels around the lower half of a host's face: where its mouth moves."""
        f = self.frame(quality, host)
        x, y, w, h = self.portraits[host].box
        H = canvas_size(quality)[0]
        k = quality.height / H
        x0 = f.x - f.margin_x + x * f.scale_x
        y0 = f.y - f.margin_y + (y + h / 2) * f.scale_y
        x1, y1 = x0 + w * f.scale_x, y0 + h / 2 * f.scale_y
        return int(x0 * k), int(y0 * k), math.ceil(x1 * k), math.ceil(y1 * k)

    def compose(self, base: np.ndarray, quality: Quality, clock: int, speaker: int | None,
                face: np.ndarray | None = None) -> np.ndarray:
        """A new frame: ``base`` (a Backdrops base) with both portraits at episode time ``clock``;
        ``face`` (the speaker's face crop at its box size) replaces the speaker's face."""
        img = base.copy()
        u = img.shape[0] / 1000.0
        for host in (0, 1):
            f = self.frame(quality, host)
            picture = self._picture(quality, host, f, dim=speaker is not None and host != speaker)
            if host == speaker and face is not None:
                picture = self._with_face(picture, host, f, face)
            picture = close_eyes(picture, self._scaled_box(host, f), blink(clock, host))
            dx, dy = (0, 0) if host == speaker else sway(clock, host, f)
            left, top = f.margin_x + dx, f.margin_y + dy
            img[f.y:f.y + f.h, f.x:f.x + f.w] = picture[top:top + f.h, left:left + f.w]
            colour = self.backdrops.styles[host].accent if host == speaker else BORDER
            thick = max(2, round((6 if host == speaker else 3) * u))
            cv2.rectangle(img, (f.x - thick, f.y - thick), (f.x + f.w + thick - 1, f.y + f.h - 1), colour, thick)
        return img

    def _scaled_box(self, host: int, f: Frame) -> Box:
        x, y, w, h = self.portraits[host].box
        return round(x * f.scale_x), round(y * f.scale_y), round(w * f.scale_x), round(h * f.scale_y)

    def _picture(self, quality: Quality, host: int, f: Frame, dim: bool) -> np.ndarray:
        """The host's portrait scaled to its frame plus the sway margin (dimmed for a listener);
        made once per size, not to be drawn on."""
        def make() -> np.ndarray:
            image = self.portraits[host].image
            size = (round(image.shape[1] * f.scale_x), round(image.shape[0] * f.scale_y))
            scaled = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            return (scaled.astype(np.float32) * LISTENER_DIM).round().astype(np.uint8) if dim else scaled
        return self.backdrops.layers.get(("portrait", host, f.w, f.h, dim), make)

    def _mask(self, w: int, h: int) -> np.ndarray:
        """The feathered lower-half mask at a face box's scaled size, (h, w, 1) float32."""
        return self.backdrops.layers.get(
            ("mouth mask", w, h),
            lambda: cv2.resize(mouth_mask(max(w, h)), (w, h), interpolation=cv2.INTER_LINEAR)[..., None])

    def _with_face(self, picture: np.ndarray, host: int, f: Frame, face: np.ndarray) -> np.ndarray:
        """``picture`` with ``face`` blended over its face box through a feathered lower-half mask."""
        x, y, w, h = self._scaled_box(host, f)
        w, h = min(w, picture.shape[1] - x), min(h, picture.shape[0] - y)
        scaled = cv2.resize(face, (w, h), interpolation=cv2.INTER_AREA)
        mask = self._mask(w, h)
        out = picture.copy()
        region = out[y:y + h, x:x + w].astype(np.float32)
        out[y:y + h, x:x + w] = (mask * scaled + (1.0 - mask) * region).round().astype(np.uint8)
        return out
