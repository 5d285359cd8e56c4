"""Where a portrait's face is: dlib's frontal-face detector, which is built into the dlib
package (a HOG detector, no model file to fetch), turned into the square the lip-sync
network repaints.

The detector's box runs from the brows to the lips; the network wants the whole face
with the chin well inside the crop's lower half, as MuseTalk's crops have it, so the
square is the box grown by ``GROW`` and moved down by ``DROP`` of its side.
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np

#: The square's side as a multiple of the detector's box side.
GROW = 1.35
#: How far the square's centre sits below the box's, as a fraction of the box side.
DROP = 0.08
#: Upsampling passes: one finds faces down to about 40 px across.
UPSAMPLE = 1
#: The detector's least score taken as a face: clear frontal faces score well above it,
#: drawings and chance patterns (a badge, a shadow) below.
MIN_SCORE = 0.4

Box = tuple[int, int, int, int]

_detector: Any = None
_lock = threading.Lock()


class DetectorMissing(RuntimeError):
    """The dlib package is not installed (it comes with the ``neural`` extra)."""


def _get_detector() -> Any:
    global _detector
    with _lock:
        if _detector is None:
            try:
                import dlib
            except ImportError as e:
                raise DetectorMissing("the face detector needs dlib: pip install -e '.[neural]'") from e
            _detector = dlib.get_frontal_face_detector()
        return _detector


def face_square(box: Box, width: int, height: int) -> Box:
    """The crop square (x, y, side, side) around a detected ``box``, kept inside the image."""
    x, y, w, h = box
    side = min(round(max(w, h) * GROW), width, height)
    cx, cy = x + w / 2, y + h / 2 + DROP * max(w, h)
    left = int(min(max(0, round(cx - side / 2)), width - side))
    top = int(min(max(0, round(cy - side / 2)), height - side))
    return left, top, side, side


def detect_face(rgb: np.ndarray) -> Box | None:
    """The crop square of the most certain face in an RGB uint8 image, or None when there is none.

    Raises ``DetectorMissing`` without dlib.
    """
    rects, scores, _ = _get_detector().run(np.ascontiguousarray(rgb), UPSAMPLE, MIN_SCORE)
    if not rects:
        return None
    best = max(range(len(rects)), key=lambda i: scores[i])
    r = rects[best]
    h, w = rgb.shape[:2]
    left, top = max(0, r.left()), max(0, r.top())
    right, bottom = min(w, r.right()), min(h, r.bottom())
    return face_square((left, top, right - left, bottom - top), w, h)
