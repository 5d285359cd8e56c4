"""The two hosts: their looks (``HostStyle``) and how one is drawn in a given ``Pose``.

Shapes are in host-local units of the frame height (see ``primitives.Xf``): the
body hangs from the neutral head centre (``Pose.bx/by``), the head and face from
the moving head centre (``Pose.cx/cy``, rolled). ``dim`` darkens every colour so
the listener recedes behind the speaker.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.video.avatar2d.camera import WIDE, Camera
from models.video.avatar2d.layout import DESK_Y, HOST_X, MOUTH_DY
from models.video.avatar2d.motion import Pose
from models.video.avatar2d.primitives import RGB, Colour, Xf, arc, hex_rgb, mix, mul


@dataclass(frozen=True)
class HostStyle:
    """One host's colours and cut: hair, glasses and clothes."""

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


#: The hosts' colours unless the deployment says otherwise: (host 0, host 1) per part.
DEFAULT_COLOURS = {"skin": ("#c98e64", "#f6d2bb"), "hair": ("#2d211d", "#b0502f"), "top": ("#2f4d7a", "#e9ae3f"),
                   "accent": ("#ff7a59", "#36c9bb")}
#: The studio wall's gradient, top and bottom.
DEFAULT_BACKDROP = ("#141a33", "#2b2550")


def make_styles(skin: tuple[str, str], hair: tuple[str, str], top: tuple[str, str],
                accent: tuple[str, str]) -> tuple[HostStyle, HostStyle]:
    """The two hosts from their configured colours: a short-haired host in a jacket, a long-haired one with glasses."""
    return (
        HostStyle(skin=hex_rgb(skin[0]), hair=hex_rgb(hair[0]), top=hex_rgb(top[0]), accent=hex_rgb(accent[0]),
                  iris=(92, 58, 36), lips=mix(hex_rgb(skin[0]), (150, 60, 60), 0.45), phones=(38, 40, 48),
                  hair_style="short", glasses=False, top_style="jacket"),
        HostStyle(skin=hex_rgb(skin[1]), hair=hex_rgb(hair[1]), top=hex_rgb(top[1]), accent=hex_rgb(accent[1]),
                  iris=(64, 118, 92), lips=mix(hex_rgb(skin[1]), (190, 70, 80), 0.45), phones=(236, 238, 244),
                  hair_style="long", glasses=True, top_style="sweater"),
    )


# ----------------------------------------------------------------------------- outlines
#: Sample points across the eye and mouth width, -1..1.
_XS = np.linspace(-1.0, 1.0, 15)


def _head_outline(rx: float, ry: float, chin: float = 0.2, n: int = 40) -> np.ndarray:
    """Egg-shaped head outline (narrower jaw), centred on the origin."""
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    s = np.sin(a)
    x = rx * np.cos(a) * (1.0 - chin * np.clip(s, 0, None) ** 2)
    y = ry * s * np.where(s > 0, 1.0, 0.96)
    return np.stack([x, y], axis=1)


_HEAD = _head_outline(0.095, 0.12)
_FACE = _head_outline(0.088, 0.114)

# short hair: cap with a side part and a swept quiff
_HAIR_SHORT = np.concatenate([
    arc(0.0, -0.012, 0.104, 0.125, 175, 365, 20),
    np.array([(0.1, 0.01), (0.092, 0.012), (0.088, -0.03), (0.07, -0.068), (0.03, -0.085),
              (-0.01, -0.082), (-0.03, -0.09), (-0.06, -0.07), (-0.085, -0.04), (-0.09, 0.012), (-0.102, 0.01)]),
])
_QUIFF = np.array([(-0.06, -0.1), (-0.03, -0.138), (0.02, -0.152), (0.07, -0.135), (0.098, -0.095),
                   (0.07, -0.105), (0.03, -0.112), (-0.02, -0.11)])
# long hair fringe
_HAIR_LONG = np.concatenate([
    arc(0.0, -0.01, 0.108, 0.122, 175, 365, 20),
    np.array([(0.108, 0.05), (0.092, 0.05), (0.088, -0.02), (0.07, -0.06), (0.035, -0.075),
              (-0.02, -0.095), (-0.05, -0.075), (-0.078, -0.045), (-0.088, -0.0), (-0.092, 0.05), (-0.108, 0.05)]),
])


@dataclass(frozen=True)
class _Palette:
    """A host's main colours at one dimming."""

    skin: RGB
    skin_sh: RGB
    hair: RGB
    hair_hi: RGB
    top: RGB
    top_sh: RGB

    @staticmethod
    def of(st: HostStyle, dim: float) -> _Palette:
        return _Palette(skin=mul(st.skin, dim), skin_sh=mul(st.skin, 0.80 * dim), hair=mul(st.hair, dim),
                        hair_hi=mul(mix(st.hair, (255, 236, 220), 0.14), dim), top=mul(st.top, dim),
                        top_sh=mul(st.top, 0.78 * dim))


# ----------------------------------------------------------------------------- host
def draw_host(img: np.ndarray, st: HostStyle, p: Pose) -> None:
    """Draw one host (body, head, face, mouth) in pose ``p`` onto ``img``, back to front."""
    pal = _Palette.of(st, p.dim)
    bxf = Xf(p.bx, p.by, p.k)  # body frame: origin at the neutral head centre
    hx = Xf(p.cx, p.cy, p.k, p.roll)
    ft = p.turn * 0.018  # facial features shift with the head turn
    _draw_body(img, st, pal, bxf, hx, p.dim)
    _draw_head(img, st, pal, hx, ft, p.dim)
    _draw_face(img, st, pal, hx, p, ft)


def _draw_body(img: np.ndarray, st: HostStyle, pal: _Palette, bxf: Xf, hx: Xf, dim: float) -> None:
    """Long hair behind the shoulders, torso, neck and top, strands over the shoulders."""
    if st.hair_style == "long":
        hx.poly(img, [(-0.118, -0.02), (-0.128, 0.12), (-0.115, 0.20), (-0.05, 0.215), (0.05, 0.215),
                      (0.115, 0.20), (0.128, 0.12), (0.118, -0.02)], mul(st.hair, 0.8 * dim))
    bxf.ell(img, 0.0, 0.29, 0.2, 0.125, pal.top_sh)
    bxf.poly(img, [(-0.2, 0.29), (0.2, 0.29), (0.22, 0.5), (-0.22, 0.5)], pal.top_sh)
    bxf.ell(img, 0.0, 0.285, 0.19, 0.117, pal.top)
    bxf.poly(img, [(-0.19, 0.285), (0.19, 0.285), (0.205, 0.5), (-0.205, 0.5)], pal.top)
    # neck
    bxf.poly(img, [(-0.034, 0.06), (0.034, 0.06), (0.038, 0.18), (-0.038, 0.18)], pal.skin_sh)
    if st.top_style == "jacket":
        _draw_jacket(img, st, pal, bxf, dim)
    else:
        _draw_sweater(img, st, pal, bxf, dim)
    if st.hair_style == "long":  # strands over the shoulders
        hx.poly(img, [(-0.118, 0.04), (-0.125, 0.17), (-0.095, 0.235), (-0.083, 0.12)], pal.hair)
        hx.poly(img, [(0.118, 0.04), (0.125, 0.17), (0.095, 0.235), (0.083, 0.12)], pal.hair)


def _draw_jacket(img: np.ndarray, st: HostStyle, pal: _Palette, bxf: Xf, dim: float) -> None:
    """Shirt, lapels and a seam over the torso."""
    inner = mul(st.inner, dim)
    bxf.poly(img, [(-0.06, 0.168), (0.06, 0.168), (0.0, 0.31)], inner)
    bxf.ell(img, 0.0, 0.17, 0.038, 0.02, pal.skin_sh, a0=0, a1=180)
    # lapels
    bxf.poly(img, [(-0.06, 0.163), (-0.09, 0.183), (-0.05, 0.25), (-0.075, 0.27), (-0.004, 0.37), (0.0, 0.31)], pal.top_sh)
    bxf.poly(img, [(0.06, 0.163), (0.09, 0.183), (0.05, 0.25), (0.075, 0.27), (0.004, 0.37), (0.0, 0.31)], pal.top_sh)
    bxf.line(img, [(-0.12, 0.34), (-0.12, 0.5)], mul(st.top, 0.7 * dim), 0.004)


def _draw_sweater(img: np.ndarray, st: HostStyle, pal: _Palette, bxf: Xf, dim: float) -> None:
    """Ribbed collar and soft cable lines over the torso."""
    rib = mul(st.top, 0.86 * dim)
    bxf.ell(img, 0.0, 0.163, 0.068, 0.04, rib, a0=0, a1=180)
    bxf.ell(img, 0.0, 0.163, 0.048, 0.024, pal.skin_sh, a0=0, a1=180)
    for u in (-0.11, 0.11):
        bxf.line(img, [(u, 0.25), (u * 1.04, 0.5)], rib, 0.006)


def _draw_head(img: np.ndarray, st: HostStyle, pal: _Palette, hx: Xf, ft: float, dim: float) -> None:
    """Ears, head, front hair and headphones."""
    hx.ell(img, -0.093, 0.012, 0.019, 0.03, pal.skin_sh)
    hx.ell(img, 0.093, 0.012, 0.019, 0.03, pal.skin_sh)
    hx.poly(img, _HEAD, pal.skin_sh)
    hx.poly(img, _FACE + (-0.006 + 0.3 * ft, -0.006), pal.skin)
    if st.hair_style == "short":
        hx.poly(img, _HAIR_SHORT, pal.hair)
        hx.poly(img, _QUIFF + (0.3 * ft, 0.0), pal.hair)
        hx.ell(img, 0.03 + 0.3 * ft, -0.132, 0.03, 0.006, pal.hair_hi, ang=-10)
    else:
        hx.poly(img, _HAIR_LONG, pal.hair)
        hx.ell(img, -0.035 + ft * 0.5, -0.108, 0.045, 0.009, pal.hair_hi, ang=-22)
    ph_col = mul(st.phones, dim)
    acc = mul(st.accent, dim)
    hx.ell(img, 0.0, -0.01, 0.112, 0.135, ph_col, a0=195, a1=345, th=0.014)
    for sgn in (-1.0, 1.0):
        hx.ell(img, sgn * 0.1, 0.012, 0.024, 0.04, ph_col)
        hx.ell(img, sgn * 0.106, 0.012, 0.013, 0.028, acc)


def _draw_face(img: np.ndarray, st: HostStyle, pal: _Palette, hx: Xf, p: Pose, fx: float) -> None:
    """Cheeks, nose, eyes, eyebrows, glasses and mouth; features shift by ``fx`` with the turn."""
    dim = p.dim
    blush = mul(mix(st.skin, (240, 110, 120), 0.28), dim)
    hx.ell(img, -0.056 + fx, 0.036, 0.019, 0.011, blush)
    hx.ell(img, 0.056 + fx, 0.036, 0.019, 0.011, blush)
    # nose
    hx.ell(img, 0.0 + fx * 1.2, 0.030 + 0.004 * p.nod, 0.013, 0.009, pal.skin_sh)
    hx.ell(img, 0.0 + fx * 1.2, 0.026 + 0.004 * p.nod, 0.012, 0.008, pal.skin)
    ey = -0.004 + 0.006 * p.nod
    dark = mul((28, 24, 30), dim)
    for sgn in (-1.0, 1.0):
        _draw_eye(img, st, pal, hx, p, sgn * 0.039 + fx, ey, dark)
    by_ = -0.045 - 0.012 * p.brow + 0.006 * p.nod
    brow_col = mul(st.hair, 0.85 * dim)
    for sgn in (-1.0, 1.0):
        ex = sgn * 0.039 + fx
        hx.line(img, [(ex - sgn * 0.018, by_ + 0.003), (ex, by_ - 0.0045), (ex + sgn * 0.02, by_ + 0.002)], brow_col, 0.0085)
    if st.glasses:
        fr = mul((52, 40, 44), dim)
        for sgn in (-1.0, 1.0):
            hx.ell(img, sgn * 0.04 + fx, ey, 0.028, 0.024, fr, th=0.0036)
        hx.line(img, [(-0.011 + fx, ey - 0.004), (0.011 + fx, ey - 0.004)], fr, 0.004)
    draw_mouth(img, hx, st, p, fx * 0.9, MOUTH_DY + 0.004 * p.nod, dim)


def _draw_eye(img: np.ndarray, st: HostStyle, pal: _Palette, hx: Xf, p: Pose, ex: float, ey: float,
              dark: RGB) -> None:
    """One eye at (ex, ey): open with iris and gaze, half-closed by the lid, or shut."""
    eo = p.eye_open
    if eo <= 0.2:
        hx.ell(img, ex, ey + 0.002, 0.019, 0.007, dark, a0=10, a1=170, th=0.0045)
        return
    white = mul((250, 250, 252), p.dim)
    hx.ell(img, ex, ey, 0.0195, 0.0165, white)
    ix = ex + 0.0075 * p.gaze_x
    iy = ey + 0.004 * p.gaze_y + 0.002
    hx.circ(img, ix, iy, 0.0112, mul(st.iris, p.dim))
    hx.circ(img, ix, iy, 0.006, dark)
    hx.circ(img, ix - 0.0035, iy - 0.004, 0.0027, white)
    if eo < 0.999:
        c = 1.0 - eo  # eyelid closure
        top_arc = [(ex + 0.0215 * x, ey - 0.0185 * math.sqrt(max(0.0, 1 - x * x)) - 0.001) for x in _XS]
        lid = [(ex + 0.0215 * x, ey - 0.0185 * math.sqrt(max(0.0, 1 - x * x)) * (1 - 2 * c)) for x in _XS[::-1]]
        hx.poly(img, top_arc + lid, pal.skin)
        hx.line(img, lid, dark, 0.004)
    else:
        hx.ell(img, ex, ey, 0.0198, 0.0168, dark, a0=195, a1=345, th=0.0045)


def draw_mouth(img: np.ndarray, hx: Xf, st: HostStyle, p: Pose, mx: float, my: float, dim: float) -> None:
    """The mouth at (mx, my) in head units, shaped by ``p.mouth`` and ``p.smile``."""
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
    lips = mul(st.lips, dim)
    if op < 0.04:
        # closed: a soft smiling line plus a hint of lower lip
        hx.line(img, np.stack([xs, my - lift + 0.002 * sm], axis=1), lips, 0.0055)
        hx.ell(img, mx, my + 0.009, hw * 0.35, 0.0035, mul(st.skin, 0.88 * dim), a0=0, a1=180)
        return
    inner = mul((74, 22, 34), dim)
    outline = np.concatenate([np.stack([xs, yu], 1), np.stack([xs[::-1], yl[::-1]], 1)])
    hx.poly(img, outline, inner)
    # tongue
    tg_h = 0.012 * (0.35 * op + tongue)
    if tg_h > 0.001:
        yt = np.maximum(yl - tg_h * f, yu)
        hx.poly(img, np.concatenate([np.stack([xs, yt], 1), np.stack([xs[::-1], yl[::-1]], 1)]), mul((214, 96, 108), dim))
    # upper teeth
    th_ = 0.0035 + 0.008 * teeth
    ytt = np.minimum(yu + th_ * np.sqrt(f), yl)
    hx.poly(img, np.concatenate([np.stack([xs, yu], 1), np.stack([xs[::-1], ytt[::-1]], 1)]), mul((248, 246, 240), dim))
    hx.line(img, outline, lips, 0.0052, closed=True)


def draw_arms(img: np.ndarray, st: HostStyle, h: int, dim: float, mask: bool = False,
              camera: Camera = WIDE) -> None:
    """Host ``h``'s forearms and folded hands on the desk, seen through ``camera``; with ``mask``
    draws 255 on a 1-channel image."""
    H, W = img.shape[:2]
    a_ = Xf(camera.x(HOST_X[h] * W), camera.y(DESK_Y * H), H * camera.zoom)

    def c(col: tuple, f: float) -> Colour:
        return 255 if mask else mul(col, f * dim)
    for sgn in (-1.0, 1.0):
        a_.line(img, [(sgn * 0.19, -0.012), (sgn * 0.05, 0.022)], c(st.top, 0.72), 0.05)
        a_.line(img, [(sgn * 0.19, -0.016), (sgn * 0.05, 0.018)], c(st.top, 0.92), 0.04)
        a_.ell(img, sgn * 0.052, 0.02, 0.014, 0.024, c(st.top, 0.8), ang=sgn * 20)
    a_.ell(img, -0.012, 0.024, 0.032, 0.017, c(st.skin, 0.8), ang=8)
    a_.ell(img, 0.014, 0.018, 0.032, 0.018, c(st.skin, 0.82), ang=-8)
    a_.ell(img, 0.012, 0.015, 0.028, 0.014, c(st.skin, 1.0), ang=-8)
