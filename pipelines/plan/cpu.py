"""What the machine's CPUs are doing, read from /proc: the planner's meter and admission's sampler share it."""
from __future__ import annotations

import os
import threading
import time


def cpu_ticks(path: str = "/proc/stat") -> tuple[int, int] | None:
    """All CPUs' (total, idle) clock ticks since boot from /proc/stat; None where it cannot be read."""
    try:
        with open(path) as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values[:8]), idle  # guest time (fields 9-10) is already counted in user time


def child_pids(pid: int, proc: str = "/proc") -> list[int]:
    """Child processes of every thread of ``pid`` (the kernel lists a child under the thread that forked it)."""
    out: list[int] = []
    try:
        threads = os.listdir(f"{proc}/{pid}/task")
    except OSError:
        return out
    for tid in threads:
        try:
            with open(f"{proc}/{pid}/task/{tid}/children") as f:
                out.extend(int(p) for p in f.read().split())
        except (OSError, ValueError):
            continue
    return out


class CpuMeter:
    """How busy the machine's CPUs are (0..1), from /proc/stat, averaged over the last seconds.

    Drawing shares the cores with the script and speech of every episode: a tier above
    the default is only worth its CPU when the machine has some to spare.
    """

    def __init__(self, path: str = "/proc/stat", min_interval_s: float = 0.5, alpha: float = 0.5) -> None:
        self.path = path
        self.min_interval_s = min_interval_s
        self.alpha = alpha
        self._last: tuple[float, int, int] | None = None
        self._busy = 0.0
        self._lock = threading.Lock()

    def busy(self) -> float:
        now = time.monotonic()
        with self._lock:
            if self._last is not None and now - self._last[0] < self.min_interval_s:
                return self._busy
            sample = cpu_ticks(self.path)
            if sample is None:
                return 0.0
            if self._last is not None:
                total, idle = sample[0] - self._last[1], sample[1] - self._last[2]
                if total > 0:
                    self._busy = (1 - self.alpha) * self._busy + self.alpha * (1 - idle / total)
            self._last = (now, *sample)
            return self._busy
