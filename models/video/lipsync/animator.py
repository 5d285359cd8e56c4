"""``PortraitAnimator`` (adapter ``lipsync``): the portrait look, two photo hosts in the studio.

A look is kept for a whole episode; within it each segment's tier decides how the
speaking host's mouth moves:

- a *floor* tier (any tier not in ``neural_tiers``) runs on the CPU with no network:
  the lower half of the face is stretched by the viseme track's opening scaled by the
  voice's loudness, a jaw that opens and closes with the words;
- a *neural* tier repaints the lower half of the face crop with the lip-sync network
  (generator.py) from the segment's audio.

The frame (composition.py) is the cartoon look's studio with the portraits where its
hosts sit, the same captions, name plates and title banner. Both hosts blink and sway;
the listener is its portrait. A segment's ``shot`` picks the camera: the two-shot, or a
close-up of one host's face with the banner and captions laid over it (avatar2d
overlay.py), the face moving exactly as it would in the two-shot; a close-up of the
listener (a reaction shot) leaves the speaker out of frame, so its face is not computed.
Networks and portraits load when the adapter is built, so a missing file stops the
server at start, never an episode.
"""
from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from models.protocols import (
    CLOCK_RATE,
    TWO_SHOT,
    Quality,
    SceneInfo,
    Shot,
    VisualSegment,
)
from models.video.avatar2d.backdrops import Backdrops
from models.video.avatar2d.cache import LayerCache
from models.video.avatar2d.captions import Captions
from models.video.avatar2d.hosts import DEFAULT_BACKDROP, DEFAULT_COLOURS, make_styles
from models.video.avatar2d.layout import out_shape, output_frame
from models.video.avatar2d.overlay import Overlays
from models.video.avatar2d.primitives import hex_rgb
from models.video.avatar2d.segment import Bases
from models.video.avatar2d.studio import STUDIO_CACHE_DIR
from models.video.avatar2d.text import Text
from models.video.lipsync.composition import PortraitStage
from models.video.lipsync.portraits import load_portrait
from models.video.lipsync.weights import WeightsError
from models.video.visemes import VisemeTrack

#: How far the jaw opens at full loudness, as a fraction of the face's lower half.
JAW_OPEN = 0.14
#: Loudness is measured over this window around each frame.
ENVELOPE_S = 0.04
#: Caption lines shown at once.
CAPTION_LINES = 2


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
                 neural_tiers: list[str] | None = None, device: str = "cpu", batch: int = 8,
                 accent0: str = DEFAULT_COLOURS["accent"][0], accent1: str = DEFAULT_COLOURS["accent"][1],
                 studio_cache: str | None = None, cache_mb: int = 192) -> None:
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
        colours = {**DEFAULT_COLOURS, "accent": (accent0, accent1)}
        self.styles = make_styles(colours["skin"], colours["hair"], colours["top"], colours["accent"])
        text = Text()
        self.captioner = Captions(text, CAPTION_LINES)
        self.backdrops = Backdrops(hex_rgb(DEFAULT_BACKDROP[0]), hex_rgb(DEFAULT_BACKDROP[1]), self.styles, text,
                                   LayerCache(max(16, cache_mb) * 1024 * 1024),
                                   STUDIO_CACHE_DIR if studio_cache is None else studio_cache, furniture=False)
        self.stage = PortraitStage(self.portraits, self.backdrops)
        self._generator = None
        self._faces: list = []
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
        self.idle_frame(SceneInfo(title="Warm up", hosts=("Alex", "Sam")), Quality("warm", 360, 25, 1), 0)

    def title_card(self, scene: SceneInfo, quality: Quality, t_s: float) -> np.ndarray:
        """Both hosts waiting under the title banner."""
        return self.idle_frame(scene, quality, int(t_s * CLOCK_RATE))

    def idle_frame(self, scene: SceneInfo, quality: Quality, clock: int) -> np.ndarray:
        base = self.backdrops.base(quality, "idle", scene, box=False)
        return output_frame(self.stage.compose(base, quality, clock, speaker=None), quality)

    def render(self, scene: SceneInfo, seg: VisualSegment, quality: Quality, frames: tuple[int, int] | None = None,
               size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
        n_total = frame_count(seg.n_samples, quality.fps)
        first, last = frames if frames is not None else (0, n_total)
        last = min(last, n_total)
        spk = 1 if seg.speaker == 1 else 0
        camera = self.stage.camera(quality, seg.shot)
        shown = self.stage.in_frame(quality, spk, camera)
        faces = self._faces_for(seg, quality, first, last) if shown else [None] * max(0, last - first)
        chunks = self.captioner.chunks(scene, spk, seg.caption)
        bases = Bases(lambda state: self.backdrops.base(quality, state, scene, box=True, camera=camera), chunks,
                      self.captioner, self.styles[spk].accent)
        overlays = None if camera.wide else Overlays(out_shape(quality, size), scene, True, chunks, self.captioner,
                                                     self.styles[spk].accent, self.styles, self.backdrops.text)
        spf = quality.samples_per_frame
        for n, face in enumerate(faces, start=first):
            ci = bases.chunk_at(n * spf / max(1, seg.n_samples))
            base = bases.get(ci if overlays is None else -1, spk)  # a close-up's overlay carries the caption
            frame = self.stage.compose(base, quality, seg.start + n * spf, speaker=spk, face=face, camera=camera)
            out = output_frame(frame, quality, size)  # a new array, or the new frame itself
            if overlays is not None:
                overlays.apply(out, ci, spk)
            yield out

    def mouth_box(self, quality: Quality, host: int, shot: Shot = TWO_SHOT) -> tuple[int, int, int, int]:
        """The lower half of a host's face in the frame (x0, y0, x1, y1) in ``shot``: where its mouth moves."""
        return self.stage.mouth_box(quality, host, self.stage.camera(quality, shot))

    # -------------------------------------------------------------- faces
    def _prepared(self) -> list:
        with self._lock:
            if self._generator is not None and not self._faces:
                size = self._generator.models.crop_px
                self._faces = [self._generator.prepare(cv2.resize(p.crop(), (size, size), interpolation=cv2.INTER_AREA))
                               for p in self.portraits]
            return self._faces

    def _faces_for(self, seg: VisualSegment, quality: Quality, first: int, last: int) -> list[np.ndarray]:
        """The speaking host's face crop for frames ``first .. last-1``: the network's output on a
        neural tier, the portrait's own crop with its jaw opened on a floor tier."""
        portrait = self.portraits[1 if seg.speaker == 1 else 0]
        if quality.name in self.neural_tiers and self._generator is not None:
            prepared = self._prepared()[1 if seg.speaker == 1 else 0]
            return list(self._generator.frames(prepared, seg.pcm, quality.fps, last, first=first))
        amounts = jaw_openings(seg, first, last, quality.fps)
        crop = portrait.crop()
        return [open_jaw(crop, float(a)) for a in amounts]

