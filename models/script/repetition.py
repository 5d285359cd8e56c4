"""Repetition in a script, measured on word n-grams: what a line echoes of the lines before it.

A small model rarely repeats a whole line (the parser drops those), but it keeps saying
the same phrases ("so that's the answer", "it's a great way to"), which is what makes a
long episode sound like a loop. So each new line is checked against every 4-gram said
so far, and the same measures describe a finished script in benchmarks.

Contract: pure functions and a plain container; text is compared as lowercase
alphanumeric words (``text.normalize_for_compare``).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from models.script.text import normalize_for_compare

#: Phrases of this many words are what counts as said again.
N = 4
#: A new line with more than this share of its 4-grams said before is written again (the
#: writers let a summary, and a last try, through: a weak line beats a stuck episode).
ECHO_LIMIT = 0.1


def ngrams(text: str, n: int = N) -> list[tuple[str, ...]]:
    """The word n-grams of ``text``, compared as lowercase words without punctuation."""
    words = normalize_for_compare(text).split()
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


class Echoes:
    """The n-grams said so far in one episode; ``share`` says how much of a new line repeats them.

    ``free`` phrases (the writer's own cues, said on purpose more than once) never count.
    """

    def __init__(self, free: Iterable[str] = (), n: int = N) -> None:
        self.n = n
        self._said: set[tuple[str, ...]] = set()
        self._free = {g for phrase in free for g in ngrams(phrase, n)}

    def allow(self, phrases: Iterable[str]) -> None:
        """``phrases`` become free too (cues the writer decides on mid-episode)."""
        self._free.update(g for phrase in phrases for g in ngrams(phrase, self.n))

    def share(self, text: str) -> float:
        """The fraction of ``text``'s n-grams already said (0.0 for a line too short to have any)."""
        grams = [g for g in ngrams(text, self.n) if g not in self._free]
        if not grams:
            return 0.0
        return sum(g in self._said for g in grams) / len(grams)

    def add(self, text: str) -> None:
        """``text`` was said."""
        self._said.update(ngrams(text, self.n))


def repeated_share(texts: Sequence[str], n: int = N) -> float:
    """Share of all n-grams in a script that repeat one said earlier (in an earlier line or the same one)."""
    seen: set[tuple[str, ...]] = set()
    total = repeated = 0
    for text in texts:
        for gram in ngrams(text, n):
            total += 1
            repeated += gram in seen
            seen.add(gram)
    return repeated / total if total else 0.0


def distinct(texts: Sequence[str], n: int = 2) -> float:
    """Distinct-n: distinct n-grams over all n-grams of the script (1.0: nothing said twice)."""
    grams = [g for text in texts for g in ngrams(text, n)]
    return len(set(grams)) / len(grams) if grams else 1.0
