"""What an episode really costs this server, learned from its own CPU time.

The profile measures each stage alone. A live episode also pays for the event
loop's pacing, WebRTC packetization and encryption, the JPEG round trip of every
frame and the archive's container, which together cost far more than the stages'
sum (docs/benchmarks.md): planning with that sum would let in episodes that then
make every viewer wait.

:class:`CostLearner` learns the two figures admission plans with from the
server process's CPU seconds over windows of several seconds, one at a time, so that neither can
be mistaken for the other (generation and viewing mostly run together, and a joint
fit of the two split their sum at random):

- *viewer*: seconds of CPU per viewer-second, from the windows where nothing was
  generated and viewers were streamed (every episode has them once generated);
- *generation*: seconds of CPU per media second, from the windows where media was
  generated, less the viewers' share at the learned viewer cost.

Each is a ratio of sums that forget the past (about the last 100 s of windows),
anchored to the profile's figure as if it had been seen for a few seconds, so a
cold server starts from the profile and a window that says little moves little.
What it learned is kept in the media directory, so a restarted server plans with it
from its first request. (With drawing in threads, ``runtime.video_workers: thread``,
the process's CPU includes the drawing at the tiers drawn, and admission, which adds
the floor tier's drawing on top, is a little cautious.)

:class:`UsageSampler` reads the CPU times the fit needs, and what other programs
on the machine take (a local browser, another tenant), which admission subtracts
from the capacity.
"""
from __future__ import annotations

import json
import logging
import math
import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

from pipelines.plan.cpu import child_pids, cpu_ticks

log = logging.getLogger(__name__)

#: Bounds on a learned figure (cores per second of media, or per viewer).
_MIN_COST, _MAX_COST = 0.01, 10.0


class CostLearner:
    def __init__(self, generation: float, viewer: float, forget: float = 0.9,
                 prior_weight_s: float = 10.0, path: Path | None = None) -> None:
        """``generation``, ``viewer``: the prior (seconds of CPU per media / viewer second).

        ``forget`` per window: 0.9 at one window every 10 s remembers about the last
        100 s. ``prior_weight_s``: the prior counts as this many seconds of media (or of
        viewing) already seen; a 10 s window of one episode adds 10-30.
        """
        self.prior = {"generation": generation, "viewer": viewer}
        self.forget = forget
        self.prior_weight = prior_weight_s
        self.path = path
        #: Forgetting sums: CPU seconds and the seconds (media or viewer) they paid for.
        self._sums = {"generation": [0.0, 0.0], "viewer": [0.0, 0.0]}
        self.samples = 0
        if path is not None:
            self._load(path)

    def _ratio(self, key: str) -> float:
        cpu, seconds = self._sums[key]
        w = self.prior_weight
        return min(_MAX_COST, max(_MIN_COST, (cpu + w * self.prior[key]) / (seconds + w)))

    @property
    def generation(self) -> float:
        """CPU seconds the server process spends per second of media it generates."""
        return self._ratio("generation")

    @property
    def viewer(self) -> float:
        """CPU seconds per second a viewer is streamed (encoding, packets, pacing)."""
        return self._ratio("viewer")

    def observe(self, cpu_s: float, media_s: float, viewer_s: float) -> None:
        """One window: CPU used by the server process, media generated, viewer-seconds streamed."""
        cpu_s, media_s, viewer_s = max(0.0, cpu_s), max(0.0, media_s), max(0.0, viewer_s)
        if media_s > 0:
            key, cost, seconds = "generation", max(0.0, cpu_s - self.viewer * viewer_s), media_s
        elif viewer_s > 0:
            key, cost, seconds = "viewer", cpu_s, viewer_s
        else:
            return  # idle: says nothing about either cost
        sums = self._sums[key]
        sums[0] = self.forget * sums[0] + cost
        sums[1] = self.forget * sums[1] + seconds
        self.samples += 1

    def to_dict(self) -> dict[str, float | int]:
        return {"generation_cpu_s_per_s": round(self.generation, 4), "viewer_cpu_s_per_s": round(self.viewer, 4),
                "samples": self.samples}

    # ------------------------------------------------------------------ persistence
    def save(self) -> None:
        if self.path is None or not self.samples:
            return
        data = {"sums": self._sums, "samples": self.samples, "updated": time.time(), **self.to_dict()}
        tmp = self.path.with_name(f".{self.path.name}.part")
        try:
            tmp.write_text(json.dumps(data))
            tmp.replace(self.path)
        except OSError as exc:
            log.warning("could not keep the learned episode costs in %s: %s", self.path, exc)

    def _load(self, path: Path) -> None:
        """Start from what an earlier run learned; a missing or unreadable file means the prior."""
        try:
            data = json.loads(path.read_text())
            sums = {key: [float(v) for v in data["sums"][key]] for key in self._sums}
            samples = int(data["samples"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring the learned episode costs in %s (%s); starting from the profile", path, exc)
            return
        if any(len(v) != 2 or not all(math.isfinite(x) and x >= 0 for x in v) for v in sums.values()):
            log.warning("ignoring the learned episode costs in %s (not two finite sums each); starting from the profile",
                        path)
            return
        self._sums, self.samples = sums, samples


@dataclass(frozen=True)
class Usage:
    """CPU seconds so far: this process, its child processes (drawing workers), the whole machine."""

    at: float
    own_s: float
    children_s: float
    machine_busy_s: float | None


class UsageSampler:
    """Reads CPU times from the kernel: getrusage for this process, /proc for the rest."""

    def __init__(self, proc: str = "/proc") -> None:
        self.proc = proc
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def sample(self) -> Usage:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return Usage(time.monotonic(), ru.ru_utime + ru.ru_stime, self._children_s(os.getpid()), self._machine_busy_s())

    def _machine_busy_s(self) -> float | None:
        ticks = cpu_ticks(f"{self.proc}/stat")
        return None if ticks is None else (ticks[0] - ticks[1]) / self._tick

    def _children_s(self, pid: int) -> float:
        total = 0.0
        for child in child_pids(pid, self.proc):
            try:
                with open(f"{self.proc}/{child}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / self._tick
            except (OSError, ValueError, IndexError):
                continue  # it exited between the listing and the read
            total += self._children_s(child)
        return total



def other_cores(before: Usage, after: Usage) -> float | None:
    """Cores other programs kept busy between two samples (None where the machine's total is unknown)."""
    dt = after.at - before.at
    if dt <= 0 or before.machine_busy_s is None or after.machine_busy_s is None:
        return None
    ours = (after.own_s - before.own_s) + max(0.0, after.children_s - before.children_s)
    return max(0.0, (after.machine_busy_s - before.machine_busy_s - ours) / dt)
