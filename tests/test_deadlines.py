"""An episode's deadlines count from where its furthest viewer is, not only from the planned start.

A viewer who stalled plays everything after the stall that much later: segments due on the
planned clock would all look overdue (drawn at the floor tier, queued ahead of other
episodes' work that is due sooner), and the episode's lead would read as negative.
"""
from __future__ import annotations

import time

import pytest

from pipelines.playout import clock
from pipelines.stages.episode_clock import EpisodeClock

RATE = clock.CLOCK_RATE
MARGIN = 0.5


def _started(viewers_at, first_words: float) -> EpisodeClock:
    """An episode whose first spoken segment (2 s to 6 s of clock) has been handed to the
    viewers, its first words planned to play at ``first_words`` (monotonic seconds)."""
    timing = EpisodeClock(0.0, MARGIN, viewers_at)
    timing.intro = 2 * RATE
    timing.released(6 * RATE)
    timing.origin = first_words
    return timing


def test_with_viewers_on_schedule_deadlines_follow_the_planned_clock() -> None:
    start = time.monotonic()
    on_time = _started(lambda: 2 * RATE + clock.to_samples(time.monotonic() - start), start)
    nobody = _started(lambda: None, start)
    assert on_time.deadline(10 * RATE) == pytest.approx(nobody.deadline(10 * RATE), abs=0.05)
    assert nobody.deadline(10 * RATE) == pytest.approx(start + 8.0 - MARGIN, abs=0.01)
    assert on_time.lead_s() == pytest.approx(4.0, abs=0.05)


def test_a_stalled_viewer_moves_the_deadlines_later_by_the_stall() -> None:
    # Three seconds after the first words, the viewer has played one: it waited two.
    start = time.monotonic() - 3.0
    nobody = _started(lambda: None, start)
    stalled = _started(lambda: 3 * RATE, start)
    assert stalled.deadline(10 * RATE) - nobody.deadline(10 * RATE) == pytest.approx(2.0, abs=0.05)
    assert stalled.lead_s() == pytest.approx(3.0, abs=0.05), "6 s ready, the viewer at 3 s"
    assert nobody.lead_s() == pytest.approx(1.0, abs=0.05)


def test_a_viewer_in_the_intro_reaches_the_first_words_when_its_intro_ends() -> None:
    start = time.monotonic()
    in_intro = _started(lambda: 1 * RATE, start)  # one second of the two-second intro left
    assert in_intro.deadline(2 * RATE) == pytest.approx(start + 1.0 - MARGIN, abs=0.05)
    assert in_intro.lead_s() == pytest.approx(1.0 + 4.0, abs=0.05)
    late = _started(lambda: 1 * RATE, start + 3.0)  # planned to start later than that
    assert late.deadline(2 * RATE) == pytest.approx(start + 3.0 - MARGIN, abs=0.05)


def test_the_clock_starts_at_the_first_spoken_segment_and_a_splice_cuts_what_is_ready() -> None:
    timing = EpisodeClock(5.0, MARGIN, lambda: None)
    planned = timing.origin
    assert timing.lead_s() == 0.0 and timing.furthest() == 0
    timing.released(4 * RATE)
    assert timing.origin == planned, "handed over before the startup target: the plan holds"
    timing.cut(3 * RATE)
    assert timing.ready_end == 3 * RATE and timing.settled() == 3 * RATE
    timing.cut(5 * RATE)
    assert timing.ready_end == 3 * RATE, "a cut after the end changes nothing"
