"""The lip-sync weights folder: its layout, checked at load time, never mid-episode.

Layout of ``<weights>/lipsync/`` (diffusers and transformers ``save_pretrained`` folders)::

    unet/      config.json, diffusion_pytorch_model.safetensors   UNet2DConditionModel:
               in_channels 8 (masked + reference latents), out_channels 4,
               cross_attention_dim = the Whisper encoder's d_model
    vae/       config.json, diffusion_pytorch_model.safetensors   AutoencoderKL: latent_channels 4
    whisper/   config.json, model.safetensors                      WhisperModel (its encoder is used)

Everything loads with ``local_files_only=True``: nothing is fetched from a hub. A
missing file or a shape that does not match raises ``WeightsError`` naming the file
and what was expected.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Files each part needs, relative to the ``lipsync`` folder.
REQUIRED = {
    "unet": ("config.json", "diffusion_pytorch_model.safetensors"),
    "vae": ("config.json", "diffusion_pytorch_model.safetensors"),
    "whisper": ("config.json", "model.safetensors"),
}
#: Masked crop latents and reference latents, side by side.
UNET_IN_CHANNELS = 8
LATENT_CHANNELS = 4


class WeightsError(ValueError):
    """The weights folder is incomplete or its parts do not fit together; the message names the file."""


@dataclass
class LipSyncModels:
    """The three loaded networks, on one device and dtype, in eval mode."""

    unet: Any
    vae: Any
    whisper: Any  # the Whisper encoder
    device: str
    dtype: Any
    #: Side of the square face crop the VAE sees, in pixels.
    crop_px: int


def _config(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: cannot read the config: {exc}") from None


def check_layout(root: Path) -> dict[str, dict[str, Any]]:
    """The three configs, once every file exists and the shapes fit together."""
    folder = root / "lipsync"
    for part, files in REQUIRED.items():
        for name in files:
            if not (folder / part / name).is_file():
                raise WeightsError(f"{folder / part / name}: missing; the lip-sync folder needs "
                                   f"{', '.join(f'{p}/{f}' for p, fs in REQUIRED.items() for f in fs)}")
    configs = {part: _config(folder / part / "config.json") for part in REQUIRED}
    unet, vae, whisper = configs["unet"], configs["vae"], configs["whisper"]
    expected = [
        (unet.get("in_channels"), UNET_IN_CHANNELS, "unet/config.json: in_channels"),
        (unet.get("out_channels"), LATENT_CHANNELS, "unet/config.json: out_channels"),
        (vae.get("latent_channels"), LATENT_CHANNELS, "vae/config.json: latent_channels"),
        (unet.get("cross_attention_dim"), whisper.get("d_model"),
         "unet/config.json: cross_attention_dim (must equal whisper/config.json d_model)"),
    ]
    for found, wanted, what in expected:
        if found != wanted:
            raise WeightsError(f"{folder / what.split(':')[0]}: {what.split(': ', 1)[1]} is {found}, expected {wanted}")
    return configs


def load(root: Path, device: str = "cpu") -> LipSyncModels:
    """Load the lip-sync networks from ``root/lipsync`` onto ``device`` (fp16 on CUDA, fp32 on the CPU)."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.utils import logging as diffusers_logging
    from transformers import WhisperModel
    from transformers.utils import logging as transformers_logging

    configs = check_layout(root)
    folder = root / "lipsync"
    # Quiet by default: loading bars in a server's log say nothing an operator needs.
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    parts: dict[str, Any] = {}
    for part, loader in (("unet", UNet2DConditionModel), ("vae", AutoencoderKL), ("whisper", WhisperModel)):
        try:
            model = loader.from_pretrained(folder / part, local_files_only=True, dtype=dtype)
        except (OSError, ValueError, RuntimeError) as exc:
            raise WeightsError(f"{folder / part / REQUIRED[part][1]}: cannot load ({exc})".split("\n")[0]) from None
        parts[part] = model.to(device).eval()
    vae_blocks = len(configs["vae"].get("block_out_channels") or ())
    crop_px = int(configs["unet"].get("sample_size") or 32) * 2 ** max(0, vae_blocks - 1)
    return LipSyncModels(parts["unet"], parts["vae"], parts["whisper"].get_encoder(), device, dtype, crop_px)
