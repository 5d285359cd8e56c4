"""``PortraitAnimator`` (adapter ``lipsync``): the portrait look, two photo hosts in one studio frame.

A look is kept for a whole episode; within it each segment's tier decides how the
speaking host's mouth moves:

- a *floor* tier (any tier not in ``neural_tiers``) runs on the CPU with no network:
  the lower half of the face is stretched by the viseme track's opening scaled by the
  voice's loudness, a jaw that opens and closes with the words;
- a *neural* tier repaints the lower half of the face crop with the lip-sync network
  (generator.py) from the segment's audio.

Both hosts blink; the listener is its portrait with a slow idle sway. Networks and portraits load when
the adapter is built, so a missing file stops the server at start, never an episode.
"""
from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from models.protocols import CLOCK_RATE, Quality, SceneInfo, VisualSegment
from models.video.lipsync.portraits import Portrait, load_portrait
from models.video.lipsync.weights import WeightsError
from models.video.visemes import VisemeTrack

#: How far the jaw opens at full loudness, as a fraction of the face's lower half.
JAW_OPEN = 0.14
#: Loudness is measured over this window around each frame.
ENVELOPE_S = 0.04
#: A blink's half-length, in seconds.
BLINK_S = 0.06
#: The band of the face box where the eyes are, as fractions of its height.
EYES = (0.28, 0.46)
BACKGROUND = ((18, 22, 34), (38, 44, 66))
ACCENT = (79, 140, 255)


def frame_count(n_samples: int, fps: int) -> int:
    return math.ceil(n_samples / (CLOCK_RATE // fps))


def loudness(pcm: np.ndarray, n_frames: int, fps: int) -> np.ndarray:
    """0..1 per frame: the RMS around each frame's instant over the segment's loudest."""
    spf = CLOCK_RATE // fps
    half = int(ENVELOPE_S * CLOCK_RATE / 2)
    rms = np.array([np.sqrt(np.mean(np.square(pcm[max(0, i * spf - half):i * spf + half] if len(pcm) else [0.0])))
                    for i in range(n_frames)], np.float32)
    peak = float(rms.max()) if rms.size else 0.0
    return rms / peak if peak > 0 else rms


def jaw_openings(seg: VisualSegment, first: int, last: int, fps: int) -> np.ndarray:
    """0..1 per frame: the voice's loudness, opened further on open vowels and less on closed
    consonants by the viseme track of the phoneme timings; loudness alone without phonemes."""
    loud = loudness(seg.pcm, last, fps)[first:last]
    if not seg.phonemes:
        return loud
    spf = CLOCK_RATE // fps
    shapes = VisemeTrack(seg.phonemes).sample([n * spf for n in range(first, last)])
    return np.clip(loud * (0.25 + 0.75 * shapes[:, 0]), 0.0, 1.0)


def blink(clock: int, host: int) -> float:
    """0..1: how closed a host's eyes are at episode time ``clock``; a short blink every few
    seconds, at times that differ per host and never line up across a segment boundary."""
    t = clock / CLOCK_RATE + host * 1.9
    period = 4.3 + 0.7 * host
    phase = (t % period) / BLINK_S
    return float(max(0.0, 1.0 - abs(phase - 1.0))) if phase < 2.0 else 0.0


def close_eyes(image: np.ndarray, box: tuple[int, int, int, int], amount: float) -> np.ndarray:
    """The portrait with the eye band of its face box drawn shut by ``amount`` (lids from above)."""
    if amount <= 0.0:
        return image
    x, y, w, h = box
    top, bottom = y + int(h * EYES[0]), y + int(h * EYES[1])
    lid = round((bottom - top) * amount)
    if lid <= 0:
        return image
    out = image.copy()
    skin = out[max(0, top - 2):top, x:x + w].mean(axis=0, keepdims=True) if top > 0 else out[top:top + 1, x:x + w]
    out[top:top + lid, x:x + w] = skin.astype(out.dtype)
    return out


def open_jaw(crop: np.ndarray, amount: float) -> np.ndarray:
    """The face crop with its lower half stretched down by ``amount`` (0..1) of ``JAW_OPEN``."""
    h = crop.shape[0]
    lower = crop[h // 2:]
    grown = round(lower.shape[0] * (1 + JAW_OPEN * amount))
    if grown <= lower.shape[0]:
        return crop
    out = crop.copy()
    out[h // 2:] = cv2.resize(lower, (crop.shape[1], grown), interpolation=cv2.INTER_LINEAR)[: lower.shape[0]]
    return out


class PortraitAnimator:
    """Implements ``models.protocols.Animator`` over two portraits; deterministic and thread-safe."""

    name = "lipsync"

    def __init__(self, portraits: list[str], weights: str | None = None, face_boxes: list[list[int]] | None = None,
                 neural_tiers: list[str] | None = None, device: str = "cpu", batch: int = 8) -> None:
        root = weights or os.environ.get("STREAMWISE_WEIGHTS")
        if not root:
            raise WeightsError("the lipsync animator needs a weights folder: pass --weights DIR or set STREAMWISE_WEIGHTS")
        self.root = Path(root)
        if len(portraits) != 2:
            raise WeightsError(f"portraits: name two image files (one per host), got {len(portraits)}")
        boxes = face_boxes or [None, None]
        if len(boxes) != 2:
            raise WeightsError(f"face_boxes: give one [x, y, w, h] per host (two), got {len(boxes)}")
        self.portraits = [load_portrait(self._path(p), box) for p, box in zip(portraits, boxes, strict=True)]
        self.neural_tiers = frozenset(neural_tiers or ())
        self._generator = None
        self._faces: list = []
        self._panels: dict[tuple[int, int, int], np.ndarray] = {}
        self._lock = threading.Lock()
        if self.neural_tiers:
            from models.video.lipsync.generator import LipSyncGenerator
            from models.video.lipsync.weights import load

            self._generator = LipSyncGenerator(load(self.root, device), batch=batch)

    def _path(self, name: str) -> Path:
        path = Path(name)
        return path if path.is_absolute() else self.root / "portraits" / path

    # -------------------------------------------------------------- the protocol
    def warm_up(self) -> None:
        self._prepared()

    def title_card(self, scene: SceneInfo, quality: Quality, t_s: float) -> np.ndarray:
        frame = self._compose(quality, [p.image for p in self.portraits], speaking=None, clock=0)
        _caption(frame, scene.title, quality, top=True)
        return frame

    def idle_frame(self, scene: SceneInfo, quality: Quality, clock: int) -> np.ndarray:
        return self._compose(quality, [p.image for p in self.portraits], speaking=None, clock=clock)

    def render(self, scene: SceneInfo, seg: VisualSegment, quality: Quality, frames: tuple[int, int] | None = None,
               size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
        n_total = frame_count(seg.n_samples, quality.fps)
        first, last = frames if frames is not None else (0, n_total)
        last = min(last, n_total)
        speaker = self.portraits[seg.speaker]
        faces = self._faces_for(seg, quality, first, last)
        name = scene.hosts[seg.speaker] if seg.speaker < len(scene.hosts) else ""
        spf = quality.samples_per_frame
        for k, face in enumerate(faces):
            images = [p.image for p in self.portraits]
            images[seg.speaker] = _with_face(speaker, face)
            frame = self._compose(quality, images, speaking=seg.speaker, clock=seg.start + (first + k) * spf)
            _caption(frame, f"{name}: {seg.caption}" if name else seg.caption, quality)
            yield frame if size is None else cv2.resize(frame, size, interpolation=cv2.INTER_AREA)

    # -------------------------------------------------------------- faces
    def _prepared(self) -> list:
        with self._lock:
            if self._generator is not None and not self._faces:
                size = self._generator.models.crop_px
                self._faces = [self._generator.prepare(cv2.resize(p.crop(), (size, size), interpolation=cv2.INTER_AREA))
                               for p in self.portraits]
            return self._faces

    def _faces_for(self, seg: VisualSegment, quality: Quality, first: int, last: int) -> list[np.ndarray]:
        """The speaking host's face crop for frames ``first .. last-1``, at the portrait's box size."""
        portrait = self.portraits[seg.speaker]
        if quality.name in self.neural_tiers and self._generator is not None:
            prepared = self._prepared()[seg.speaker]
            crops = self._generator.frames(prepared, seg.pcm, quality.fps, last, first=first)
            side = portrait.box[2]
            return [cv2.resize(c, (side, side), interpolation=cv2.INTER_LINEAR) for c in crops]
        amounts = jaw_openings(seg, first, last, quality.fps)
        crop = portrait.crop()
        return [open_jaw(crop, float(a)) for a in amounts]

    # -------------------------------------------------------------- the frame
    def panel(self, quality: Quality, host: int) -> tuple[int, int, int, int]:
        """Where a host's portrait sits in the frame, before its sway: x, y, width, height."""
        image = self.portraits[host].image
        panel_h = int(quality.height * 0.72)
        panel_w = min(int(image.shape[1] * panel_h / image.shape[0]), quality.width // 2 - 16)
        x = quality.width // 4 - panel_w // 2 + host * (quality.width // 2)
        return x, int(quality.height * 0.06), panel_w, panel_h

    def mouth_box(self, quality: Quality, host: int) -> tuple[int, int, int, int]:
        """The lower half of a host's face in the frame (x0, y0, x1, y1): where its mouth moves."""
        px, py, pw, ph = self.panel(quality, host)
        image = self.portraits[host].image
        sx, sy = pw / image.shape[1], ph / image.shape[0]
        x, y, w, h = self.portraits[host].box
        return int(px + x * sx), int(py + (y + h / 2) * sy), int(px + (x + w) * sx), int(py + (y + h) * sy)

    def _compose(self, quality: Quality, images: list[np.ndarray], speaking: int | None, clock: int) -> np.ndarray:
        """Both portraits side by side on the studio background; the speaker framed in the accent."""
        frame = _background(quality.width, quality.height)
        for host, image in enumerate(images):
            image = close_eyes(image, self.portraits[host].box, blink(clock, host))
            x, y, panel_w, panel_h = self.panel(quality, host)
            panel = self._scaled(host, image, panel_w, panel_h)
            y = max(0, y + round(2 * math.sin(2 * math.pi * clock / CLOCK_RATE / 3.0 + host * 1.7)))
            frame[y:y + panel_h, x:x + panel_w] = panel[: quality.height - y]
            if speaking == host:
                cv2.rectangle(frame, (x - 3, y - 3), (x + panel_w + 2, y + panel_h + 2), ACCENT, 3)
        return frame


    def _scaled(self, host: int, image: np.ndarray, width: int, height: int) -> np.ndarray:
        """``image`` at the panel's size; a host's unchanged portrait (a listener with open eyes,
        most frames) is scaled once per size, not once per frame."""
        if image is not self.portraits[host].image:
            return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        key = (host, width, height)
        if key not in self._panels:
            self._panels[key] = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        return self._panels[key]


def _with_face(portrait: Portrait, face: np.ndarray) -> np.ndarray:
    image = portrait.image.copy()
    x, y, w, h = portrait.box
    image[y:y + h, x:x + w] = face
    return image


_backgrounds: dict[tuple[int, int], np.ndarray] = {}


def _background(width: int, height: int) -> np.ndarray:
    key = (width, height)
    if key not in _backgrounds:
        top, bottom = (np.array(c, np.float32) for c in BACKGROUND)
        ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        _backgrounds[key] = np.broadcast_to(top + (bottom - top) * ramp, (height, width, 3)).astype(np.uint8)
    return _backgrounds[key].copy()


def _caption(frame: np.ndarray, text: str, quality: Quality, top: bool = False) -> None:
    """Up to two lines of text in a strip at the bottom (or the top, for a title)."""
    scale = quality.height / 720
    per_line = max(12, int(60 / max(scale, 0.3) * quality.width / 1280 * scale))
    words, lines = text.split(), [""]
    for word in words:
        if len(lines[-1]) + len(word) + 1 > per_line and lines[-1]:
            if len(lines) == 2:
                lines[-1] = lines[-1].rstrip() + "..."
                break
            lines.append("")
        lines[-1] = f"{lines[-1]} {word}".strip()
    line_h = int(34 * scale) + 6
    y0 = int(quality.height * 0.06) if top else quality.height - line_h * len(lines) - int(10 * scale)
    cv2.rectangle(frame, (0, y0 - 4), (quality.width, y0 + line_h * len(lines) + 4), (10, 12, 20), -1)
    for i, line in enumerate(lines):
        cv2.putText(frame, line, (int(16 * scale) + 4, y0 + line_h * (i + 1) - 8), cv2.FONT_HERSHEY_SIMPLEX,
                    0.9 * scale, (240, 240, 240), max(1, int(2 * scale)), cv2.LINE_AA)
