"""The camera of a shot: which part of the studio fills the frame, and how big.

The studio is laid out for the two-shot (layout.py); every other shot is the same
scene seen through a ``Camera`` that maps two-shot canvas pixels ``p`` to the shot's
canvas pixels ``(p - origin) * zoom``. Whatever belongs to the scene (hosts, furniture,
the studio) goes through the camera; what belongs to the broadcast (title banner,
caption box, captions) is drawn at the output size on top, so it reads the same in
every shot. The two-shot's camera is the identity, whose arithmetic is exact in
floating point: drawing through it gives the very pixels drawn without it.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from models.protocols import Quality, Shot
from models.video.avatar2d.layout import (
    HEAD_Y,
    HOST_X,
    canvas_size,
    host_rois,
    mouth_box,
)
from models.video.avatar2d.motion import Pose

Box = tuple[int, int, int, int]

#: How much larger a close-up shows the studio than the two-shot: a cartoon head is then
#: about half the frame's height, its mouth readable at the smallest tier.
CLOSE_UP_ZOOM = 2.0
#: Where a close-up puts its subject's head centre, as fractions of the frame (x, y):
#: centred, a little above the middle, so the hair clears the title banner and the
#: chin the caption box.
CLOSE_UP_AT = (0.5, 0.43)


@dataclass(frozen=True)
class Camera:
    """Two-shot canvas pixels to this shot's canvas pixels: ``(p - (x0, y0)) * zoom``.

    Frozen and hashable, so a camera is part of the cache key of the layers drawn through it.
    """

    x0: float = 0.0
    y0: float = 0.0
    zoom: float = 1.0

    @property
    def wide(self) -> bool:
        """The identity: the two-shot."""
        return self.x0 == 0.0 and self.y0 == 0.0 and self.zoom == 1.0

    def x(self, v: float) -> float:
        return (v - self.x0) * self.zoom

    def y(self, v: float) -> float:
        return (v - self.y0) * self.zoom

    def pose(self, p: Pose) -> Pose:
        """The pose ``p`` (placed in the two-shot) as this camera sees it: moved and scaled, nothing else."""
        if self.wide:
            return p
        return dataclasses.replace(p, cx=self.x(p.cx), cy=self.y(p.cy), bx=self.x(p.bx), by=self.y(p.by),
                                   k=p.k * self.zoom)

    def box(self, box: Box, width: int, height: int) -> Box:
        """A two-shot pixel box (x0, y0, x1, y1) as this camera sees it, grown to whole pixels and
        clipped to a ``width`` x ``height`` canvas; empty (x1 <= x0 or y1 <= y0) when out of frame."""
        if self.wide:
            return box
        x0, y0, x1, y1 = box
        return (min(width, max(0, math.floor(self.x(x0)))), min(height, max(0, math.floor(self.y(y0)))),
                max(0, min(width, math.ceil(self.x(x1)))), max(0, min(height, math.ceil(self.y(y1)))))

    def matrix(self) -> np.ndarray:
        """The 2x3 affine matrix of the mapping, for ``cv2.warpAffine``."""
        z = self.zoom
        return np.array([[z, 0.0, -self.x0 * z], [0.0, z, -self.y0 * z]], np.float64)


#: The two-shot's camera.
WIDE = Camera()


def close_up(quality: Quality, cx: float, cy: float, zoom: float = CLOSE_UP_ZOOM) -> Camera:
    """A camera ``zoom`` times closer, with the two-shot canvas point (cx, cy) at ``CLOSE_UP_AT``;
    kept inside the studio, so the frame never shows past its edges."""
    H, W = canvas_size(quality)
    x0 = cx - CLOSE_UP_AT[0] * W / zoom
    y0 = cy - CLOSE_UP_AT[1] * H / zoom
    return Camera(min(max(0.0, x0), W - W / zoom), min(max(0.0, y0), H - H / zoom), float(zoom))


def shot_camera(quality: Quality, shot: Shot) -> Camera:
    """The cartoon look's camera for ``shot``: the two-shot, or a close-up on ``shot.host``'s head."""
    if shot.kind != "close_up":
        return WIDE
    H, W = canvas_size(quality)
    h = 1 if shot.host == 1 else 0
    return close_up(quality, HOST_X[h] * W, HEAD_Y * H)


def shot_rois(quality: Quality, camera: Camera) -> list[Box]:
    """Per host, the canvas box that bounds everything it may draw, through ``camera``
    (an empty box for a host out of frame)."""
    H, W = canvas_size(quality)
    return [camera.box(r, W, H) for r in host_rois(quality)]


def in_frame(box: Box) -> bool:
    """Whether a box from ``shot_rois`` shows anything."""
    return box[2] > box[0] and box[3] > box[1]


def shot_mouth_box(quality: Quality, host: int, shot: Shot) -> Box:
    """``layout.mouth_box`` (output pixels) as ``shot``'s camera sees it: where to look for
    ``host``'s mouth in that shot's frames (empty when the host is out of frame)."""
    box = mouth_box(quality, host)
    camera = shot_camera(quality, shot)
    if camera.wide:
        return box
    H, W = canvas_size(quality)
    scale = W / quality.width  # canvas pixels per output pixel (the tier's supersampling)
    x0, y0, x1, y1 = camera.box(tuple(v * scale for v in box), W, H)  # type: ignore[arg-type]
    return math.floor(x0 / scale), math.floor(y0 / scale), math.ceil(x1 / scale), math.ceil(y1 / scale)
