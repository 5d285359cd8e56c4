"""Frames of a segment, kept JPEG-compressed plane by plane so long episodes fit in memory.

Raw I420 at 360p is 346 KB a frame: a 30-minute episode would hold 15 GB. Each
plane (Y, U, V) is compressed separately, so no JPEG block straddles two planes,
which would bleed colour. Compressing runs on the video worker that drew the
frames; a viewer's track decompresses only the frame it reads.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import cv2
import numpy as np


class FrameList(Sequence[np.ndarray]):
    """A read-only sequence of I420 frames, raw or compressed; indexing returns the raw frame."""

    def __init__(self, items: list, shape: tuple[int, int] | None, jpeg_quality: int | None,
                 packets: list[bytes] | None = None) -> None:
        self._items = items
        self._shape = shape  # (rows, cols) of the I420 array
        self._quality = jpeg_quality
        #: The same frames encoded once for every WebRTC viewer (VP8, a keyframe first), if they were.
        self.packets = packets

    def encoded(self, packets: list[bytes]) -> FrameList:
        """This list with its frames' encoded form attached (one packet per frame)."""
        if len(packets) != len(self._items):
            raise ValueError(f"{len(packets)} encoded frames for {len(self._items)} frames")
        return FrameList(self._items, self._shape, self._quality, packets)

    def head(self, n: int) -> FrameList:
        """The first ``n`` frames, with their encoded form: a run that starts with a keyframe
        decodes up to any frame of it."""
        packets = self.packets[:n] if self.packets is not None else None
        return FrameList(self._items[:n], self._shape, self._quality, packets)

    @classmethod
    def raw(cls, frames: list[np.ndarray]) -> FrameList:
        return cls(list(frames), frames[0].shape if frames else None, None)

    @classmethod
    def compress(cls, frames: list[np.ndarray], jpeg_quality: int = 90,
                 check: Callable[[], None] = lambda: None) -> FrameList:
        """``check`` is called before each frame: it may raise to stop (a draw nobody waits for)."""
        if not frames:
            return cls([], None, jpeg_quality)
        rows, cols = frames[0].shape
        h = rows * 2 // 3
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
        items = []
        for frame in frames:
            check()
            y = frame[:h]
            uv = frame[h:].reshape(2, h // 2, cols // 2)
            planes = (y, uv[0], uv[1])
            items.append(tuple(cv2.imencode(".jpg", p, params)[1].tobytes() for p in planes))
        return cls(items, (rows, cols), jpeg_quality)

    @classmethod
    def join(cls, parts: Sequence[FrameList]) -> FrameList:
        """One list from consecutive parts drawn by different workers (same kind and shape)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls([], None, None)
        # Each part's encoded run starts with a keyframe, so the runs play back to back.
        packets = [b for p in parts for b in p.packets] if all(p.packets is not None for p in parts) else None
        return cls([item for p in parts for item in p._items], parts[0]._shape, parts[0]._quality, packets)

    @property
    def compressed(self) -> bool:
        return self._quality is not None

    def nbytes(self) -> int:
        if not self.compressed:
            return sum(f.nbytes for f in self._items)
        return sum(len(p) for item in self._items for p in item)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return FrameList(self._items[index], self._shape, self._quality)
        item = self._items[index]
        if not self.compressed:
            return item
        rows, cols = self._shape  # type: ignore[misc]
        h = rows * 2 // 3
        y, u, v = (cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_GRAYSCALE) for p in item)
        out = np.empty((rows, cols), dtype=np.uint8)
        out[:h] = y
        out[h:].reshape(2, h // 2, cols // 2)[0] = u
        out[h:].reshape(2, h // 2, cols // 2)[1] = v
        return out

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]
