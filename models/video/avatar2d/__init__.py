"""Audio-driven 2D podcast-studio animator (OpenCV vector drawing, CPU only).

One module per job: ``primitives`` (colours, shapes, compositing), ``text``
(fonts and text runs), ``layout`` (where things sit), ``motion`` (poses over
time), ``camera`` (what a shot shows), ``hosts`` (drawing a host), ``studio``
(the backdrop and its disk cache), ``occluders`` (what stands in front of the
hosts), ``captions``, ``stage`` (the static picture of an episode), ``overlay``
(banner and captions over a close-up), ``cards`` (the title card), ``cache`` and
``segment`` (frame bookkeeping), and ``animator`` (``Avatar2D``, composing them).
"""
from models.video.avatar2d.animator import Avatar2D
from models.video.avatar2d.layout import (
    CAP_X0,
    CAP_X1,
    CAP_Y0,
    CAP_Y1,
    DESK_Y,
    HEAD_Y,
    HOST_X,
    MOUTH_DY,
    mouth_box,
)

__all__ = ["CAP_X0", "CAP_X1", "CAP_Y0", "CAP_Y1", "DESK_Y", "HEAD_Y", "HOST_X", "MOUTH_DY", "Avatar2D", "mouth_box"]
