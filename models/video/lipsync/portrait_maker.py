"""Host portraits made once by a text-to-image pipeline from a local folder, cached on disk.

``<weights>/text_to_image/`` is any diffusers text-to-image pipeline folder
(``model_index.json`` and its parts: SD-Turbo, SDXL-Turbo, FLUX.1-schnell class, a few
steps without guidance). A host's portrait comes from a prompt and a fixed seed, so a
host looks the same in every episode; it is cached by model, prompt, seed and size
(``STREAMWISE_PORTRAIT_CACHE``, default ``~/.cache/streamwise/portraits``). Made by
``streamwise portraits``, never on an episode's startup path.
"""
from __future__ import annotations

import hashlib
import os
import zlib
from pathlib import Path

import cv2
import numpy as np

from models.video.lipsync.weights import WeightsError

CACHE_DIR = Path(os.environ.get("STREAMWISE_PORTRAIT_CACHE", Path.home() / ".cache" / "streamwise" / "portraits"))
PROMPT = ("studio portrait photograph of {name}, a podcast host, head and shoulders, facing the camera, "
          "soft light, plain background")


def host_seed(name: str) -> int:
    """A host's fixed seed, from its name."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def cache_key(model_dir: Path, prompt: str, seed: int, size: int, steps: int) -> str:
    """Changes with the model (its index and configs), the prompt, the seed, the size and the steps."""
    h = hashlib.sha256(f"{prompt}\0{seed}\0{size}\0{steps}".encode())
    for config in sorted(model_dir.rglob("*.json")):
        h.update(config.relative_to(model_dir).as_posix().encode() + config.read_bytes())
    return h.hexdigest()[:24]


def make_portrait(model_dir: Path, prompt: str, seed: int, size: int, steps: int = 1, device: str = "cpu",
                  cache_dir: Path = CACHE_DIR) -> np.ndarray:
    """The portrait (RGB uint8, ``size`` x ``size``) for ``prompt`` and ``seed``, from the cache if made before."""
    if not (model_dir / "model_index.json").is_file():
        raise WeightsError(f"{model_dir / 'model_index.json'}: missing; the text-to-image folder is a diffusers pipeline")
    cached = cache_dir / f"{cache_key(model_dir, prompt, seed, size, steps)}.png"
    if cached.is_file():
        return cv2.cvtColor(cv2.imread(str(cached), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    import torch
    from diffusers import DiffusionPipeline

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    try:
        pipe = DiffusionPipeline.from_pretrained(model_dir, local_files_only=True, dtype=dtype).to(device)
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{model_dir}: cannot load the text-to-image pipeline ({exc})".split("\n")[0]) from None
    pipe.set_progress_bar_config(disable=True)
    image = pipe(prompt, num_inference_steps=steps, guidance_scale=0.0, height=size, width=size,
                 generator=torch.Generator(device).manual_seed(seed), output_type="np").images[0]
    rgb = (np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8)
    cache_dir.mkdir(parents=True, exist_ok=True)
    part = cached.with_name(f".{cached.name}.part.png")
    cv2.imwrite(str(part), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    part.replace(cached)
    return rgb
