"""A smoke run of the questions benchmark: a real server, one short episode in Chromium, one question typed in."""
from __future__ import annotations

import itertools
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.harness import CHROMIUM
from bench.interactive import (
    GAP_S,
    caption_body,
    heard,
    increments,
    random_moments,
    regular_moments,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.models
@pytest.mark.browser
def test_one_question_is_asked_heard_and_reported(tmp_path: Path) -> None:
    pytest.importorskip("playwright", reason="the Python playwright package is not installed")
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"no Chromium at {CHROMIUM}")
    out = tmp_path / "interactive.json"
    run = subprocess.run(
        [sys.executable, "bench/interactive.py", "--duration", "45", "--questions", "1", "--ask-from", "4",
         "--quiet-end", "33", "--seed", "3", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=420, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    summary = result["summary"]
    (episode,) = result["runs"][0]["episodes"]
    (question,) = episode["questions"]
    assert question["status"] == "answered", question
    assert question["media_s"] is not None and question["heard_ms"] is not None
    assert 0 < question["caption_s"] <= question["latency_s"] < 30
    assert summary["questions"] == summary["answered"] == summary["heard"] == 1
    assert summary["latency_p50_s"] == pytest.approx(question["latency_s"])
    assert "send -> first audible words of the reading" in run.stdout


def test_moments_captions_and_window_counts() -> None:
    """The pure parts: question moments, finding a reading in the captions, counting in windows."""
    moments = random_moments(random.Random(1), 5, 5, 150)
    assert len(moments) == 5 and 5 <= moments[0] and moments[-1] <= 150
    assert all(b - a >= GAP_S - 0.01 for a, b in itertools.pairwise(moments))
    with pytest.raises(SystemExit):
        random_moments(random.Random(1), 3, 5, 30)
    every = regular_moments(random.Random(1), 20, 5, 150)
    assert len(every) == 8 and all(b - a == pytest.approx(20) for a, b in itertools.pairwise(every))

    assert caption_body("Sam: Maya from the chat asks: why?") == "Maya from the chat asks: why?"
    data = {"captions": [{"t": 100.0, "text": "Sam: Maya from the chat asks: old?"},
                         {"t": 900.0, "text": "Ada: Great question, Maya! Well, Maya from the chat asks"},
                         {"t": 1200.0, "text": "Sam: Maya from the chat asks: why?"}]}
    assert heard(data, "Maya", 500.0)["t"] == 1200.0
    assert heard(data, "Omar", 0.0) is None

    samples = [{"t": 0.0, "n": 0}, {"t": 1.0, "n": 1}, {"t": 2.0, "n": 3}, {"t": 3.0, "n": 3}, {"t": 4.0, "n": 4}]
    assert increments(samples, "n", [(1.5, 2.5)]) == 2
    assert increments(samples, "n", [(0.5, 1.5), (3.5, 9.0)]) == 2
    assert increments(samples, "n", []) == 0
