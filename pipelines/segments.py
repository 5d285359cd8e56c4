"""The data that flows between the episode's stages: a leaf module that imports no stage.

A request becomes text segments (``SegmentText``), voiced segments (``VoicedSegment``)
and finally ``ReadySegment``s that the playout buffer, the archive and the transports
read. Stages, sinks and transports import these types from here, never from each other.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from models.protocols import TWO_SHOT, Quality, Shot, TimedPhoneme, VisualSegment
from pipelines.playout import clock
from pipelines.words import leading_words, word_gaps

#: The fade that ends speech cut between two words: long enough to avoid a click.
CUT_FADE_S = 0.005


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

    def cut(self, at: int) -> ReadySegment:
        """The part before clock sample ``at`` (a grid point inside it, after a gap between
        words: see ``SpokenCut``); a viewer's question goes on from there."""
        kept = SpokenCut.of(self.text, self.phonemes, self.pcm, at - self.start)
        frames = self.frames
        n_frames = clock.frame_count(kept.n_samples, self.quality.fps)
        head = getattr(frames, "head", None)
        return replace(self, n_samples=kept.n_samples, pcm=kept.pcm, text=kept.text, phonemes=kept.phonemes,
                       speech_samples=min(self.speech_samples, kept.speech_samples),
                       frames=head(n_frames) if head else list(frames[:n_frames]))


@dataclass(frozen=True)
class SpokenCut:
    """What is left of a voiced stretch cut after one of its gaps between words: the words
    said before the gap, then silence up to the cut (a grid point, for the frames and the
    audio packets)."""

    n_samples: int
    pcm: np.ndarray
    text: str
    phonemes: tuple[TimedPhoneme, ...]
    speech_samples: int

    @classmethod
    def of(cls, text: str, phonemes: Sequence[TimedPhoneme], pcm: np.ndarray, n: int) -> SpokenCut:
        """The first ``n`` samples, keeping the words that end at or before the last gap in
        them (``pipelines.words``); none when no gap falls that early."""
        gap = max((g for g in word_gaps(text, phonemes) if g.at <= n), key=lambda g: g.at, default=None)
        said, words = (gap.at, gap.words) if gap is not None else (0, 0)
        out = np.zeros(n, dtype=np.float32)
        out[:said] = pcm[:said]
        fade = min(said, round(CUT_FADE_S * clock.CLOCK_RATE))
        if fade:
            out[said - fade:said] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        return cls(n_samples=n, pcm=out, text=leading_words(text, words),
                   phonemes=tuple(p for p in phonemes if p.end <= said), speech_samples=said)


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

    def cut(self, at: int) -> VoicedSegment:
        """The part before clock sample ``at``, as ``ReadySegment.cut``; its line ends there."""
        kept = SpokenCut.of(self.seg.text, self.phonemes, self.pcm, at - self.start)
        return replace(self, seg=replace(self.seg, text=kept.text, ends_line=True), n_samples=kept.n_samples,
                       speech_samples=min(self.speech_samples, kept.speech_samples), pcm=kept.pcm,
                       phonemes=kept.phonemes)

    def gaps(self, grid: int) -> list[int]:
        """Clock samples where it can be cut between words: the grid points (multiples of
        ``grid`` from its start) after its gaps; the words before each end in the silence."""
        points = (self.start + clock.pad_to_grid(g.at, grid) for g in word_gaps(self.seg.text, self.phonemes))
        return sorted({p for p in points if self.start < p < self.end})

    def ready(self, quality: Quality, frames: Sequence[np.ndarray]) -> ReadySegment:
        """The segment with its frames, ready to play."""
        seg = self.seg
        return ReadySegment(kind="speech", index=seg.index, start=self.start, n_samples=self.n_samples,
                            pcm=self.pcm, quality=quality, frames=frames, speaker=seg.speaker,
                            speaker_name=seg.speaker_name, text=seg.text, line_index=seg.line_index,
                            phonemes=self.phonemes, speech_samples=self.speech_samples, shot=self.shot,
                            question=seg.question)
