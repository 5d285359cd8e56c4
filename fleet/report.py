"""``streamwise plan``: provision a fleet (or a laptop) for a TTFF target, and compare with the paper.

Contract for the command-line front end (``server/cli.py``):

* :func:`add_plan_arguments` defines the command's options on a parser it is given;
  :data:`PLAN_HELP` is the command's one-line help.
* :func:`run_plan` validates the parsed options, searches, prints the report (a table, or
  JSON with ``--json``) and returns the exit code: 0 with a plan, 1 when no plan meets the
  target, 2 for invalid input (with a message on stderr, never a traceback).

The planner, the calibration and ``rich`` are imported inside :func:`run_plan`, so building
the ``streamwise`` parser stays cheap for every other command.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from fleet.paper_profiles import (
    GPU_TYPES,
    ProfileError,
    Profiles,
    Workload,
    load_local_profiles,
    reference_profiles,
)

if TYPE_CHECKING:
    from rich.console import Console

    from fleet.calibration import CalibrationRow
    from fleet.plan_result import Plan
    from fleet.simulator import Instance

PLAN_HELP = "plan GPUs and per-stage allocation for a TTFF target (simulated)"


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """Define ``streamwise plan``'s options on ``parser`` (the caller sets ``func``)."""
    p = parser
    p.add_argument("--video-minutes", type=float, default=10.0, help="episode length (default 10)")
    p.add_argument("--ttff", type=float, default=1.0, help="time-to-first-frame target in seconds (default 1)")
    p.add_argument("--gpus", default=",".join(GPU_TYPES), help=f"comma list from {','.join(GPU_TYPES)}")
    p.add_argument("--objective", choices=("cost", "ttff_cost"), default="cost")
    p.add_argument("--solver", choices=("heuristic", "milp"), default="heuristic")
    p.add_argument("--reserved", action="store_true", help="reserved instead of spot prices")
    p.add_argument("--min-high-quality", type=float, default=0.9, metavar="SHARE",
                   help="least share of frames at high quality; the rest start low (default 0.9)")
    p.add_argument("--billing", choices=("paper", "startup-pool"), default="paper",
                   help="paper: every server billed for the whole run (default); startup-pool: also "
                        "plans whose startup servers are billed only until their last job")
    p.add_argument("--profile", help="local profile YAML (see fleet/paper_profiles.py LOCAL_SCHEMA)")
    p.add_argument("--compare-streamwise", action="store_true", help="add the paper's rows, simulated")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run_plan(args: argparse.Namespace) -> int:
    """Validate, search, print; invalid input is exit code 2 with a message, never a traceback."""
    from rich.console import Console

    from fleet.calibration import calibrate

    error = _invalid(args)
    if error:
        return _fail(error)
    try:
        profiles, workload, counts = _inputs(args)
    except ProfileError as exc:
        return _fail(str(exc))
    console = Console(stderr=args.json)
    best = _search(args, profiles, workload, counts)
    calibration = calibrate(reference_profiles()) if args.compare_streamwise and not args.profile else []
    if args.json:
        print(json.dumps({"calibration": [c.to_json() for c in calibration],
                          "plans": [best.to_json()] if best else []}, indent=2))
        return 0 if best else 1
    if best is None:
        _print_no_plan(console, args, profiles, workload)
    else:
        _print_plan(console, args, best)
    if calibration:
        _print_calibration(console, calibration, best)
    return 0 if best else 1


def _fail(msg: str) -> int:
    print(f"streamwise plan: error: {msg}", file=sys.stderr)
    return 2


def _invalid(args: argparse.Namespace) -> str | None:
    """What is wrong with the numeric options, if anything."""
    if not args.video_minutes > 0 or args.video_minutes > 600:
        return f"--video-minutes must be in (0, 600], got {args.video_minutes}"
    if not args.ttff > 0:
        return f"--ttff must be positive, got {args.ttff}"
    if not 0.0 <= args.min_high_quality <= 1.0:
        return f"--min-high-quality must be in [0, 1], got {args.min_high_quality}"
    return None


def _inputs(args: argparse.Namespace) -> tuple[Profiles, Workload, dict[str, int] | None]:
    """Profiles (the paper's, or a local YAML's with its device counts) restricted to --gpus.

    A local profile keeps all its devices unless --gpus was given explicitly: the default
    --gpus names the paper's GPU types, which a laptop profile does not have.
    """
    gpus = [g.strip().lower() for g in args.gpus.split(",") if g.strip()]
    workload = Workload.minutes(args.video_minutes)
    counts = None
    if args.profile:
        profiles, counts = load_local_profiles(args.profile)
        if args.gpus != ",".join(GPU_TYPES):
            profiles = profiles.restrict(gpus)
    else:
        profiles = reference_profiles().restrict(gpus)
    return profiles, workload, counts


def _search(args: argparse.Namespace, profiles: Profiles, workload: Workload,
            counts: dict[str, int] | None) -> Plan | None:
    """Run the planner with a progress bar on stderr (none with --json)."""
    from rich.console import Console
    from rich.progress import Progress

    from fleet.planner import plan, search_steps

    with Progress(console=Console(stderr=True), transient=True, disable=args.json) as bar:
        task = bar.add_task("searching provisions", total=search_steps(args.objective, n_gpu_types=len(profiles.gpu_types),
                                                                        billing=args.billing))
        return plan(profiles, workload, args.ttff, args.objective, args.solver, spot=not args.reserved,
                    counts=counts, on_step=lambda: bar.advance(task), billing=args.billing,
                    min_high=args.min_high_quality)


def _range(i: Instance) -> str:
    """' startup, jobs 0-59' style suffix for instances limited to some chunks / scenes."""
    if i.jobs is None:
        return " startup" if i.startup else ""
    hi = "end" if i.jobs[1] >= 10**9 else str(i.jobs[1] - 1)
    return f" {'startup ' if i.startup else ''}jobs {i.jobs[0]}-{hi}"


def _print_no_plan(console: Console, args: argparse.Namespace, profiles: Profiles, workload: Workload) -> None:
    """Say why nothing fits: the fastest first chunk these GPUs allow."""
    from fleet.chains import fastest_first_chunk

    floor = fastest_first_chunk(profiles, workload)
    console.print(f"[red]no plan meets TTFF <= {args.ttff:g} s on {', '.join(profiles.gpu_types)}[/red]: the fastest "
                  f"possible first chunk takes {floor:.2f} s here (every stage on its fastest option, a 9-frame "
                  f"low-quality first chunk); try a larger --ttff, other --gpus or a lower --min-high-quality")


def _print_plan(console: Console, args: argparse.Namespace, best: Plan) -> None:
    """The provision, the instances per stage, and the simulated figures of the plan."""
    from rich.table import Table

    r = best.result
    console.print(f"[bold]plan[/bold] ({args.objective}, {best.solver}, pipelined, billing: {args.billing}): provision "
                  + ", ".join(f"{n} x {g.upper()}" for g, n in r.billed_gpus.items()))
    t = Table("stage", "instances")
    for stage, insts in best.allocation.items():
        t.add_row(stage, ", ".join(f"{i.replicas} x ({i.devices} {i.gpu.upper()})" + _range(i) for i in insts))
    console.print(t)
    if r.startup_window_s > 0:
        console.print(f"startup pool billed for {r.startup_window_s:.1f} s, bulk for {r.total_time_s:.1f} s; "
                      f"every server for the whole episode would cost ${r.cost_strict:.2f}")
    n = best.notes
    extra = f", horizon {n['horizon_s']:.0f} s" if n.get("horizon_s") else ""
    lead = n.get("lead", ())
    console.print(f"TTFF {r.ttff_s:.2f} s (no stall) | TBF {r.tbf_s * 1000:.1f} ms | total {r.total_time_s:.1f} s | "
                  f"cost ${r.cost:.2f} | energy {r.energy_kwh:.2f} kWh | high-quality frames {r.high_share:.1%} | "
                  f"first chunks: lead {list(lead) if isinstance(lead, tuple) else lead} frames, "
                  f"{n.get('low_chunks', 0)} at low quality{extra}")


def _print_calibration(console: Console, calibration: list[CalibrationRow], best: Plan | None) -> None:
    """The paper's published rows next to its formulas' figures, and our plan's."""
    from rich.table import Table

    t = Table("published row", "TTFF pub / paper's formulas (s)", "total pub / formulas (s)",
              "cost pub / formulas ($)", "within stated error")
    for c in calibration:
        p, s = c.row, c.simulated
        t.add_row(p.name, f"{p.ttff_s:.1f} / {s.ttff_s:.1f}", f"{p.total_time_s:.0f} / {s.total_time_s:.0f}",
                  f"{p.cost:.2f} / {s.cost:.2f}", "yes" if c.within_tolerance() else "no")
    if best:
        t.add_row("[bold]ours (simulated, pipelined)[/bold]", f"- / {best.result.ttff_s:.2f}",
                  f"- / {best.result.total_time_s:.0f}", f"- / {best.result.cost:.2f}", "")
    console.print(t)
