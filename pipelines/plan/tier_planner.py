"""Per-segment quality decisions: which tier each segment is drawn at, and why.

The static policies (``static``: the default tier with the fixed early-low rule;
``static-high`` / ``static-low``: top / bottom of the ladder; ``fifo`` and
``batch``: the default tier) ignore deadlines. ``adaptive`` picks, for each
segment, the highest tier whose predicted finish fits the segment's slack (time
until its deadline, i.e. the live buffer): the drawing queued ahead of it shared
over the workers, plus its own drawing on the fastest worker, or split over
several workers when one alone would be late (model parallelism). Costs are
seconds-per-media-second per tier that start from a profile and follow what the
workers actually measure (an exponential moving average). It
climbs at most one rung per segment, so quality rises smoothly as the buffer
grows, drops as far as needed when a deadline is at risk, and never goes below
the configured floor. A rung up needs ``reserve_s`` of slack to spare beyond its
predicted drawing and holding needs half of it, so with a thin buffer the planner
steps down and rebuilds it (buffer-based, as video players choose bitrates).
Above the default tier it only climbs while the CPUs have room or every
generating episode has ``climb_lead_s`` of content ready ahead of its viewers.
Every decision is kept with its reason for the timeline.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from models.protocols import Quality
from pipelines.plan.cpu import CpuMeter


@dataclass(frozen=True)
class TierView:
    """The video slots that draw one tier, as the planner sees them: their summed speed, the
    fastest, how many, and the drawing work (speed-1 seconds) queued for them."""

    capacity: float
    fastest: float
    workers: int
    backlog_s: float


@dataclass(frozen=True)
class Decision:
    segment: int
    tier: str
    reason: str
    slack_s: float
    predicted_s: float
    #: Workers the segment's frames are split across (model parallelism).
    parts: int = 1
    #: Predicted seconds of drawing queued ahead of this segment when it was planned.
    backlog_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CostModel:
    """Seconds of drawing per second of media, per tier, on a speed-1 worker (the profile).

    What changes at run time is each worker's speed (pipelines.stages.pools.Slot
    measures it against these costs), not the relative cost of the tiers.
    """

    def __init__(self, initial: dict[str, float], cold_s: dict[str, float] | None = None,
                 speedup: dict[str, dict[int, float]] | None = None) -> None:
        self._rtf = dict(initial)
        #: Extra seconds the first segment of a tier costs a worker (its studio, caches): the
        #: profile's fitted fixed cost.
        self._cold = {k: max(0.0, v) for k, v in (cold_s or {}).items()}
        #: How much faster a segment is drawn split over k workers than on one, per tier (the
        #: profile's ``parallel``): where the workers share cores, well under k.
        self._speedup = {tier: {int(k): v for k, v in by_k.items()} for tier, by_k in (speedup or {}).items()}

    def rtf(self, tier: str) -> float:
        return self._rtf.get(tier, max(self._rtf.values(), default=1.0))

    def speedup(self, tier: str, parts: int) -> float:
        """Measured speed-up over ``parts`` workers; a count not measured keeps the per-worker
        efficiency of the largest one measured; nothing measured: ideal (``parts``)."""
        if parts <= 1:
            return 1.0
        measured = self._speedup.get(tier)
        if not measured:
            return float(parts)
        if parts in measured:
            return max(measured[parts], 1e-3)
        largest = max(measured)
        return max(measured[largest] * parts / largest, 1e-3)

    def cost(self, tier: str, media_s: float, cold: bool = False, parts: int = 1) -> float:
        """Predicted speed-1 seconds until ``media_s`` of ``tier`` is drawn, split over ``parts``
        workers drawing at once (each new to the tier if ``cold``)."""
        return self.rtf(tier) * media_s / self.speedup(tier, parts) + (self._cold.get(tier, 0.0) if cold else 0.0)


#: Policies that never look at deadlines: a fixed tier per segment.
STATIC_POLICIES = ("static", "static-high", "static-low", "fifo", "batch")


class TierPlanner:
    def __init__(
        self,
        ladder: list[Quality],
        policy: str,
        default: str,
        floor: str | None,
        costs: CostModel,
        startup: str | None = None,
        startup_segments: int = 0,
        headroom: float = 1.5,
        reserve_s: float = 0.0,
        cpu: CpuMeter | None = None,
        climb_below_cpu: float = 1.0,
        min_lead: Callable[[], float] | None = None,
        climb_lead_s: float = math.inf,
    ) -> None:
        self.ladder = ladder
        self.names = [q.name for q in ladder]
        self.policy = policy
        self.default = default
        self.floor = self.names.index(floor) if floor else 0
        self.costs = costs
        self.startup = startup
        self.startup_segments = startup_segments
        self.headroom = headroom
        #: Buffer kept in reserve: a rung up needs this much slack to spare, holding half of it.
        self.reserve_s = reserve_s
        #: Above the default tier only while the machine's CPUs are less busy than this.
        self.cpu = cpu
        self.climb_below_cpu = climb_below_cpu
        #: Seconds of content every generating episode has ready ahead of its viewers (the
        #: thinnest buffer on the machine); with at least ``climb_lead_s`` of it, busy
        #: CPUs are generation running ahead, not a shortage, and climbing is allowed.
        self.min_lead = min_lead
        self.climb_lead_s = climb_lead_s
        self.decisions: list[Decision] = []
        self._last: int | None = None

    def _tier(self, name: str) -> Quality:
        return self.ladder[self.names.index(name)]

    def _static_tier(self, segment: int) -> str:
        if self.policy == "static-high":
            return self.names[-1]
        if self.policy == "static-low":
            return self.names[0]
        return self.startup if (self.startup and segment < self.startup_segments) else self.default

    def choose(self, segment: int, media_s: float, slack_s: float, **load: float) -> Quality:
        """The tier for ``segment`` (``media_s`` long, due in ``slack_s`` seconds); recorded."""
        return self._tier(self.plan(segment, media_s, slack_s, **load).tier)

    def plan(self, segment: int, media_s: float, slack_s: float, backlog_s: float = 0.0,
             capacity: float = 1.0, fastest: float = 1.0, max_parts: int = 1,
             cold: Collection[str] = (), per_tier: Mapping[str, TierView] | None = None,
             urgent: bool = False) -> Decision:
        """Tier and worker count for ``segment``, from the costs, its slack and the queue ahead.

        ``backlog_s`` is the drawing work (speed-1 seconds) queued ahead of this
        segment's deadline, shared out over ``capacity`` (the slots' summed speeds);
        the segment itself runs on the fastest slot, or split over ``max_parts``
        slots when one alone would miss the deadline. Tiers in ``cold`` have not
        been drawn by every worker yet and cost their first-time setup on top.
        ``per_tier``: when pools draw different tiers (GPU pools for the neural
        tiers), each tier's own slots and queue replace the four figures above.
        ``urgent``: the first segment after a viewer's question, due a moment after it is
        voiced while the workers may still be drawing what the question replaced: the floor
        tier, so it is ready soonest (the next segments climb from there).
        """
        views = {name: per_tier.get(name, TierView(capacity, fastest, max_parts, backlog_s)) if per_tier
                 else TierView(capacity, fastest, max_parts, backlog_s) for name in self.names}
        if self.policy in STATIC_POLICIES:
            name = self._static_tier(segment)
            predicted = self.costs.rtf(name) * media_s / max(views[name].fastest, 1e-9)
            return self._record(segment, name, f"{self.policy} policy", slack_s, predicted, 1, views[name].backlog_s)
        top = len(self.ladder) - 1 if self._last is None else min(len(self.ladder) - 1, self._last + 1)
        if urgent:
            top = self.floor
        default = self.names.index(self.default)
        gate = self._cpu_gate(default)
        if gate is not None:
            top = min(top, gate[0])
        for i in range(top, self.floor - 1, -1):
            view = views[self.names[i]]
            if view.workers == 0 or view.fastest <= 0:
                continue  # no slot draws it now
            # Buffer-based: climbing spends buffer, so it needs the reserve to spare.
            spare = 0.0 if self._last is None or i < self._last else (
                self.reserve_s if i > self._last else self.reserve_s / 2)
            for parts in ((1, view.workers) if view.workers > 1 else (1,)):
                predicted = self._predict(self.names[i], media_s, view, parts, cold)
                if predicted + spare <= slack_s:
                    why = ("after a viewer's question: the floor tier, ready soonest" if urgent
                           else self._why(i, parts) + (gate[1] if gate is not None and i == top else ""))
                    return self._record(segment, self.names[i], why, slack_s, predicted, parts, view.backlog_s)
        name = self.names[self.floor]
        view = views[name]
        return self._record(segment, name, "no tier meets the deadline: floor tier on every worker", slack_s,
                            self._predict(name, media_s, view, max(1, view.workers), cold), max(1, view.workers),
                            view.backlog_s)

    def _predict(self, name: str, media_s: float, view: TierView, parts: int, cold: Collection[str]) -> float:
        """Seconds until the segment is drawn at tier ``name``: its queue, then its own drawing."""
        wait = view.backlog_s / max(view.capacity, 1e-9)
        run = self.costs.cost(name, media_s, name in cold, parts) / max(view.fastest, 1e-9)
        return (wait + run) * self.headroom

    def _cpu_gate(self, default: int) -> tuple[int, str] | None:
        """The highest rung allowed while the cores are taken, and why; None when not limited.

        Busy CPUs alone say little: an episode generating ahead of its viewers
        keeps them busy too. They only hold quality back while some episode's
        buffer is thin (its script and speech need those cores): hold at most what
        this episode has, above the default tier; and with less than half the lead,
        give the cores back down to the default tier.
        """
        busy = self.cpu.busy() if self.cpu is not None else 0.0
        if busy < self.climb_below_cpu:
            return None
        held = max(default, self._last if self._last is not None else default)
        if self.min_lead is None:
            return held, f" (CPUs {busy:.0%} busy: at most {self.names[held]})"
        lead = self.min_lead()
        if lead >= self.climb_lead_s:
            return None
        cap = default if lead < self.climb_lead_s / 2 else held
        return cap, f" (CPUs {busy:.0%} busy, thinnest buffer {lead:.1f} s: at most {self.names[cap]})"

    def _why(self, i: int, parts: int) -> str:
        if self._last is None:
            why = "first segment: highest tier that meets its deadline"
        elif i > self._last:
            why = "slack allows one rung up"
        elif i < self._last:
            why = "deadline at risk: stepping down"
        elif i < len(self.ladder) - 1:
            why = "holding: the next rung would not meet the deadline with the reserve to spare"
        else:
            why = "top tier fits"
        return why if parts == 1 else f"{why}, split over {parts} workers"

    def _record(self, segment: int, name: str, reason: str, slack_s: float, predicted: float,
                parts: int = 1, backlog_s: float = 0.0) -> Decision:
        self._last = self.names.index(name)
        decision = Decision(segment, name, reason, round(slack_s, 3), round(predicted, 3), parts, round(backlog_s, 3))
        self.decisions.append(decision)
        return decision
