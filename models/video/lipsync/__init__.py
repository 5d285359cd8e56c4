"""Neural lip sync: one-step latent inpainting of the lower half of a host's face crop.

The generator follows MuseTalk's design: a diffusers ``UNet2DConditionModel`` with 8
input channels (masked crop latents and reference latents) and cross-attention on
Whisper encoder features of the segment's audio, an ``AutoencoderKL`` for latents,
timestep 0. Weights load from a local folder only (``weights.py`` documents the
layout); torch, diffusers and transformers come with the ``neural`` extra.
"""
