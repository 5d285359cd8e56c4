"""Write a complete, tiny lip-sync weights folder with random weights, in the documented layout.

    python -m tests.support.tiny_weights DIR

The networks have the real architectures (diffusers ``UNet2DConditionModel`` and
``AutoencoderKL``, transformers ``WhisperModel``) at a small size, built from configs
with a fixed seed: loading and inference run the real code; the pictures are noise.
"""
from __future__ import annotations

import sys
from pathlib import Path

#: Whisper's real vocabulary size: a smaller one breaks the decoder's padding index.
WHISPER_VOCAB = 51_865
D_MODEL = 32


PORTRAITS = ("alex.png", "sam.png")
#: The lip-sync networks' configs at test size (bench/gpu.py holds the real sizes).
TINY = {
    "unet": dict(sample_size=8, in_channels=8, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
                 down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=D_MODEL, attention_head_dim=8,
                 norm_num_groups=8),
    "vae": dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, block_out_channels=(8, 8, 16),
                down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                norm_num_groups=8, sample_size=32),
    "whisper": dict(vocab_size=WHISPER_VOCAB, num_mel_bins=80, d_model=D_MODEL, encoder_layers=1,
                    encoder_attention_heads=2, decoder_layers=1, decoder_attention_heads=2, encoder_ffn_dim=64,
                    decoder_ffn_dim=64, max_source_positions=1500, max_target_positions=64),
}


def draw_portrait(path: Path, hue: int) -> None:
    """A plain head-and-shoulders picture with a face in the upper-middle square (the default box)."""
    import cv2
    import numpy as np

    img = np.full((320, 256, 3), (40 + hue, 60, 90), np.uint8)
    cv2.ellipse(img, (128, 110), (58, 72), 0, 0, 360, (150, 180, 220), -1)  # face (BGR)
    for x in (106, 150):
        cv2.circle(img, (x, 95), 7, (40, 40, 40), -1)
    cv2.ellipse(img, (128, 148), (22, 9), 0, 0, 360, (60, 60, 160), -1)  # mouth
    cv2.rectangle(img, (48, 220), (208, 320), (90, 70 + hue, 50), -1)  # shoulders
    cv2.imwrite(str(path), img)


def _byte_symbols() -> list[str]:
    """The 256 printable symbols byte-level BPE tokenizers (CLIP's) use for bytes."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def write_text_to_image(root: Path, seed: int = 0) -> Path:
    """A tiny Stable Diffusion pipeline at ``root/text_to_image`` (64 px images, one step),
    its CLIP tokenizer built here from a character vocabulary: no hub involved."""
    import json
    import tempfile

    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    symbols = _byte_symbols()
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols])}
    vocab |= {"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab))
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n")
        tokenizer = CLIPTokenizer(vocab_file=str(Path(tmp) / "vocab.json"), merges_file=str(Path(tmp) / "merges.txt"),
                                  model_max_length=32)
    end = vocab["<|endoftext|>"]
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=D_MODEL, intermediate_size=64, num_attention_heads=2, num_hidden_layers=1,
        max_position_embeddings=32, bos_token_id=vocab["<|startoftext|>"], eos_token_id=end, pad_token_id=end))
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=D_MODEL, attention_head_dim=8, norm_num_groups=8)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, block_out_channels=(8, 8, 16),
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        norm_num_groups=8, sample_size=64)
    StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                            scheduler=EulerDiscreteScheduler(timestep_spacing="trailing"), safety_checker=None,
                            feature_extractor=None, requires_safety_checker=False).save_pretrained(root / "text_to_image")
    return root


def write(root: Path, seed: int = 0) -> Path:
    """Write ``root/lipsync/{unet,vae,whisper}``, ``root/text_to_image/`` and ``root/portraits/*.png``."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import WhisperConfig, WhisperModel

    torch.manual_seed(seed)
    folder = root / "lipsync"
    UNet2DConditionModel(**TINY["unet"]).save_pretrained(folder / "unet")
    AutoencoderKL(**TINY["vae"]).save_pretrained(folder / "vae")
    WhisperModel(WhisperConfig(**TINY["whisper"])).save_pretrained(folder / "whisper")
    (root / "portraits").mkdir(parents=True, exist_ok=True)
    for n, name in enumerate(PORTRAITS):
        draw_portrait(root / "portraits" / name, hue=60 * n)
    return write_text_to_image(root, seed)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.support.tiny_weights DIR")
    print(write(Path(sys.argv[1])) / "lipsync")
