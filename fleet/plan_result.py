"""A plan: what every search family returns, the search compares and the report prints.

Contract: a :class:`Plan` pairs an allocation and its chunking with the simulator's verdict
on them (``result``); ``notes`` records the search settings that produced it (lead chunk
frames, low-quality chunks, horizon, ...) for the report. :meth:`Plan.to_json` is the
``streamwise plan --json`` row, so its keys are part of the command's output format.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fleet.paper_profiles import GPU_TYPES
from fleet.simulator import Allocation, Chunk, SimResult

Note = int | float | str | tuple[int, ...] | None


@dataclass
class Plan:
    """One candidate plan, judged by the simulator."""

    objective: str
    allocation: Allocation
    chunks: list[Chunk]
    result: SimResult
    solver: str
    ttff_target: float
    pipelined: bool = True
    notes: dict[str, Note] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """The JSON row: every reference GPU type is listed (0 when unused), then other devices."""
        prov = {g: self.result.billed_gpus.get(g, 0) for g in GPU_TYPES}
        for g, n in self.result.billed_gpus.items():
            prov.setdefault(g, n)
        return {"objective": self.objective, "provision": prov, "ttff_s": round(self.result.ttff_s, 3),
                "tbf_s": round(self.result.tbf_s, 4), "total_time_s": round(self.result.total_time_s, 2),
                "cost": round(self.result.cost, 3), "energy_kwh": round(self.result.energy_kwh, 3),
                "pipelined": self.pipelined}


PlanKey = Callable[[Plan], float]  # what a search minimises over plans
