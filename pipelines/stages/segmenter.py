"""Cut dialogue lines into segments: one speaker, a few seconds of speech each.

The segment is the unit of work, scheduling and adaptation (docs/design.md, principle 2):
short enough that the first one is voiced and drawn quickly, long enough that
per-task overhead stays small. Cuts fall on sentence ends first, then on clause
boundaries, and only as a last resort between words.
"""
from __future__ import annotations

import re

from models.protocols import DialogueLine
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

    def _speaker_index(self, name: str, line_index: int) -> int:
        lowered = [h.lower() for h in self.hosts]
        if name.lower() in lowered:
            return lowered.index(name.lower())
        return line_index % 2

    def add_line(self, line: DialogueLine) -> list[SegmentText]:
        speaker = self._speaker_index(line.speaker, line.index)
        chunks: list[str] = []
        remaining = line.text
        # The first segments of the episode are shorter: they decide the startup time.
        while self._next_index - self._first_index + len(chunks) < self.first_segments and remaining.strip():
            head, *rest = split_text(remaining, self.first_max_words)
            chunks.append(head)
            remaining = " ".join(rest)
        chunks.extend(split_text(remaining, self.max_words))
        out = []
        for i, chunk in enumerate(chunks):
            out.append(
                SegmentText(
                    index=self._next_index,
                    line_index=line.index,
                    speaker=speaker,
                    speaker_name=self.hosts[speaker],
                    text=chunk,
                    ends_line=i == len(chunks) - 1,
                    question=line.question,
                )
            )
            self._next_index += 1
        return out
