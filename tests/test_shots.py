"""The shot planner: cuts only where a line starts, never shorter than the minimum, the same every run."""
from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from models.protocols import TWO_SHOT
from pipelines.config import CameraSpec
from pipelines.plan.shots import ShotPlanner
from pipelines.playout.clock import CLOCK_RATE
from pipelines.segments import SegmentText


def episode(n_lines: int = 80, seed: int = 1) -> list[tuple[SegmentText, int, int]]:
    """(segment, start sample, length in samples) for lines of one to three segments, hosts alternating."""
    rng = random.Random(seed)
    out, start, index = [], 0, 0
    for line in range(n_lines):
        parts = rng.randint(1, 3)
        for k in range(parts):
            n = int(rng.uniform(0.8, 4.0) * CLOCK_RATE)
            seg = SegmentText(index, line, line % 2, "AB"[line % 2], f"line {line}", ends_line=k == parts - 1)
            out.append((seg, start, n))
            start, index = start + n, index + 1
    return out


def plan(segments, topic: str = "why the sky is blue", camera: CameraSpec | None = None):
    planner = ShotPlanner(topic, camera)
    return [planner.shot(seg, start) for seg, start, _ in segments]


def test_cuts_fall_on_line_starts_and_no_shot_is_shorter_than_the_minimum() -> None:
    segments = episode()
    shots = plan(segments)
    cut_at = [i for i in range(1, len(shots)) if shots[i] != shots[i - 1]]
    assert len(cut_at) >= 10
    assert all(segments[i][0].line_index != segments[i - 1][0].line_index for i in cut_at)
    starts = [0] + [segments[i][1] for i in cut_at]
    assert all((b - a) / CLOCK_RATE >= CameraSpec().min_shot_s for a, b in zip(starts, starts[1:], strict=False))


def test_the_first_line_stays_in_the_two_shot() -> None:
    segments = episode()
    shots = plan(segments)
    assert all(shot == TWO_SHOT for (seg, _, _), shot in zip(segments, shots, strict=True) if seg.line_index == 0)


def test_mostly_the_speaker_sometimes_the_listener_and_the_two_shot_again() -> None:
    segments = episode(300)
    shots = plan(segments)
    speaker = sum(s.kind == "close_up" and s.host == seg.speaker for (seg, _, _), s in zip(segments, shots, strict=True))
    listener = sum(s.kind == "close_up" and s.host != seg.speaker for (seg, _, _), s in zip(segments, shots, strict=True))
    wide = sum(s == TWO_SHOT for s in shots)
    assert speaker > wide > 0 and listener > 0


def test_the_same_episode_gets_the_same_cuts_another_episode_others() -> None:
    segments = episode()
    assert plan(segments) == plan(segments)
    assert plan(segments) != plan(segments, topic="how bread rises")


def test_cuts_can_be_turned_off() -> None:
    assert set(plan(episode(), camera=CameraSpec(cuts=False))) == {TWO_SHOT}


def test_camera_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="at most 1"):
        CameraSpec(speaker_close_up=0.8, listener_close_up=0.3)
    with pytest.raises(ValidationError, match="min_shot_s"):
        CameraSpec(min_shot_s=0.2)
