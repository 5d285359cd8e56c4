"""Phoneme -> viseme mapping and smooth mouth-shape tracks (models/video/visemes.py)."""
from __future__ import annotations

import numpy as np
import pytest

from models.protocols import CLOCK_RATE, TimedPhoneme
from models.video.visemes import (
    CLOSED,
    OPEN,
    PUCKER,
    REST,
    ROUND,
    SPREAD,
    TEETH_LIP,
    TONGUE,
    VISEME_CLASSES,
    VISEME_SHAPES,
    VisemeTrack,
    phoneme_to_viseme,
)

MS = CLOCK_RATE // 1000


def seq(symbols, dur_ms=80, start=0):
    out, t = [], start
    for s in symbols:
        out.append(TimedPhoneme(s, t, t + dur_ms * MS))
        t += dur_ms * MS
    return tuple(out)


@pytest.mark.parametrize(
    "sym,cls",
    [
        ("m", CLOSED), ("b", CLOSED), ("p", CLOSED),
        ("a", OPEN), ("ɑ", OPEN), ("æ", OPEN), ("ʌ", OPEN),
        ("o", ROUND), ("ɔ", ROUND),
        ("u", PUCKER), ("ʊ", PUCKER), ("w", PUCKER),
        ("i", SPREAD), ("ɪ", SPREAD), ("j", SPREAD),
        ("f", TEETH_LIP), ("v", TEETH_LIP),
        ("θ", TONGUE), ("ð", TONGUE),
        (" ", REST), ("!", REST), ("?", REST), (",", REST), (".", REST), ("^", REST), ("$", REST), ("", REST),
    ],
)
def test_known_symbols(sym, cls):
    assert phoneme_to_viseme(sym) == cls


def test_shape_classes_are_distinct_groups():
    assert phoneme_to_viseme("ə") == phoneme_to_viseme("ɛ") == phoneme_to_viseme("e")
    assert phoneme_to_viseme("t") == phoneme_to_viseme("d") == phoneme_to_viseme("s") == phoneme_to_viseme("z")
    assert phoneme_to_viseme("ʃ") == phoneme_to_viseme("tʃ") == phoneme_to_viseme("dʒ")
    assert phoneme_to_viseme("ɡ") == phoneme_to_viseme("k") == phoneme_to_viseme("ŋ")  # espeak writes U+0261
    # different mouth shapes, not just open/closed
    a, o, i, m = (VISEME_SHAPES[phoneme_to_viseme(s)] for s in "aoim")
    assert a.open > i.open > m.open == 0
    assert o.round > a.round and i.wide > o.wide


#: Symbols Piper/espeak-ng write, space-separated.
PIPER_SYMBOLS = "h ə l ˈ o ʊ ð ɛ ɹ ! ? $ ^ ː ɚ ɪ z s k a u b m p f v θ ʃ tʃ dʒ w j ŋ æ ɑ ɔ ʌ i e ɐ ɾ ʔ ᵻ ɜ ɡ x ç ø y ɲ ʁ _ ˌ aɪ oʊ ɜː"


def test_every_piper_symbol_maps_to_a_class():
    syms = PIPER_SYMBOLS.split()
    syms.append(" ")
    for s in syms:
        c = phoneme_to_viseme(s)
        assert c in VISEME_CLASSES or c in ("next", "prev"), (s, c)
    assert phoneme_to_viseme("ˈ") == "next" and phoneme_to_viseme("ˌ") == "next"
    assert phoneme_to_viseme("ː") == "prev"
    assert phoneme_to_viseme("q̃") == phoneme_to_viseme("q")  # diacritics are ignored
    assert phoneme_to_viseme("7") == REST


def test_modifiers_carry_neighbour_shape():
    tr = VisemeTrack(seq(["m", "ˈ", "o", "ː", "m"], dur_ms=200), blend_ms=10)
    # stress mark (second span) takes the next vowel's shape, length mark (4th) the previous one
    assert tr.viseme_at(300 * MS) == ROUND
    assert tr.viseme_at(700 * MS) == ROUND
    assert tr.viseme_at(100 * MS) == CLOSED
    mid_stress = tr.at(300 * MS)
    assert mid_stress.round == pytest.approx(VISEME_SHAPES[ROUND].round)


def test_holds_target_and_rests_outside():
    tr = VisemeTrack(seq([" ", "a", " "], dur_ms=300))
    mid = tr.at(450 * MS)
    assert mid == VISEME_SHAPES[OPEN]
    assert tr.at(-10_000) == VISEME_SHAPES[REST]
    assert tr.at(10 * CLOCK_RATE) == VISEME_SHAPES[REST]
    assert VisemeTrack(()).at(0) == VISEME_SHAPES[REST]


def test_blending_is_smooth_no_flicker():
    # fast alternation of closed / open-wide phonemes
    tr = VisemeTrack(seq(["m", "a"] * 10, dur_ms=70), blend_ms=35)
    ts = np.arange(0, 1400 * MS, MS)
    shapes = tr.sample(ts)
    d = np.abs(np.diff(shapes, axis=0)).max()
    assert d < 0.05  # at most ~1/35 of the full range per millisecond
    # ...but the mouth still moves a lot between the two shapes
    assert shapes[:, 0].max() > 0.6 and shapes[:, 0].min() < 0.2
    # a very short phoneme between two of the same class does not snap the mouth
    tr2 = VisemeTrack((TimedPhoneme("a", 0, 300 * MS), TimedPhoneme("m", 300 * MS, 305 * MS),
                       TimedPhoneme("a", 305 * MS, 600 * MS)), blend_ms=35)
    assert tr2.at(302 * MS).open > 0.85


def test_coarticulation_starts_before_the_phoneme():
    tr = VisemeTrack(seq([" ", "a"], dur_ms=200), blend_ms=35)
    assert tr.at(190 * MS).open > 0.1  # anticipates the vowel 10 ms early
    assert tr.at(150 * MS).open == 0.0  # but not 50 ms early


def test_unsorted_overlapping_and_degenerate_input():
    ph = (TimedPhoneme("a", 4800, 9600), TimedPhoneme("m", 0, 4800), TimedPhoneme("o", 5000, 5000),
          TimedPhoneme("i", 9000, 12000))
    tr = VisemeTrack(ph)
    for t in range(-1000, 14000, 97):
        v = tr.at_array(t)
        assert np.all(np.isfinite(v)) and np.all(v >= -1e-9) and np.all(v <= 1 + 1e-9)


def test_diphthong_written_as_one_item_is_split():
    tr = VisemeTrack((TimedPhoneme("aɪ", 0, 400 * MS),), blend_ms=5)
    assert tr.viseme_at(50 * MS) == OPEN
    assert tr.viseme_at(350 * MS) == SPREAD
