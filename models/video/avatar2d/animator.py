"""``Avatar2D``: the two-host podcast studio animator, composed from the package's parts.

Two stylised hosts sit at a desk in a small studio; the speaking host's mouth
follows viseme shapes from Piper's phoneme timings with the audio envelope
scaling the jaw; both hosts blink, sway and breathe as smooth functions of the
*global* episode clock, and the listener nods, smiles and looks at the speaker.

Everything static is composed once per (tier, state, caption chunk, camera) into a
base picture and cached; each frame copies the base, draws the hosts and restores
what stands in front of them, so a frame costs only the hosts.

A segment's ``shot`` picks the camera (camera.py): the two-shot, or a close-up of
one host. A close-up is the same scene through another camera: the same poses,
mouth shapes and idle motion, drawn at the camera's scale (not enlarged from a
smaller picture), so the face stays sharp; a host out of its frame is not drawn.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from models.protocols import CLOCK_RATE, Quality, SceneInfo, VisualSegment
from models.video.avatar2d.backdrops import Backdrops
from models.video.avatar2d.cache import LayerCache
from models.video.avatar2d.camera import WIDE, Camera, in_frame, shot_camera, shot_rois
from models.video.avatar2d.captions import Captions
from models.video.avatar2d.cards import draw_equaliser
from models.video.avatar2d.hosts import (
    DEFAULT_BACKDROP,
    DEFAULT_COLOURS,
    draw_host,
    make_styles,
)
from models.video.avatar2d.layout import TRANSITION_S, out_shape, output_frame
from models.video.avatar2d.motion import (
    Motion,
    Mouth,
    envelope,
    slow_follow,
    smoothstep,
    speaking_mouth,
)
from models.video.avatar2d.occluders import MicLayers, restore_occluders
from models.video.avatar2d.overlay import Overlays
from models.video.avatar2d.primitives import hex_rgb
from models.video.avatar2d.segment import Bases, Canvas
from models.video.avatar2d.studio import STUDIO_CACHE_DIR, State
from models.video.avatar2d.text import Text
from models.video.visemes import VisemeTrack


class Avatar2D:
    """2D animated two-host podcast studio; implements ``models.protocols.Animator``.

    Deterministic: the same seed, scene, segment and tier give the same frames,
    whichever worker draws them and in whatever order. Thread-safe: one instance
    may render several episodes at once.
    """

    name = "avatar2d"

    def __init__(
        self,
        seed: int = 7,
        blend_ms: float = 35.0,
        captions: bool = True,
        backdrop_top: str = DEFAULT_BACKDROP[0],
        backdrop_bottom: str = DEFAULT_BACKDROP[1],
        accent0: str = DEFAULT_COLOURS["accent"][0],
        accent1: str = DEFAULT_COLOURS["accent"][1],
        skin0: str = DEFAULT_COLOURS["skin"][0],
        skin1: str = DEFAULT_COLOURS["skin"][1],
        hair0: str = DEFAULT_COLOURS["hair"][0],
        hair1: str = DEFAULT_COLOURS["hair"][1],
        top0: str = DEFAULT_COLOURS["top"][0],
        top1: str = DEFAULT_COLOURS["top"][1],
        font_path: str = "",
        bold_font_path: str = "",
        max_caption_lines: int = 2,
        cache_mb: int = 192,
        studio_cache: str | None = None,
    ):
        self.seed = int(seed)
        self.blend_ms = float(blend_ms)
        self.captions = bool(captions)
        self.max_caption_lines = max(1, int(max_caption_lines))
        self.bg_top = hex_rgb(backdrop_top)
        self.bg_bottom = hex_rgb(backdrop_bottom)
        self.styles = make_styles((skin0, skin1), (hair0, hair1), (top0, top1), (accent0, accent1))
        self.text = Text(font_path, bold_font_path)
        self.motion = Motion(self.seed)
        self.captioner = Captions(self.text, self.max_caption_lines)
        self.layers = LayerCache(max(16, cache_mb) * 1024 * 1024)
        #: supersampled renders keep one big canvas and restore only the hosts' regions
        self._reuse_canvas = True
        self.studio_cache = STUDIO_CACHE_DIR if studio_cache is None else studio_cache
        self.backdrops = Backdrops(self.bg_top, self.bg_bottom, self.styles, self.text, self.layers,
                                   self.studio_cache)

    # ------------------------------------------------------------------ protocol
    def warm_up(self) -> None:
        """Load fonts and build the smallest tier's pictures, so the first frame does not pay for them."""
        q = Quality("warm", 360, 25, 1)
        scene = SceneInfo(title="Warm up", hosts=("Alex", "Sam"))
        self.idle_frame(scene, q, 0)
        self.title_card(scene, q, 0.0)

    def prepare(self, qualities: Sequence[Quality]) -> None:
        """Build (or load) the studio of every host state at these tiers, so no segment pays for it."""
        for quality in qualities:
            for state in ("idle", 0, 1):
                self.backdrops.studio(quality, state)

    def title_card(self, scene: SceneInfo, quality: Quality, t_s: float) -> np.ndarray:
        """The episode's title card at card time ``t_s`` seconds (the equaliser moves)."""
        img = self.backdrops.title(scene, quality).copy()
        draw_equaliser(img, self.seed, self.styles, t_s)
        return self._finish(img, quality)

    def idle_frame(self, scene: SceneInfo, quality: Quality, clock: int) -> np.ndarray:
        """Both hosts idle at episode time ``clock`` samples."""
        base = self._bg(quality, "idle", scene, box=False)
        img = base.copy()
        tg = clock / CLOCK_RATE
        for h in (0, 1):
            draw_host(img, self.styles[h], self.motion.pose(quality, h, tg, role="idle", emph=0.0))
        restore_occluders(img, base, quality, self._mic_layers(quality))
        return self._finish(img, quality)

    def render(self, scene: SceneInfo, seg: VisualSegment, quality: Quality,
               frames: tuple[int, int] | None = None,
               size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
        """The segment's frames (or frames a..b-1 of it), each a new array, at the tier's size or ``size``,
        through the camera of ``seg.shot``."""
        spf = quality.samples_per_frame
        n_frames = -(-int(seg.n_samples) // spf) if seg.n_samples > 0 else 0
        first, stop = (0, n_frames) if frames is None else (max(0, frames[0]), min(n_frames, frames[1]))
        if n_frames <= 0 or first >= stop:
            return
        spk = 1 if int(seg.speaker) == 1 else 0
        track = VisemeTrack(seg.phonemes, self.blend_ms)
        env = envelope(seg.pcm, n_frames, spf)
        env_s = slow_follow(env)
        chunks = self.captioner.chunks(scene, spk, seg.caption) if self.captions else []
        camera = shot_camera(quality, seg.shot)
        bases = Bases(lambda state: self._bg(quality, state, scene, box=self.captions, camera=camera), chunks,
                      self.captioner, self.styles[spk].accent)
        rois = shot_rois(quality, camera)
        shown = tuple(in_frame(r) for r in rois)
        overlays = None if camera.wide else Overlays(out_shape(quality, size), scene, self.captions, chunks,
                                                     self.captioner, self.styles[spk].accent, self.styles, self.text)
        canvas = Canvas(self._reuse_canvas and max(1, int(quality.supersample)) > 1, rois)
        prev_state: State = "idle" if seg.index <= 0 else 1 - spk
        trans_frames = TRANSITION_S * CLOCK_RATE / spf
        for n in range(first, stop):
            local = n * spf
            ramp = smoothstep(n / trans_frames) if trans_frames > 0 else 1.0
            ci = bases.chunk_at(local / max(1, seg.n_samples))
            bi = ci if overlays is None else -1  # the overlay carries the caption
            base = bases.get(bi, spk)
            img, ref = canvas.frame(base, bases.get(bi, prev_state) if ramp < 1.0 else None, ramp)
            e = float(env[n])
            self._draw_turn(img, quality, seg, spk, (seg.start + local) / CLOCK_RATE, ramp,
                            speaking_mouth(track, local, e), e, float(env_s[n]), camera, shown)
            restore_occluders(img, ref, quality, self._mic_layers(quality, camera), camera)
            out = self._finish(img, quality, size)
            if overlays is not None:
                if out is img:
                    out = out.copy()  # the canvas may be kept for the next frame
                overlays.apply(out, ci, spk)
            yield out

    # ------------------------------------------------------------------ helpers
    def _draw_turn(self, img: np.ndarray, quality: Quality, seg: VisualSegment, spk: int, tg: float, ramp: float,
                   mouth: Mouth, env: float, env_s: float, camera: Camera, shown: tuple[bool, ...]) -> None:
        """The listener, then the speaker in front, at episode time ``tg`` seconds, ``ramp`` into the turn,
        through ``camera``; a host whose ``shown`` is False (out of frame) is skipped."""
        lis = 1 - spk
        if shown[lis]:
            lis_emph = (1.0 - ramp) if seg.index > 0 else 0.0
            pose = self.motion.pose(quality, lis, tg, role="listener", emph=lis_emph, ramp=ramp)
            draw_host(img, self.styles[lis], camera.pose(pose))
        if shown[spk]:
            pose = self.motion.pose(quality, spk, tg, role="speaker", emph=ramp, env=env, env_s=env_s, mouth=mouth,
                                    ramp=ramp)
            draw_host(img, self.styles[spk], camera.pose(pose))

    def _finish(self, img: np.ndarray, quality: Quality, size: tuple[int, int] | None = None) -> np.ndarray:
        """The supersampled canvas scaled to the tier's size, or straight to ``size`` (one resize)."""
        return output_frame(img, quality, size)

    def _bg(self, quality: Quality, state: State, scene: SceneInfo, box: bool, camera: Camera = WIDE) -> np.ndarray:
        """Full static picture (without hosts) for ``state`` in {"idle", 0, 1} through ``camera``."""
        return self.backdrops.base(quality, state, scene, box, camera)

    def _mic_layers(self, quality: Quality, camera: Camera = WIDE) -> MicLayers:
        """The tier's microphone layers and occluder blend weights through ``camera``."""
        mics = self.backdrops.mics(quality, camera)
        assert mics is not None  # the cartoon look has its furniture
        return mics
