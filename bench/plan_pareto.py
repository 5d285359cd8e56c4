"""Cost-TTFF Pareto front: our pipelined plans vs the paper's published provisioning rows.

Writes docs/img/pareto.png. Published points come from the reference CSVs when the shared
checkout is present (../shared/reference/streamwise/paper), else only the README's rows.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pipelines.cluster.calibration import PUBLISHED  # noqa: E402
from pipelines.cluster.planner import plan  # noqa: E402
from pipelines.cluster.profiles import Workload, reference_profiles  # noqa: E402


def published_front(name: str) -> list[tuple[float, float]]:
    for base in (ROOT.parent / "shared/reference/streamwise/paper", Path("/work/shared/reference/streamwise/paper")):
        f = base / f"provisioning_streamwise_{name}.csv"
        if f.exists():
            pts = sorted((float(r["ttff_s"]), float(r["cost"])) for r in csv.DictReader(f.open()))
            front, best = [], float("inf")
            for t, c in pts:
                if c < best:
                    front.append((t, c)); best = c
            return front
    return []


def main() -> int:
    prof, w = reference_profiles(), Workload()
    ours, strict = [], []
    for ttff in (1.85, 2.5, 3.7, 6, 10, 20, 40, 80):
        p = plan(prof, w, ttff, "cost", "heuristic")
        if p:
            r = p.result
            ours.append((r.ttff_s, r.cost))
            q = plan(prof, w, ttff, "cost", "heuristic", paced=False)
            if q:
                strict.append((q.result.ttff_s, q.result.cost))
            print(f"target {ttff:>5} s: TTFF {r.ttff_s:6.2f} s cost ${r.cost:6.2f} (all servers for the episode: "
                  f"${r.cost_strict:6.2f}; startup pool {r.startup_window_s:5.1f} s; high quality {r.high_share:.0%}; "
                  f"{p.solver}) | single pool: " + (f"{q.result.ttff_s:6.2f} s ${q.result.cost:6.2f}" if q else "none"))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, style in (("adaptive", "C1--"), ("high", "C2:")):
        front = published_front(name)
        if front:
            ax.plot(*zip(*front), style, label=f"paper front ({name})")
    ax.scatter([r.ttff_s for r in PUBLISHED], [r.cost for r in PUBLISHED], c="k", marker="x", label="paper rows (README)")
    if ours:
        ax.plot(*zip(*sorted(ours)), "C0o-", label="ours, paced + startup pool (simulated)")
    if strict:
        ax.plot(*zip(*sorted(strict)), "C4s:", label="ours, single pool (every server for the episode)")
    ax.set(xscale="log", yscale="log", xlabel="TTFF (s)", ylabel="cost per 10-min episode ($)",
           title="Cost vs TTFF: StreamWise paper vs our planner")
    ax.legend(fontsize=8)
    out = ROOT / "docs/img/pareto.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
