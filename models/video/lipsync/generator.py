"""Frames of a speaking face from its audio: Whisper features in, the crop's lower half repainted.

Per face, once (``prepare``): the crop's latents as the reference, and its latents
with the lower half blanked as what the UNet repaints. Per segment: the Whisper
encoder's hidden states of its audio (resampled to 16 kHz), every layer's; for each
video frame the window of them around its time, flattened to one token sequence with
a sinusoidal position code added (MuseTalk's audio prompt, so its released weights
fit); one UNet step at timestep 0, a VAE decode, and the result pasted into the crop
through a feathered mask of its lower half, so nothing outside the mouth and jaw
region changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import soxr

from models.protocols import CLOCK_RATE
from models.video.lipsync.weights import LipSyncModels

WHISPER_RATE = 16_000
#: Whisper's encoder gives one feature vector per 20 ms of audio, and reads 30 s at a time.
FEATURES_PER_S = 50
CHUNK_S = 30
#: Video frames (at 25 fps) of audio on each side of a frame that condition it.
PAD_FRAMES = 2
#: Feature vectors per video frame at 25 fps, and so per conditioning window.
PER_FRAME = 2
WINDOW = PER_FRAME * (2 * PAD_FRAMES + 1)
#: Where the repainted region starts, as a fraction of the crop's height.
MOUTH_FROM = 0.5


@dataclass
class PreparedFace:
    """A face crop ready to animate: its latents and the mask that pastes new pixels back."""

    crop: np.ndarray  # (crop_px, crop_px, 3) uint8 RGB
    reference: Any  # torch latents (1, 4, h, w)
    masked: Any  # torch latents of the crop with its lower half blanked
    mask: np.ndarray  # (crop_px, crop_px, 1) float32 in 0..1, 1 where pixels are repainted


def mouth_mask(size: int, feather_px: int | None = None) -> np.ndarray:
    """1 over the lower half of a square crop, fading to 0 over ``feather_px`` above it and at the sides."""
    feather = feather_px if feather_px is not None else max(1, size // 16)
    mask = np.zeros((size, size), np.float32)
    top = int(size * MOUTH_FROM)
    mask[top + feather:, feather:size - feather] = 1.0
    mask = cv2.blur(mask, (2 * feather + 1, 2 * feather + 1))
    mask[: top] = 0.0
    return mask[..., None]


class LipSyncGenerator:
    """Draws a face's speaking frames with the loaded networks; deterministic for the same inputs."""

    def __init__(self, models: LipSyncModels, batch: int = 8) -> None:
        from transformers import WhisperFeatureExtractor

        self.models = models
        self.batch = batch
        whisper = models.whisper.config
        self.features = WhisperFeatureExtractor(feature_size=whisper.num_mel_bins, sampling_rate=WHISPER_RATE,
                                                chunk_length=whisper.max_source_positions * 2 // 100)
        self.scale = float(getattr(models.vae.config, "scaling_factor", 1.0))

    def _to_latents(self, image: np.ndarray) -> Any:
        import torch

        x = torch.from_numpy(image).to(self.models.device, self.models.dtype).permute(2, 0, 1)[None] / 127.5 - 1.0
        with torch.no_grad():
            return self.models.vae.encode(x).latent_dist.mode() * self.scale

    def prepare(self, crop: np.ndarray) -> PreparedFace:
        """Once per face: ``crop`` is RGB uint8 of the model's crop size."""
        size = self.models.crop_px
        if crop.shape != (size, size, 3):
            raise ValueError(f"face crop is {crop.shape}, expected ({size}, {size}, 3)")
        blanked = crop.copy()
        blanked[int(size * MOUTH_FROM):] = 0
        return PreparedFace(crop, self._to_latents(crop), self._to_latents(blanked), mouth_mask(size))

    def audio_features(self, pcm: np.ndarray) -> Any:
        """Whisper encoder hidden states (every layer's) of clock-rate audio: (n, layers, d_model), 50 a second."""
        import torch

        audio = soxr.resample(pcm.astype(np.float32), CLOCK_RATE, WHISPER_RATE)
        step = CHUNK_S * WHISPER_RATE
        parts = []
        for start in range(0, max(1, len(audio)), step):
            chunk = audio[start:start + step]
            mel = self.features(chunk, sampling_rate=WHISPER_RATE, return_tensors="pt").input_features
            with torch.no_grad():
                states = self.models.whisper(mel.to(self.models.device, self.models.dtype),
                                             output_hidden_states=True).hidden_states
            n = max(1, int(np.ceil(len(chunk) / WHISPER_RATE * FEATURES_PER_S)))
            parts.append(torch.stack(states, dim=2)[0, :n])
        return torch.cat(parts)

    def _conditions(self, features: Any, n_frames: int, fps: float) -> Any:
        """For each frame, the ``WINDOW`` feature vectors from ``PAD_FRAMES`` frames before its time on,
        zeros beyond the audio, every layer's, flattened time-major with the position code added:
        (n_frames, WINDOW * layers, d)."""
        import torch

        pad = PER_FRAME * PAD_FRAMES
        starts = (np.arange(n_frames) / fps * FEATURES_PER_S).astype(int)
        rows = torch.from_numpy(starts[:, None] + np.arange(WINDOW)[None] - pad).to(features.device)
        inside = ((rows >= 0) & (rows < features.shape[0]))[..., None, None]
        window = features[rows.clamp(0, features.shape[0] - 1)] * inside
        flat = window.reshape(n_frames, -1, features.shape[-1])
        return flat + self._positions(flat.shape[1], flat.shape[2], flat)

    @staticmethod
    def _positions(n: int, d: int, like: Any) -> Any:
        """The sinusoidal position code of ``n`` tokens of width ``d`` (sines on even, cosines on odd)."""
        import torch

        position = torch.arange(n, dtype=torch.float32)[:, None]
        rate = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-np.log(10_000.0) / d))
        code = torch.zeros(n, d)
        code[:, 0::2] = torch.sin(position * rate)
        code[:, 1::2] = torch.cos(position * rate[: d // 2])
        return code.to(like.device, like.dtype)[None]

    def frames(self, face: PreparedFace, pcm: np.ndarray, fps: float, n_frames: int, first: int = 0) -> np.ndarray:
        """RGB crops ``first .. n_frames-1`` of the face speaking ``pcm`` (clock-rate mono float):
        the same frames whichever range is asked for."""
        import torch

        conditions = self._conditions(self.audio_features(pcm), n_frames, fps)
        latents_in = torch.cat([face.masked, face.reference], dim=1)
        out = []
        with torch.no_grad():
            # Batches sit at multiples of ``batch`` whatever range is asked for: a frame is
            # computed in the same batch, so with the same numbers, by every worker.
            aligned = first - first % self.batch
            for start in range(aligned, n_frames, self.batch):
                cond = conditions[start:start + self.batch]
                x = latents_in.expand(cond.shape[0], -1, -1, -1)
                latents = self.models.unet(x, 0, encoder_hidden_states=cond).sample
                images = self.models.vae.decode(latents / self.scale).sample
                out.append(((images.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy())
        drawn = np.concatenate(out)[first - aligned:] if out else np.zeros((0, *face.crop.shape), np.uint8)
        blended = face.mask[None] * drawn.astype(np.float32) + (1 - face.mask[None]) * face.crop[None].astype(np.float32)
        return blended.round().astype(np.uint8)
