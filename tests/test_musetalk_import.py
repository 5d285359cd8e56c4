"""MuseTalk's released layout (a UNet state dict beside musetalk.json, sd-vae, whisper) imports
into the lip-sync folder and serves; a missing or mismatched file is named."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="the neural extra: pip install -e '.[neural]'")
os.environ["HF_HUB_OFFLINE"] = "1"

from models.video.lipsync.generator import LipSyncGenerator
from models.video.lipsync.weights import load
from server.cli import main
from tests.support.tiny_weights import TINY


def musetalk_release(root: Path, seed: int = 3) -> Path:
    """A tiny folder laid out as MuseTalk v1.5 releases its models/: random weights, real formats."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import WhisperConfig, WhisperModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**TINY["unet"])
    (root / "musetalkV15").mkdir(parents=True)
    (root / "musetalkV15" / "musetalk.json").write_text(json.dumps(dict(unet.config)))
    torch.save(unet.state_dict(), root / "musetalkV15" / "unet.pth")
    AutoencoderKL(**TINY["vae"]).save_pretrained(root / "sd-vae", safe_serialization=False)
    WhisperModel(WhisperConfig(**TINY["whisper"])).save_pretrained(root / "whisper", safe_serialization=False)
    return root


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return musetalk_release(tmp_path_factory.mktemp("musetalk") / "models")


def test_the_release_imports_and_draws_with_its_own_weights(release: Path, tmp_path: Path) -> None:
    import torch

    assert main(["import-musetalk", str(release), "--weights", str(tmp_path)]) == 0
    models = load(tmp_path)
    original = torch.load(release / "musetalkV15" / "unet.pth", weights_only=True)
    imported = models.unet.state_dict()
    assert original.keys() == imported.keys()
    assert all(torch.equal(original[k], imported[k]) for k in original), "the released weights, unchanged"
    generator = LipSyncGenerator(models, batch=4)
    crop = np.full((models.crop_px, models.crop_px, 3), 128, np.uint8)
    frames = generator.frames(generator.prepare(crop), np.zeros(48_000, np.float32), fps=25, n_frames=5)
    assert frames.shape == (5, models.crop_px, models.crop_px, 3)


def test_a_missing_unet_is_named(release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    partial = tmp_path / "models"
    partial.mkdir()
    (partial / "musetalkV15").mkdir()
    (partial / "musetalkV15" / "musetalk.json").write_text((release / "musetalkV15" / "musetalk.json").read_text())
    assert main(["import-musetalk", str(partial), "--weights", str(tmp_path / "out")]) == 2
    assert "no UNet weights found (looked for musetalkV15/unet.pth" in capsys.readouterr().err


def test_weights_of_another_shape_are_named(release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    other = tmp_path / "models"
    other.mkdir()
    for part in ("sd-vae", "whisper"):
        (other / part).symlink_to(release / part)
    (other / "musetalkV15").mkdir()
    config = json.loads((release / "musetalkV15" / "musetalk.json").read_text())
    (other / "musetalkV15" / "musetalk.json").write_text(json.dumps({**config, "block_out_channels": [8, 16]}))
    torch.save(torch.load(release / "musetalkV15" / "unet.pth", weights_only=True), other / "musetalkV15" / "unet.pth")
    assert main(["import-musetalk", str(other), "--weights", str(tmp_path / "out")]) == 2
    assert "unet.pth: does not fit musetalk.json" in capsys.readouterr().err
