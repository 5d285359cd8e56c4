"""bench/gpu.py at test sizes on the CPU: it runs end to end and writes a profile the planner loads."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("diffusers", reason="the neural extra: pip install -e '.[neural]'")
os.environ["HF_HUB_OFFLINE"] = "1"

from bench.gpu import main
from pipelines.plan.stage_profiles import load_profile


def test_the_gpu_check_runs_at_tiny_sizes_and_writes_a_profile(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    assert main(["--tiny", "--device", "cpu", "--batches", "1,4", "--seconds", "1", "--out-dir", str(tmp_path),
                 "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    lipsync = figures["lipsync"]
    assert set(lipsync["fps_by_batch"]) == {"1", "4"} and lipsync["best_batch"] in (1, 4)
    assert lipsync["streams_25fps"] == int(lipsync["fps_by_batch"][str(lipsync["best_batch"])] // 25)
    profile = load_profile(figures["profile"])
    assert profile.script is None and list(profile.video) == ["neural-360p"]
    assert profile.video["neural-360p"].rtf == pytest.approx(25 / lipsync["fps_by_batch"][str(lipsync["best_batch"])])
