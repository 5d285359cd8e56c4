from pathlib import Path

import pytest
import yaml

from pipelines.config import (
    DEFAULT_DEPLOYMENT,
    ConfigError,
    load_deployment,
    load_workflow,
)


def test_shipped_configs_are_valid():
    wf = load_workflow()
    dep = load_deployment(workflow=wf)
    assert [t.name for t in dep.quality.ladder] == ["240p", "360p", "480p", "720p"]
    assert dep.grid_samples() == 1920


def _write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "deploy.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def _deploy() -> dict:
    return yaml.safe_load(DEFAULT_DEPLOYMENT.read_text())


def test_bad_fps_names_file_field_and_allowed(tmp_path):
    data = _deploy()
    data["quality"]["ladder"][0]["fps"] = 24
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_deployment(path)
    msg = str(err.value)
    assert str(path) in msg and "quality.ladder.0.fps" in msg and "15, 25 or 30" in msg


def test_unknown_default_tier(tmp_path):
    data = _deploy()
    data["quality"]["default"] = "4k"
    with pytest.raises(ConfigError, match="unknown tier '4k'"):
        load_deployment(_write(tmp_path, data))


def test_typo_in_field_is_reported(tmp_path):
    data = _deploy()
    data["segmenter"]["max_wrds"] = 5
    with pytest.raises(ConfigError, match="segmenter.max_wrds: unknown field"):
        load_deployment(_write(tmp_path, data))


def test_workflow_rejects_unknown_inputs_and_cycles(tmp_path):
    p = tmp_path / "wf.yaml"
    p.write_text(yaml.safe_dump({"name": "x", "tasks": {
        "script": {"kind": "script", "inputs": ["video"]},
        "speech": {"kind": "speech", "inputs": ["script"]},
        "video": {"kind": "video", "inputs": ["speech"]},
    }}))
    with pytest.raises(ConfigError, match="cycle"):
        load_workflow(p)
    p.write_text(yaml.safe_dump({"name": "x", "tasks": {"script": {"kind": "script", "inputs": ["nope"]}}}))
    with pytest.raises(ConfigError, match="unknown input 'nope'"):
        load_workflow(p)


def test_deployment_must_cover_workflow(tmp_path):
    data = _deploy()
    del data["tasks"]["video"]
    with pytest.raises(ConfigError, match="no adapter for workflow task"):
        load_deployment(_write(tmp_path, data), load_workflow())


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_deployment(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_deployment(bad)
