"""Provision planner: which GPUs, how many, split how between stages, for a TTFF target.

Every candidate plan is judged by the discrete-event simulator (:func:`fleet.simulator.simulate`):
TTFF is the stall-free one (every chunk done by TTFF + its start in the video) and cost is the
paper's billing unless asked otherwise: every GPU, rounded up to whole 8-GPU servers per type,
for the whole run (request to last frame generated), at the paper's prices.

Candidate families, one module each:

* Paced single-pool plans (:func:`_single_pool` here) from the covering proxy
  (:mod:`fleet.covering`): every stage gets a share of the TTFF target and supplies whole jobs
  by each chunk's deadline; solved exactly (MILP) or greedily, then the simulator checks it,
  growing bulk replicas when queueing makes chunks late.
* Burst plans (:mod:`fleet.burst`): generate ahead of playback and release every server when
  the episode is done, which is what the paper's billing rewards.
* Paced two-pool plans (:mod:`fleet.startup_pool`), only with ``billing="startup-pool"``: the
  startup servers are billed until their last job, a variant, not the paper's rule.

The search tries short lead chunks and low-quality first chunks (keeping at least
``min_high`` of the frames at high quality), horizons and queueing slack, and keeps the best
simulated plan for the objective.

Contract: :func:`plan` returns the best plan meeting the target (``None`` when none does) and
calls ``on_step`` once per candidate configuration, at most :func:`search_steps` times for
the same arguments (configurations below ``min_high`` are skipped without a step).
"""
from __future__ import annotations

from collections.abc import Callable

from fleet.burst import (
    BURST_HORIZONS,
    BURST_LEADS,
    BURST_LOW,
    BURST_POLISH,
    BURST_THETAS,
    plan_burst,
)
from fleet.covering import build_problem, solve_greedy, solve_milp, to_allocation
from fleet.paper_profiles import ProfileError, Profiles, Workload
from fleet.plan_result import Plan, PlanKey
from fleet.simulator import high_share, simulate, standard_chunks, within_counts
from fleet.startup_pool import PACED_CAPS, PACED_LEADS, PACED_LOW, PACED_MID, plan_paced

LEADS: tuple[tuple[int, ...], ...] = ((), (21,), (9, 21))
LOW_CHUNKS: tuple[int, ...] = (0, 1, 2, 4, 8, 16)
SLACKS: tuple[float, ...] = (1.0, 0.8)  # x the TTFF target the proxy plans for (room for queueing)
SCALES: tuple[float, ...] = (1.0, 1.15, 1.35, 1.7, 2.2)  # bulk replica growth tried on a proxy plan

BILLING = ("paper", "startup-pool")


def plan(profiles: Profiles, w: Workload, ttff: float, objective: str = "cost", solver: str = "heuristic",
         spot: bool = True, counts: dict[str, int] | None = None, tier: str = "high",
         on_step: Callable[[], None] | None = None, ttff_grid: tuple[float, ...] | None = None,
         billing: str = "paper", min_high: float = 0.0, burst: bool = True) -> Plan | None:
    """Best simulated plan: min cost with TTFF <= target (no stalls), or min TTFF x cost.

    Every candidate is judged by :func:`~fleet.simulator.simulate`; ``min_high`` is the least
    share of frames at high quality. Candidates under the paper's billing (every server for the
    whole run): single-pool plans paced to playback from the proxy solvers (:func:`_single_pool`),
    and burst plans that generate ahead of playback and release every server at the end
    (:func:`~fleet.burst.plan_burst`). ``billing="startup-pool"`` adds the paced two-pool plans
    whose startup pool is billed only until its last job ends
    (:func:`~fleet.startup_pool.plan_paced`): not the paper's rule, so never the headline
    comparison. With ``objective="ttff_cost"`` every target of ``ttff_grid`` (default: 1 to 16
    times ``ttff``) is searched, each with a lighter burst search.
    """
    if billing not in BILLING:
        raise ValueError(f"billing must be one of {BILLING}")
    targets = (ttff,) if objective == "cost" else (ttff_grid or tuple(ttff * f for f in (1, 1.5, 2, 4, 8, 16)))
    key: PlanKey = (lambda p: p.result.cost) if objective == "cost" else (lambda p: p.result.ttff_s * p.result.cost)
    best: Plan | None = None

    def consider(cand: Plan | None) -> None:
        nonlocal best
        if cand is None or (objective == "cost" and cand.result.ttff_s > ttff + 1e-6):
            return
        if cand.result.high_share < min_high - 1e-9 or not within_counts(cand.allocation, counts):
            return
        cand.objective = objective
        if best is None or key(cand) < key(best):
            best = cand

    for target in targets:
        for lead in LEADS:
            for low in LOW_CHUNKS:
                for slack in SLACKS:
                    if on_step:
                        on_step()
                    if high_share(standard_chunks(w, tier=tier, lead=lead, low_chunks=low)) >= min_high - 1e-9:
                        consider(_single_pool(profiles, w, target, slack, lead, low, solver, spot, counts, tier))
        if burst:
            if objective == "cost":
                solvers, thetas, polish = ("ladder", "milp" if solver == "milp" else "heuristic"), BURST_THETAS, BURST_POLISH
            else:  # several targets: a lighter search per target
                solvers, thetas, polish = ("ladder",), BURST_THETAS[:1], 2
            consider(plan_burst(profiles, w, target, spot, tier, min_high, solvers, on_step, key=key, counts=counts,
                                thetas=thetas, polish=polish))
        if billing == "startup-pool" and counts is None:
            consider(plan_paced(profiles, w, target, spot, tier, on_step, key=key, min_high=min_high))
    return best


def search_steps(objective: str, ttff_grid: tuple[float, ...] | None = None, n_gpu_types: int = 4,
                 billing: str = "paper") -> int:
    """Progress-bar length for :func:`plan` (one step per candidate configuration)."""
    n = 1 if objective == "cost" else len(ttff_grid or (1, 2, 3, 4, 5, 6))
    paced = n_gpu_types * len(PACED_CAPS) * len(PACED_LEADS) * len(PACED_LOW) * len(PACED_MID)
    burst = len(BURST_LEADS) * len(BURST_LOW) * len(BURST_HORIZONS) * (len(BURST_THETAS) * 2 if n == 1 else 1)
    return n * (len(LEADS) * len(LOW_CHUNKS) * len(SLACKS) + burst + (paced if billing == "startup-pool" else 0))


def _single_pool(profiles: Profiles, w: Workload, target: float, slack: float, lead: tuple[int, ...], low: int,
                 solver: str, spot: bool, counts: dict[str, int] | None, tier: str) -> Plan | None:
    """A paced single-pool plan: the covering proxy for ``slack`` x the target, then bulk
    replicas scaled up step by step until the simulated plan meets the target."""
    chunks = standard_chunks(w, tier=tier, lead=lead, low_chunks=low)
    try:
        prob = build_problem(profiles, w, chunks, target * slack, spot, counts)
    except ProfileError:
        return None
    sol = solve_milp(prob) if solver == "milp" else solve_greedy(prob)
    if sol is None:
        return None
    for scale in SCALES:
        alloc = to_allocation(prob, sol, scale)
        if not within_counts(alloc, counts):
            return None
        res = simulate(profiles, alloc, w, chunks, pipelined=True, spot=spot)
        if res.ttff_s <= target + 1e-6:
            return Plan("cost", alloc, chunks, res, solver, target, notes={"lead": lead, "low_chunks": low, "scale": scale})
    return None
