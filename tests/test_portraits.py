"""Host portraits from a tiny text-to-image pipeline: made once per host, the same every time, cached."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("diffusers", reason="the neural extra: pip install -e '.[neural]'")
os.environ["HF_HUB_OFFLINE"] = "1"

from models.video.lipsync.portrait_maker import (
    PROMPT,
    cache_key,
    host_seed,
    make_portrait,
)
from models.video.lipsync.weights import WeightsError
from pipelines.config import CONFIG_DIR
from server.cli import main
from tests.support.tiny_weights import write_text_to_image


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_text_to_image(tmp_path_factory.mktemp("weights"))


def test_a_host_looks_the_same_every_time_and_hosts_differ(weights: Path, tmp_path: Path) -> None:
    model = weights / "text_to_image"
    alex = make_portrait(model, PROMPT.format(name="Alex"), host_seed("Alex"), 64, cache_dir=tmp_path / "a")
    again = make_portrait(model, PROMPT.format(name="Alex"), host_seed("Alex"), 64, cache_dir=tmp_path / "b")
    sam = make_portrait(model, PROMPT.format(name="Sam"), host_seed("Sam"), 64, cache_dir=tmp_path / "a")
    assert alex.shape == (64, 64, 3) and alex.dtype == np.uint8
    assert np.array_equal(alex, again), "a fixed seed per host"
    assert not np.array_equal(alex, sam)


def test_portraits_are_cached_by_model_prompt_seed_and_size(weights: Path, tmp_path: Path) -> None:
    model = weights / "text_to_image"
    make_portrait(model, "a", 1, 64, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.png"))) == 1
    keys = {cache_key(model, p, s, n, 1) for p, s, n in (("a", 1, 64), ("b", 1, 64), ("a", 2, 64), ("a", 1, 32))}
    assert len(keys) == 4
    marked = np.full((64, 64, 3), 200, np.uint8)
    cv2.imwrite(str(tmp_path / f"{cache_key(model, 'a', 1, 64, 1)}.png"), marked)
    assert np.array_equal(make_portrait(model, "a", 1, 64, cache_dir=tmp_path), marked), "read, not drawn again"


def test_the_portraits_command_makes_the_missing_ones(weights: Path, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.setattr("models.video.lipsync.portrait_maker.CACHE_DIR", tmp_path / "cache")
    deploy = str(CONFIG_DIR / "deploy" / "portrait.yaml")
    assert main(["portraits", "--deploy", deploy, "--weights", str(weights), "--size", "64"]) == 0
    made = sorted(p.name for p in (weights / "portraits").iterdir())
    assert made == ["alex.png", "sam.png"]
    before = (weights / "portraits" / "alex.png").stat().st_mtime_ns
    assert main(["portraits", "--deploy", deploy, "--weights", str(weights), "--size", "64"]) == 0
    assert (weights / "portraits" / "alex.png").stat().st_mtime_ns == before, "existing portraits are kept"


def test_a_folder_without_a_pipeline_is_named(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"text_to_image/model_index\.json: missing"):
        make_portrait(tmp_path / "text_to_image", "a", 1, 64, cache_dir=tmp_path)
