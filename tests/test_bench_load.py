"""A smoke run of the load benchmark at a tiny rate: a real server, a real episode, a real receiver."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.load import arrivals

pytestmark = [pytest.mark.slow, pytest.mark.models]
REPO = Path(__file__).resolve().parents[1]


def test_one_poisson_arrival_is_requested_watched_and_reported(tmp_path: Path) -> None:
    assert len(arrivals(0.3, 5, seed=7)) == 1, "this rate, time and seed give one arrival"
    out = tmp_path / "load.json"
    run = subprocess.run(
        [sys.executable, "bench/load.py", "--rates", "0.3", "--time", "5", "--seed", "7", "--viewers", "2",
         "--duration", "10", "--policies", "adaptive", "--json", str(out), "--png", str(tmp_path / "load.png")],
        cwd=REPO, capture_output=True, text=True, timeout=400, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    row = json.loads(out.read_text())["runs"][0]
    assert row["requested"] == row["admitted"] == 1 and row["refused"] == 0
    viewers = row["episodes"][0]["viewers"]
    assert len(viewers) == 2 and all(v["error"] is None and v["frames"] > 100 for v in viewers)
    assert all(v["first_frame_s"] is not None and v["first_speech_s"] is not None for v in viewers)
    assert row["frames_sent"].get("video/shared", 0) > 200, "the viewers were sent the shared frames"
    assert "highest arrival rate with goodput >= 95%" in run.stdout
    assert (tmp_path / "load.png").stat().st_size > 10_000
