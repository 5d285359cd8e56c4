"""Pixel conversions shared by drawers, transports and the archive: one place for each.

Frames travel as I420 (``(h * 3 // 2, w)`` uint8): what the encoders take, and half
the bytes of RGB.
"""
from __future__ import annotations

import cv2
import numpy as np


def rgb_to_i420(frame: np.ndarray) -> np.ndarray:
    """RGB to I420 with OpenCV: much faster than PyAV's reformat (see docs/design.md)."""
    return cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420)


def fit(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """A frame (RGB or a single plane) at ``size`` (width, height): area-averaged down, linear up."""
    if size is None or (frame.shape[1], frame.shape[0]) == tuple(size):
        return frame
    interp = cv2.INTER_AREA if size[0] < frame.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(frame, tuple(size), interpolation=interp)


def resize_i420(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale an I420 frame plane by plane (a tier change keeps the layout, only scaled)."""
    h = frame.shape[0] * 2 // 3
    w = frame.shape[1]
    if (w, h) == (width, height):
        return frame
    y = frame[:h]
    uv = frame[h:].reshape(2, h // 2, w // 2)
    y2 = fit(y, (width, height))
    u2 = fit(uv[0], (width // 2, height // 2))
    v2 = fit(uv[1], (width // 2, height // 2))
    return np.concatenate([y2, u2.reshape(-1, width), v2.reshape(-1, width)], axis=0)
