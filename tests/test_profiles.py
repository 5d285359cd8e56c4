import json
from pathlib import Path

import pytest

from pipelines.config import ConfigError
from pipelines.plan.stage_profiles import load_profile, profile_from_bench

BENCH = {
    "created": "2026-11-29T14:32:09",
    "machine": {"nproc": 2},
    "stages": {
        "script": {"rtf": 0.08, "fit": {"fixed_s": 0.1, "per_media_s": 0.07}},
        "speech": {"rtf": 0.07, "fit": {"fixed_s": -0.01, "per_media_s": 0.08}},
        "video": {"240p": {"rtf": 0.03, "fit": {"fixed_s": 0.01, "per_media_s": 0.02}},
                  "720p": {"rtf": 0.28}},
        "encode": {"240p": {"rtf": 0.04}},
        "parallel": {"240p": {"1": 1.0, "2": 1.41}, "720p": {"1": 1.0, "2": 1.83}},
    },
}


def test_profile_from_bench_round_trips(tmp_path: Path):
    profile = profile_from_bench("ci", BENCH)
    assert profile.video_rtf() == {"240p": 0.03, "720p": 0.28}
    assert profile.video["720p"].per_media_s == 0.28, "no fit: the real-time factor is the slope"
    assert profile.parallel == {"240p": {1: 1.0, 2: 1.41}, "720p": {1: 1.0, 2: 1.83}}
    path = tmp_path / "ci.yaml"
    import yaml

    path.write_text(yaml.safe_dump(profile.model_dump()))
    assert load_profile(path) == profile


def test_bad_profile_names_the_field(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps({"name": "x", "created": "now", "script": {"per_media_s": -1, "rtf": 0.1},
                                "speech": {"per_media_s": 0.1, "rtf": 0.1}, "video": {}}))
    with pytest.raises(ConfigError, match="script.per_media_s"):
        load_profile(path)


def test_a_profile_without_split_figures_still_loads(tmp_path: Path):
    """Profiles written before worker counts were measured: splits are planned as ideal."""
    bench = {k: v for k, v in BENCH.items() if k != "stages"} | {
        "stages": {k: v for k, v in BENCH["stages"].items() if k != "parallel"}}
    assert profile_from_bench("old", bench).parallel == {}


def test_a_speed_up_that_is_not_positive_names_the_field(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps({"name": "x", "created": "now", "script": {"per_media_s": 0.1, "rtf": 0.1},
                                "speech": {"per_media_s": 0.1, "rtf": 0.1}, "video": {},
                                "parallel": {"240p": {"2": 0}}}))
    with pytest.raises(ConfigError, match="parallel"):
        load_profile(path)


@pytest.mark.slow
@pytest.mark.models
def test_streamwise_profile_measures_this_machine(tmp_path: Path):
    import subprocess
    import sys

    from bench.harness import REPO_ROOT

    result = subprocess.run([sys.executable, "-m", "server.cli", "profile", "--name", "ci", "--duration", "15",
                             "--out-dir", str(tmp_path)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    profile = load_profile(tmp_path / "ci.yaml")
    assert set(profile.video) == {"240p", "360p", "480p", "720p"}
    assert all(fit.rtf > 0 for fit in profile.video.values())
    assert profile.video["720p"].rtf > profile.video["240p"].rtf, "a bigger, supersampled tier costs more"
    assert set(profile.parallel) == set(profile.video) and all(s[1] == 1.0 and s[2] > 0 for s in profile.parallel.values())
