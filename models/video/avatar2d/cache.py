"""A thread-safe LRU cache of static picture layers, bounded by their pixel bytes.

Layers are big (a supersampled 720p picture is several megabytes) and there is
one per (tier, state, episode), so the bound is on bytes, not entries.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def nbytes(v: Any) -> int:
    """Pixel bytes held by an array or a tuple/list of them (other values count 0)."""
    if isinstance(v, np.ndarray):
        return int(v.nbytes)
    if isinstance(v, (tuple, list)):
        return sum(nbytes(x) for x in v)
    return 0


class LayerCache:
    """Layers by key, least recently used dropped first once over ``max_bytes`` (the newest always stays).

    ``get`` builds a missing layer outside the lock, so threads drawing other
    layers do not wait; when two threads build the same one, the first stored wins.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self._layers: OrderedDict[Hashable, Any] = OrderedDict()
        self._bytes = 0

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """The layer stored under ``key``, made with ``make()`` and stored when missing."""
        with self._lock:
            v = self._layers.get(key)
            if v is not None:
                self._layers.move_to_end(key)
                return v
        v = make()
        with self._lock:
            if key not in self._layers:
                self._layers[key] = v
                self._bytes += nbytes(v)
                while self._bytes > self.max_bytes and len(self._layers) > 1:
                    _, old = self._layers.popitem(last=False)
                    self._bytes -= nbytes(old)
            else:
                self._layers.move_to_end(key)
            return self._layers[key]
