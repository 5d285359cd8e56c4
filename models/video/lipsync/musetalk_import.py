"""Import MuseTalk's released weights into the lip-sync folder's layout (weights.py).

MuseTalk ships its UNet as a plain state dict beside a ``musetalk.json`` of
``UNet2DConditionModel`` arguments, its VAE as the diffusers folder ``sd-vae``
(sd-vae-ft-mse) and, from v1.5 on, Whisper tiny as a transformers folder. The import
builds each network from its config, loads the weights, saves it with
``save_pretrained`` (safetensors) under ``<weights>/lipsync/`` and then loads the
result through the server's own loader, so a folder that imports is one that serves.
Nothing is fetched: every file comes from ``source``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models.video.lipsync.weights import REQUIRED, WeightsError, load

#: Where each part may sit in MuseTalk's ``models/`` folder, newest release first.
UNET_DIRS = ("musetalkV15", "musetalk")
UNET_WEIGHTS = ("unet.pth", "pytorch_model.bin")
VAE_DIRS = ("sd-vae", "sd-vae-ft-mse")
WHISPER_DIRS = ("whisper",)


def _first(source: Path, dirs: tuple[str, ...], files: tuple[str, ...], what: str) -> Path:
    for d in dirs:
        for f in files:
            if (source / d / f).is_file():
                return source / d / f
    tried = ", ".join(f"{d}/{f}" for d in dirs for f in files)
    raise WeightsError(f"{source}: no {what} found (looked for {tried})")


def _unet(source: Path) -> Any:
    """MuseTalk's UNet, built from ``musetalk.json`` with the state dict beside it loaded in."""
    import torch
    from diffusers import UNet2DConditionModel

    config_path = _first(source, UNET_DIRS, ("musetalk.json",), "UNet config")
    weights_path = _first(config_path.parent.parent, (config_path.parent.name,), UNET_WEIGHTS, "UNet weights")
    try:
        config = json.loads(config_path.read_text())
        unet = UNet2DConditionModel.from_config(config)
    except (OSError, ValueError, TypeError) as exc:
        raise WeightsError(f"{config_path}: not a UNet2DConditionModel config ({exc})") from None
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        unet.load_state_dict(state, strict=True)
    except (OSError, RuntimeError, TypeError, AttributeError, ValueError) as exc:
        first = str(exc).split("\n")[:2]
        raise WeightsError(f"{weights_path}: does not fit {config_path.name} ({' '.join(first)})") from None
    return unet


def _pretrained(source: Path, dirs: tuple[str, ...], loader: Any, what: str) -> Any:
    folder = _first(source, dirs, ("config.json",), what).parent
    try:
        return loader.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{folder}: cannot load the {what} ({exc})".split("\n")[0]) from None


def import_musetalk(source: Path, weights: Path) -> Path:
    """Write ``weights/lipsync/{unet,vae,whisper}`` from MuseTalk's ``models/`` folder ``source``;
    returns the lip-sync folder. ``WeightsError`` names the file when a part is missing or does not fit."""
    from diffusers import AutoencoderKL
    from transformers import WhisperModel

    if not source.is_dir():
        raise WeightsError(f"{source}: not a folder; give MuseTalk's models/ folder")
    parts = {
        "unet": _unet(source),
        "vae": _pretrained(source, VAE_DIRS, AutoencoderKL, "VAE (sd-vae-ft-mse)"),
        "whisper": _pretrained(source, WHISPER_DIRS, WhisperModel, "Whisper model (transformers whisper-tiny)"),
    }
    folder = weights / "lipsync"
    for part, model in parts.items():
        model.save_pretrained(folder / part, safe_serialization=True)
        if not (folder / part / REQUIRED[part][1]).is_file():
            raise WeightsError(f"{folder / part}: saving wrote no {REQUIRED[part][1]}")
    load(weights)  # the server's own checks: shapes that fit together, files that load
    return folder
