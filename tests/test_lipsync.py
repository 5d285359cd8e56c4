"""Neural lip sync on tiny random-weight networks: the real loading and inference code, on the CPU."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="the neural extra: pip install -e '.[neural]'")
os.environ["HF_HUB_OFFLINE"] = "1"

from models.video.lipsync.generator import LipSyncGenerator, mouth_mask
from models.video.lipsync.weights import WeightsError, load
from tests.support.tiny_weights import write

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def generator(weights: Path) -> LipSyncGenerator:
    return LipSyncGenerator(load(weights), batch=4)


def face(size: int) -> np.ndarray:
    return (np.random.default_rng(7).random((size, size, 3)) * 255).astype(np.uint8)


def speech(seed: int, seconds: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(48_000 * seconds)) * 0.2).astype(np.float32)


def test_a_segment_has_its_frames_at_the_crop_size(generator: LipSyncGenerator) -> None:
    size = generator.models.crop_px
    frames = generator.frames(generator.prepare(face(size)), speech(1, 1.2), fps=25, n_frames=30)
    assert frames.shape == (30, size, size, 3) and frames.dtype == np.uint8


def test_audio_changes_only_the_mouth_region(generator: LipSyncGenerator) -> None:
    size = generator.models.crop_px
    prepared = generator.prepare(face(size))
    a = generator.frames(prepared, speech(1), fps=25, n_frames=10).astype(int)
    b = generator.frames(prepared, speech(2), fps=25, n_frames=10).astype(int)
    changed = np.abs(a - b).max(axis=(0, 3)) > 0
    assert changed.any(), "different audio must draw a different mouth"
    assert not (changed & (mouth_mask(size)[..., 0] == 0)).any(), "nothing changes outside the mouth region"
    assert (a[:, : size // 2] == face(size)[None, : size // 2]).all(), "the upper face is the portrait's own"


def test_the_audio_prompt_is_musetalks(generator: LipSyncGenerator) -> None:
    """Per frame: 10 feature vectors (two frames either side at 25 fps) of every encoder layer,
    flattened time-major, zeros before the audio starts, plus the sinusoidal position code."""
    import torch

    features = generator.audio_features(speech(1, 2.0))
    layers, d = features.shape[1], features.shape[2]
    assert features.shape[0] == 100 and layers == generator.models.whisper.config.encoder_layers + 1
    prompts = generator._conditions(features, n_frames=50, fps=25)
    assert prompts.shape == (50, 10 * layers, d)
    code = generator._positions(10 * layers, d, prompts)[0]
    assert torch.allclose(prompts[0, : 4 * layers], code[: 4 * layers]), "before the audio: the code alone"
    window = features[20:30].reshape(-1, d)  # frame 12 at 25 fps: vectors 24-4 .. 24+5
    assert torch.allclose(prompts[12], window + code)


def test_the_same_inputs_give_the_same_frames(weights: Path, generator: LipSyncGenerator) -> None:
    size = generator.models.crop_px
    first = generator.frames(generator.prepare(face(size)), speech(3), fps=25, n_frames=8)
    again = LipSyncGenerator(load(weights), batch=4)  # a fresh load: nothing random at run time
    assert np.array_equal(first, again.frames(again.prepare(face(size)), speech(3), fps=25, n_frames=8))


def test_a_missing_file_is_named_at_load(weights: Path, tmp_path: Path) -> None:
    broken = tmp_path / "w"
    shutil.copytree(weights, broken)
    (broken / "lipsync" / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(WeightsError, match=r"lipsync/vae/diffusion_pytorch_model\.safetensors: missing"):
        load(broken)


def test_a_config_that_does_not_fit_is_named_at_load(weights: Path, tmp_path: Path) -> None:
    broken = tmp_path / "w"
    shutil.copytree(weights, broken)
    config = broken / "lipsync" / "unet" / "config.json"
    config.write_text(json.dumps(json.loads(config.read_text()) | {"cross_attention_dim": 64}))
    with pytest.raises(WeightsError, match=r"unet.*cross_attention_dim .* is 64, expected 32"):
        load(broken)


def test_weights_of_another_shape_are_named_at_load(weights: Path, tmp_path: Path) -> None:
    broken = tmp_path / "w"
    shutil.copytree(weights, broken)
    other = write(tmp_path / "other", seed=1)
    config = other / "lipsync" / "vae" / "config.json"
    config.write_text(json.dumps(json.loads(config.read_text()) | {"block_out_channels": [8, 16, 16]}))
    from diffusers import AutoencoderKL

    AutoencoderKL.from_config(json.loads(config.read_text())).save_pretrained(other / "lipsync" / "vae")
    shutil.copy(other / "lipsync" / "vae" / "diffusion_pytorch_model.safetensors",
                broken / "lipsync" / "vae" / "diffusion_pytorch_model.safetensors")
    with pytest.raises(WeightsError, match=r"lipsync/vae/diffusion_pytorch_model\.safetensors: cannot load"):
        load(broken)


def test_the_tiny_weights_command_writes_the_documented_layout(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "tests.support.tiny_weights", str(tmp_path)], cwd=REPO,
                            capture_output=True, text=True, timeout=300, check=False,
                            env=os.environ | {"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "lipsync").iterdir()) == ["unet", "vae", "whisper"]
    assert load(tmp_path).crop_px == 32
