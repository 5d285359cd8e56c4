"""The contracts between the episode runtime and the model adapters.

The runtime only ever talks to these protocols, so a deployment file can swap a
llama.cpp writer for an OpenAI-compatible endpoint, or the 2D renderer for a GPU
animator, without the pipeline changing (docs/design.md, principle 4).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from models.script.pace import PRIOR_WORDS_PER_SECOND, SpeakingPace

#: The episode's media clock: every timestamp is a count of samples at this rate.
CLOCK_RATE = 48_000


# --------------------------------------------------------------------------- script
@dataclass(frozen=True)
class ViewerQuestion:
    """A viewer's question, cleaned (``models/script/questions.py``): data, never instructions."""

    id: str
    text: str
    #: How the host names the asker ("Maya"); "" for someone who gave no name.
    name: str = ""


@dataclass(frozen=True)
class ScriptRequest:
    """What the script writer is asked for."""

    topic: str
    duration_s: float
    hosts: tuple[str, str] = ("Alex", "Sam")
    style: str = "conversational"
    #: Speaking rate that turns the duration into a word budget when there is no ``pace``.
    words_per_second: float = PRIOR_WORDS_PER_SECOND
    #: The voices' real pace, reported by the runtime as it voices the episode: the
    #: budget then follows media time, not a fixed rate (models/script/pace.py).
    pace: SpeakingPace | None = None
    #: The lines already played, when the script goes on from the middle of an episode
    #: (after a viewer's question): no title, no opening; line numbers go on from them.
    history: tuple[DialogueLine, ...] = ()
    #: A viewer's question to read out and answer first, then back to the topic. The
    #: stream's first two events are then its reading and the start of the answer (a
    #: ``LineStart``), worded without the model: they are asked for off the model's
    #: thread, so they are not kept waiting behind another episode's line.
    question: ViewerQuestion | None = None
    #: Lines written before the question came that nobody has heard yet: said after the
    #: answer as they are, not written again (``models/script/questions.said_again``).
    unheard: tuple[DialogueLine, ...] = ()
    #: Set by the runtime when it no longer wants this stream (a splice replaced it): the
    #: writer stops the generation under way at once instead of finishing the line.
    halt: threading.Event | None = None

    @property
    def word_budget(self) -> int:
        """Words the whole episode should have; read it again before each turn (it follows the pace)."""
        if self.pace is not None:
            return self.pace.word_budget()
        return max(12, round(self.duration_s * self.words_per_second))


@dataclass(frozen=True)
class ShowTitle:
    title: str
    kind: Literal["title"] = "title"


@dataclass(frozen=True)
class HostsAnnounced:
    hosts: tuple[str, ...]
    kind: Literal["hosts"] = "hosts"


@dataclass(frozen=True)
class DialogueLine:
    """One turn of one host. ``index`` counts lines from 0 in script order."""

    index: int
    speaker: str
    text: str
    kind: Literal["line"] = "line"
    #: The id of the viewer's question this line reads out or answers (None: the show itself).
    question: str | None = None


@dataclass(frozen=True)
class LineStart:
    """The first words of line ``index``, given before the rest is written, so they can be
    voiced while the model writes it (the start of an answer, which the writer words itself).

    The ``DialogueLine`` with the same ``index`` always follows, by the same speaker, and
    its text starts with these words.
    """

    index: int
    speaker: str
    text: str
    kind: Literal["start"] = "start"
    question: str | None = None


@dataclass(frozen=True)
class ScriptEnd:
    """The script is finished; ``reason`` says why (budget met, model stopped, ...)."""

    reason: str
    kind: Literal["end"] = "end"


@dataclass(frozen=True)
class QuestionDeclined:
    """The viewer's question ``question_id`` got no answer from the model (``reason`` says why).

    The writer has already said a canned answer for it (a ``DialogueLine`` with
    ``question=question_id``) and goes on with the episode after this event.
    """

    question_id: str
    reason: str
    kind: Literal["declined"] = "declined"


ScriptEvent = ShowTitle | HostsAnnounced | LineStart | DialogueLine | QuestionDeclined | ScriptEnd


class ScriptWriter(Protocol):
    """Streams a two-host script as structured events.

    Contract: first a ``ShowTitle``, then ``HostsAnnounced``, then ``DialogueLine``
    events whose speakers alternate between the two hosts, then exactly one
    ``ScriptEnd``. Implementations never raise on malformed model output: they
    repair or skip it. ``stream`` is a blocking generator; the runtime drives it
    from a thread so tokens flow while other stages work.

    A resumed stream (``request.history`` not empty) goes on from the history: no
    ``ShowTitle`` and no ``HostsAnnounced``; line indices continue from
    ``len(history)`` and the first new line is by the host who did not speak
    ``history[-1]``. The history is the episode so far (the model's context) and its
    words count against ``request.word_budget``, the whole episode's budget.

    With ``request.question`` set, the first new lines are: the question read out
    verbatim (``questions.reading_line``) by the next host, a ``LineStart`` with
    ``answer_cue``, ``ANSWER_LINES`` answer lines (the first starts with the cue), then a
    bridge line starting with ``bridge_cue(topic)``; each carries ``question=question.id``
    (the ``LineStart`` too). When the model cannot answer, the answering host says
    ``canned_answer()`` instead of the answer lines (with the question's id; it starts
    with the cue; the bridge still follows), and one ``QuestionDeclined`` comes after
    the canned answer and before the first line of the show itself again. Either way
    the episode then goes on as usual: body, ending, ``ScriptEnd``.
    """

    name: str

    def warm_up(self) -> None: ...

    def stream(self, request: ScriptRequest) -> Iterator[ScriptEvent]: ...


# --------------------------------------------------------------------------- speech
@dataclass(frozen=True)
class TimedPhoneme:
    """A phoneme (espeak IPA symbol) and its span in samples, relative to the clip start."""

    phoneme: str
    start: int
    end: int


@dataclass
class Speech:
    """Mono float32 PCM on the media clock (``CLOCK_RATE``) plus phoneme timings."""

    pcm: np.ndarray
    phonemes: list[TimedPhoneme] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        return int(self.pcm.shape[0])


class SpeechSynthesiser(Protocol):
    name: str

    def warm_up(self) -> None: ...

    def voices(self) -> Sequence[str]: ...

    def synthesize(self, text: str, voice: str) -> Speech: ...


# --------------------------------------------------------------------------- video
@dataclass(frozen=True)
class Quality:
    """One rung of the quality ladder: a resolution, a sharpness and a frame rate."""

    name: str
    height: int
    fps: int
    #: Supersampling factor: render at ``height * supersample`` and downscale (anti-aliasing).
    supersample: int = 1

    @property
    def width(self) -> int:
        # 16:9, rounded to an even number of pixels as I420 needs.
        return round(self.height * 16 / 9 / 2) * 2

    @property
    def samples_per_frame(self) -> int:
        return CLOCK_RATE // self.fps


@dataclass(frozen=True)
class SceneInfo:
    """What stays the same for a whole episode: title and hosts, left to right."""

    title: str
    hosts: tuple[str, str]


@dataclass(frozen=True)
class Shot:
    """Where the camera looks for one segment: both hosts (the two-shot), or one host close up.

    Shots change only where a line starts (shot planning: pipelines/plan/shots.py);
    every animator draws each kind at every tier.
    """

    kind: Literal["two_shot", "close_up"] = "two_shot"
    #: Whose close-up (index into ``SceneInfo.hosts``); ignored in a two-shot.
    host: int = 0


TWO_SHOT = Shot()


@dataclass(frozen=True)
class VisualSegment:
    """Everything the animator needs to draw one segment.

    ``start`` is the segment's first sample on the episode clock (so idle motion
    and blinks are continuous across segments); ``pcm`` is the segment's audio on
    the same clock, and ``phonemes`` are relative to ``start``.
    """

    index: int
    start: int
    n_samples: int
    speaker: int  # index into SceneInfo.hosts
    caption: str
    pcm: np.ndarray
    phonemes: tuple[TimedPhoneme, ...]
    shot: Shot = TWO_SHOT


class Animator(Protocol):
    name: str

    def warm_up(self) -> None: ...

    def title_card(self, scene: SceneInfo, quality: Quality, t_s: float) -> np.ndarray:
        """An RGB uint8 frame (H, W, 3) shown before the first segment and as filler."""
        ...

    def idle_frame(self, scene: SceneInfo, quality: Quality, clock: int) -> np.ndarray:
        """Both hosts idle (nobody speaking) at episode time ``clock`` samples: stall filler."""
        ...

    def render(self, scene: SceneInfo, seg: VisualSegment, quality: Quality,
               frames: tuple[int, int] | None = None,
               size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
        """Yields RGB uint8 frames for n = 0 .. ceil(n_samples / samples_per_frame) - 1.

        Frame n shows the instant ``seg.start + n * quality.samples_per_frame``.
        ``frames=(a, b)`` yields only frames a .. b-1, identical to those of a whole
        render: several workers can then draw one segment (model parallelism).
        ``size=(width, height)``: frames come out at the stream's size, drawn at the
        tier's and scaled once (an animator may ignore it; the caller scales then).
        """
        ...
