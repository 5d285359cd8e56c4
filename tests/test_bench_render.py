"""Smoke test of bench/render.py: it runs end to end and writes the JSON profile (timings are not checked)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.models]


@pytest.mark.timeout(1200)
def test_bench_quick_writes_profile(tmp_path):
    out = tmp_path / "profile.json"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "render.py"), "--quick", "--tiers", "240p", "--json", str(out)],
        cwd=tmp_path,  # the script must not depend on the working directory
        capture_output=True,
        text=True,
        timeout=1100,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "| Stage | Tier |" in proc.stdout, proc.stdout[-2000:]

    report = json.loads(out.read_text())
    assert report["schema"] == "streamwise.bench.render/1"
    assert {"nproc", "cpu_model", "loadavg_start"} <= set(report["machine"])
    for kind in ("script", "speech", "video"):
        assert {"load_s", "warm_s"} <= set(report["load"][kind])

    stages = report["stages"]
    figures = {"compute_s", "cpu_s", "media_s", "rtf"}
    assert figures <= set(stages["script"]) and "tokens_per_s" in stages["script"]
    assert figures <= set(stages["speech"])
    assert list(stages["video"]) == ["240p"] and list(stages["encode"]) == ["240p"]
    assert figures | {"frames", "i420_share", "supersample"} <= set(stages["video"]["240p"])
    assert figures | {"bytes", "kbit_per_s"} <= set(stages["encode"]["240p"])

    # Drawing split over the deployment's two workers: a speed-up per worker count.
    assert list(stages["parallel"]) == ["240p"] and set(stages["parallel"]["240p"]) == {"1", "2"}
    assert stages["parallel"]["240p"]["1"] == 1.0 and stages["parallel"]["240p"]["2"] > 0

    profile = report["profile"]
    assert {"script", "speech", "video", "encode", "parallel"} <= set(profile)
    assert list(profile["video"]) == ["240p"] and list(profile["encode"]) == ["240p"]

    streaming = report["streaming"]
    assert {"tier", "first_segment_s", "whole_episode_s", "whole_over_first"} <= set(streaming)
    assert streaming["first_segment_s"] is not None

    assert report["memory"]["peak_rss_mib"] > 0
    assert report["memory"]["phases"]
