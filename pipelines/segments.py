"""The data that flows between the episode's stages: a leaf module that imports no stage.

A request becomes text segments (``SegmentText``), voiced segments (``VoicedSegment``)
and finally ``ReadySegment``s that the playout buffer, the archive and the transports
read. Stages, sinks and transports import these types from here, never from each other.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.protocols import TWO_SHOT, Quality, Shot, TimedPhoneme, VisualSegment
from pipelines.playout import clock


@dataclass(frozen=True)
class SegmentText:
    """Text of one segment before it is voiced."""

    index: int  # episode-wide, in playout order
    line_index: int
    speaker: int  # 0 or 1: index into the hosts
    speaker_name: str
    text: str
    #: True for the segment that ends its line: the pause after the line goes here.
    ends_line: bool
    #: The viewer's question its line reads out or answers (None: the show itself).
    question: str | None = None


class EpisodeError(RuntimeError):
    """A stage failed for good; the message names the stage and segment."""


@dataclass(frozen=True)
class EpisodeRequest:
    topic: str
    duration_s: float = 60.0
    style: str = "conversational"
    #: A tier name from the ladder; None lets the deployment decide.
    quality: str | None = None
    #: A quality policy (QualitySpec.policy) for this episode; None: the deployment's.
    policy: str | None = None


@dataclass
class ReadySegment:
    """Audio and frames of one stretch of the timeline, ready to play.

    ``kind`` is "intro" (title card), "speech" (a host talking) or "outro".
    Frames are I420 (``(h * 3 // 2, w)`` uint8) at the episode's stream size, whatever
    tier ``quality`` drew them at; frame n at ``start + n * spf``; a ``FrameList`` keeps
    them compressed and decodes the one that is read.
    """

    kind: str
    index: int
    start: int
    n_samples: int
    pcm: np.ndarray
    quality: Quality
    frames: Sequence[np.ndarray]
    speaker: int | None = None
    speaker_name: str = ""
    text: str = ""
    line_index: int | None = None
    phonemes: tuple[TimedPhoneme, ...] = ()
    #: Samples of trailing silence (the pause after a line), inside ``n_samples``.
    speech_samples: int = 0
    #: The shot its frames were drawn in.
    shot: Shot = TWO_SHOT
    #: The viewer's question its line reads out or answers (None: the show itself).
    question: str | None = None

    @property
    def end(self) -> int:
        return self.start + self.n_samples


@dataclass
class Progress:
    written: int = 0
    voiced: int = 0
    rendered: int = 0
    #: Known once the script has ended.
    total: int | None = None
    estimated_total: int = 0


@dataclass
class VoicedSegment:
    """A segment voiced and laid on the clock (padded to the grid), waiting to be drawn."""

    seg: SegmentText
    start: int
    n_samples: int
    speech_samples: int
    pcm: np.ndarray
    phonemes: tuple[TimedPhoneme, ...]
    #: Where the camera looks while it plays (pipelines/plan/shots.py).
    shot: Shot = TWO_SHOT

    @property
    def media_s(self) -> float:
        return self.n_samples / clock.CLOCK_RATE

    def visual(self) -> VisualSegment:
        """What the animator needs to draw it."""
        return VisualSegment(index=self.seg.index, start=self.start, n_samples=self.n_samples,
                             speaker=self.seg.speaker, caption=self.seg.text, pcm=self.pcm, phonemes=self.phonemes,
                             shot=self.shot)

    @property
    def end(self) -> int:
        return self.start + self.n_samples

    def ready(self, quality: Quality, frames: Sequence[np.ndarray]) -> ReadySegment:
        """The segment with its frames, ready to play."""
        seg = self.seg
        return ReadySegment(kind="speech", index=seg.index, start=self.start, n_samples=self.n_samples,
                            pcm=self.pcm, quality=quality, frames=frames, speaker=seg.speaker,
                            speaker_name=seg.speaker_name, text=seg.text, line_index=seg.line_index,
                            phonemes=self.phonemes, speech_samples=self.speech_samples, shot=self.shot,
                            question=seg.question)
