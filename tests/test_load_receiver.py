"""The load benchmark's receiver: first frame, first content and freezes from packet timings alone."""
from __future__ import annotations

from itertools import pairwise
from types import SimpleNamespace

import pytest
from conftest import run_async

from bench import load_receiver
from bench.load import arrivals, good
from bench.load_receiver import Viewer

FPS = 25
TICK = 90_000 // FPS


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(load_receiver, "time", fake)
    return fake


def feed(viewer: Viewer, clock: Clock, frames: list[tuple[float, int]]) -> None:
    """Frames as (arrival time, RTP timestamp), each one packet with the marker bit."""
    for at, ts in frames:
        clock.now = at
        run_async(viewer.video_packet(SimpleNamespace(marker=1, timestamp=ts % (1 << 32)), 0))


def steady(start: float, ts0: int, n: int) -> list[tuple[float, int]]:
    return [(start + k / FPS, ts0 + k * TICK) for k in range(n)]


def test_the_waiting_card_is_the_first_frame_and_content_starts_at_the_streams_rate(clock: Clock) -> None:
    viewer = Viewer(FPS, requested_at=100.0)
    cards = [(100.3, 0), (100.8, 12 * TICK)]  # two still cards, half a second apart
    feed(viewer, clock, cards + steady(101.0, 25 * TICK, 50))
    r = viewer.result
    assert r.first_frame_s == pytest.approx(0.3)
    assert r.first_content_s == pytest.approx(1.0)
    assert r.freezes == 0 and r.frames == 52, "the cards' half-second gaps are no freeze"


def test_jitter_within_the_playout_delay_is_no_freeze(clock: Clock) -> None:
    viewer = Viewer(FPS, requested_at=100.0)
    frames = steady(100.0, 0, 50)
    late = [(at + (0.15 if 20 <= k < 24 else 0.0), ts) for k, (at, ts) in enumerate(frames)]
    feed(viewer, clock, sorted(late))
    assert viewer.result.freezes == 0


def test_frames_held_back_longer_than_the_playout_delay_freeze_once(clock: Clock) -> None:
    viewer = Viewer(FPS, requested_at=100.0)
    frames = steady(100.0, 0, 40)
    held = [(max(at, 101.4) if 20 <= k < 30 else at, ts) for k, (at, ts) in enumerate(frames)]  # 0.6 s gap
    feed(viewer, clock, held)
    r = viewer.result
    assert r.freezes == 1 and r.frozen_s == pytest.approx(0.6 - 0.2 + 1 / FPS, abs=0.05)
    assert r.freeze_at_s == [pytest.approx(1.4)]


def test_a_stall_on_the_server_freezes_even_with_timestamps_that_wait(clock: Clock) -> None:
    """Content that stops (no frames for a second) and resumes later on the clock is a freeze."""
    viewer = Viewer(FPS, requested_at=100.0)
    feed(viewer, clock, steady(100.0, 0, 25) + steady(102.0, 50 * TICK, 25))
    assert viewer.result.freezes == 1


def feed_audio(viewer: Viewer, clock: Clock, packets: list[tuple[float, int]]) -> None:
    """Audio packets as (arrival time, RTP timestamp at 48 kHz), empty (never decoded)."""
    for at, ts in packets:
        clock.now = at
        run_async(viewer.audio_packet(SimpleNamespace(timestamp=ts % (1 << 32), payload=b""), 0))


def audio(start: float, ts0: int, n: int) -> list[tuple[float, int]]:
    return [(start + k * 0.02, ts0 + k * 960) for k in range(n)]


def test_audio_that_keeps_its_pace_has_no_gap_even_with_jitter(clock: Clock) -> None:
    viewer = Viewer(FPS, requested_at=100.0)
    jittery = [(at + (0.1 if k % 7 == 3 else 0.0), ts) for k, (at, ts) in enumerate(audio(100.0, 0, 200))]
    feed_audio(viewer, clock, jittery)
    assert viewer.result.audio_gaps == 0


def test_audio_sent_slower_than_it_plays_is_heard_as_gaps(clock: Clock) -> None:
    """The sender falls behind real time (its timestamps advance 20 ms a packet, its packets
    come every 25 ms): the listener's buffer runs dry, again and again."""
    viewer = Viewer(FPS, requested_at=100.0)
    feed_audio(viewer, clock, [(100.0 + k * 0.025, k * 960) for k in range(200)])
    r = viewer.result
    assert r.audio_gaps >= 5 and r.audio_late_s > 0.75
    assert not good({"status_code": 201, "viewers": [{"first_frame_s": 0.5, "freezes": 0, "audio_gaps": r.audio_gaps}]})


def test_a_late_burst_of_audio_is_one_gap_and_playback_resumes_behind(clock: Clock) -> None:
    viewer = Viewer(FPS, requested_at=100.0)
    feed_audio(viewer, clock, audio(100.0, 0, 50) + audio(101.6, 50 * 960, 50))
    assert viewer.result.audio_gaps == 1
    assert viewer.result.audio_late_s == pytest.approx(0.6 - 0.2, abs=0.03)


def test_arrivals_are_poisson_at_the_rate() -> None:
    instants = arrivals(0.5, 2000, seed=3)
    assert len(instants) == pytest.approx(1000, rel=0.1) and instants == sorted(instants)
    gaps = [b - a for a, b in pairwise(instants)]
    assert sum(g < 2.0 for g in gaps) / len(gaps) == pytest.approx(1 - 2.718 ** -1, abs=0.05)


def test_goodput_needs_every_viewer_started_in_time_and_unfrozen() -> None:
    ok = {"first_frame_s": 0.5, "freezes": 0, "error": None}
    assert good({"status_code": 201, "viewers": [ok, ok]})
    assert not good({"status_code": 201, "viewers": [ok, {**ok, "first_frame_s": 1.2}]})
    assert not good({"status_code": 201, "viewers": [ok, {**ok, "freezes": 1}]})
    assert not good({"status_code": 503, "viewers": []})
