"""The figures a stage measurement yields, and the arithmetic that turns timings into them.

Contract: every figure is plain JSON (numbers, strings, lists, string-keyed dicts), so
that ``bench/render.py`` can write it as it is and ``stage_profiles`` can read it back
from a file or straight from memory with the same code. Key order is the order the
figures are built in: it is what a reader of the JSON sees first.

Media seconds are the denominator everywhere: the planner asks "how long does a second
of episode cost", never "how long did this run take".
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NotRequired, TypedDict

import numpy as np

#: (seconds of media, seconds of compute) of one segment through one stage.
Point = tuple[float, float]


class LineFit(TypedDict):
    """compute_s ~= fixed_s + per_media_s * media_s: what a segment of a given length costs."""

    fixed_s: float
    per_media_s: float


class StageFigures(TypedDict):
    """One stage over the whole episode. ``rtf`` is None when no media came out of it."""

    compute_s: float
    cpu_s: float
    media_s: float
    rtf: float | None
    cpu_per_media_s: float | None


class FittedFigures(StageFigures):
    """A stage timed segment by segment: ``fit`` is None with too few or too alike segments."""

    fit: LineFit | None
    segments: list[list[float]]


class ScriptDetails(TypedDict):
    """What the script writer did besides taking time: how far it got and why it stopped."""

    title_s: float | None
    first_line_s: float | None
    lines: int
    words: int
    word_budget: int
    n_segments: int
    end_reason: str
    tokens: int | None
    tokens_per_s: float | None
    retries: int | None


class ScriptFigures(StageFigures, ScriptDetails):
    """The script writer is timed as one stream, not per segment: it has no fit."""


class SpeechFigures(FittedFigures):
    n_segments: int


class TierShape(TypedDict):
    height: int
    width: int
    fps: int
    supersample: int


class VideoFigures(FittedFigures, TierShape):
    """Drawing plus the RGB->I420 conversion, the share of which says whether it is worth optimising."""

    frames: int
    frames_per_s: float | None
    i420_s: float
    i420_share: float | None


class EncodeFigures(FittedFigures, TierShape):
    frames: int
    frames_per_s: float | None
    bytes: int
    kbit_per_s: float | None


#: Per tier, worker count (as a string: JSON keys) -> how much faster than one worker.
ParallelFigures = dict[str, dict[str, float]]


class StageTable(TypedDict):
    """Every stage of one measurement; ``video`` and ``encode`` are keyed by tier, in ladder order."""

    script: ScriptFigures
    speech: SpeechFigures
    video: dict[str, VideoFigures]
    encode: dict[str, EncodeFigures]
    parallel: NotRequired[ParallelFigures]


class LoadFigures(TypedDict):
    """Loading an adapter versus its first, warming call: the server pays both before its first episode."""

    load_s: float
    warm_s: float


class MachineInfo(TypedDict):
    """What the figures were measured on; the load average says how noisy they may be."""

    nproc: int
    cpu_count: int | None
    cpu_model: str
    mem_total_gib: float | None
    loadavg_start: list[float]
    platform: str
    versions: dict[str, str]
    loadavg_end: NotRequired[list[float]]


class Measurement(TypedDict):
    """One run of the measuring code: what ``stage_profiles`` keeps of it as a profile."""

    created: str
    machine: MachineInfo
    stages: StageTable


class Timer:
    """Wall and process-CPU seconds of a block, summed over its uses.

    CPU time counts every thread of the process, so more CPU than wall seconds means the
    stage used more than one core: the planner must not count on those cores for others.
    """

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    @contextmanager
    def __call__(self) -> Iterator[None]:
        w, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall += time.perf_counter() - w
            self.cpu += time.process_time() - c


def fit_line(points: list[Point]) -> LineFit | None:
    """Least squares over segments; None where a line would be noise (under 3 points, or one length)."""
    if len(points) < 3:
        return None
    x = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    if np.ptp(x) < 1e-6:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    return {"fixed_s": round(float(intercept), 4), "per_media_s": round(float(slope), 4)}


def ratio(num: float, den: float, digits: int) -> float | None:
    """``num / den`` rounded, or None where nothing was measured (a zero denominator)."""
    return round(num / den, digits) if den > 0 else None


def stage_figures(wall: float, cpu: float, media: float) -> StageFigures:
    return {
        "compute_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "media_s": round(media, 3),
        "rtf": ratio(wall, media, 4),
        "cpu_per_media_s": ratio(cpu, media, 4),
    }


def fitted_figures(timer: Timer, media: float, points: list[Point]) -> FittedFigures:
    return {
        **stage_figures(timer.wall, timer.cpu, media),
        "fit": fit_line(points),
        "segments": [[round(m, 3), round(c, 4)] for m, c in points],
    }
