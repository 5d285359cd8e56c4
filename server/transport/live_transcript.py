"""The live transcript one viewer is sent over its data channel, line by line as it plays.

Each speech segment is sent once the viewer's playhead has entered it. A splice for a
viewer's question can cut the segment under the playhead short after it was sent (the host
stops between two words); it is then sent again with ``"amend": true`` and the words kept,
so the page shows what was said, not what was written.
"""
from __future__ import annotations

from typing import Any

from models.protocols import CLOCK_RATE
from pipelines.playout.buffer import PlayoutBuffer
from pipelines.segments import ReadySegment


class TranscriptFeed:
    """What to send next of one viewer's live transcript."""

    def __init__(self) -> None:
        self._scanned = 0  # buffer segments already looked at
        self._last: ReadySegment | None = None  # the last one looked at, as it was then

    def messages(self, buffer: PlayoutBuffer, position: int) -> list[dict[str, Any]]:
        """The ``line`` messages for the segments that started playing before ``position``
        (clock samples), and an amended one for a sent segment since cut short."""
        out: list[dict[str, Any]] = []
        segments = buffer.segments
        if self._last is not None and self._scanned <= len(segments):
            now = segments[self._scanned - 1]
            if now is not self._last and now.index == self._last.index and now.start == self._last.start:
                self._last = now
                if now.kind == "speech":
                    out.append(line_message(now, amend=True))
        while self._scanned < len(segments) and segments[self._scanned].start < position:
            seg = self._last = segments[self._scanned]
            self._scanned += 1
            if seg.kind == "speech":
                out.append(line_message(seg))
        return out


def line_message(seg: ReadySegment, amend: bool = False) -> dict[str, Any]:
    """One segment of the transcript as the page reads it."""
    message = {"type": "line", "index": seg.index, "line": seg.line_index, "speaker": seg.speaker_name,
               "text": seg.text, "start_s": round(seg.start / CLOCK_RATE, 3)}
    return {**message, "amend": True} if amend else message
