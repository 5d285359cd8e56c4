"""Arithmetic of the one media clock.

The episode timeline is counted in audio samples at 48 kHz; video frame n of a
segment at f frames per second sits at ``start + n * 48000 / f``. Segments are
padded to a grid that every tier's frame period and the 20 ms audio packet divide,
so each segment holds a whole number of frames at any tier and of audio packets, and
a tier change never shifts audio against video: the A/V offset is zero by construction.
"""
from __future__ import annotations

from math import lcm

import numpy as np

from models.protocols import CLOCK_RATE

#: Samples in one audio packet (20 ms): viewers' audio moves in these steps.
AUDIO_PACKET = CLOCK_RATE // 50


def samples_per_frame(fps: int) -> int:
    if CLOCK_RATE % fps:
        raise ValueError(f"{fps} fps does not divide the {CLOCK_RATE} Hz clock; use 15, 25 or 30")
    return CLOCK_RATE // fps


def grid_for(fps_values: list[int]) -> int:
    """The smallest segment length unit that holds whole frames at every listed rate and
    whole audio packets."""
    return lcm(AUDIO_PACKET, *(samples_per_frame(f) for f in fps_values))


def pad_to_grid(n_samples: int, grid: int) -> int:
    return -(-n_samples // grid) * grid


def frame_count(n_samples: int, fps: int) -> int:
    return -(-n_samples // samples_per_frame(fps))


def frame_pts(start: int, n: int, fps: int) -> int:
    """Clock time (samples) of frame ``n`` of a segment starting at ``start``."""
    return start + n * samples_per_frame(fps)


def seconds(samples: int) -> float:
    return samples / CLOCK_RATE


def to_samples(seconds_: float) -> int:
    return round(seconds_ * CLOCK_RATE)


def fit_audio(pcm: np.ndarray, n_samples: int) -> np.ndarray:
    """``pcm`` padded with silence (or cut) to exactly ``n_samples``."""
    if len(pcm) >= n_samples:
        return pcm[:n_samples]
    return np.concatenate([pcm, np.zeros(n_samples - len(pcm), dtype=pcm.dtype)])
