"""Where things sit in the studio, in fractions of the frame, and the canvas size of a tier.

Every position is normalised (fractions of the width or height), so every
quality tier shows the same picture; tiers differ only in pixel count.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from models.protocols import Quality

#: Head centres (fraction of width) for host 0 (left) and host 1 (right).
HOST_X = (0.285, 0.715)
#: Neutral head-centre height (fraction of height).
HEAD_Y = 0.405
#: Top of the desk (fraction of height): everything below is in front of the hosts.
DESK_Y = 0.742
#: Mouth centre below the head centre, in units of the frame height.
MOUTH_DY = 0.066
#: Speaker emphasis scale-up.
EMPH_SCALE = 0.035
#: Caption box (fractions of width / height).
CAP_X0, CAP_X1, CAP_Y0, CAP_Y1 = 0.10, 0.90, 0.848, 0.972
#: Caption font size, fraction of height.
CAP_FONT = 0.047
#: Seconds over which the picture moves from the previous speaker to the new one.
TRANSITION_S = 0.35

#: Cache key of a tier's canvas: (height, width, supersample).
CanvasKey = tuple[int, int, int]


def canvas_key(quality: Quality) -> CanvasKey:
    """What a static layer depends on in ``quality`` (the frame rate does not matter)."""
    return (quality.height, quality.width, max(1, int(quality.supersample)))


def canvas_size(quality: Quality) -> tuple[int, int]:
    """(height, width) of the internal canvas: the tier's size times its supersampling."""
    ss = max(1, int(quality.supersample))
    return quality.height * ss, quality.width * ss


def mouth_box(quality: Quality, host: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) in output pixels around ``host``'s mouth at its neutral position.

    The box has margin for head sway, nods and the speaker scale-up, and does
    not reach the other facial features (nose above, chin edge below).
    """
    w, h = quality.width, quality.height
    cx = HOST_X[host] * w
    # scale-up happens around the desk line: the head rises a little
    cy = HEAD_Y * h + MOUTH_DY * h
    hw, up, down = 0.052 * h, 0.024 * h, 0.044 * h
    x0, x1 = math.floor(cx - hw), math.ceil(cx + hw)
    y0, y1 = math.floor(cy - up), math.ceil(cy + down)
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def host_rois(quality: Quality) -> list[tuple[int, int, int, int]]:
    """Per host (x0, y0, x1, y1) in canvas pixels bounding everything a host may draw."""
    H, W = canvas_size(quality)
    out = []
    for h in (0, 1):
        cx = HOST_X[h] * W
        out.append((max(0, int(cx - 0.29 * H)), max(0, int(0.17 * H)), min(W, int(cx + 0.29 * H) + 1), min(H, int(0.96 * H))))
    return out


def out_shape(quality: Quality, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """(height, width) of the frames ``output_frame`` makes: ``size`` (width, height) or the tier's."""
    width, height = size or (quality.width, quality.height)
    return height, width


def output_frame(img: np.ndarray, quality: Quality, size: tuple[int, int] | None = None) -> np.ndarray:
    """A canvas at the tier's size, or straight at ``size`` (width, height): one resize at most."""
    width, height = size or (quality.width, quality.height)
    if img.shape[0] != height or img.shape[1] != width:
        interp = cv2.INTER_AREA if width < img.shape[1] else cv2.INTER_LINEAR
        img = cv2.resize(img, (width, height), interpolation=interp)
    return np.ascontiguousarray(img)
