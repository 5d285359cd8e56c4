"""An episode's deadlines count from where its furthest viewer is, not only from the planned start.

A viewer who stalled plays everything after the stall that much later: segments due on the
planned clock would all look overdue (drawn at the floor tier, queued ahead of other
episodes' work that is due sooner), and the episode's lead would read as negative.
"""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from pipelines.config import load_deployment
from pipelines.playout import clock
from pipelines.segments import EpisodeRequest
from pipelines.stages.pools import StagePools
from pipelines.stages.runtime import EpisodeRuntime

RATE = clock.CLOCK_RATE


@pytest.fixture
def pools():
    pools = StagePools()
    yield pools
    pools.shutdown()


def _started(pools: StagePools, viewers_at, first_words: float) -> EpisodeRuntime:
    """An episode whose first spoken segment (2 s to 6 s of clock) has been handed to the
    viewers, its first words planned to play at ``first_words`` (monotonic seconds)."""
    runtime = EpisodeRuntime(None, load_deployment(), pools, EpisodeRequest(topic="how tides work", duration_s=30.0),
                             viewers_at=viewers_at)
    runtime._intro_samples = 2 * RATE
    runtime._released(SimpleNamespace(end=6 * RATE))
    runtime._origin = first_words
    return runtime


def test_with_viewers_on_schedule_deadlines_follow_the_planned_clock(pools) -> None:
    start = time.monotonic()
    on_time = _started(pools, lambda: 2 * RATE + clock.to_samples(time.monotonic() - start), start)
    nobody = _started(pools, lambda: None, start)
    assert on_time.deadline(10 * RATE) == pytest.approx(nobody.deadline(10 * RATE), abs=0.05)
    assert on_time.lead_s() == pytest.approx(4.0, abs=0.05)


def test_a_stalled_viewer_moves_the_deadlines_later_by_the_stall(pools) -> None:
    # Three seconds after the first words, the viewer has played one: it waited two.
    start = time.monotonic() - 3.0
    nobody = _started(pools, lambda: None, start)
    stalled = _started(pools, lambda: 3 * RATE, start)
    assert stalled.deadline(10 * RATE) - nobody.deadline(10 * RATE) == pytest.approx(2.0, abs=0.05)
    assert stalled.lead_s() == pytest.approx(3.0, abs=0.05), "6 s ready, the viewer at 3 s"
    assert nobody.lead_s() == pytest.approx(1.0, abs=0.05)


def test_a_viewer_still_in_the_intro_reaches_the_first_words_at_the_planned_start_or_later(pools) -> None:
    start = time.monotonic()
    in_intro = _started(pools, lambda: 1 * RATE, start)  # one second of the two-second intro left
    margin = load_deployment().runtime.deadline_margin_s
    assert in_intro.deadline(2 * RATE) == pytest.approx(start + 1.0 - margin, abs=0.05)
    assert in_intro.lead_s() == pytest.approx(1.0 + 4.0, abs=0.05)
    late = _started(pools, lambda: 1 * RATE, start + 3.0)  # planned to start later than that
    assert late.deadline(2 * RATE) == pytest.approx(start + 3.0 - margin, abs=0.05)
