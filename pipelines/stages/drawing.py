"""What a drawing worker is asked and what it answers: the job types every drawer shares.

A leaf of the runtime: the pools, the local drawers and the Ray drawers all import
these, and none of them imports another to get them.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from models.protocols import Animator, Quality, SceneInfo, VisualSegment
from pipelines.playout import clock
from pipelines.playout.encoding import encode_vp8
from pipelines.playout.frames import FrameList
from pipelines.playout.pixels import fit, rgb_to_i420
from pipelines.segments import ReadySegment


@dataclass(frozen=True)
class DrawJob:
    """One segment, or frames ``frames[0] .. frames[1]-1`` of it, at one tier."""

    scene: SceneInfo
    visual: VisualSegment
    quality: Quality
    jpeg_quality: int | None
    frames: tuple[int, int] | None = None
    #: (width, height) the frames are delivered at (the episode's stream); None: the tier's.
    size: tuple[int, int] | None = None
    #: Also encode the frames once for every WebRTC viewer (pipelines/playout/encoding.py).
    encode: bool = False


@dataclass
class Drawn:
    frames: FrameList
    #: Seconds the worker spent drawing, compressing and encoding (excludes queueing and transfer).
    elapsed_s: float
    #: How many times a dead worker was replaced while drawing this job.
    retries: int = 0


class DrawCancelled(Exception):
    """Nobody waits for the job any more (a splice dropped its segment): drawing stopped early."""


class Drawer(Protocol):
    def warm_up(self) -> None: ...

    def draw(self, job: DrawJob) -> Drawn: ...

    def cancel(self) -> None:
        """Stop the draw in progress at its next frame; its ``draw`` raises ``DrawCancelled``.

        Called from another thread; does nothing when the drawer is idle. Without it a
        worker would spend seconds on frames nobody will see while an urgent segment waits.
        """
        ...

    def shutdown(self) -> None: ...


def _never() -> bool:
    return False


def draw_with(animator: Animator, job: DrawJob, cancelled: Callable[[], bool] = _never) -> Drawn:
    """Draw a job with an animator in this process: shared by every backend.

    ``cancelled`` is asked before each frame is drawn, compressed and encoded; once it
    says so, ``DrawCancelled`` is raised. Frames leave the worker at the stream's size:
    scaling a 720p frame here once is cheaper than compressing it at 720p and having
    every viewer and the archive decode and scale it on the server's event loop.
    """
    def check() -> None:
        if cancelled():
            raise DrawCancelled(f"segment {job.visual.index} is no longer needed")

    t0 = time.perf_counter()
    frames = []
    for frame in animator.render(job.scene, job.visual, job.quality, frames=job.frames, size=job.size):
        check()
        frames.append(rgb_to_i420(fit(frame, job.size)))
    stored = store(frames, job.jpeg_quality, job.quality.fps if job.encode else None, check)
    # Compressing and encoding count: they stand between drawing and playing as much as drawing does.
    return Drawn(stored, time.perf_counter() - t0)


def store(frames: list[np.ndarray], jpeg_quality: int | None, encode_fps: int | None,
          check: Callable[[], None] = lambda: None) -> FrameList:
    """Frames as they wait for viewers: JPEG-compressed (or raw), and encoded once for WebRTC
    at ``encode_fps`` when given; ``check`` is called before each frame's turn, and may raise."""
    stored = FrameList.raw(frames) if jpeg_quality is None else FrameList.compress(frames, jpeg_quality, check)
    return stored if encode_fps is None else stored.encoded(encode_vp8(frames, encode_fps, check=check))


def title_card(animator: Animator, scene: SceneInfo, stream: Quality, kind: str, span: tuple[int, int],
               quality: Quality, jpeg_quality: int | None, encode: bool) -> ReadySegment:
    """A title card (``kind``: intro, outro) in silence, ``span`` = (start, samples) on the clock.

    ``quality`` sets its frame rate; it is drawn at the ``stream`` tier's size, so no tier's
    supersampling is spent on a still picture.
    """
    start, n_samples = span
    spf = quality.samples_per_frame
    frames = [rgb_to_i420(animator.title_card(scene, stream, n * spf / clock.CLOCK_RATE))
              for n in range(clock.frame_count(n_samples, quality.fps))]
    return ReadySegment(kind=kind, index=-1, start=start, n_samples=n_samples, pcm=np.zeros(n_samples, dtype=np.float32),
                        quality=quality, frames=store(frames, jpeg_quality, quality.fps if encode else None))


def prepare(animator: Animator, qualities: Sequence[Quality]) -> None:
    """Warm an animator up for every tier it may be asked for (its studios, from disk when cached)."""
    animator.warm_up()
    if hasattr(animator, "prepare"):
        animator.prepare(qualities)
