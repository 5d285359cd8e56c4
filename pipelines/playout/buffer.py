"""The playout buffer and each viewer's playhead, on the episode's one media clock.

Segments land in the buffer in timeline order as the runtime finishes them. Each
viewer has a playhead that starts at 0 (every viewer sees the episode from its
start) and is advanced by the audio track only: video reads the frame under the
same playhead, so the two tracks cannot drift apart (docs/design.md, principle 1).
When the content under the playhead is not there yet, the playhead holds still,
the tracks play filler (silence and the title card) and a stall is counted; when
the content arrives, playback resumes where it stopped: nothing is skipped.
"""
from __future__ import annotations

import asyncio
import bisect
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from models.protocols import CLOCK_RATE, Quality
from pipelines.playout.encoding import AUDIO_FRAME, OpusStream
from pipelines.segments import ReadySegment


class PlayoutBuffer:
    """Everything generated so far for one episode, contiguous from sample 0."""

    def __init__(self, hold_until_finished: bool = False) -> None:
        #: The batch policy: nobody starts playing before the whole episode is generated.
        self.hold_until_finished = hold_until_finished
        self.segments: list[ReadySegment] = []
        self._starts: list[int] = []
        self.end = 0  # samples available, contiguous from 0
        self.finished = False
        self.failed: str | None = None
        #: The audio encoded once for every WebRTC viewer, as it arrives (None: each its own).
        self.opus: OpusStream | None = None
        #: Every viewer's playhead, to know how far the furthest one has played.
        self.playheads: weakref.WeakSet[Playhead] = weakref.WeakSet()
        self._changed = asyncio.Event()

    def append(self, segment: ReadySegment) -> None:
        if segment.start != self.end:
            raise ValueError(f"segment starts at {segment.start}, buffer ends at {self.end}")
        self.segments.append(segment)
        self._starts.append(segment.start)
        self.end = segment.end
        if self.opus is not None:
            self.opus.add(segment.pcm)
        self._wake()

    def truncate(self, at: int) -> ReadySegment | None:
        """Drop everything from clock sample ``at`` on (no viewer has reached it): the
        episode goes on differently from there (a viewer's question). A segment ``at``
        falls inside keeps its part before it (``ReadySegment.cut``), which is returned."""
        if at >= self.end:
            return None
        keep = bisect.bisect_right(self._starts, at) - 1
        cut = None
        if self._starts[keep] != at:
            cut = self.segments[keep] = self.segments[keep].cut(at)
            keep += 1
        del self.segments[keep:], self._starts[keep:]
        self.end = at
        self.finished = False
        if self.opus is not None:
            self.opus.truncate(at)
        self._wake()
        return cut

    def furthest(self) -> int | None:
        """The furthest position any viewer has played to (None: nobody has started)."""
        return max((p.position for p in self.playheads if p.started), default=None)

    @property
    def complete(self) -> bool:
        """Everything there is to play is here: finished, or the closing card has arrived
        (the archive may still be flushing; that is no reason for a viewer to wait)."""
        return self.finished or bool(self.segments and self.segments[-1].kind == "outro")

    def finish(self, error: str | None = None) -> None:
        if self.opus is not None and not self.finished:
            self.opus.finish()
        self.finished = True
        self.failed = error
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self, timeout: float | None = None) -> None:
        event = self._changed
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass

    def segment_at(self, pos: int) -> ReadySegment | None:
        if pos < 0 or pos >= self.end:
            return None
        i = bisect.bisect_right(self._starts, pos) - 1
        return self.segments[i]

    def audio(self, start: int, n: int) -> np.ndarray | None:
        """``n`` samples from ``start``, or None if any of them is not generated yet."""
        if start + n > self.end:
            return None
        out = np.empty(n, dtype=np.float32)
        filled = 0
        while filled < n:
            seg = self.segment_at(start + filled)
            assert seg is not None
            offset = start + filled - seg.start
            take = min(n - filled, seg.n_samples - offset)
            out[filled : filled + take] = seg.pcm[offset : offset + take]
            filled += take
        return out

    def frame_at(self, pos: int) -> tuple[np.ndarray, Quality] | None:
        """The I420 frame showing clock time ``pos`` (the latest frame at or before it)."""
        seg = self.segment_at(pos)
        if seg is None or not seg.frames:
            return None
        n = min((pos - seg.start) // seg.quality.samples_per_frame, len(seg.frames) - 1)
        return seg.frames[n], seg.quality

    def caption_at(self, pos: int) -> tuple[str, str] | None:
        seg = self.segment_at(pos)
        if seg is None or seg.kind != "speech" or pos >= seg.start + seg.speech_samples:
            return None
        return seg.speaker_name, seg.text


@dataclass
class PlayheadStats:
    started_at: float = field(default_factory=time.monotonic)
    first_content_at: float | None = None
    first_speech_at: float | None = None
    stalls: int = 0
    stalled_samples: int = 0
    played_samples: int = 0

    def to_dict(self) -> dict[str, float | int | None]:
        rel = lambda t: None if t is None else round(t - self.started_at, 3)
        return {
            "first_content_s": rel(self.first_content_at),
            "first_speech_s": rel(self.first_speech_at),
            "stalls": self.stalls,
            "stalled_s": round(self.stalled_samples / CLOCK_RATE, 3),
            "played_s": round(self.played_samples / CLOCK_RATE, 3),
        }


class Playhead:
    """One viewer's position in an episode. The audio track calls ``next_audio``; video peeks.

    Playback starts once the first spoken segment exists (a start buffer, so the
    short intro cannot run dry into a stall). While waiting, the viewer sees the
    title card as filler, so the intro (itself a title card) is then skipped: a
    live start goes straight to the first words, and a replay, which never waits,
    shows the whole intro. The title stays in the picture's banner throughout.

    ``on_stall(position, seconds)`` is called once per stall, when content comes again:
    the clock sample the playhead waited at and how long it waited (wall clock).
    """

    def __init__(self, buffer: PlayoutBuffer, on_stall: Callable[[int, float], None] | None = None) -> None:
        self.buffer = buffer
        self.position = 0
        self.started = False
        self.stats = PlayheadStats()
        self._waited = 0
        self._stalling = False
        self._stalled_since = 0.0
        self._on_stall = on_stall
        buffer.playheads.add(self)

    def _try_start(self) -> bool:
        if self.buffer.hold_until_finished and not self.buffer.complete:
            return False
        first_speech = next((s for s in self.buffer.segments if s.kind == "speech"), None)
        if first_speech is None and not self.buffer.finished:
            return False
        intro_end = first_speech.start if first_speech is not None else 0
        # On a whole 20 ms audio packet, so every viewer's audio lines up with the shared packets.
        self.position = intro_end // AUDIO_FRAME * AUDIO_FRAME if self._waited else 0
        self.started = True
        return True

    @property
    def ended(self) -> bool:
        return self.buffer.complete and self.position >= self.buffer.end

    def next_audio(self, n: int) -> np.ndarray:
        """The next ``n`` samples to play: content if it is there, else silence (a stall)."""
        if not self.started and not self._try_start():
            self._waited += n
            return np.zeros(n, dtype=np.float32)
        chunk = self.buffer.audio(self.position, n)
        if chunk is None:
            if self.ended:
                return np.zeros(n, dtype=np.float32)
            if not self._stalling:
                self._stalling = True
                self._stalled_since = time.monotonic()
                self.stats.stalls += 1
            self.stats.stalled_samples += n
            return np.zeros(n, dtype=np.float32)
        now = time.monotonic()
        if self._stalling:
            self._stalling = False
            if self._on_stall:
                self._on_stall(self.position, now - self._stalled_since)
        if self.stats.first_content_at is None:
            self.stats.first_content_at = now
        if self.stats.first_speech_at is None and self.buffer.caption_at(self.position) is not None:
            self.stats.first_speech_at = now
        self.position += n
        self.stats.played_samples += n
        return chunk

    def frame(self) -> tuple[np.ndarray, Quality] | None:
        """The frame under the playhead, or None when filler should be shown."""
        if not self.started:
            return None
        return self.buffer.frame_at(self.position)
