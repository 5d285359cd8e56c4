"""The portrait look's frame: both hosts' portraits in the cartoon look's studio.

The studio, name plates, title banner, speaker ring, caption box and captions are the
cartoon look's (avatar2d ``Backdrops`` and ``Captions``). Each portrait stands on the desk
in a frame where the cartoon host sits: the speaker's framed in its accent colour, the
listener's dimmed. A listener's picture sways slowly inside its frame (idle head motion),
and a new face (the speaker's jaw or repainted mouth) is blended into the portrait
through a feathered mask of the face's lower half, so no seam shows around it.

A close-up is the same scene through a closer camera (avatar2d camera.py) centred on
one host's face: the portrait's frame is placed and sized through the camera and its
picture scaled from the portrait image to that size (not enlarged from the two-shot's
smaller picture), with the same sway, blinks and face as in the two-shot.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from models.protocols import CLOCK_RATE, Quality, Shot
from models.video.avatar2d.backdrops import Backdrops
from models.video.avatar2d.camera import WIDE, Camera, close_up
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
#: A close-up makes the face box about this fraction of the frame height, the camera's zoom
#: kept within CLOSE_UP_ZOOMS whatever the portrait's proportions.
CLOSE_UP_FACE = 0.5
CLOSE_UP_ZOOMS = (1.5, 3.0)

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
    #: How the portrait is resized where it is enlarged: the two-shot's area averaging, or a
    #: close-up's sharper cubic.
    enlarge: int = cv2.INTER_AREA


def frame_of(quality: Quality, host: int, image_shape: tuple[int, ...], camera: Camera = WIDE) -> Frame:
    """The frame of ``host``'s portrait (an image of ``image_shape``) on ``quality``'s canvas, through
    ``camera`` (a close-up's frame may reach past the canvas)."""
    H, W = canvas_size(quality)
    h = int(H * (DESK_Y - FRAME_TOP))
    w = min(int(image_shape[1] * h / image_shape[0]), int(W * FRAME_MAX_W))
    x = int(HOST_X[host] * W - w / 2)
    y = int(H * FRAME_TOP)
    if not camera.wide:
        x, y, w, h = round(camera.x(x)), round(camera.y(y)), round(w * camera.zoom), round(h * camera.zoom)
    zw, zh = round(w * ZOOM), round(h * ZOOM)
    return Frame(x, y, w, h, zw / image_shape[1], zh / image_shape[0], (zw - w) // 2, (zh - h) // 2,
                 cv2.INTER_AREA if camera.wide else cv2.INTER_CUBIC)


def on_canvas(f: Frame, width: int, height: int) -> bool:
    """Whether any of frame ``f`` shows on a ``width`` x ``height`` canvas."""
    return f.x < width and f.y < height and f.x + f.w > 0 and f.y + f.h > 0


def resized(image: np.ndarray, size: tuple[int, int], enlarge: int) -> np.ndarray:
    """``image`` at ``size`` (width, height): area-averaged where it shrinks, ``enlarge`` where it grows."""
    grows = size[0] > image.shape[1] or size[1] > image.shape[0]
    return cv2.resize(image, size, interpolation=enlarge if grows else cv2.INTER_AREA)


def paste(img: np.ndarray, picture: np.ndarray, x: int, y: int) -> None:
    """``picture`` copied onto ``img`` with its top left at (x, y), clipped to ``img``."""
    H, W = img.shape[:2]
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(W, x + picture.shape[1]), min(H, y + picture.shape[0])
    if x1 > x0 and y1 > y0:
        img[y0:y1, x0:x1] = picture[y0 - y:y1 - y, x0 - x:x1 - x]


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

    def frame(self, quality: Quality, host: int, camera: Camera = WIDE) -> Frame:
        return frame_of(quality, host, self.portraits[host].image.shape, camera)

    def in_frame(self, quality: Quality, host: int, camera: Camera) -> bool:
        """Whether any of ``host``'s portrait shows through ``camera``."""
        H, W = canvas_size(quality)
        return on_canvas(self.frame(quality, host, camera), W, H)

    def camera(self, quality: Quality, shot: Shot) -> Camera:
        """The camera of ``shot``: the two-shot's, or a close-up centred on ``shot.host``'s face box,
        zoomed so the box is about ``CLOSE_UP_FACE`` of the frame height."""
        if shot.kind != "close_up":
            return WIDE
        host = 1 if shot.host == 1 else 0
        f = self.frame(quality, host)
        x, y, w, h = self._scaled_box(host, f)
        zoom = min(max(CLOSE_UP_FACE * canvas_size(quality)[0] / max(1, h), CLOSE_UP_ZOOMS[0]), CLOSE_UP_ZOOMS[1])
        return close_up(quality, f.x - f.margin_x + x + w / 2, f.y - f.margin_y + y + h / 2, zoom)

    def mouth_box(self, quality: Quality, host: int, camera: Camera = WIDE) -> Box:
        """(x0, y0, x1, y1) in output pixels around the lower half of a host's face, where its mouth
        moves, through ``camera`` (clipped to the frame)."""
        f = self.frame(quality, host, camera)
        x, y, w, h = self.portraits[host].box
        H = canvas_size(quality)[0]
        k = quality.height / H
        x0 = f.x - f.margin_x + x * f.scale_x
        y0 = f.y - f.margin_y + (y + h / 2) * f.scale_y
        x1, y1 = x0 + w * f.scale_x, y0 + h / 2 * f.scale_y
        return (max(0, int(x0 * k)), max(0, int(y0 * k)), min(quality.width, math.ceil(x1 * k)),
                min(quality.height, math.ceil(y1 * k)))

    def compose(self, base: np.ndarray, quality: Quality, clock: int, speaker: int | None,
                face: np.ndarray | None = None, camera: Camera = WIDE) -> np.ndarray:
        """A new frame: ``base`` (a Backdrops base through ``camera``) with the portraits in ``camera``'s
        frame at episode time ``clock``; ``face`` (the speaker's face crop at its box size) replaces the
        speaker's face."""
        img = base.copy()
        u = img.shape[0] / 1000.0 * camera.zoom
        for host in (0, 1):
            if not self.in_frame(quality, host, camera):
                continue
            f = self.frame(quality, host, camera)
            picture = self._picture(quality, host, f, dim=speaker is not None and host != speaker)
            if host == speaker and face is not None:
                picture = self._with_face(picture, host, f, face)
            picture = close_eyes(picture, self._scaled_box(host, f), blink(clock, host))
            dx, dy = (0, 0) if host == speaker else sway(clock, host, f)
            left, top = f.margin_x + dx, f.margin_y + dy
            paste(img, picture[top:top + f.h, left:left + f.w], f.x, f.y)
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
            scaled = resized(image, size, f.enlarge)
            return (scaled.astype(np.float32) * LISTENER_DIM).round().astype(np.uint8) if dim else scaled
        return self.backdrops.layers.get(("portrait", host, f.w, f.h, f.enlarge, dim), make)

    def _mask(self, w: int, h: int) -> np.ndarray:
        """The feathered lower-half mask at a face box's scaled size, (h, w, 1) float32."""
        return self.backdrops.layers.get(
            ("mouth mask", w, h),
            lambda: cv2.resize(mouth_mask(max(w, h)), (w, h), interpolation=cv2.INTER_LINEAR)[..., None])

    def _with_face(self, picture: np.ndarray, host: int, f: Frame, face: np.ndarray) -> np.ndarray:
        """``picture`` with ``face`` blended over its face box through a feathered lower-half mask."""
        x, y, w, h = self._scaled_box(host, f)
        w, h = min(w, picture.shape[1] - x), min(h, picture.shape[0] - y)
        scaled = resized(face, (w, h), f.enlarge)
        mask = self._mask(w, h)
        out = picture.copy()
        region = out[y:y + h, x:x + w].astype(np.float32)
        out[y:y + h, x:x + w] = (mask * scaled + (1.0 - mask) * region).round().astype(np.uint8)
        return out
