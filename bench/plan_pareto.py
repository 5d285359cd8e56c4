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
    ours = []
    for ttff in (4, 6, 10, 20, 40, 80, 160, 320):
        p = plan(prof, w, ttff, "cost", "heuristic")
        if p:
            ours.append((p.result.ttff_s, p.result.cost))
            print(f"target {ttff:>4} s: TTFF {p.result.ttff_s:7.2f} s cost ${p.result.cost:7.2f}")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, style in (("adaptive", "C1--"), ("high", "C2:")):
        front = published_front(name)
        if front:
            ax.plot(*zip(*front), style, label=f"paper front ({name})")
    ax.scatter([r.ttff_s for r in PUBLISHED], [r.cost for r in PUBLISHED], c="k", marker="x", label="paper rows (README)")
    if ours:
        ax.plot(*zip(*sorted(ours)), "C0o-", label="ours, pipelined (simulated)")
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
