"""Does a speaking host's mouth follow the audio? The check both looks' end-to-end tests use."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

RATE = 48_000
Box = tuple[int, int, int, int]


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0


def mouth_correlations(frames: np.ndarray, audio: np.ndarray, lines: list[dict], fps: int,
                       mouth_of: Callable[[dict], Box | None], min_frames: int = 20) -> list[float]:
    """Per transcript line long enough to measure: the correlation between how far the
    speaker's mouth region (``mouth_of(line)``: where it is in the line's shot) moved from
    its quietest frame and the audio's loudness. A reaction close-up, where the speaker is
    out of frame, is not measured."""
    spf = RATE // fps
    out = []
    for line in lines:
        box = mouth_of(line)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        first, last = int(line["start"]) // spf, min(int(line["end"]) // spf, len(frames))
        if last - first < min_frames:
            continue
        env = np.array([rms(audio[n * spf:(n + 1) * spf]) for n in range(first, last)])
        mouths = frames[first:last, y0:y1, x0:x1].astype(np.float32)
        reference = mouths[int(np.argmin(env))]  # the quietest moment: mouth nearly closed
        activity = np.abs(mouths - reference).mean(axis=(1, 2, 3))
        out.append(float(np.corrcoef(activity, env)[0, 1]))
    return out
