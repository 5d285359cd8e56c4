"""How the hosts move: poses as smooth functions of the episode clock, driven by the audio.

Sway, breathing, blinks, glances, nods and smiles depend only on the *global*
episode time, the seed and the host, never on which segment or worker draws a
frame: any frame can be drawn alone and still match its neighbours. Timed
gestures come from per-(host, kind) random schedules extended on demand.
The speaking mouth follows the viseme track, scaled by the audio envelope.
"""
from __future__ import annotations

import bisect
import math
import threading
from dataclasses import dataclass

import numpy as np

from models.protocols import CLOCK_RATE, Quality
from models.video.avatar2d.layout import DESK_Y, EMPH_SCALE, HEAD_Y, HOST_X, canvas_size
from models.video.visemes import VisemeTrack

#: Mouth parameters (open, wide, round, teeth, tongue), as ``models.video.visemes`` orders them.
Mouth = tuple[float, float, float, float, float]
#: A closed, relaxed mouth.
REST_MOUTH: Mouth = (0.0, 0.5, 0.0, 0.0, 0.0)


def bump(p: float) -> float:
    """0 -> 1 -> 0 smooth bump on p in [0, 1]."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return math.sin(math.pi * p) ** 2


def smoothstep(x: float) -> float:
    """Cubic ease from 0 to 1 on [0, 1], clamped outside."""
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


@dataclass
class Pose:
    """Everything the host drawing needs for one host in one frame."""

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


@dataclass
class _Attitude:
    """Where a host looks and what its face does, before it is placed in the frame."""

    turn: float = 0.0
    gx: float = 0.0
    gy: float = 0.0
    brow: float = 0.25
    smile: float = 0.35
    nod: float = 0.0
    dim: float = 1.0


# ----------------------------------------------------------------------------- audio
def envelope(pcm: np.ndarray, n_frames: int, spf: int) -> np.ndarray:
    """Loudness 0..1 per frame: RMS in a short window around each frame's instant, normalised.

    Normalising by a high percentile of the voiced frames makes quiet and loud
    voices open the mouth alike.
    """
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


def slow_follow(env: np.ndarray) -> np.ndarray:
    """A slow follower of the envelope (fast attack, slow release) that drives head gestures."""
    env_s = np.empty_like(env)
    acc = 0.0
    for i, e in enumerate(env):
        acc += (e - acc) * (0.35 if e > acc else 0.12)
        env_s[i] = acc
    return env_s


def speaking_mouth(track: VisemeTrack, local: int, e: float) -> Mouth:
    """The speaker's mouth at ``local`` samples into the segment with loudness ``e``.

    The viseme shape sets the form and the loudness the jaw; without phoneme
    timings the mouth flaps with the loudness alone.
    """
    shape = track.at_array(local)
    if track.n:
        op = shape[0] * (0.3 + 0.8 * e)
        return (min(1.05, op), shape[1], shape[2], shape[3], shape[4])
    return (0.85 * e, 0.6, 0.1, 0.5 * e, 0.0)


# ----------------------------------------------------------------------------- gestures
class Motion:
    """Poses of the two hosts for a seed; thread-safe, deterministic for (seed, host, time)."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._lock = threading.Lock()
        self._events: dict[tuple[int, str], list] = {}

    def event_times(self, host: int, kind: str, lo: float, hi: float, until: float) -> list[float]:
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

    def event_phase(self, host: int, kind: str, lo: float, hi: float, dur: float, t: float) -> float:
        """Phase 0..1 of the event active at ``t``, or -1 when none."""
        if t < 0:
            return -1.0
        times = self.event_times(host, kind, lo, hi, t)
        i = bisect.bisect_right(times, t) - 1
        if i < 0:
            return -1.0
        p = (t - times[i]) / dur
        return p if p < 1.0 else -1.0

    def pose(self, quality: Quality, h: int, tg: float, role: str, emph: float, env: float = 0.0,
             env_s: float = 0.0, mouth: Mouth | None = None, ramp: float = 1.0) -> Pose:
        """Host ``h``'s pose at episode time ``tg`` seconds.

        ``role`` is "speaker", "listener" or "idle"; ``emph`` (0..1) scales the
        host up and lights it; ``ramp`` (0..1) is the progress of the turn change;
        ``env_s`` is the slow loudness that drives the speaker's head.
        """
        H, W = canvas_size(quality)
        d_other = 1.0 if h == 0 else -1.0  # direction towards the other host
        ph = (0.0, 2.1)[h] + self.seed * 0.731
        # idle sway / bob / breathing on the global clock
        sx = 0.0055 * math.sin(2 * math.pi * 0.21 * tg + ph) + 0.0025 * math.sin(2 * math.pi * 0.57 * tg + 1.3 * ph)
        sy = 0.0035 * math.sin(2 * math.pi * 0.29 * tg + 0.7 * ph) + 0.0018 * math.sin(2 * math.pi * 0.83 * tg + ph)
        breath = 0.0022 * math.sin(2 * math.pi * 0.24 * tg + ph * 1.7)
        roll = 0.030 * math.sin(2 * math.pi * 0.16 * tg + ph * 0.9) + 0.012 * math.sin(2 * math.pi * 0.47 * tg + ph)
        # a blink every few seconds, closing and opening in a fraction of a second
        bp = self.event_phase(h, "blink", 2.0, 6.0, 0.13, tg)
        eye_open = 1.0 - (math.sin(math.pi * bp) if bp >= 0 else 0.0)
        if role == "speaker":
            att = self._speaker(h, tg, ph, d_other, env_s, ramp)
            sy -= 0.010 * env_s
            roll += 0.035 * (env_s - 0.3) * math.sin(2 * math.pi * 0.37 * tg + ph)
        elif role == "listener":
            att = self._listener(h, tg, d_other, emph, ramp)
        else:
            att = self._idle(h, tg, ph, d_other)
        scale = 1.0 + EMPH_SCALE * emph
        k = H * scale
        desk = DESK_Y * H
        cx = HOST_X[h] * W + (sx + 0.004 * att.turn) * H
        cy = desk - (desk - HEAD_Y * H) * scale + (sy + breath + 0.012 * att.nod) * H
        bx = HOST_X[h] * W + (0.35 * sx) * H
        by = desk - (desk - HEAD_Y * H) * scale + (0.5 * breath) * H
        if mouth is None:
            mouth = REST_MOUTH
        return Pose(cx, cy, k, roll, bx, by, att.turn, att.gx, att.gy, eye_open, att.brow, att.smile, att.nod,
                    mouth, att.dim)

    def _speaker(self, h: int, tg: float, ph: float, d_other: float, env_s: float, ramp: float) -> _Attitude:
        """Talks to the camera: at the start of a turn the eyes come back from the other host."""
        g = bump(self.event_phase(h, "glance", 3.0, 7.0, 1.4, tg))
        look = max(1.0 - ramp, g * 0.8)
        return _Attitude(
            turn=0.45 * d_other * look + 0.10 * math.sin(2 * math.pi * 0.11 * tg + ph),
            gx=0.85 * d_other * look, gy=-0.05,
            brow=0.2 + 0.75 * max(0.0, env_s - 0.35) + 0.5 * bump(self.event_phase(h, "brow", 2.5, 6.0, 0.8, tg)),
            smile=0.25 + 0.25 * bump(self.event_phase(h, "smile", 4.0, 9.0, 2.0, tg)),
        )

    def _listener(self, h: int, tg: float, d_other: float, emph: float, ramp: float) -> _Attitude:
        """Looks at the speaker, nods and smiles now and then; dimmed unless emphasised."""
        look = 0.35 + 0.65 * ramp
        att = _Attitude(turn=0.55 * d_other * look, gx=0.9 * d_other * look, gy=0.05)
        nd = self.event_phase(h, "nod", 2.2, 5.5, 0.75, tg)
        if nd >= 0:
            att.nod = math.sin(math.pi * nd) ** 2 * (0.6 + 0.4 * math.sin(3 * math.pi * nd) ** 2)
        sm = bump(self.event_phase(h, "lsmile", 3.0, 8.0, 2.2, tg))
        att.smile = 0.45 + 0.5 * sm
        att.brow = 0.25 + 0.35 * sm + 0.3 * bump(self.event_phase(h, "lbrow", 3.0, 7.0, 0.9, tg))
        att.dim = 0.86 + 0.14 * emph
        return att

    def _idle(self, h: int, tg: float, ph: float, d_other: float) -> _Attitude:
        """Nobody speaks: both hosts face the camera and glance at each other now and then."""
        gl = bump(self.event_phase(h, "idleglance", 3.0, 8.0, 1.8, tg))
        return _Attitude(turn=0.12 * d_other + 0.35 * d_other * gl,
                         gx=0.8 * d_other * gl + 0.15 * math.sin(2 * math.pi * 0.13 * tg + ph),
                         smile=0.5, dim=0.95)
