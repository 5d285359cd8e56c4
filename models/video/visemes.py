"""Phoneme -> viseme (mouth shape) mapping and smooth mouth-shape tracks.

Piper hands us espeak-ng IPA symbols with sample timings (``TimedPhoneme``).
Each symbol maps to one of a small set of viseme classes; each class has a
``MouthShape`` (openness, width, roundness, teeth, tongue).  A ``VisemeTrack``
turns a phoneme sequence into a continuous function of time by convolving the
piecewise-constant shape targets with a short triangular kernel (coarticulation),
so the mouth glides between shapes instead of flickering.

Modifiers carry their neighbour's shape: stress marks (ˈ ˌ) take the shape of
the following phoneme, length marks (ː ˑ) and Piper's pad ``_`` the previous
one.  Punctuation, spaces, ``^`` (BOS) and ``$`` (EOS) are rest.
"""
from __future__ import annotations

import bisect
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from models.protocols import CLOCK_RATE, TimedPhoneme


@dataclass(frozen=True)
class MouthShape:
    """Mouth parameters, all in 0..1.

    ``open``: jaw/lip opening; ``wide``: mouth width (0 = puckered, 1 = spread);
    ``round``: lip rounding (O shape); ``teeth``: upper teeth shown / on lower lip
    (f, v, s); ``tongue``: tongue tip visible between the teeth (θ, ð, l).
    """

    open: float = 0.0
    wide: float = 0.5
    round: float = 0.0
    teeth: float = 0.0
    tongue: float = 0.0

    def as_array(self) -> np.ndarray:
        return np.array([self.open, self.wide, self.round, self.teeth, self.tongue], dtype=np.float64)

    @staticmethod
    def from_array(a: Sequence[float]) -> MouthShape:
        return MouthShape(float(a[0]), float(a[1]), float(a[2]), float(a[3]), float(a[4]))


# --------------------------------------------------------------------------- classes
REST = "rest"          # silence, punctuation, word gaps
CLOSED = "closed"      # m b p: lips pressed
OPEN = "open"          # a ɑ æ ʌ ɐ: jaw wide open
MID = "mid"            # ɛ e ə ɚ ɜ: half open
SPREAD = "spread"      # i ɪ j: spread lips, small opening
ROUND = "round"        # o ɔ ɒ: open rounded
PUCKER = "pucker"      # u ʊ w y: tight rounding
TEETH_LIP = "teeth_lip"  # f v: upper teeth on lower lip
TONGUE = "tongue"      # θ ð: tongue between teeth
ALVEOLAR = "alveolar"  # t d n l s z ɾ: teeth close, slight opening
POSTALV = "postalv"    # ʃ ʒ tʃ dʒ: protruded, teeth visible
VELAR = "velar"        # k ɡ ŋ h x: relaxed mid opening
RHOTIC = "rhotic"      # ɹ r ɻ: slightly rounded

VISEME_SHAPES: dict[str, MouthShape] = {
    REST: MouthShape(open=0.0, wide=0.50, round=0.0),
    CLOSED: MouthShape(open=0.0, wide=0.42, round=0.05),
    OPEN: MouthShape(open=1.0, wide=0.66, round=0.05, teeth=0.35),
    MID: MouthShape(open=0.60, wide=0.66, round=0.0, teeth=0.45),
    SPREAD: MouthShape(open=0.32, wide=0.95, round=0.0, teeth=0.8),
    ROUND: MouthShape(open=0.70, wide=0.32, round=0.85, teeth=0.15),
    PUCKER: MouthShape(open=0.30, wide=0.18, round=1.0),
    TEETH_LIP: MouthShape(open=0.16, wide=0.60, round=0.0, teeth=1.0),
    TONGUE: MouthShape(open=0.26, wide=0.62, round=0.0, teeth=0.7, tongue=1.0),
    ALVEOLAR: MouthShape(open=0.24, wide=0.66, round=0.0, teeth=0.9, tongue=0.15),
    POSTALV: MouthShape(open=0.28, wide=0.38, round=0.6, teeth=0.9),
    VELAR: MouthShape(open=0.42, wide=0.58, round=0.1, teeth=0.3),
    RHOTIC: MouthShape(open=0.30, wide=0.40, round=0.55, teeth=0.3),
}

VISEME_CLASSES: tuple[str, ...] = tuple(VISEME_SHAPES)

_GROUPS: dict[str, str] = {
    CLOSED: "m b p ɱ β ʙ",
    OPEN: "a ɑ æ ʌ ɐ ɶ aː ɑː ä",
    MID: "ɛ e ə ɚ ɜ ɝ ɘ ɵ ø œ ɞ ɤ ᵻ ɨ ʉ",
    SPREAD: "i ɪ j ɯ ʏ ç ʝ ɟ c ɥ",
    ROUND: "o ɔ ɒ ɞ",
    PUCKER: "u ʊ w y ʍ ɰ",
    TEETH_LIP: "f v ʋ",
    TONGUE: "θ ð",
    ALVEOLAR: "t d n l s z ɾ ɫ ɬ ɮ ɗ ʈ ɖ ɳ ɭ ɽ ʂ ʐ ɕ ʑ ts dz ɲ ʎ",
    POSTALV: "ʃ ʒ tʃ dʒ tɕ dʑ",
    VELAR: "k ɡ g ŋ h x ɣ ɦ ʔ q ɢ ɴ χ ʁ ħ ʕ ʀ ɧ kʰ",
    RHOTIC: "ɹ r ɻ ɺ ʀ",
}

#: Explicit symbol -> viseme class table (symbols as espeak-ng/Piper write them).
PHONEME_TO_VISEME: dict[str, str] = {}
for _cls, _syms in _GROUPS.items():
    for _s in _syms.split():
        PHONEME_TO_VISEME.setdefault(_s, _cls)
# ʀ is listed twice above on purpose (uvular trill reads as velar); keep the first.

#: Symbols that take the shape of the *following* phoneme.
CARRY_NEXT = frozenset("ˈˌ")
#: Symbols that take the shape of the *preceding* phoneme.
CARRY_PREV = frozenset("ːˑ_‿͡")
#: Symbols that are silence / rest.
REST_SYMBOLS = frozenset(" ^$.,!?;:-…—–\"'«»()[]{}|‖\n\t")

# Diacritics (combining marks) and superscript modifiers that don't change the shape.
_IGNORED_MARKS = frozenset("ʰʲʷˠˤⁿˡ̩̯̥̬̪̺̻̹̜̟̠̃̈̽˞ʼ")


def _strip_marks(sym: str) -> str:
    out = []
    for ch in sym:
        if ch in _IGNORED_MARKS or unicodedata.combining(ch):
            continue
        if ch in CARRY_NEXT or ch in "ːˑ":
            continue
        out.append(ch)
    return "".join(out)


@lru_cache(maxsize=4096)
def phoneme_to_viseme(sym: str) -> str:
    """The viseme class of one phoneme symbol.

    Returns one of ``VISEME_CLASSES``, or the pseudo-classes ``"next"`` (stress
    marks) / ``"prev"`` (length marks, pads) for modifiers that carry a
    neighbour's shape.  Unknown letters fall back to a neutral ``velar`` shape,
    anything else to ``rest``.
    """
    if sym == "":
        return REST
    if all(ch in CARRY_NEXT for ch in sym):
        return "next"
    if all(ch in CARRY_PREV for ch in sym):
        return "prev"
    if all(ch in REST_SYMBOLS or ch.isspace() for ch in sym):
        return REST
    if sym in PHONEME_TO_VISEME:
        return PHONEME_TO_VISEME[sym]
    base = _strip_marks(sym)
    if base in PHONEME_TO_VISEME:
        return PHONEME_TO_VISEME[base]
    if not base:
        # only modifiers: a stress mark with something, or a length mark
        return "next" if any(ch in CARRY_NEXT for ch in sym) else "prev"
    # multi-symbol string (diphthong written as one item): first vowel-ish char wins
    for ch in base:
        if ch in PHONEME_TO_VISEME:
            return PHONEME_TO_VISEME[ch]
    if any(ch.isalpha() for ch in base):
        return VELAR
    return REST


def _expand(phonemes: Iterable[TimedPhoneme]) -> list[tuple[int, int, str]]:
    """(start, end, class) spans; multi-letter items (diphthongs) are split evenly."""
    spans: list[tuple[int, int, str]] = []
    for p in phonemes:
        s, e = int(p.start), int(p.end)
        if e <= s:
            continue
        sym = p.phoneme
        cls = phoneme_to_viseme(sym)
        base = _strip_marks(sym)
        if len(base) >= 2 and base not in PHONEME_TO_VISEME and cls not in ("next", "prev", REST):
            parts = [phoneme_to_viseme(ch) for ch in base]
            parts = [c for c in parts if c not in ("next", "prev")] or [cls]
            n = len(parts)
            for i, c in enumerate(parts):
                a = s + (e - s) * i // n
                b = s + (e - s) * (i + 1) // n
                if b > a:
                    spans.append((a, b, c))
        else:
            spans.append((s, e, cls))
    spans.sort(key=lambda x: x[0])
    # resolve carriers
    n = len(spans)
    resolved: list[str] = [c for _, _, c in spans]
    for i in range(n):
        if resolved[i] == "prev":
            j = i - 1
            resolved[i] = resolved[j] if j >= 0 and resolved[j] not in ("next", "prev") else REST
    for i in range(n - 1, -1, -1):
        if resolved[i] == "next":
            j = i + 1
            resolved[i] = resolved[j] if j < n and resolved[j] not in ("next", "prev") else REST
    # a "prev" that pointed at a "next" (rare): fix after the backwards pass
    for i in range(n):
        if resolved[i] in ("next", "prev"):
            resolved[i] = REST
    return [(s, e, c) for (s, e, _), c in zip(spans, resolved)]


def _tri_cdf(x: np.ndarray, h: float) -> np.ndarray:
    """CDF of the symmetric triangular kernel on [-h, h]."""
    u = np.clip(x / h, -1.0, 1.0)
    return np.where(u < 0, 0.5 * (1 + u) ** 2, 1 - 0.5 * (1 - u) ** 2)


class VisemeTrack:
    """A phoneme sequence compiled for fast, smooth mouth-shape lookups.

    ``at(t)`` returns the blended mouth parameters at ``t`` samples (relative to
    the clip start, like the phoneme times).  Blending is a convolution of the
    per-phoneme targets with a triangular kernel of half-width ``blend_ms``;
    uncovered time (before, after, gaps) counts as rest.
    """

    def __init__(self, phonemes: Sequence[TimedPhoneme], blend_ms: float = 35.0, rate: int = CLOCK_RATE):
        self.half = max(1.0, blend_ms * rate / 1000.0)
        spans = _expand(phonemes)
        self.n = len(spans)
        self.starts = np.array([s for s, _, _ in spans], dtype=np.float64)
        self.ends = np.array([e for _, e, _ in spans], dtype=np.float64)
        self.classes = [c for _, _, c in spans]
        self.targets = (
            np.stack([VISEME_SHAPES[c].as_array() for c in self.classes])
            if spans else np.zeros((0, 5))
        )
        self.rest = VISEME_SHAPES[REST].as_array()
        # running max of ends lets us find every span overlapping a window even if spans overlap
        self._max_end = np.maximum.accumulate(self.ends) if spans else self.ends

    def viseme_at(self, t: float) -> str:
        """The (unblended) viseme class active at ``t``."""
        i = bisect.bisect_right(self.starts, t) - 1 if self.n else -1
        while i >= 0:
            if self.starts[i] <= t < self.ends[i]:
                return self.classes[i]
            if self._max_end[i] <= t:
                break
            i -= 1
        return REST

    def at_array(self, t: float) -> np.ndarray:
        if self.n == 0:
            return self.rest.copy()
        h = self.half
        lo_t, hi_t = t - h, t + h
        hi = int(np.searchsorted(self.starts, hi_t, side="left"))
        lo = int(np.searchsorted(self._max_end, lo_t, side="right"))
        if hi <= lo:
            return self.rest.copy()
        s = self.starts[lo:hi] - t
        e = self.ends[lo:hi] - t
        w = _tri_cdf(e, h) - _tri_cdf(s, h)
        w = np.clip(w, 0.0, None)
        total = float(w.sum())
        if total > 1.0:  # overlapping spans: normalise
            w = w / total
            total = 1.0
        return w @ self.targets[lo:hi] + (1.0 - total) * self.rest

    def at(self, t: float) -> MouthShape:
        return MouthShape.from_array(self.at_array(t))

    def sample(self, times: Sequence[float]) -> np.ndarray:
        """Shapes at many times: array (len(times), 5) [open, wide, round, teeth, tongue]."""
        return np.stack([self.at_array(float(t)) for t in times]) if len(times) else np.zeros((0, 5))
