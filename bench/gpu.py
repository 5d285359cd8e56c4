"""GPU check for the neural hosts: real-size networks with random weights (the timings are real,
the pictures are not).

Measures, on one device:
- lip-sync frames per second by batch size (MuseTalk-size UNet and VAE, whisper-tiny encoder);
- the first segment's frames after its audio exists (3 s of speech at 25 fps);
- how many concurrent 25 fps speaking streams the device sustains at the best batch;
- one portrait from an SD-Turbo-size text-to-image UNet and VAE (one step);
- peak GPU memory.
It writes ``configs/profiles/<device name>.yaml`` with the neural tiers' drawing costs, for a
deployment's ``quality.profile``. Figures, never assertions. Usage:
    .venv/bin/python bench/gpu.py                       # on CUDA, real sizes
    .venv/bin/python bench/gpu.py --tiny --device cpu   # the same code at test sizes (a smoke test)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: MuseTalk's generator (an SD-1.5-shaped UNet on 8 channels, whisper-tiny cross-attention),
#: sd-vae-ft-mse, whisper-tiny; SD-Turbo's (SD 2.1) UNet for portraits.
REAL = {
    "unet": dict(sample_size=32, in_channels=8, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=384, attention_head_dim=8,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3),
    "vae": dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
                block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, sample_size=256),
    "whisper": dict(vocab_size=51865, num_mel_bins=80, d_model=384, encoder_layers=4, encoder_attention_heads=6,
                    decoder_layers=4, decoder_attention_heads=6, encoder_ffn_dim=1536, decoder_ffn_dim=1536,
                    max_source_positions=1500, max_target_positions=448),
    "t2i_unet": dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                     block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=1024,
                     attention_head_dim=(5, 10, 20, 20), use_linear_projection=True,
                     down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                     up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3),
}
STREAM_FPS = 25


def build(sizes: dict, device: str):
    """The lip-sync networks built from configs, random weights, on ``device`` (fp16 on CUDA)."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import WhisperConfig, WhisperModel

    from models.video.lipsync.weights import LipSyncModels

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**sizes["unet"]).to(device, dtype).eval()
    vae = AutoencoderKL(**sizes["vae"]).to(device, dtype).eval()
    whisper = WhisperModel(WhisperConfig(**sizes["whisper"])).get_encoder().to(device, dtype).eval()
    crop = sizes["unet"]["sample_size"] * 2 ** (len(sizes["vae"]["block_out_channels"]) - 1)
    return LipSyncModels(unet, vae, whisper, device, dtype, crop)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(fn, device: str) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def speech(seconds: float) -> np.ndarray:
    return (np.random.default_rng(0).standard_normal(int(48_000 * seconds)) * 0.1).astype(np.float32)


def lipsync_figures(models, batches: list[int], seconds: float) -> dict:
    from models.video.lipsync.generator import LipSyncGenerator

    crop = (np.random.default_rng(1).random((models.crop_px, models.crop_px, 3)) * 255).astype(np.uint8)
    n = int(seconds * STREAM_FPS)
    pcm = speech(seconds)
    by_batch = {}
    for batch in batches:
        gen = LipSyncGenerator(models, batch=batch)
        face = gen.prepare(crop)
        gen.frames(face, pcm[:48_000 // 2], STREAM_FPS, min(n, batch))  # warm-up: kernels, allocator
        by_batch[batch] = n / timed(lambda g=gen, f=face: g.frames(f, pcm, STREAM_FPS, n), models.device)
    best = max(by_batch, key=by_batch.get)
    gen = LipSyncGenerator(models, batch=best)
    face = gen.prepare(crop)
    first = timed(lambda: gen.frames(face, speech(3.0), STREAM_FPS, 3 * STREAM_FPS), models.device)
    return {"fps_by_batch": {str(b): round(f, 2) for b, f in by_batch.items()}, "best_batch": best,
            "first_segment_s": round(first, 3), "streams_25fps": int(by_batch[best] // STREAM_FPS)}


def portrait_s(sizes: dict, device: str) -> float:
    """One step of a text-to-image UNet and a VAE decode at the portrait's size."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    unet = UNet2DConditionModel(**sizes["t2i_unet"]).to(device, dtype).eval()
    vae = AutoencoderKL(**sizes["vae"]).to(device, dtype).eval()
    side = sizes["t2i_unet"]["sample_size"]
    latents = torch.randn(1, 4, side, side, device=device, dtype=dtype)
    text = torch.randn(1, 77, sizes["t2i_unet"]["cross_attention_dim"], device=device, dtype=dtype)

    def once() -> None:
        with torch.no_grad():
            vae.decode(unet(latents, 999, encoder_hidden_states=text).sample)

    once()
    return timed(once, device)


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(device).replace(" ", "-").lower()
    return "cpu"


def write_profile(figures: dict, out_dir: Path, tiers: list[str]) -> Path:
    """The neural tiers' drawing cost as a profile (seconds of drawing per second of media)."""
    import yaml

    rtf = STREAM_FPS / figures["lipsync"]["fps_by_batch"][str(figures["lipsync"]["best_batch"])]
    fit = {"fixed_s": figures["lipsync"]["first_segment_s"] - 3.0 * rtf, "per_media_s": rtf, "rtf": rtf}
    fit["fixed_s"] = max(0.0, round(fit["fixed_s"], 4))
    profile = {"name": figures["device"], "created": figures["created"], "machine": {"device": figures["device"]},
               "video": {tier: fit for tier in tiers}}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{figures['device']}.yaml"
    path.write_text(f"# Written by bench/gpu.py: the neural tiers on this device ({figures['sizes']} sizes, random weights).\n"
                    + yaml.safe_dump(profile, sort_keys=False))
    return path


def report(f: dict) -> str:
    batches = " | ".join(f"{b}: {v} fps" for b, v in f["lipsync"]["fps_by_batch"].items())
    return "\n".join([
        f"### Neural hosts on {f['device']} ({f['sizes']} sizes, random weights), {f['created']}",
        "| measure | value |", "| --- | --- |",
        f"| lip-sync frames per second by batch | {batches} |",
        (f"| first segment's frames (3 s of speech) after its audio | {f['lipsync']['first_segment_s']} s "
         "(target on one H100: 0.5 s) |"),
        f"| concurrent 25 fps speaking streams | {f['lipsync']['streams_25fps']} (target on one H100: 4) |",
        f"| one portrait (text-to-image, one step) | {f['portrait_s']:.3f} s |",
        f"| peak GPU memory | {f['peak_gib']} GiB |",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default=None, help="cuda[:N] or cpu (default: cuda when present)")
    parser.add_argument("--tiny", action="store_true", help="test-size networks (a smoke test on the CPU)")
    parser.add_argument("--batches", default="1,4,8,16", help="batch sizes to time")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds of speech timed per batch size")
    parser.add_argument("--tiers", default="neural-360p", help="the deployment's neural tiers the profile names")
    parser.add_argument("--out-dir", type=Path, default=Path("configs/profiles"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.tiny:
        from tests.support.tiny_weights import TINY

        sizes = TINY | {"t2i_unet": TINY["unet"] | {"in_channels": 4}}
    else:
        sizes = REAL
    figures = {"device": device_name(device), "sizes": "tiny" if args.tiny else "real",
               "created": time.strftime("%Y-%m-%d"),
               "lipsync": lipsync_figures(build(sizes, device), [int(b) for b in args.batches.split(",")], args.seconds),
               "portrait_s": portrait_s(sizes, device)}
    figures["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.startswith("cuda") else None
    figures["profile"] = str(write_profile(figures, args.out_dir, args.tiers.split(",")))
    print(report(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
