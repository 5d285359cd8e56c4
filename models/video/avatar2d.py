"""Audio-driven 2D podcast-studio animator (OpenCV vector drawing, CPU only).

Two stylised hosts sit at a desk in a small studio; the speaking host's mouth is
driven by viseme shapes from Piper's phoneme timings (``models.video.visemes``) with
the audio envelope scaling the jaw; both hosts blink, sway and breathe as smooth
functions of the *global* episode clock, and the listener nods, smiles and looks
at the speaker.  Captions and the episode banner are rendered once with Pillow
(when installed; OpenCV Hershey text otherwise) and cached.

Speed: everything static (backdrop, desk, microphones, banner, caption box and
text) is composed once per (quality, state, caption chunk) into a *base* image;
each frame copies the base, draws the two hosts (~60 anti-aliased primitives
with sub-pixel coordinates), then restores the occluders in front of the hosts
(desk rows, microphone sprites) from the base.  All layout is in normalised
units of the frame height, so every quality tier shows the same picture.
"""
from __future__ import annotations

import bisect
import hashlib
import math
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from models.protocols import CLOCK_RATE, Quality, SceneInfo, VisualSegment
from models.video.visemes import VisemeTrack

try:  # Pillow gives much nicer text; everything still works without it.
    from PIL import Image, ImageDraw, ImageFont

    _HAVE_PIL = True
except Exception:  # pragma: no cover - exercised only where Pillow is missing
    _HAVE_PIL = False

_SHIFT = 4
_F = float(1 << _SHIFT)
_AA = cv2.LINE_AA

# ----------------------------------------------------------------------------- layout
#: Head centres (fraction of width) for host 0 (left) and host 1 (right).
HOST_X = (0.285, 0.715)
#: Neutral head-centre height (fraction of height).
HEAD_Y = 0.405
#: Top of the desk (fraction of height): everything below is in front of the hosts.
DESK_Y = 0.742
#: Mouth centre below the head centre, in units of the frame height.
MOUTH_DY = 0.066
#: Speaker emphasis scale-up.
EMPH_SCALE = 0.035
#: Caption box (fractions of width / height).
CAP_X0, CAP_X1, CAP_Y0, CAP_Y1 = 0.10, 0.90, 0.848, 0.972
CAP_FONT = 0.047  # caption font size, fraction of height
TRANSITION_S = 0.35


def mouth_box(quality: Quality, host: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) in output pixels around ``host``'s mouth at its neutral position.

    The box has margin for head sway, nods and the speaker scale-up, and does
    not reach the other facial features (nose above, chin edge below).
    """
    w, h = quality.width, quality.height
    cx = HOST_X[host] * w
    # scale-up happens around the desk line: the head rises a little
    cy = HEAD_Y * h + MOUTH_DY * h
    hw, up, down = 0.052 * h, 0.024 * h, 0.044 * h
    x0, x1 = int(math.floor(cx - hw)), int(math.ceil(cx + hw))
    y0, y1 = int(math.floor(cy - up)), int(math.ceil(cy + down))
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


# ----------------------------------------------------------------------------- colours
def _hex(c: str | Sequence[int]) -> tuple[int, int, int]:
    if isinstance(c, str):
        s = c.strip().lstrip("#")
        if len(s) == 3:
            s = "".join(ch * 2 for ch in s)
        return int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16)
    return int(c[0]), int(c[1]), int(c[2])


def _mix(a, b, t: float) -> tuple[int, int, int]:
    return (int(a[0] + (b[0] - a[0]) * t + 0.5), int(a[1] + (b[1] - a[1]) * t + 0.5), int(a[2] + (b[2] - a[2]) * t + 0.5))


def _mul(a, f: float) -> tuple[int, int, int]:
    return (min(255, int(a[0] * f + 0.5)), min(255, int(a[1] * f + 0.5)), min(255, int(a[2] * f + 0.5)))


@dataclass(frozen=True)
class HostStyle:
    skin: tuple
    hair: tuple
    top: tuple
    accent: tuple
    iris: tuple
    lips: tuple
    phones: tuple
    hair_style: str  # "short" | "long"
    glasses: bool
    top_style: str  # "jacket" | "sweater"
    inner: tuple = (236, 236, 240)


# ----------------------------------------------------------------------------- text
_FONT_CANDIDATES = {
    False: [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
    ],
    True: [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
        "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
    ],
}


class _Text:
    """Renders text runs to RGBA images; cached.  Pillow/FreeType when available."""

    def __init__(self, font_path: str = "", bold_font_path: str = ""):
        self._lock = threading.Lock()
        self._fonts: dict = {}
        self._cache: OrderedDict = OrderedDict()
        self.paths = {False: None, True: None}
        self.fake_bold = False
        self.pil = _HAVE_PIL
        if self.pil:
            for bold, explicit in ((False, font_path), (True, bold_font_path or "")):
                cands = ([explicit] if explicit else []) + _FONT_CANDIDATES[bold]
                for p in cands:
                    if p and os.path.isfile(p):
                        try:
                            ImageFont.truetype(p, 12)
                            self.paths[bold] = p
                            break
                        except Exception:
                            continue
            if self.paths[True] is None and self.paths[False] is not None:
                self.paths[True] = self.paths[False]
                self.fake_bold = True

    def font(self, px: int, bold: bool):
        px = max(6, int(px))
        key = (px, bold)
        f = self._fonts.get(key)
        if f is None:
            p = self.paths[bold]
            if p is not None:
                f = ImageFont.truetype(p, px)
            else:
                try:
                    f = ImageFont.load_default(size=px)  # Pillow >= 10.1 bundles a FreeType font
                except TypeError:  # pragma: no cover - very old Pillow
                    f = ImageFont.load_default()
            self._fonts[key] = f
        return f

    def _bold_stroke(self, px: int, bold: bool) -> int:
        if not bold:
            return 0
        if self.paths[True] is not None and not self.fake_bold:
            return 0
        return max(1, int(round(px / 28)))

    def width_em(self, text: str, bold: bool) -> float:
        """Advance width of ``text`` in ems (size-independent, for tier-independent wrapping)."""
        if not self.pil:
            face = cv2.FONT_HERSHEY_DUPLEX
            (w, _), _ = cv2.getTextSize(text, face, 1.0, 2 if bold else 1)
            return w / 30.0
        ref = 200
        f = self.font(ref, bold)
        return (f.getlength(text) + 2 * self._bold_stroke(ref, bold)) / ref

    def runs(self, runs: Sequence[tuple[str, tuple, bool]], px: int) -> np.ndarray:
        """One line made of (text, rgb, bold) runs -> RGBA uint8, height = line height."""
        key = (tuple(runs), int(px))
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        img = self._render_runs(runs, int(px))
        with self._lock:
            self._cache[key] = img
            while len(self._cache) > 256:
                self._cache.popitem(last=False)
        return img

    def _render_runs(self, runs, px: int) -> np.ndarray:
        px = max(6, px)
        if not self.pil:
            return self._render_runs_cv(runs, px)
        asc_desc = self.font(px, False).getmetrics()
        lh = int(math.ceil((asc_desc[0] + asc_desc[1]) * 1.0)) + 2
        widths = []
        for text, _, bold in runs:
            f = self.font(px, bold)
            widths.append(int(math.ceil(f.getlength(text))) + 2 * self._bold_stroke(px, bold))
        w = max(1, sum(widths) + 4)
        im = Image.new("RGBA", (w, lh), (0, 0, 0, 0))
        d = ImageDraw.Draw(im)
        x = 2
        for (text, col, bold), tw in zip(runs, widths):
            f = self.font(px, bold)
            sw = self._bold_stroke(px, bold)
            d.text((x + sw, 1), text, font=f, fill=tuple(col) + (255,), stroke_width=sw, stroke_fill=tuple(col) + (255,))
            x += tw
        return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))

    def _render_runs_cv(self, runs, px: int) -> np.ndarray:
        face = cv2.FONT_HERSHEY_DUPLEX
        scale = px / 30.0
        sizes = [cv2.getTextSize(t, face, scale, max(1, int(round(px / (12 if b else 18)))))[0] for t, _, b in runs]
        lh = int(px * 1.3) + 2
        w = max(1, sum(s[0] for s in sizes) + 4)
        rgb = np.zeros((lh, w, 3), np.uint8)
        a = np.zeros((lh, w), np.uint8)
        x = 2
        base = int(px * 0.95)
        for (t, col, b), s in zip(runs, sizes):
            th = max(1, int(round(px / (12 if b else 18))))
            cv2.putText(rgb, t, (x, base), face, scale, tuple(int(c) for c in col), th, _AA)
            cv2.putText(a, t, (x, base), face, scale, 255, th, _AA)
            x += s[0]
        return np.dstack([rgb, a])


def _nbytes(v) -> int:
    if isinstance(v, np.ndarray):
        return int(v.nbytes)
    if isinstance(v, (tuple, list)):
        return sum(_nbytes(x) for x in v)
    return 0


def _blit_rgba(dst: np.ndarray, src: np.ndarray, x: int, y: int, opacity: float = 1.0) -> None:
    """Alpha-composite RGBA ``src`` onto RGB ``dst`` at (x, y), clipped."""
    h, w = src.shape[:2]
    H, W = dst.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x1 <= x0 or y1 <= y0:
        return
    s = src[y0 - y:y1 - y, x0 - x:x1 - x]
    a = s[..., 3:4].astype(np.float32) * (opacity / 255.0)
    d = dst[y0:y1, x0:x1]
    d[:] = (d.astype(np.float32) * (1.0 - a) + s[..., :3].astype(np.float32) * a + 0.5).astype(np.uint8)


def _overlay(dst: np.ndarray, draw, alpha: float) -> None:
    """Draw with ``draw(layer)`` on a copy and blend it in with opacity ``alpha``."""
    layer = dst.copy()
    draw(layer)
    cv2.addWeighted(layer, alpha, dst, 1.0 - alpha, 0.0, dst=dst)


def _rrect(img, x0, y0, x1, y1, r, col, thickness=-1):
    """Anti-aliased rounded rectangle (pixel coords, floats ok)."""
    r = max(0.0, min(r, (x1 - x0) / 2, (y1 - y0) / 2))
    n = 8
    pts = []
    for cx, cy, a0 in ((x1 - r, y0 + r, -90), (x1 - r, y1 - r, 0), (x0 + r, y1 - r, 90), (x0 + r, y0 + r, 180)):
        for i in range(n + 1):
            a = math.radians(a0 + 90 * i / n)
            pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    p = (np.array(pts) * _F).round().astype(np.int32)
    if thickness < 0:
        cv2.fillPoly(img, [p], col, _AA, _SHIFT)
    else:
        cv2.polylines(img, [p], True, col, thickness, _AA, _SHIFT)


def _rounded_box(x0, y0, x1, y1, r, n=5) -> np.ndarray:
    """Rounded-rectangle outline points (any units)."""
    pts = []
    for cx, cy, a0 in ((x1 - r, y0 + r, -90), (x1 - r, y1 - r, 0), (x0 + r, y1 - r, 90), (x0 + r, y0 + r, 180)):
        for i in range(n + 1):
            a = math.radians(a0 + 90 * i / n)
            pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return np.array(pts)


def _radial(h, w, cx, cy, rx, ry, power=2.0) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
    return np.clip(1.0 - np.sqrt(d), 0.0, 1.0) ** power


# ----------------------------------------------------------------------------- transforms
class _Xf:
    """Host-local (normalised) -> pixel transform: origin, pixels per unit, roll."""

    __slots__ = ("ox", "oy", "k", "c", "s", "deg", "m", "o")

    def __init__(self, ox: float, oy: float, k: float, ang: float = 0.0):
        self.ox, self.oy, self.k = ox, oy, k
        self.c, self.s = math.cos(ang), math.sin(ang)
        self.deg = math.degrees(ang)
        kf = k * _F
        self.m = np.array([[self.c * kf, self.s * kf], [-self.s * kf, self.c * kf]])
        self.o = np.array([ox * _F + 0.5, oy * _F + 0.5])

    def p(self, u: float, v: float) -> tuple[int, int]:
        x = self.ox + self.k * (u * self.c - v * self.s)
        y = self.oy + self.k * (u * self.s + v * self.c)
        return int(x * _F + 0.5), int(y * _F + 0.5)

    def pts(self, uv) -> np.ndarray:
        return (np.asarray(uv, dtype=np.float64) @ self.m + self.o).astype(np.int32)

    def ell(self, img, u, v, au, av, col, ang=0.0, a0=0, a1=360, th=-1.0):
        t = -1 if th < 0 else max(1, int(round(th * self.k)))
        cv2.ellipse(img, self.p(u, v), (max(1, int(au * self.k * _F + 0.5)), max(1, int(av * self.k * _F + 0.5))),
                    self.deg + ang, a0, a1, col, t, _AA, _SHIFT)

    def poly(self, img, uv, col):
        cv2.fillPoly(img, [self.pts(uv)], col, _AA, _SHIFT)

    def line(self, img, uv, col, th, closed=False):
        cv2.polylines(img, [self.pts(uv)], closed, col, max(1, int(round(th * self.k))), _AA, _SHIFT)

    def circ(self, img, u, v, r, col, th=-1.0):
        t = -1 if th < 0 else max(1, int(round(th * self.k)))
        cv2.circle(img, self.p(u, v), max(1, int(r * self.k * _F + 0.5)), col, t, _AA, _SHIFT)


_XS = np.linspace(-1.0, 1.0, 15)


def _head_outline(rx: float, ry: float, chin: float = 0.2, n: int = 40) -> np.ndarray:
    """Egg-shaped head outline (narrower jaw), centred on the origin."""
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    s = np.sin(a)
    x = rx * np.cos(a) * (1.0 - chin * np.clip(s, 0, None) ** 2)
    y = ry * s * np.where(s > 0, 1.0, 0.96)
    return np.stack([x, y], axis=1)


_HEAD = _head_outline(0.095, 0.12)
_HEAD_SH = _head_outline(0.095, 0.12) * 1.0
_FACE = _head_outline(0.088, 0.114)


def _arc(cx, cy, rx, ry, a0, a1, n=12):
    a = np.radians(np.linspace(a0, a1, n))
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], axis=1)


# short hair: cap with a side part and a swept quiff
_HAIR_SHORT = np.concatenate([
    _arc(0.0, -0.012, 0.104, 0.125, 175, 365, 20),
    np.array([(0.1, 0.01), (0.092, 0.012), (0.088, -0.03), (0.07, -0.068), (0.03, -0.085),
              (-0.01, -0.082), (-0.03, -0.09), (-0.06, -0.07), (-0.085, -0.04), (-0.09, 0.012), (-0.102, 0.01)]),
])
_QUIFF = np.array([(-0.06, -0.1), (-0.03, -0.138), (0.02, -0.152), (0.07, -0.135), (0.098, -0.095),
                   (0.07, -0.105), (0.03, -0.112), (-0.02, -0.11)])
# long hair fringe
_HAIR_LONG = np.concatenate([
    _arc(0.0, -0.01, 0.108, 0.122, 175, 365, 20),
    np.array([(0.108, 0.05), (0.092, 0.05), (0.088, -0.02), (0.07, -0.06), (0.035, -0.075),
              (-0.02, -0.095), (-0.05, -0.075), (-0.078, -0.045), (-0.088, -0.0), (-0.092, 0.05), (-0.108, 0.05)]),
])


def _bump(p: float) -> float:
    """0 -> 1 -> 0 smooth bump on p in [0, 1]."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return math.sin(math.pi * p) ** 2


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


@dataclass
class _Pose:
    cx: float  # head centre, px
    cy: float
    k: float  # pixels per unit
    roll: float  # radians
    bx: float  # body origin (neutral head centre, follows the sway partially), px
    by: float
    turn: float  # -1..1 (towards +x)
    gaze_x: float
    gaze_y: float
    eye_open: float
    brow: float
    smile: float
    nod: float
    mouth: tuple  # open, wide, round, teeth, tongue
    dim: float


# ----------------------------------------------------------------------------- animator
#: The studio backdrop (title-independent, ~1.6 s to build per host state at 720p x2) is kept
#: on disk across processes and runs, keyed by this file's code and the style. "" disables it.
STUDIO_CACHE_DIR = os.environ.get("STREAMWISE_STUDIO_CACHE", str(Path.home() / ".cache" / "streamwise" / "studio"))
_CODE_DIGEST = hashlib.sha1(Path(__file__).read_bytes()).hexdigest()[:16]


class Avatar2D:
    """2D animated two-host podcast studio; implements ``models.protocols.Animator``."""

    name = "avatar2d"

    def __init__(
        self,
        seed: int = 7,
        blend_ms: float = 35.0,
        captions: bool = True,
        backdrop_top: str = "#141a33",
        backdrop_bottom: str = "#2b2550",
        accent0: str = "#ff7a59",
        accent1: str = "#36c9bb",
        skin0: str = "#c98e64",
        skin1: str = "#f6d2bb",
        hair0: str = "#2d211d",
        hair1: str = "#b0502f",
        top0: str = "#2f4d7a",
        top1: str = "#e9ae3f",
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
        self.bg_top = _hex(backdrop_top)
        self.bg_bottom = _hex(backdrop_bottom)
        self.styles = (
            HostStyle(skin=_hex(skin0), hair=_hex(hair0), top=_hex(top0), accent=_hex(accent0), iris=(92, 58, 36),
                      lips=_mix(_hex(skin0), (150, 60, 60), 0.45), phones=(38, 40, 48), hair_style="short",
                      glasses=False, top_style="jacket"),
            HostStyle(skin=_hex(skin1), hair=_hex(hair1), top=_hex(top1), accent=_hex(accent1), iris=(64, 118, 92),
                      lips=_mix(_hex(skin1), (190, 70, 80), 0.45), phones=(236, 238, 244), hair_style="long",
                      glasses=True, top_style="sweater"),
        )
        self.text = _Text(font_path, bold_font_path)
        self._lock = threading.Lock()
        self._static: OrderedDict = OrderedDict()
        self._static_bytes = 0
        self.cache_bytes = int(max(16, cache_mb) * 1024 * 1024)
        self._events: dict = {}
        self._caption_cache: OrderedDict = OrderedDict()
        #: supersampled renders keep one big canvas and restore only the hosts' regions
        self._reuse_canvas = True
        self.studio_cache = STUDIO_CACHE_DIR if studio_cache is None else studio_cache

    # ------------------------------------------------------------------ protocol
    def warm_up(self) -> None:
        q = Quality("warm", 360, 25, 1)
        scene = SceneInfo(title="Warm up", hosts=("Alex", "Sam"))
        self.idle_frame(scene, q, 0)
        self.title_card(scene, q, 0.0)

    def title_card(self, scene: SceneInfo, quality: Quality, t_s: float) -> np.ndarray:
        ss = max(1, int(quality.supersample))
        H, W = quality.height * ss, quality.width * ss
        card = self._title_static(scene, quality)
        img = card.copy()
        # animated equaliser under the host names
        n = 21
        bw = 0.0062 * H
        gap = 0.0048 * H
        total = n * bw + (n - 1) * gap
        x = W / 2 - total / 2
        yb = 0.925 * H
        for i in range(n):
            ph = self.seed * 0.37 + i * 0.61
            a = 0.5 + 0.5 * math.sin(t_s * 5.1 + ph) * math.sin(t_s * 1.7 + i * 0.33 + 1.1)
            hh = (0.012 + 0.038 * abs(a) * (1.0 - abs(i - n // 2) / (n * 0.75))) * H
            col = _mix(self.styles[0].accent, self.styles[1].accent, i / (n - 1))
            _rrect(img, x, yb - hh, x + bw, yb, bw / 2, col)
            x += bw + gap
        return self._finish(img, quality)

    def idle_frame(self, scene: SceneInfo, quality: Quality, clock: int) -> np.ndarray:
        base = self._bg(quality, "idle", scene, box=False)
        img = base.copy()
        tg = clock / CLOCK_RATE
        for h in (0, 1):
            self._draw_host(img, h, self._pose(quality, h, tg, role="idle", emph=0.0))
        self._restore_occluders(img, base, quality)
        return self._finish(img, quality)

    def render(self, scene: SceneInfo, seg: VisualSegment, quality: Quality,
               frames: tuple[int, int] | None = None,
               size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
        spf = quality.samples_per_frame
        n_frames = -(-int(seg.n_samples) // spf) if seg.n_samples > 0 else 0
        first, stop = (0, n_frames) if frames is None else (max(0, frames[0]), min(n_frames, frames[1]))
        if n_frames <= 0 or first >= stop:
            return
        spk = 1 if int(seg.speaker) == 1 else 0
        lis = 1 - spk
        track = VisemeTrack(seg.phonemes, self.blend_ms)
        env = self._envelope(seg.pcm, n_frames, spf)
        env_s = np.empty_like(env)
        acc = 0.0
        for i, e in enumerate(env):  # slow follower for head gestures
            acc += (e - acc) * (0.35 if e > acc else 0.12)
            env_s[i] = acc
        chunks = self._caption_chunks(scene, spk, seg.caption) if self.captions else []
        # chunk i is shown from bounds[i] (fraction of the segment) on
        bounds = []
        if chunks:
            weights = np.array([max(1, c[1]) for c in chunks], dtype=np.float64)
            bounds = list(np.concatenate([[0.0], np.cumsum(weights)[:-1] / weights.sum()]))
        prev_state = "idle" if seg.index <= 0 else lis
        bases: dict = {}

        def base_for(chunk_i: int, state):
            key = (chunk_i, state)
            b = bases.get(key)
            if b is None:
                bg = self._bg(quality, state, scene, box=self.captions)
                if chunk_i >= 0:
                    b = bg.copy()
                    self._blit_caption(b, chunks[chunk_i][0], self.styles[spk].accent)
                else:
                    b = bg
                bases[key] = b
            return b

        trans_frames = TRANSITION_S * CLOCK_RATE / spf
        persistent = self._reuse_canvas and max(1, int(quality.supersample)) > 1
        rois = self._host_rois(quality)
        canvas, canvas_base = None, None
        for n in range(first, stop):
            local = n * spf
            tg = (seg.start + local) / CLOCK_RATE
            frac = local / max(1, seg.n_samples)
            ci = bisect.bisect_right(bounds, frac) - 1 if chunks else -1
            ramp = _smoothstep(n / trans_frames) if trans_frames > 0 else 1.0
            base = base_for(ci, spk)
            if ramp < 1.0:
                ref = cv2.addWeighted(base_for(ci, prev_state), 1.0 - ramp, base, ramp, 0.0)
                img = ref.copy()
                canvas_base = None
            elif not persistent:
                img = base.copy()
                ref = base
            else:  # supersampled: keep the big canvas, restore only what the hosts touch
                ref = base
                if canvas_base is not base:
                    canvas = base.copy()
                    canvas_base = base
                else:
                    for x0, y0, x1, y1 in rois:
                        canvas[y0:y1, x0:x1] = base[y0:y1, x0:x1]
                img = canvas
            shape = track.at_array(local)
            e = float(env[n])
            if track.n:
                op = shape[0] * (0.3 + 0.8 * e)
                mouth = (min(1.05, op), shape[1], shape[2], shape[3], shape[4])
            else:  # no timings: envelope-only flapping
                mouth = (0.85 * e, 0.6, 0.1, 0.5 * e, 0.0)
            lis_emph = (1.0 - ramp) if seg.index > 0 else 0.0
            for h in (lis, spk):
                if h == spk:
                    pose = self._pose(quality, h, tg, role="speaker", emph=ramp, env=e, env_s=float(env_s[n]),
                                      mouth=mouth, ramp=ramp)
                else:
                    pose = self._pose(quality, h, tg, role="listener", emph=lis_emph, ramp=ramp)
                self._draw_host(img, h, pose)
            self._restore_occluders(img, ref, quality)
            yield self._finish(img, quality, size)

    # ------------------------------------------------------------------ helpers
    def _finish(self, img: np.ndarray, quality: Quality, size: tuple[int, int] | None = None) -> np.ndarray:
        """The supersampled canvas scaled to the tier's size, or straight to ``size`` (one resize)."""
        width, height = size or (quality.width, quality.height)
        if img.shape[0] != height or img.shape[1] != width:
            interp = cv2.INTER_AREA if width < img.shape[1] else cv2.INTER_LINEAR
            img = cv2.resize(img, (width, height), interpolation=interp)
        return np.ascontiguousarray(img)

    @staticmethod
    def _envelope(pcm, n_frames: int, spf: int) -> np.ndarray:
        a = np.asarray(pcm)
        if a.ndim > 1:
            a = a.reshape(a.shape[0], -1).mean(axis=1)
        if a.dtype.kind in "iu":
            a = a.astype(np.float64) / float(np.iinfo(a.dtype).max)
        a = a.astype(np.float64, copy=False)
        N = a.shape[0]
        if N == 0:
            return np.zeros(n_frames)
        cs = np.concatenate([[0.0], np.cumsum(a * a)])
        half = int(0.022 * CLOCK_RATE)
        c = np.arange(n_frames, dtype=np.int64) * spf
        lo = np.clip(c - half, 0, N)
        hi = np.clip(c + half, 0, N)
        cnt = np.maximum(hi - lo, 1)
        rms = np.sqrt(np.maximum(cs[hi] - cs[lo], 0.0) / cnt)
        rms[hi <= lo] = 0.0
        voiced = rms[rms > 0.004]
        ref = max(0.02, float(np.percentile(voiced, 90)) if voiced.size else 0.02)
        env = np.clip((rms - 0.003) / ref, 0.0, 1.0) ** 0.7
        return env

    def _event_times(self, host: int, kind: str, lo: float, hi: float, until: float) -> list:
        """Deterministic event start times (seconds) for ``host``/``kind``, spaced U(lo, hi)."""
        key = (host, kind)
        with self._lock:
            st = self._events.get(key)
            if st is None:
                kid = sum(ord(c) * (i + 1) for i, c in enumerate(kind))
                rng = np.random.default_rng([self.seed & 0xFFFFFFFF, host, kid])
                st = [rng, [float(rng.uniform(0.3, hi))]]
                self._events[key] = st
            rng, times = st
            while times[-1] < until + hi:
                times.append(times[-1] + float(rng.uniform(lo, hi)))
            return times

    def _event_phase(self, host: int, kind: str, lo: float, hi: float, dur: float, t: float) -> float:
        """Phase 0..1 of the event active at ``t``, or -1 when none."""
        if t < 0:
            return -1.0
        times = self._event_times(host, kind, lo, hi, t)
        i = bisect.bisect_right(times, t) - 1
        if i < 0:
            return -1.0
        p = (t - times[i]) / dur
        return p if p < 1.0 else -1.0

    def _pose(self, quality: Quality, h: int, tg: float, role: str, emph: float, env: float = 0.0,
              env_s: float = 0.0, mouth=None, ramp: float = 1.0) -> _Pose:
        ss = max(1, int(quality.supersample))
        H, W = quality.height * ss, quality.width * ss
        d_other = 1.0 if h == 0 else -1.0  # direction towards the other host
        ph = (0.0, 2.1)[h] + self.seed * 0.731
        # idle sway / bob / breathing on the global clock
        sx = 0.0055 * math.sin(2 * math.pi * 0.21 * tg + ph) + 0.0025 * math.sin(2 * math.pi * 0.57 * tg + 1.3 * ph)
        sy = 0.0035 * math.sin(2 * math.pi * 0.29 * tg + 0.7 * ph) + 0.0018 * math.sin(2 * math.pi * 0.83 * tg + ph)
        breath = 0.0022 * math.sin(2 * math.pi * 0.24 * tg + ph * 1.7)
        roll = 0.030 * math.sin(2 * math.pi * 0.16 * tg + ph * 0.9) + 0.012 * math.sin(2 * math.pi * 0.47 * tg + ph)
        # blinks every 2-6 s, ~120 ms
        bp = self._event_phase(h, "blink", 2.0, 6.0, 0.13, tg)
        eye_open = 1.0 - (math.sin(math.pi * bp) if bp >= 0 else 0.0)
        turn, gx, gy, brow, smile, nod = 0.0, 0.0, 0.0, 0.25, 0.35, 0.0
        dim = 1.0
        if role == "speaker":
            # start of turn: eyes come back from the other host to the camera
            g = _bump(self._event_phase(h, "glance", 3.0, 7.0, 1.4, tg))
            look = max(1.0 - ramp, g * 0.8)
            turn = 0.45 * d_other * look + 0.10 * math.sin(2 * math.pi * 0.11 * tg + ph)
            gx, gy = 0.85 * d_other * look, -0.05
            sy -= 0.010 * env_s
            roll += 0.035 * (env_s - 0.3) * math.sin(2 * math.pi * 0.37 * tg + ph)
            brow = 0.2 + 0.75 * max(0.0, env_s - 0.35) + 0.5 * _bump(self._event_phase(h, "brow", 2.5, 6.0, 0.8, tg))
            smile = 0.25 + 0.25 * _bump(self._event_phase(h, "smile", 4.0, 9.0, 2.0, tg))
        elif role == "listener":
            look = 0.35 + 0.65 * ramp
            turn = 0.55 * d_other * look
            gx, gy = 0.9 * d_other * look, 0.05
            nd = self._event_phase(h, "nod", 2.2, 5.5, 0.75, tg)
            if nd >= 0:
                nod = math.sin(math.pi * nd) ** 2 * (0.6 + 0.4 * math.sin(3 * math.pi * nd) ** 2)
            sm = _bump(self._event_phase(h, "lsmile", 3.0, 8.0, 2.2, tg))
            smile = 0.45 + 0.5 * sm
            brow = 0.25 + 0.35 * sm + 0.3 * _bump(self._event_phase(h, "brow", 3.0, 7.0, 0.9, tg))
            dim = 0.86 + 0.14 * emph
        else:  # idle
            gl = _bump(self._event_phase(h, "idleglance", 3.0, 8.0, 1.8, tg))
            turn = 0.12 * d_other + 0.35 * d_other * gl
            gx = 0.8 * d_other * gl + 0.15 * math.sin(2 * math.pi * 0.13 * tg + ph)
            smile = 0.5
            dim = 0.95
        scale = 1.0 + EMPH_SCALE * emph
        k = H * scale
        desk = DESK_Y * H
        cx = HOST_X[h] * W + (sx + 0.004 * turn) * H
        cy = desk - (desk - HEAD_Y * H) * scale + (sy + breath + 0.012 * nod) * H
        bx = HOST_X[h] * W + (0.35 * sx) * H
        by = desk - (desk - HEAD_Y * H) * scale + (0.5 * breath) * H
        if mouth is None:
            mouth = (0.0, 0.5, 0.0, 0.0, 0.0)
        return _Pose(cx, cy, k, roll, bx, by, turn, gx, gy, eye_open, brow, smile, nod, mouth, dim)

    # ------------------------------------------------------------------ host drawing
    def _draw_host(self, img: np.ndarray, h: int, p: _Pose) -> None:
        st = self.styles[h]
        dim = p.dim
        skin = _mul(st.skin, dim)
        skin_sh = _mul(st.skin, 0.80 * dim)
        hair = _mul(st.hair, dim)
        hair_hi = _mul(_mix(st.hair, (255, 236, 220), 0.14), dim)
        top = _mul(st.top, dim)
        top_sh = _mul(st.top, 0.78 * dim)
        bxf = _Xf(p.bx, p.by, p.k)  # body frame: origin at the neutral head centre
        hx = _Xf(p.cx, p.cy, p.k, p.roll)
        ft = p.turn * 0.018  # facial features shift with the head turn
        # ---- long hair behind the shoulders
        if st.hair_style == "long":
            hx.poly(img, [(-0.118, -0.02), (-0.128, 0.12), (-0.115, 0.20), (-0.05, 0.215), (0.05, 0.215),
                          (0.115, 0.20), (0.128, 0.12), (0.118, -0.02)], _mul(st.hair, 0.8 * dim))
        # ---- torso
        bxf.ell(img, 0.0, 0.29, 0.2, 0.125, top_sh)
        bxf.poly(img, [(-0.2, 0.29), (0.2, 0.29), (0.22, 0.5), (-0.22, 0.5)], top_sh)
        bxf.ell(img, 0.0, 0.285, 0.19, 0.117, top)
        bxf.poly(img, [(-0.19, 0.285), (0.19, 0.285), (0.205, 0.5), (-0.205, 0.5)], top)
        # neck
        bxf.poly(img, [(-0.034, 0.06), (0.034, 0.06), (0.038, 0.18), (-0.038, 0.18)], skin_sh)
        if st.top_style == "jacket":
            inner = _mul(st.inner, dim)
            bxf.poly(img, [(-0.06, 0.168), (0.06, 0.168), (0.0, 0.31)], inner)
            bxf.ell(img, 0.0, 0.17, 0.038, 0.02, skin_sh, a0=0, a1=180)
            # lapels
            bxf.poly(img, [(-0.06, 0.163), (-0.09, 0.183), (-0.05, 0.25), (-0.075, 0.27), (-0.004, 0.37), (0.0, 0.31)], top_sh)
            bxf.poly(img, [(0.06, 0.163), (0.09, 0.183), (0.05, 0.25), (0.075, 0.27), (0.004, 0.37), (0.0, 0.31)], top_sh)
            bxf.line(img, [(-0.12, 0.34), (-0.12, 0.5)], _mul(st.top, 0.7 * dim), 0.004)
        else:
            rib = _mul(st.top, 0.86 * dim)
            bxf.ell(img, 0.0, 0.163, 0.068, 0.04, rib, a0=0, a1=180)
            bxf.ell(img, 0.0, 0.163, 0.048, 0.024, skin_sh, a0=0, a1=180)
            # knit texture: a couple of soft vertical cable lines
            for u in (-0.11, 0.11):
                bxf.line(img, [(u, 0.25), (u * 1.04, 0.5)], rib, 0.006)
        if st.hair_style == "long":  # strands over the shoulders
            hx.poly(img, [(-0.118, 0.04), (-0.125, 0.17), (-0.095, 0.235), (-0.083, 0.12)], hair)
            hx.poly(img, [(0.118, 0.04), (0.125, 0.17), (0.095, 0.235), (0.083, 0.12)], hair)
        # ---- head
        hx.ell(img, -0.093, 0.012, 0.019, 0.03, skin_sh)
        hx.ell(img, 0.093, 0.012, 0.019, 0.03, skin_sh)
        hx.poly(img, _HEAD, skin_sh)
        hx.poly(img, _FACE + (-0.006 + 0.3 * ft, -0.006), skin)
        # ---- hair (front)
        if st.hair_style == "short":
            hx.poly(img, _HAIR_SHORT, hair)
            hx.poly(img, _QUIFF + (0.3 * ft, 0.0), hair)
            hx.ell(img, 0.03 + 0.3 * ft, -0.132, 0.03, 0.006, hair_hi, ang=-10)
        else:
            hx.poly(img, _HAIR_LONG, hair)
            hx.ell(img, -0.035 + ft * 0.5, -0.108, 0.045, 0.009, hair_hi, ang=-22)
        # ---- headphones
        ph_col = _mul(st.phones, dim)
        acc = _mul(st.accent, dim)
        hx.ell(img, 0.0, -0.01, 0.112, 0.135, ph_col, a0=195, a1=345, th=0.014)
        for sgn in (-1.0, 1.0):
            hx.ell(img, sgn * 0.1, 0.012, 0.024, 0.04, ph_col)
            hx.ell(img, sgn * 0.106, 0.012, 0.013, 0.028, acc)
        # ---- face
        fx = ft
        # cheeks
        blush = _mul(_mix(st.skin, (240, 110, 120), 0.28), dim)
        hx.ell(img, -0.056 + fx, 0.036, 0.019, 0.011, blush)
        hx.ell(img, 0.056 + fx, 0.036, 0.019, 0.011, blush)
        # nose
        hx.ell(img, 0.0 + fx * 1.2, 0.030 + 0.004 * p.nod, 0.013, 0.009, skin_sh)
        hx.ell(img, 0.0 + fx * 1.2, 0.026 + 0.004 * p.nod, 0.012, 0.008, skin)
        # eyes
        white = _mul((250, 250, 252), dim)
        iris = _mul(st.iris, dim)
        dark = _mul((28, 24, 30), dim)
        ey = -0.004 + 0.006 * p.nod
        eo = p.eye_open
        for sgn in (-1.0, 1.0):
            ex = sgn * 0.039 + fx
            if eo > 0.2:
                hx.ell(img, ex, ey, 0.0195, 0.0165, white)
                ix = ex + 0.0075 * p.gaze_x
                iy = ey + 0.004 * p.gaze_y + 0.002
                hx.circ(img, ix, iy, 0.0112, iris)
                hx.circ(img, ix, iy, 0.006, dark)
                hx.circ(img, ix - 0.0035, iy - 0.004, 0.0027, white)
                if eo < 0.999:
                    c = 1.0 - eo  # eyelid closure
                    top_arc = [(ex + 0.0215 * x, ey - 0.0185 * math.sqrt(max(0.0, 1 - x * x)) - 0.001) for x in _XS]
                    lid = [(ex + 0.0215 * x, ey - 0.0185 * math.sqrt(max(0.0, 1 - x * x)) * (1 - 2 * c)) for x in _XS[::-1]]
                    hx.poly(img, top_arc + lid, skin)
                    hx.line(img, lid, dark, 0.004)
                else:
                    hx.ell(img, ex, ey, 0.0198, 0.0168, dark, a0=195, a1=345, th=0.0045)
            else:
                hx.ell(img, ex, ey + 0.002, 0.019, 0.007, dark, a0=10, a1=170, th=0.0045)
        # eyebrows
        by_ = -0.045 - 0.012 * p.brow + 0.006 * p.nod
        brow_col = _mul(st.hair, 0.85 * dim)
        for sgn in (-1.0, 1.0):
            ex = sgn * 0.039 + fx
            hx.line(img, [(ex - sgn * 0.018, by_ + 0.003), (ex, by_ - 0.0045), (ex + sgn * 0.02, by_ + 0.002)], brow_col, 0.0085)
        # glasses
        if st.glasses:
            fr = _mul((52, 40, 44), dim)
            for sgn in (-1.0, 1.0):
                hx.ell(img, sgn * 0.04 + fx, ey, 0.028, 0.024, fr, th=0.0036)
            hx.line(img, [(-0.011 + fx, ey - 0.004), (0.011 + fx, ey - 0.004)], fr, 0.004)
        # mouth
        self._draw_mouth(img, hx, st, p, fx * 0.9, MOUTH_DY + 0.004 * p.nod, dim)

    def _draw_mouth(self, img, hx: _Xf, st: HostStyle, p: _Pose, mx: float, my: float, dim: float) -> None:
        op, wd, rd, teeth, tongue = p.mouth
        op = max(0.0, float(op))
        sm = p.smile * (1.0 - 0.7 * min(1.0, op)) * (1.0 - rd)
        hw = 0.021 + 0.019 * wd - 0.004 * rd
        up = 0.0025 + 0.009 * op + 0.004 * rd * op
        down = 0.0015 + 0.030 * op
        e = 0.28 + 0.27 * rd
        f = np.clip(1.0 - _XS * _XS, 0.0, 1.0) ** e
        lift = 0.0075 * sm * _XS * _XS
        xs = mx + hw * _XS
        yu = my - up * f - lift
        yl = my + down * f - lift
        lips = _mul(st.lips, dim)
        if op < 0.04:
            # closed: a soft smiling line plus a hint of lower lip
            hx.line(img, np.stack([xs, my - lift + 0.002 * sm], axis=1), lips, 0.0055)
            hx.ell(img, mx, my + 0.009, hw * 0.35, 0.0035, _mul(st.skin, 0.88 * dim), a0=0, a1=180)
            return
        inner = _mul((74, 22, 34), dim)
        outline = np.concatenate([np.stack([xs, yu], 1), np.stack([xs[::-1], yl[::-1]], 1)])
        hx.poly(img, outline, inner)
        # tongue
        tg_h = 0.012 * (0.35 * op + tongue)
        if tg_h > 0.001:
            yt = np.maximum(yl - tg_h * f, yu)
            hx.poly(img, np.concatenate([np.stack([xs, yt], 1), np.stack([xs[::-1], yl[::-1]], 1)]), _mul((214, 96, 108), dim))
        # upper teeth
        th_ = 0.0035 + 0.008 * teeth
        ytt = np.minimum(yu + th_ * np.sqrt(f), yl)
        hx.poly(img, np.concatenate([np.stack([xs, yu], 1), np.stack([xs[::-1], ytt[::-1]], 1)]), _mul((248, 246, 240), dim))
        hx.line(img, outline, lips, 0.0052, closed=True)

    # ------------------------------------------------------------------ static layers
    def _key(self, quality: Quality):
        return (quality.height, quality.width, max(1, int(quality.supersample)))

    def _cached(self, key, make):
        """LRU cache of static layers, bounded by ``cache_mb`` of pixel data."""
        with self._lock:
            v = self._static.get(key)
            if v is not None:
                self._static.move_to_end(key)
                return v
        v = make()
        with self._lock:
            if key not in self._static:
                self._static[key] = v
                self._static_bytes += _nbytes(v)
                while self._static_bytes > self.cache_bytes and len(self._static) > 1:
                    _, old = self._static.popitem(last=False)
                    self._static_bytes -= _nbytes(old)
            else:
                self._static.move_to_end(key)
            return self._static[key]

    def _bg(self, quality: Quality, state, scene: SceneInfo, box: bool) -> np.ndarray:
        """Full static picture (without hosts) for ``state`` in {"idle", 0, 1}."""
        k = self._key(quality)
        return self._cached(("bg", k, state, scene.title, tuple(scene.hosts), bool(box)),
                            lambda: self._make_bg(quality, state, scene, box))

    def _studio(self, quality: Quality, state) -> np.ndarray:
        k = self._key(quality)
        return self._cached(("studio", k, state), lambda: self._stored_studio(quality, state))

    def prepare(self, qualities: Sequence[Quality]) -> None:
        """Build (or load) the studio of every host state at these tiers, so no segment pays for it."""
        for quality in qualities:
            for state in ("idle", 0, 1):
                self._studio(quality, state)

    def _stored_studio(self, quality: Quality, state) -> np.ndarray:
        """The studio from the disk cache, or built and then stored there (atomically)."""
        if not self.studio_cache:
            return self._make_studio(quality, state)
        style = repr((self.bg_top, self.bg_bottom, self.styles, self._key(quality), state))
        path = Path(self.studio_cache) / f"{_CODE_DIGEST}-{hashlib.sha1(style.encode()).hexdigest()[:16]}.npy"
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            pass
        img = self._make_studio(quality, state)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".studio-", suffix=".npy", dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                np.save(f, img, allow_pickle=False)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only or full disk only costs the rebuild next time
        return img

    def _make_studio(self, quality: Quality, state) -> np.ndarray:
        ss = max(1, int(quality.supersample))
        H, W = quality.height * ss, quality.width * ss
        top = np.array(self.bg_top, np.float32)
        bot = np.array(self.bg_bottom, np.float32)
        t = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
        img = (top * (1 - t) + bot * t) * np.ones((1, W, 1), np.float32)
        # spotlights behind each host
        for h in (0, 1):
            if state == "idle":
                inten = 0.38
            else:
                inten = 0.62 if h == state else 0.16
            g = _radial(H, W, HOST_X[h] * W, HEAD_Y * H + 0.02 * H, 0.40 * H, 0.40 * H, 1.6)[..., None]
            acc = np.array(self.styles[h].accent, np.float32)
            img = img + g * inten * (acc * 0.55 - img * 0.25)
        # warm centre glow and vignette
        g = _radial(H, W, 0.5 * W, 0.30 * H, 0.45 * W, 0.55 * H, 2.0)[..., None]
        img = img + g * 22.0
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        v = ((xx / W - 0.5) ** 2 * 1.2 + (yy / H - 0.45) ** 2) * 1.25
        img = img * np.clip(1.0 - v, 0.55, 1.0)[..., None]
        img = np.clip(img, 0, 255).astype(np.uint8)
        u = H / 1000.0
        # centre slat wall with neon logo
        x0, x1 = 0.435 * W, 0.565 * W
        y0, y1 = 0.13 * H, DESK_Y * H
        panel = img.copy()
        _rrect(panel, x0, y0, x1, y1 + 10 * u, 14 * u, (70, 50, 44))
        nsl = 9
        for i in range(nsl):
            sx0 = x0 + (x1 - x0) * (i + 0.18) / nsl
            sx1 = x0 + (x1 - x0) * (i + 0.82) / nsl
            _rrect(panel, sx0, y0 + 8 * u, sx1, y1, 5 * u, (112, 80, 60) if i % 2 == 0 else (104, 74, 56))
        cv2.addWeighted(panel, 0.85, img, 0.15, 0, dst=img)
        # neon ring + waveform
        cx, cy, r = 0.5 * W, 0.34 * H, 0.062 * H
        glow = np.zeros_like(img)
        neon = _mix(self.styles[0].accent, self.styles[1].accent, 0.5)
        cv2.circle(glow, (int(cx * _F), int(cy * _F)), int(r * _F), neon, max(1, int(9 * u)), _AA, _SHIFT)
        glow = cv2.GaussianBlur(glow, (0, 0), max(1.0, 14 * u))
        img = cv2.add(img, glow)
        cv2.circle(img, (int(cx * _F), int(cy * _F)), int(r * _F), _mix(neon, (255, 255, 255), 0.55), max(1, int(4 * u)), _AA, _SHIFT)
        bars = [0.35, 0.7, 1.0, 0.55, 0.85, 0.4, 0.65]
        bw = r * 0.13
        for i, b in enumerate(bars):
            bx = cx + (i - (len(bars) - 1) / 2) * bw * 1.75
            hh = r * 0.95 * b
            col = _mix(self.styles[0].accent, self.styles[1].accent, i / (len(bars) - 1))
            _rrect(img, bx - bw / 2, cy - hh / 2, bx + bw / 2, cy + hh / 2, bw / 2, _mix(col, (255, 255, 255), 0.25))
        # side shelves with plants / books
        self._draw_shelf(img, 0.055 * W, 0.47 * H, u, side=0)
        self._draw_shelf(img, W - 0.055 * W, 0.47 * H, u, side=1)
        # soft shadows of the hosts on the wall
        sh = np.zeros((H, W), np.float32)
        for h in (0, 1):
            cv2.ellipse(sh, (int(HOST_X[h] * W + 0.02 * H), int(0.62 * H)), (int(0.25 * H), int(0.2 * H)), 0, 0, 360, 1.0, -1, _AA)
            cv2.ellipse(sh, (int(HOST_X[h] * W + 0.015 * H), int(0.41 * H)), (int(0.12 * H), int(0.14 * H)), 0, 0, 360, 1.0, -1, _AA)
        sh = cv2.GaussianBlur(sh, (0, 0), 18 * u)
        img = (img.astype(np.float32) * (1.0 - 0.32 * sh[..., None])).astype(np.uint8)
        # desk
        dy = DESK_Y * H
        _rrect(img, -20 * u, dy, W + 20 * u, dy + 0.05 * H, 6 * u, (150, 108, 78))
        img[int(dy + 0.045 * H):] = (40, 34, 52)
        d2 = img[int(dy + 0.045 * H):]
        tt = np.linspace(0, 1, d2.shape[0], dtype=np.float32)[:, None, None]
        d2[:] = (np.array((50, 42, 64), np.float32) * (1 - tt) + np.array((26, 22, 36), np.float32) * tt).astype(np.uint8)
        cv2.rectangle(img, (0, int(dy)), (W, int(dy + 3 * u)), (190, 146, 110), -1)
        # LED strip along the desk edge
        ly = int(dy + 0.05 * H)
        led = np.zeros_like(img)
        for i in range(64):
            xa, xb = W * i / 64, W * (i + 1) / 64
            col = _mix(self.styles[0].accent, self.styles[1].accent, (i + 0.5) / 64)
            cv2.rectangle(led, (int(xa), ly), (int(xb) + 1, ly + max(1, int(3 * u))), col, -1)
        img = cv2.add(img, cv2.GaussianBlur(led, (0, 0), max(1.0, 5 * u)))
        img = cv2.add(img, (led * 0.8).astype(np.uint8))
        # mugs
        for h, mxf in ((0, HOST_X[0] - 0.165), (1, HOST_X[1] + 0.165)):
            mx = mxf * W
            mcol = self.styles[h].accent
            cv2.ellipse(img, (int(mx), int(dy + 0.012 * H)), (int(0.032 * H), int(0.008 * H)), 0, 0, 360, (60, 44, 36), -1, _AA)
            _rrect(img, mx - 0.024 * H, dy - 0.062 * H, mx + 0.024 * H, dy + 0.01 * H, 6 * u, mcol)
            cv2.ellipse(img, (int((mx + (0.03 if h == 0 else -0.03) * H) * _F), int((dy - 0.028 * H) * _F)),
                        (int(0.014 * H * _F), int(0.017 * H * _F)), 0, 0, 360, _mul(mcol, 0.8), max(1, int(5 * u)), _AA, _SHIFT)
            cv2.ellipse(img, (int(mx * _F), int((dy - 0.062 * H) * _F)), (int(0.024 * H * _F), int(0.006 * H * _F)), 0, 0, 360,
                        _mul(mcol, 0.6), -1, _AA, _SHIFT)
        return img

    def _draw_shelf(self, img, x, y, u, side):
        H, W = img.shape[:2]
        w = 0.12 * H
        xs = x - w if side == 1 else x - 0.02 * H
        # shelf board
        _rrect(img, xs - 0.02 * H, y, xs + w + 0.02 * H, y + 0.012 * H, 3 * u, (120, 88, 66))
        if side == 0:
            # potted plant
            px = xs + 0.05 * H
            leaf = (72, 150, 104)
            leaf2 = (52, 122, 86)
            for ang, ln, col in ((-60, 0.085, leaf2), (-100, 0.1, leaf), (-125, 0.09, leaf2), (-30, 0.07, leaf), (-150, 0.065, leaf),
                                 (-80, 0.11, leaf2)):
                a = math.radians(ang)
                cx_ = px + math.cos(a) * ln * H * 0.5
                cy_ = y - 0.045 * H + math.sin(a) * ln * H * 0.5
                cv2.ellipse(img, (int(cx_ * _F), int(cy_ * _F)), (int(ln * H * 0.5 * _F), int(0.016 * H * _F)), ang, 0, 360, col, -1, _AA, _SHIFT)
            _rrect(img, px - 0.035 * H, y - 0.05 * H, px + 0.035 * H, y, 5 * u, (214, 120, 92))
            # books
            bx = xs + 0.1 * H
            for i, (bw, bh, col) in enumerate(((0.016, 0.07, (88, 110, 180)), (0.014, 0.06, (230, 190, 90)), (0.018, 0.075, (200, 96, 90)))):
                _rrect(img, bx, y - bh * H, bx + bw * H, y, 2 * u, col)
                bx += (bw + 0.003) * H
        else:
            # books and a small lamp
            bx = xs
            for bw, bh, col in ((0.016, 0.072, (210, 110, 90)), (0.013, 0.06, (96, 170, 160)), (0.017, 0.08, (240, 200, 120)),
                                (0.014, 0.066, (120, 120, 200))):
                _rrect(img, bx, y - bh * H, bx + bw * H, y, 2 * u, col)
                bx += (bw + 0.003) * H
            lx = xs + 0.1 * H
            glow = np.zeros_like(img)
            cv2.circle(glow, (int(lx), int(y - 0.075 * H)), int(0.05 * H), (255, 200, 120), -1, _AA)
            glow = cv2.GaussianBlur(glow, (0, 0), max(1.0, 18 * u))
            img[:] = cv2.add(img, (glow * 0.45).astype(np.uint8))
            cv2.line(img, (int(lx), int(y)), (int(lx), int(y - 0.06 * H)), (60, 56, 64), max(1, int(4 * u)), _AA)
            cv2.ellipse(img, (int(lx * _F), int((y - 0.068 * H) * _F)), (int(0.03 * H * _F), int(0.022 * H * _F)), 0, 180, 360,
                        (255, 214, 150), -1, _AA, _SHIFT)
            cv2.rectangle(img, (int(lx - 0.03 * H), int(y - 0.069 * H)), (int(lx + 0.03 * H), int(y - 0.066 * H)), (240, 190, 120), -1)

    def _draw_arms(self, img: np.ndarray, h: int, dim: float, mask: bool = False) -> None:
        """Forearms and folded hands on the desk; with ``mask`` draws 255 on a 1-channel image."""
        H, W = img.shape[:2]
        st = self.styles[h]
        a_ = _Xf(HOST_X[h] * W, DESK_Y * H, H)

        def c(col, f):
            return 255 if mask else _mul(col, f * dim)
        for sgn in (-1.0, 1.0):
            a_.line(img, [(sgn * 0.19, -0.012), (sgn * 0.05, 0.022)], c(st.top, 0.72), 0.05)
            a_.line(img, [(sgn * 0.19, -0.016), (sgn * 0.05, 0.018)], c(st.top, 0.92), 0.04)
            a_.ell(img, sgn * 0.052, 0.02, 0.014, 0.024, c(st.top, 0.8), ang=sgn * 20)
        a_.ell(img, -0.012, 0.024, 0.032, 0.017, c(st.skin, 0.8), ang=8)
        a_.ell(img, 0.014, 0.018, 0.032, 0.018, c(st.skin, 0.82), ang=-8)
        a_.ell(img, 0.012, 0.015, 0.028, 0.014, c(st.skin, 1.0), ang=-8)

    def _host_rois(self, quality: Quality) -> list:
        """Per host (x0, y0, x1, y1) in internal pixels bounding everything a host may draw."""
        ss = max(1, int(quality.supersample))
        H, W = quality.height * ss, quality.width * ss
        out = []
        for h in (0, 1):
            cx = HOST_X[h] * W
            out.append((max(0, int(cx - 0.29 * H)), max(0, int(0.17 * H)), min(W, int(cx + 0.29 * H) + 1), min(H, int(0.96 * H))))
        return out

    def _mic_layers(self, quality: Quality):
        """Occluders in front of the hosts: (rgb, alpha) of the mics, and [(box, w, 1-w)] blend parts."""
        k = self._key(quality)
        return self._cached(("mics", k), lambda: self._make_mics(quality))

    def _make_mics(self, quality: Quality):
        ss = max(1, int(quality.supersample))
        H, W = quality.height * ss, quality.width * ss
        u = H / 1000.0
        rgb = np.zeros((H, W, 3), np.uint8)
        a = np.zeros((H, W), np.uint8)
        boxes = []
        for h in (0, 1):
            d = 1.0 if h == 0 else -1.0
            hxp = HOST_X[h] * W
            mx, my = hxp + d * 0.118 * H, 0.585 * H  # mic capsule centre
            arm = (48, 50, 60)
            p0 = (hxp + d * 0.255 * H, DESK_Y * H)
            p1 = (hxp + d * 0.225 * H, 0.60 * H)
            p2 = (mx + d * 0.016 * H, my + 0.039 * H)  # the mic stem
            for layer, col, acol in ((rgb, arm, None), (a, 255, 255)):
                c = col if acol is None else acol
                cv2.line(layer, (int(p0[0] * _F), int(p0[1] * _F)), (int(p1[0] * _F), int(p1[1] * _F)), c, max(1, int(7 * u)), _AA, _SHIFT)
                cv2.line(layer, (int(p1[0] * _F), int(p1[1] * _F)), (int(p2[0] * _F), int(p2[1] * _F)), c, max(1, int(6 * u)), _AA, _SHIFT)
                cv2.circle(layer, (int(p1[0] * _F), int(p1[1] * _F)), int(8 * u * _F), c, -1, _AA, _SHIFT)
            # capsule: a rounded body tilted towards the host's mouth, grille head, accent band
            xf = _Xf(mx, my, H, math.radians(-d * 22.0))
            body_pts = _rounded_box(-0.021, -0.056, 0.021, 0.03, 0.02)
            head_pts = _rounded_box(-0.019, -0.054, 0.019, -0.008, 0.018)
            for layer, mask in ((rgb, False), (a, True)):
                xf.poly(layer, body_pts, 255 if mask else (40, 42, 52))
                if not mask:
                    xf.poly(layer, head_pts, (96, 100, 116))
                    for j in range(5):
                        v = -0.046 + j * 0.0085
                        xf.line(layer, [(-0.017, v), (0.017, v)], (70, 73, 88), 0.0022)
                    xf.line(layer, [(0.0, -0.052), (0.0, -0.01)], (70, 73, 88), 0.0022)
                    xf.ell(layer, -0.009, -0.04, 0.004, 0.01, (150, 154, 170))  # glint
                    xf.poly(layer, _rounded_box(-0.0225, -0.006, 0.0225, 0.003, 0.002), self.styles[h].accent)
                    xf.poly(layer, _rounded_box(-0.012, 0.03, 0.012, 0.042, 0.003), (60, 62, 74))
                else:
                    xf.poly(layer, _rounded_box(-0.0225, -0.006, 0.0225, 0.003, 0.002), 255)
                    xf.poly(layer, _rounded_box(-0.012, 0.03, 0.012, 0.042, 0.003), 255)
            x0 = int(min(mx, p0[0], p1[0]) - 0.06 * H)
            x1 = int(max(mx, p0[0], p1[0]) + 0.06 * H)
            y0 = int(my - 0.08 * H)
            y1 = int(DESK_Y * H) + 1
            boxes.append((max(0, x0), max(0, y0), min(W, x1), min(H, y1)))
        # forearms: alpha only (their colours depend on who is speaking and live in the base)
        arms = np.zeros((H, W), np.uint8)
        dyi = int(math.ceil(DESK_Y * H))
        for h in (0, 1):
            self._draw_arms(arms, h, 1.0, mask=True)
            cx = HOST_X[h] * W
            boxes.append((max(0, int(cx - 0.25 * H)), int(DESK_Y * H - 0.05 * H), min(W, int(cx + 0.25 * H)), dyi))
        a = np.maximum(a, arms)
        # precompute float weights per box (rows below the desk are copied whole)
        parts = []
        for (x0, y0, x1, y1) in boxes:
            y1 = min(y1, dyi)
            w = a[y0:y1, x0:x1].astype(np.float32) / 255.0
            parts.append(((x0, y0, x1, y1), np.ascontiguousarray(w), np.ascontiguousarray(1.0 - w)))
        return rgb, a, parts

    def _make_bg(self, quality: Quality, state, scene: SceneInfo, box: bool) -> np.ndarray:
        ss = max(1, int(quality.supersample))
        H, W = quality.height * ss, quality.width * ss
        u = H / 1000.0
        img = self._studio(quality, state).copy()
        # microphones (also kept as occluder layers)
        rgb, a, _ = self._mic_layers(quality)
        af = a.astype(np.float32)[..., None] / 255.0
        img = (img.astype(np.float32) * (1 - af) + rgb.astype(np.float32) * af + 0.5).astype(np.uint8)
        # forearms and hands resting on the desk (also occluders, see _occluders)
        for h in (0, 1):
            dim = 0.95 if state == "idle" else (1.0 if state == h else 0.86)
            self._draw_arms(img, h, dim)
        # name plates on the desk
        for h in (0, 1):
            name = (scene.hosts[h] if h < len(scene.hosts) else f"Host {h + 1}").upper()
            fs = max(7, int(round(0.024 * H)))
            t = self.text.runs([(name, (255, 255, 255), True)], fs)
            pw = t.shape[1] + 0.032 * H
            ph = 0.034 * H
            cx = HOST_X[h] * W
            y0 = DESK_Y * H + 0.058 * H
            active = state == h
            col = self.styles[h].accent if active else _mix(self.styles[h].accent, (40, 36, 56), 0.45)
            _rrect(img, cx - pw / 2, y0, cx + pw / 2, y0 + ph, ph / 2, col)
            _blit_rgba(img, t, int(cx - t.shape[1] / 2), int(y0 + (ph - t.shape[0]) / 2 + 0.002 * H))
        # title banner
        self._draw_banner(img, scene.title, u)
        # speaker highlight ring on the wall
        if state in (0, 1):
            acc = self.styles[state].accent
            ring = np.zeros_like(img)
            cx, cy = HOST_X[state] * W, HEAD_Y * H - 0.01 * H
            cv2.ellipse(ring, (int(cx * _F), int(cy * _F)), (int(0.185 * H * _F), int(0.205 * H * _F)), 0, 200, 340, acc, max(1, int(6 * u)), _AA, _SHIFT)
            img = cv2.add(img, cv2.GaussianBlur(ring, (0, 0), max(1.0, 8 * u)))
            img = cv2.add(img, (ring * 0.7).astype(np.uint8))
        if box:
            def draw(layer):
                _rrect(layer, CAP_X0 * W, CAP_Y0 * H, CAP_X1 * W, CAP_Y1 * H, 0.028 * H, (14, 12, 24))
            _overlay(img, draw, 0.78)
            if state in (0, 1):
                _rrect(img, CAP_X0 * W + 0.014 * H, CAP_Y0 * H + 0.024 * H, CAP_X0 * W + 0.022 * H, CAP_Y1 * H - 0.024 * H,
                       0.004 * H, self.styles[state].accent)
        return img

    def _draw_banner(self, img, title: str, u: float) -> None:
        H, W = img.shape[:2]
        fs = int(round(0.036 * H))
        title = title.strip() or "StreamWise"
        maxw = 0.62 * W
        t = self.text.runs([(title, (245, 245, 250), True)], fs)
        if t.shape[1] > maxw:  # shorten long titles
            words = title.split()
            while len(words) > 1:
                words = words[:-1]
                t = self.text.runs([(" ".join(words) + "…", (245, 245, 250), True)], fs)
                if t.shape[1] <= maxw:
                    break
            if t.shape[1] > maxw:
                t = cv2.resize(t, (int(maxw), max(1, int(t.shape[0] * maxw / t.shape[1]))), interpolation=cv2.INTER_AREA)
        live = self.text.runs([("LIVE", (255, 255, 255), True)], int(round(0.026 * H)))
        ph = 0.058 * H
        live_w = live.shape[1] + 0.05 * H
        pw = t.shape[1] + live_w + 0.05 * H
        x0 = W / 2 - pw / 2
        y0 = 0.03 * H

        def draw(layer):
            _rrect(layer, x0, y0, x0 + pw, y0 + ph, ph / 2, (12, 12, 22))
        _overlay(img, draw, 0.72)
        # LIVE pill
        lx0 = x0 + 0.012 * H
        _rrect(img, lx0, y0 + 0.011 * H, lx0 + live_w - 0.01 * H, y0 + ph - 0.011 * H, (ph - 0.022 * H) / 2, (226, 54, 74))
        cv2.circle(img, (int((lx0 + 0.016 * H) * _F), int((y0 + ph / 2) * _F)), int(0.0065 * H * _F), (255, 255, 255), -1, _AA, _SHIFT)
        _blit_rgba(img, live, int(lx0 + 0.028 * H), int(y0 + (ph - live.shape[0]) / 2 + 0.002 * H))
        _blit_rgba(img, t, int(lx0 + live_w + 0.008 * H), int(y0 + (ph - t.shape[0]) / 2 + 0.002 * H))

    # ------------------------------------------------------------------ captions
    def _caption_chunks(self, scene: SceneInfo, spk: int, caption: str) -> list:
        """[(lines, n_chars)]: the caption split into chunks of at most max_caption_lines lines.

        Wrapping is measured in ems so every quality tier wraps identically.
        """
        name = (scene.hosts[spk] if spk < len(scene.hosts) else f"Host {spk + 1}").upper()
        key = (name, caption, self.max_caption_lines)
        with self._lock:
            hit = self._caption_cache.get(key)
        if hit is not None:
            return hit
        words = " ".join(caption.split()).split(" ") if caption.strip() else []
        width_em = (CAP_X1 - CAP_X0) * (16 / 9) / CAP_FONT * 0.90 - 2.0  # box width in ems, minus padding
        prefix = name + ": "
        pre_w = self.text.width_em(prefix, True)
        lines: list[list[str]] = []
        cur: list[str] = []
        first_in_chunk = True
        for w in words:
            trial = " ".join(cur + [w])
            avail = width_em - (pre_w if (first_in_chunk and len(lines) % self.max_caption_lines == 0) else 0.0)
            if cur and self.text.width_em(trial, False) > avail:
                lines.append(cur)
                cur = [w]
            else:
                cur.append(w)
        if cur:
            lines.append(cur)
        chunks = []
        L = self.max_caption_lines
        for i in range(0, len(lines), L):
            group = [" ".join(x) for x in lines[i:i + L]]
            chunks.append((tuple([name] + group), sum(len(g) + 1 for g in group)))
        if not chunks:
            chunks = [((name, ""), 1)]
        with self._lock:
            self._caption_cache[key] = chunks
            while len(self._caption_cache) > 256:
                self._caption_cache.popitem(last=False)
        return chunks

    def _blit_caption(self, img: np.ndarray, chunk: tuple, acc) -> None:
        """Draw one caption chunk (name, line, [line]) into the caption box of ``img``."""
        H, W = img.shape[:2]
        name, lines = chunk[0], list(chunk[1:])
        spk_col = (255, 255, 255)
        fs = int(round(CAP_FONT * H))
        imgs = []
        for i, line in enumerate(lines):
            runs = ([(name + ": ", acc, True)] if i == 0 else []) + [(line, spk_col, False)]
            imgs.append(self.text.runs(runs, fs))
        if not imgs:
            return
        maxw = (CAP_X1 - CAP_X0) * W - 0.08 * H
        lh = max(im.shape[0] for im in imgs)
        total_h = lh * len(imgs) + 0.006 * H * (len(imgs) - 1)
        y = (CAP_Y0 + CAP_Y1) / 2 * H - total_h / 2
        for im in imgs:
            if im.shape[1] > maxw:
                im = cv2.resize(im, (int(maxw), max(1, int(im.shape[0] * maxw / im.shape[1]))), interpolation=cv2.INTER_AREA)
            x = CAP_X0 * W + 0.045 * H
            _blit_rgba(img, im, int(x), int(round(y)))
            y += lh + 0.006 * H

    # ------------------------------------------------------------------ occluders
    def _restore_occluders(self, img: np.ndarray, base: np.ndarray, quality: Quality) -> None:
        H = img.shape[0]
        dy = int(math.ceil(DESK_Y * H))
        for x0, _, x1, y1 in self._host_rois(quality):
            img[dy:y1, x0:x1] = base[dy:y1, x0:x1]
        _, _, parts = self._mic_layers(quality)
        for (x0, y0, x1, y1), w, iw in parts:
            d = img[y0:y1, x0:x1]
            s = base[y0:y1, x0:x1]
            d[:] = cv2.blendLinear(s, d, w, iw)

    # ------------------------------------------------------------------ title card
    def _title_static(self, scene: SceneInfo, quality: Quality) -> np.ndarray:
        k = self._key(quality)
        return self._cached(("title", k, scene.title, tuple(scene.hosts)), lambda: self._make_title(scene, quality))

    def _make_title(self, scene: SceneInfo, quality: Quality) -> np.ndarray:
        ss = max(1, int(quality.supersample))
        H, W = quality.height * ss, quality.width * ss
        u = H / 1000.0
        top = np.array(self.bg_top, np.float32) * 0.8
        bot = np.array(self.bg_bottom, np.float32) * 0.9
        t = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
        img = (top * (1 - t) + bot * t) * np.ones((1, W, 1), np.float32)
        for h, (gx, gy) in enumerate(((0.18, 0.2), (0.85, 0.85))):
            g = _radial(H, W, gx * W, gy * H, 0.6 * H, 0.6 * H, 1.8)[..., None]
            img = img + g * 0.5 * (np.array(self.styles[h].accent, np.float32) * 0.6 - img * 0.3)
        img = np.clip(img, 0, 255).astype(np.uint8)
        # concentric rings
        for i, r in enumerate((0.30, 0.42, 0.56, 0.72)):
            cv2.circle(img, (int(W / 2 * _F), int(0.44 * H * _F)), int(r * H * _F), _mul(self.bg_bottom, 1.35 - 0.07 * i), max(1, int(2 * u)), _AA, _SHIFT)
        # "PODCAST" pill
        lab = self.text.runs([("● ON AIR  ·  PODCAST", (255, 255, 255), True)], int(round(0.028 * H)))
        pw, ph = lab.shape[1] + 0.05 * H, 0.05 * H
        _rrect(img, W / 2 - pw / 2, 0.12 * H, W / 2 + pw / 2, 0.12 * H + ph, ph / 2, (226, 54, 74))
        _blit_rgba(img, lab, int(W / 2 - lab.shape[1] / 2), int(0.12 * H + (ph - lab.shape[0]) / 2 + 0.002 * H))
        # title, wrapped to <= 3 lines, shrinking the font for long titles
        title = scene.title.strip() or "StreamWise"
        maxw_em_px = 0.84 * W
        fsn = 0.085
        while True:
            fs = int(round(fsn * H))
            lines = self._wrap(title, maxw_em_px / (fsn * H), bold=True)
            if len(lines) <= 3 or fsn < 0.045:
                break
            fsn *= 0.88
        lines = lines[:3]
        imgs = [self.text.runs([(ln, (255, 255, 255), True)], fs) for ln in lines]
        lh = max(im.shape[0] for im in imgs)
        total = lh * len(imgs)
        y = 0.38 * H - total / 2
        for im in imgs:
            if im.shape[1] > 0.9 * W:
                im = cv2.resize(im, (int(0.9 * W), max(1, int(im.shape[0] * 0.9 * W / im.shape[1]))), interpolation=cv2.INTER_AREA)
            _blit_rgba(img, im, int(W / 2 - im.shape[1] / 2), int(y))
            y += lh
        # accent underline
        _rrect(img, W / 2 - 0.06 * H, y + 0.012 * H, W / 2 - 0.004 * H, y + 0.022 * H, 0.005 * H, self.styles[0].accent)
        _rrect(img, W / 2 + 0.004 * H, y + 0.012 * H, W / 2 + 0.06 * H, y + 0.022 * H, 0.005 * H, self.styles[1].accent)
        # hosts: portrait medallions + names
        with_lab = self.text.runs([("with", (200, 200, 215), False)], int(round(0.032 * H)))
        my = 0.715 * H
        _blit_rgba(img, with_lab, int(W / 2 - with_lab.shape[1] / 2), int(my - with_lab.shape[0] / 2))
        for h in (0, 1):
            cx = W / 2 + (-1 if h == 0 else 1) * 0.22 * H
            r = 0.095 * H
            self._medallion(img, h, cx, my - 0.02 * H, r)
            name = scene.hosts[h] if h < len(scene.hosts) else f"Host {h + 1}"
            nm = self.text.runs([(name, (255, 255, 255), True)], int(round(0.042 * H)))
            _blit_rgba(img, nm, int(cx - nm.shape[1] / 2), int(my + r - 0.005 * H))
        return img

    def _wrap(self, text: str, width_em: float, bold: bool) -> list[str]:
        """Greedy wrap, then shrink the width while the line count stays the same (balanced lines)."""
        lines = self._wrap_greedy(text, width_em, bold)
        if len(lines) > 1:
            lo, hi = 0.3 * width_em, width_em
            for _ in range(12):
                mid = (lo + hi) / 2
                if len(self._wrap_greedy(text, mid, bold)) <= len(lines):
                    hi = mid
                else:
                    lo = mid
            lines = self._wrap_greedy(text, hi, bold)
        return lines

    def _wrap_greedy(self, text: str, width_em: float, bold: bool) -> list[str]:
        words = text.split()
        lines, cur = [], []
        for w in words:
            if cur and self.text.width_em(" ".join(cur + [w]), bold) > width_em:
                lines.append(" ".join(cur))
                cur = [w]
            else:
                cur.append(w)
        if cur:
            lines.append(" ".join(cur))
        return lines or [""]

    def _medallion(self, img, h, cx, cy, r):
        H = img.shape[0]
        size = int(2 * r + 4)
        tile = np.zeros((size, size, 3), np.uint8)
        tile[:] = _mix(self.styles[h].accent, (30, 28, 48), 0.55)
        k = r * 6.4
        pose = _Pose(cx=size / 2, cy=size / 2 + 0.035 * k, k=k, roll=0.0, bx=size / 2, by=size / 2 + 0.035 * k, turn=0.15 * (1 if h == 0 else -1),
                     gaze_x=0.3 * (1 if h == 0 else -1), gaze_y=0.0, eye_open=1.0, brow=0.3, smile=0.9, nod=0.0,
                     mouth=(0.0, 0.55, 0.0, 0.0, 0.0), dim=1.0)
        self._draw_host(tile, h, pose)
        mask = np.zeros((size, size), np.uint8)
        cv2.circle(mask, (int(size / 2 * _F), int(size / 2 * _F)), int(r * _F), 255, -1, _AA, _SHIFT)
        rgba = np.dstack([tile, mask])
        # ring
        cv2.circle(img, (int(cx * _F), int(cy * _F)), int((r + 0.012 * H) * _F), self.styles[h].accent, -1, _AA, _SHIFT)
        _blit_rgba(img, rgba, int(cx - size / 2), int(cy - size / 2))
