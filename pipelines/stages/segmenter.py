"""Cut dialogue lines into segments: one speaker, a few seconds of speech each.

The segment is the unit of work, scheduling and adaptation (docs/design.md, principle 2):
short enough that the first one is voiced and drawn quickly, long enough that
per-task overhead stays small. Cuts fall on sentence ends first, then on clause
boundaries, and only as a last resort between words.
"""
from __future__ import annotations

import re

from models.protocols import DialogueLine, LineStart
from pipelines.segments import SegmentText

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+|\s+(?=(?:and|but|so|because|which|while)\s)")


def _words(text: str) -> int:
    return len(text.split())


def _pack(pieces: list[str], max_words: int) -> list[str]:
    """Greedily join pieces while they fit; pieces too long on their own are split further."""
    out: list[str] = []
    current = ""
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        candidate = f"{current} {piece}".strip()
        if _words(candidate) <= max_words:
            current = candidate
            continue
        if current:
            out.append(current)
        current = piece
    if current:
        out.append(current)
    return out


def split_text(text: str, max_words: int) -> list[str]:
    """Split ``text`` into chunks of at most ``max_words`` words, at the most natural cuts."""
    text = " ".join(text.split())
    if not text:
        return []
    if _words(text) <= max_words:
        return [text]
    chunks: list[str] = []
    for sentence in _pack(_SENTENCE_END.split(text), max_words):
        if _words(sentence) <= max_words:
            chunks.append(sentence)
            continue
        for clause in _pack(_CLAUSE_END.split(sentence), max_words):
            if _words(clause) <= max_words:
                chunks.append(clause)
                continue
            words = clause.split()
            # Even split rather than a long chunk and a one-word tail.
            n = -(-len(words) // max_words)
            size = -(-len(words) // n)
            chunks.extend(" ".join(words[i : i + size]) for i in range(0, len(words), size))
    return chunks


class Segmenter:
    """Turns a stream of dialogue lines into a stream of segments, numbering them in order."""

    def __init__(self, hosts: tuple[str, str], max_words: int, first_max_words: int, first_segments: int,
                 first_index: int = 0) -> None:
        """``first_index``: the number of the first segment, when the script goes on from the
        middle of an episode (after a splice): its first segments are short again, as urgent
        as an episode's first ones."""
        self.hosts = hosts
        self.max_words = max_words
        self.first_max_words = first_max_words
        self.first_segments = first_segments
        self._first_index = first_index
        self._next_index = first_index
        #: (index, words) of the line ``start_line`` began, until ``add_line`` gives the rest.
        self._started: tuple[int, int] | None = None

    def _speaker_index(self, name: str, line_index: int) -> int:
        lowered = [h.lower() for h in self.hosts]
        if name.lower() in lowered:
            return lowered.index(name.lower())
        return line_index % 2

    def start_line(self, start: LineStart) -> list[SegmentText]:
        """Segments of a line's first words, before the rest of it is written (none ends it)."""
        self._started = (start.index, len(start.text.split()))
        return self._segments(start.index, start.speaker, start.question, split_text(start.text, self.max_words),
                              ends_line=False)

    def add_line(self, line: DialogueLine) -> list[SegmentText]:
        """Segments of a whole line (of its words after those ``start_line`` gave already)."""
        remaining = line.text
        # The first segments of the episode are shorter: they decide the startup time. So is
        # the first after a line's start: the viewer is already hearing that line.
        short = self.first_segments - (self._next_index - self._first_index)
        if self._started is not None and self._started[0] == line.index:
            remaining = " ".join(line.text.split()[self._started[1]:])
            short = max(short, 1)
        self._started = None
        chunks: list[str] = []
        while len(chunks) < short and remaining.strip():
            head, *rest = split_text(remaining, self.first_max_words)
            chunks.append(head)
            remaining = " ".join(rest)
        chunks.extend(split_text(remaining, self.max_words))
        return self._segments(line.index, line.speaker, line.question, chunks, ends_line=True)

    def _segments(self, line_index: int, speaker_name: str, question: str | None, chunks: list[str],
                  ends_line: bool) -> list[SegmentText]:
        speaker = self._speaker_index(speaker_name, line_index)
        out = []
        for i, chunk in enumerate(chunks):
            out.append(SegmentText(index=self._next_index, line_index=line_index, speaker=speaker,
                                   speaker_name=self.hosts[speaker], text=chunk,
                                   ends_line=ends_line and i == len(chunks) - 1, question=question))
            self._next_index += 1
        return out
