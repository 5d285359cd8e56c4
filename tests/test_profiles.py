import json
from pathlib import Path

import pytest

from pipelines.config import ConfigError
from pipelines.plan import stage_profiles
from pipelines.plan.stage_figures import Timer, fit_line, fitted_figures, stage_figures
from pipelines.plan.stage_profiles import load_profile, measure, profile_from_bench

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
    """A profile without split figures (measured with a single worker): splits are planned as ideal."""
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


def test_fit_line_recovers_a_line_and_refuses_noise():
    assert fit_line([(1.0, 0.6), (2.0, 1.1), (4.0, 2.1)]) == {"fixed_s": 0.1, "per_media_s": 0.5}
    assert fit_line([(1.0, 0.6), (2.0, 1.1)]) is None, "two points always fit: no evidence of a line"
    assert fit_line([(2.0, 0.6), (2.0, 1.1), (2.0, 0.9)]) is None, "one segment length: no slope to fit"


def test_stage_figures_are_per_media_second():
    assert stage_figures(3.0, 4.5, 10.0) == {"compute_s": 3.0, "cpu_s": 4.5, "media_s": 10.0, "rtf": 0.3,
                                             "cpu_per_media_s": 0.45}
    assert stage_figures(1.0, 1.0, 0.0)["rtf"] is None, "no media: no real-time factor"
    timer = Timer()
    timer.wall, timer.cpu = 2.0, 2.0
    figures = fitted_figures(timer, 8.0, [(2.0, 0.5), (2.0, 0.5), (4.0, 1.0)])
    assert figures["fit"] == {"fixed_s": 0.0, "per_media_s": 0.25}
    assert figures["segments"] == [[2.0, 0.5], [2.0, 0.5], [4.0, 1.0]]


def test_measure_writes_the_figures_measured_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """What measure() writes is what the same figures make once through bench/render.py's JSON."""
    seen: list[tuple[float, str | None]] = []

    def fake_figures(duration_s: float, deploy: str | None) -> dict[str, object]:
        seen.append((duration_s, deploy))
        return BENCH

    monkeypatch.setattr(stage_profiles, "_measure_figures", fake_figures)
    path = measure("ci", 15.0, "configs/deploy/local.yaml", out_dir=tmp_path / "profiles")
    assert path == tmp_path / "profiles" / "ci.yaml" and seen == [(15.0, "configs/deploy/local.yaml")]
    text = path.read_text()
    assert text.startswith("# Written by `streamwise profile`: seconds of compute per second of media on this machine.\n")
    assert text.splitlines()[1:3] == ["name: ci", "created: '2026-11-29T14:32:09'"], "field order of the model"
    assert load_profile(path) == profile_from_bench("ci", json.loads(json.dumps(BENCH)))
    assert [p.name for p in path.parent.iterdir()] == ["ci.yaml"], "no partial file left behind"


@pytest.mark.slow
@pytest.mark.models
def test_streamwise_profile_measures_this_machine(tmp_path: Path):
    import subprocess
    import sys

    from bench.harness import REPO_ROOT

    result = subprocess.run([sys.executable, "-m", "server.cli", "profile", "--name", "ci", "--duration", "15",
                             "--out-dir", str(tmp_path)], check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    profile = load_profile(tmp_path / "ci.yaml")
    assert set(profile.video) == {"240p", "360p", "480p", "720p"}
    assert all(fit.rtf > 0 for fit in profile.video.values())
    assert profile.video["720p"].rtf > profile.video["240p"].rtf, "a bigger, supersampled tier costs more"
    assert set(profile.encode) == set(profile.video) and all(fit.rtf > 0 for fit in profile.encode.values())
    assert set(profile.parallel) == set(profile.video)
    assert all(s[1] == 1.0 and 0 < s[2] < 3 for s in profile.parallel.values()), "two workers cannot draw three times as fast as one"
    assert profile.name == "ci" and {"nproc", "cpu_model", "loadavg_start", "loadavg_end"} <= set(profile.machine)
    assert (tmp_path / "ci.yaml").read_text().startswith("# Written by `streamwise profile`")
