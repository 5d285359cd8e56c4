"""Captions: the speaker's line wrapped into chunks that fit the caption box, and their drawing.

A long line is shown as a sequence of chunks of at most ``max_lines`` lines,
the first prefixed with the speaker's name. Wrapping is measured in ems, so
every quality tier splits a line into the same chunks at the same moments.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from models.protocols import SceneInfo
from models.video.avatar2d.hosts import HostStyle
from models.video.avatar2d.layout import CAP_FONT, CAP_X0, CAP_X1, CAP_Y0, CAP_Y1
from models.video.avatar2d.primitives import RGB, blit_rgba, fit_width, overlay, rrect
from models.video.avatar2d.text import Text

#: One chunk: (NAME, line, [line]) and its weight (characters) in the segment's time.
Chunk = tuple[tuple[str, ...], int]

#: Captions remembered; a segment asks for its own once per render.
_CACHE_CAPTIONS = 256


def host_name(scene: SceneInfo, h: int) -> str:
    """Host ``h``'s name as the scene gives it, or a stand-in."""
    return scene.hosts[h] if h < len(scene.hosts) else f"Host {h + 1}"


class Captions:
    """Splits captions into chunks (cached, thread-safe) and draws them."""

    def __init__(self, text: Text, max_lines: int):
        self.text = text
        self.max_lines = max(1, int(max_lines))
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str, int], list[Chunk]] = OrderedDict()

    def chunks(self, scene: SceneInfo, spk: int, caption: str) -> list[Chunk]:
        """[(lines, n_chars)]: the caption split into chunks of at most ``max_lines`` lines."""
        name = host_name(scene, spk).upper()
        key = (name, caption, self.max_lines)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        lines = self._wrap(name, caption)
        chunks = []
        L = self.max_lines
        for i in range(0, len(lines), L):
            group = [" ".join(x) for x in lines[i:i + L]]
            chunks.append((tuple([name] + group), sum(len(g) + 1 for g in group)))
        if not chunks:
            chunks = [((name, ""), 1)]
        with self._lock:
            self._cache[key] = chunks
            while len(self._cache) > _CACHE_CAPTIONS:
                self._cache.popitem(last=False)
        return chunks

    def _wrap(self, name: str, caption: str) -> list[list[str]]:
        """Greedy word wrap to the box width; the first line of each chunk leaves room for the name."""
        words = " ".join(caption.split()).split(" ") if caption.strip() else []
        width_em = (CAP_X1 - CAP_X0) * (16 / 9) / CAP_FONT * 0.90 - 2.0  # box width in ems, minus padding
        pre_w = self.text.width_em(name + ": ", True)
        lines: list[list[str]] = []
        cur: list[str] = []
        for w in words:
            trial = " ".join(cur + [w])
            avail = width_em - (pre_w if len(lines) % self.max_lines == 0 else 0.0)
            if cur and self.text.width_em(trial, False) > avail:
                lines.append(cur)
                cur = [w]
            else:
                cur.append(w)
        if cur:
            lines.append(cur)
        return lines

    def draw(self, img: np.ndarray, chunk: Sequence[str], acc: RGB) -> None:
        """Draw one caption chunk (name, line, [line]) into the caption box of ``img``."""
        H, W = img.shape[:2]
        name, lines = chunk[0], list(chunk[1:])
        fs = round(CAP_FONT * H)
        imgs = []
        for i, line in enumerate(lines):
            runs = ([(name + ": ", acc, True)] if i == 0 else []) + [(line, (255, 255, 255), False)]
            imgs.append(self.text.runs(runs, fs))
        if not imgs:
            return
        maxw = (CAP_X1 - CAP_X0) * W - 0.08 * H
        lh = max(im.shape[0] for im in imgs)
        total_h = lh * len(imgs) + 0.006 * H * (len(imgs) - 1)
        y = (CAP_Y0 + CAP_Y1) / 2 * H - total_h / 2
        for im in imgs:
            im = fit_width(im, maxw)
            x = CAP_X0 * W + 0.045 * H
            blit_rgba(img, im, int(x), round(y))
            y += lh + 0.006 * H


def draw_caption_box(img: np.ndarray, state: str | int, styles: Sequence[HostStyle]) -> None:
    """The translucent caption box, with a bar in the speaker's accent when someone speaks."""
    H, W = img.shape[:2]

    def draw(layer: np.ndarray) -> None:
        rrect(layer, CAP_X0 * W, CAP_Y0 * H, CAP_X1 * W, CAP_Y1 * H, 0.028 * H, (14, 12, 24))
    overlay(img, draw, 0.78)
    if state in (0, 1):
        rrect(img, CAP_X0 * W + 0.014 * H, CAP_Y0 * H + 0.024 * H, CAP_X0 * W + 0.022 * H, CAP_Y1 * H - 0.024 * H,
              0.004 * H, styles[state].accent)
