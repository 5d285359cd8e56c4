"""Admission for one server: may a new episode start now, the queue of those waiting, and what they cost.

The gate (server/admission/gate.py) answers from the load of every episode; this
loop feeds it that load, starts queued episodes oldest first as soon as the gate
lets each in, and learns from the server's own CPU time what an episode and a
viewer really cost here (server/admission/cost_learning.py).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.protocols import CLOCK_RATE
from pipelines.config import Deployment
from pipelines.stages.pools import StagePools
from server.admission.cost_learning import CostLearner, Usage, UsageSampler, other_cores
from server.admission.gate import Admission, Load, Verdict
from server.episodes.episode import Episode

log = logging.getLogger(__name__)

#: What admission learned about this machine's costs, next to the episodes.
LEARNED_COSTS_FILE = "admission-costs.json"
#: Seconds between two readings of the CPU times (what other programs use follows them).
USAGE_INTERVAL_S = 2.0
#: Seconds of readings per observation of the learned costs: segments land a few seconds
#: of media at a time while their CPU is spent all along, so short windows would blur
#: generation into viewing.
LEARN_WINDOW_S = 10.0
#: Seconds between saves of the learned costs.
SAVE_EVERY_S = 30.0


def build_gate(deployment: Deployment, pools: StagePools) -> Admission:
    """The admission gate for this deployment, planning with the measured profile's stage costs."""
    q = deployment.quality
    stage_rtf: dict[str, float] = {}
    profile = pools.profile
    if profile is not None:
        stage_rtf = {stage: fit.rtf for stage, fit in (("script", profile.script), ("speech", profile.speech))
                     if fit is not None}
        if q.default in profile.encode:
            stage_rtf["encode"] = profile.encode[q.default].rtf
    return Admission(deployment.runtime.admission, stage_rtf, pools.video_costs.rtf, q.floor or q.ladder[0].name,
                     deployment.runtime.startup_target_s)


class AdmissionLoop:
    """The gate, the wait queue and the cost learner over one manager's ``episodes``.

    ``start`` is called with a queued episode when the gate lets it in.
    """

    def __init__(self, deployment: Deployment, pools: StagePools, media_dir: Path,
                 episodes: dict[str, Episode], start: Callable[[Episode], None]) -> None:
        self.episodes = episodes
        self.max_queue = deployment.runtime.admission.max_queue
        self._start = start
        #: Episodes waiting for admission, oldest first.
        self.queue: list[str] = []
        self.gate = build_gate(deployment, pools)
        self.pools = pools
        self.tier_names = [t.name for t in deployment.quality.ladder]
        self.learned: CostLearner | None = None
        #: Cores other programs keep busy (smoothed); admission leaves them alone.
        self.other_cores = 0.0
        #: Viewers of an episode that are being sent media (the WebRTC gateway knows better than
        #: the connection count: a viewer at the end of an episode is sent nothing).
        self.streaming: Callable[[Episode], int] = lambda episode: episode.viewers
        self.stopping = False
        self._pump_task: asyncio.Task | None = None
        self._usage_task: asyncio.Task | None = None
        spec = deployment.runtime.admission
        if spec.enabled and spec.learn_costs:
            self.learned = CostLearner(self.gate.process_demand(), spec.viewer_rtf, path=media_dir / LEARNED_COSTS_FILE)
            self.gate.learned = self.learned
            self.gate.other_load = lambda: self.other_cores

    # ------------------------------------------------------------------ the gate
    def loads(self) -> list[Load]:
        """What every episode asks of the machine now: generation and viewers' streams."""
        out = []
        for e in self.episodes.values():
            generating = e.status == "generating"
            streaming = self.streaming(e)
            if not generating and not streaming:
                continue
            runtime = e.runtime
            remaining = max(0.0, e.request.duration_s - e.buffer.end / CLOCK_RATE) if generating else 0.0
            # Made to be watched live: until its viewer's stream is up (a second or so after
            # the request), plan for one, or a burst of requests would be admitted as if unwatched.
            viewers = max(streaming, 1) if generating else streaming
            out.append(Load(generating, viewers, remaining, bool(runtime and runtime.at_risk)))
        return out

    def admit(self) -> Verdict:
        return self.gate.check(self.loads())

    def costs(self) -> dict[str, Any]:
        """What admission plans with per episode, for /api/admission."""
        a = self.gate
        return {"generation_cores": round(a.generation_demand(), 3), "viewer_cores": round(a.viewer_demand(), 3),
                "other_programs_cores": round(self.other_cores, 3),
                "learned_samples": self.learned.samples if self.learned else 0,
                "gpu": self.gpu_load()}

    def gpu_load(self) -> dict[str, Any] | None:
        """The GPU workers as admission counts cores: their capacity (summed speeds), what the
        generating episodes would ask of them drawn wholly at the cheapest tier they draw, and
        how many episodes they can draw at once at that tier. None without GPU pools.

        An episode is admitted on its look's CPU floor tier, which the GPUs only improve on;
        this says how many of the admitted episodes can have neural tiers.
        """
        gpu = [s for s in self.pools.video.slots if s.device != "cpu"]
        if not gpu:
            return None
        tiers = {t for s in gpu for t in (s.tiers if s.tiers is not None else self.tier_names)}
        rtf = min(self.pools.video_costs.rtf(t) for t in tiers)
        capacity = sum(s.speed for s in gpu)
        generating = sum(e.status == "generating" for e in self.episodes.values())
        return {"workers": len(gpu), "capacity": round(capacity, 3), "demand": round(generating * rtf, 3),
                "episodes_at_neural_tier": int(capacity / rtf) if rtf > 0 else None}

    # ------------------------------------------------------------------ the queue
    @property
    def full(self) -> bool:
        return len(self.queue) >= self.max_queue

    def enqueue(self, episode: Episode) -> None:
        """Queue an episode; it starts by itself when the gate lets it in."""
        episode.status = "queued"
        self.queue.append(episode.id)
        if self._pump_task is None or self._pump_task.done():
            self._pump_task = asyncio.create_task(self._pump(), name="admission-queue")

    async def _pump(self, interval_s: float = 1.0) -> None:
        """Start queued episodes, oldest first, as soon as admission lets each in."""
        while self.queue and not self.stopping:
            head = self.episodes.get(self.queue[0])
            if head is None or head.status != "queued":
                self.queue.pop(0)
                continue
            if self.admit().admit:
                self.queue.pop(0)
                self._start(head)
                continue
            await asyncio.sleep(interval_s)

    def position(self, episode_id: str) -> int | None:
        return self.queue.index(episode_id) + 1 if episode_id in self.queue else None

    def status(self, episode_id: str) -> dict[str, int | None] | None:
        """Where a queued episode stands, for the viewers waiting on it; None once it is not queued.

        Admission's estimate of when room frees up (a generating episode done) is only
        an estimate for the head of the queue: the others get their place in line.
        """
        position = self.position(episode_id)
        if position is None:
            return None
        starts_in = self.admit().retry_after_s if position == 1 else None
        return {"position": position, "starts_in_s": starts_in}

    def drain(self) -> list[Episode]:
        """Empty the queue; returns the episodes that were waiting."""
        waiting = [self.episodes[i] for i in self.queue if i in self.episodes]
        self.queue.clear()
        return waiting

    # ------------------------------------------------------------------ learning costs
    def learn(self) -> None:
        """Start learning costs (once): called when an episode starts generating."""
        if self.learned is not None and (self._usage_task is None or self._usage_task.done()):
            self._usage_task = asyncio.create_task(self._learn_usage(UsageSampler()), name="admission-costs")

    async def _learn_usage(self, sampler: UsageSampler, interval_s: float = USAGE_INTERVAL_S) -> None:
        """Every few seconds: the server's CPU time against the media generated and the viewers served."""
        assert self.learned is not None
        before: Usage = await asyncio.to_thread(sampler.sample)
        window, seen, viewer_s = before, self._generated(), 0.0
        saved = before.at
        while not self.stopping:
            await asyncio.sleep(interval_s)
            try:
                after = await asyncio.to_thread(sampler.sample)
            except OSError as exc:  # /proc unreadable for a moment: skip this reading
                log.debug("could not read CPU times: %s", exc)
                continue
            viewer_s += sum(self.streaming(e) for e in self.episodes.values()) * (after.at - before.at)
            other = other_cores(before, after)
            if other is not None:
                self.other_cores += 0.3 * (other - self.other_cores)
            before = after
            if after.at - window.at < LEARN_WINDOW_S:
                continue
            now = self._generated()
            media_s = sum(end - seen.get(eid, 0) for eid, end in now.items()) / CLOCK_RATE
            self.learned.observe(after.own_s - window.own_s, media_s, viewer_s)
            window, seen, viewer_s = after, now, 0.0
            if after.at - saved > SAVE_EVERY_S:
                await asyncio.to_thread(self.learned.save)
                saved = after.at

    def _generated(self) -> dict[str, int]:
        """Samples generated so far by each episode this process generated (not rebuilt from an archive)."""
        return {eid: e.buffer.end for eid, e in self.episodes.items() if e.runtime is not None}

    def stop(self) -> None:
        """Stop the queue and the learner; what was learned is saved."""
        self.stopping = True
        for task in (self._pump_task, self._usage_task):
            if task is not None:
                task.cancel()
        if self.learned is not None:
            self.learned.save()
