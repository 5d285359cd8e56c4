"""Smoke test of bench/render.py: it runs end to end and writes the JSON profile.

Timings are never compared with expected values (the machines are noisy); the figures are
checked against each other and against what the run was asked for.
"""
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
        check=False,
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

    # Every stage after the script runs over the same voiced segments: the same media, segment by segment.
    script, speech, video, encode = stages["script"], stages["speech"], stages["video"]["240p"], stages["encode"]["240p"]
    assert report["args"] == {"duration": 20.0, "topic": "why the sky is blue", "tiers": ["240p"], "quick": True}
    assert speech["n_segments"] == script["n_segments"] == len(speech["segments"]) == len(video["segments"])
    assert script["media_s"] == pytest.approx(video["media_s"], abs=1e-3) == encode["media_s"]
    assert 0 < speech["media_s"] <= video["media_s"], "the timeline is the audio plus the pauses between lines"
    assert (video["height"], video["fps"]) == (240, encode["fps"]) and video["frames"] == encode["frames"]
    assert abs(video["frames"] - video["media_s"] * video["fps"]) < 1, "segments are padded so that frames tile them"
    for stage in (script, speech, video, encode):
        assert stage["rtf"] == pytest.approx(stage["compute_s"] / stage["media_s"], abs=1e-3)

    # Drawing split over the deployment's two workers: a speed-up per worker count.
    assert list(stages["parallel"]) == ["240p"] and set(stages["parallel"]["240p"]) == {"1", "2"}
    assert stages["parallel"]["240p"]["1"] == 1.0
    assert 0 < stages["parallel"]["240p"]["2"] < 3, "two workers cannot draw three times as fast as one"

    profile = report["profile"]
    assert {"script", "speech", "video", "encode", "parallel"} <= set(profile)
    assert profile["video"] == {"240p": video["rtf"]} and profile["encode"] == {"240p": encode["rtf"]}
    assert (profile["script"], profile["speech"], profile["parallel"]) == (script["rtf"], speech["rtf"], stages["parallel"])

    streaming = report["streaming"]
    assert {"tier", "first_segment_s", "whole_episode_s", "whole_over_first"} <= set(streaming)
    assert 0 < streaming["first_segment_s"] <= streaming["whole_episode_s"]
    assert streaming["whole_over_first"] == pytest.approx(streaming["whole_episode_s"] / streaming["first_segment_s"], rel=0.01)

    memory = report["memory"]
    assert list(memory["phases"]) == ["load + warm-up", "streaming render", "script", "speech",
                                      "video + encode 240p", "video over N workers"]
    assert memory["peak_rss_mib"] >= max(memory["phases"].values()) > 0
