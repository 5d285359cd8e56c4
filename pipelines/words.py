"""Where a voiced segment's words end on its clock: the places it can be cut between words.

The speech engine times each phoneme; espeak marks the boundaries between words with a
space and those between sentences with ``$`` and ``^``. A written word is one spoken word
only when it is plain letters: numbers, abbreviations, symbols and hyphenated words can be
read as several, or run into the next. So gaps are named only for a segment of plain words
whose count matches the spoken words; any other segment is cut only at its end.

A leaf module: it imports no stage.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from models.protocols import TimedPhoneme

_PLAIN = re.compile(r"^[\"'(\[]*[A-Za-z]+(?:'[A-Za-z]+)?[\"')\].,;:!?]*$")
_BOUNDARIES = {" ", "^", "$", "_"}
#: Punctuation the engine times as a pause after the word: part of the gap, not the word.
_PAUSES = set(",.;:!?¡¿—–…-\"'()")
#: Marks that end a clause, kept both in the text and in the engine's phonemes.
_CLAUSE_MARKS = set(",;:.!?")


@dataclass(frozen=True)
class WordGap:
    """A gap between two words of a segment."""

    #: Samples from the segment's start to the end of the words before the gap.
    at: int
    #: How many of the text's words come before it.
    words: int


def word_gaps(text: str, phonemes: Sequence[TimedPhoneme]) -> list[WordGap]:
    """The gaps between the words of ``text`` as voiced with ``phonemes``, in order.

    Clauses (words up to a comma, a full stop...) are matched first, by the punctuation
    both the text and the engine's phonemes keep; inside a clause, words are matched one to
    one only when the counts agree. Gaps that cannot be matched with certainty are left out.
    """
    words = text.split()
    spoken = _spoken_words(phonemes)
    text_clauses = _clause_lengths([w[-1] in _CLAUSE_MARKS for w in words])
    spoken_clauses = _clause_lengths([paused for _end, paused in spoken])
    if len(text_clauses) != len(spoken_clauses):
        return []
    gaps: list[WordGap] = []
    t = s = 0
    for tn, sn in zip(text_clauses, spoken_clauses):
        if tn == sn and all(_PLAIN.match(w) for w in words[t:t + tn]):
            gaps += [WordGap(at=spoken[s + k][0], words=t + k + 1) for k in range(tn - 1)]
        t, s = t + tn, s + sn
        gaps.append(WordGap(at=spoken[s - 1][0], words=t))
    return gaps[:-1]  # the last is the segment's own end


def _spoken_words(phonemes: Sequence[TimedPhoneme]) -> list[tuple[int, bool]]:
    """Each spoken word's end (its last sounded phoneme, in samples) and whether a clause
    mark follows it."""
    words: list[tuple[int, bool]] = []
    end: int | None = None
    paused = False
    for p in phonemes:
        if p.phoneme in _BOUNDARIES:
            if end is not None:
                words.append((end, paused))
            end, paused = None, False
        elif p.phoneme in _CLAUSE_MARKS:
            paused = end is not None
        elif p.phoneme not in _PAUSES:
            end, paused = p.end, False
    if end is not None:
        words.append((end, paused))
    return words


def _clause_lengths(ends_clause: Sequence[bool]) -> list[int]:
    """Lengths of the runs of words that each end a clause (and of a last, open one)."""
    lengths: list[int] = []
    run = 0
    for ends in ends_clause:
        run += 1
        if ends:
            lengths.append(run)
            run = 0
    if run:
        lengths.append(run)
    return lengths


def leading_words(text: str, n: int) -> str:
    """The first ``n`` words of ``text``, as written."""
    return " ".join(text.split()[:n])
