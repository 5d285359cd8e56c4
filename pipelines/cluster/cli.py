"""``streamwise plan``: provision a fleet (or a laptop) for a TTFF target, and compare with the paper."""
from __future__ import annotations

import argparse
import json
import sys

from .profiles import GPU_TYPES, ProfileError, Workload, load_local_profiles, reference_profiles


def add_plan_command(sub: argparse._SubParsersAction) -> None:
    """Register ``plan`` on the ``streamwise`` subparsers."""
    p = sub.add_parser("plan", help="plan GPUs and per-stage allocation for a TTFF target (simulated)")
    p.add_argument("--video-minutes", type=float, default=10.0, help="episode length (default 10)")
    p.add_argument("--ttff", type=float, default=1.0, help="time-to-first-frame target in seconds (default 1)")
    p.add_argument("--gpus", default=",".join(GPU_TYPES), help=f"comma list from {','.join(GPU_TYPES)}")
    p.add_argument("--objective", choices=("cost", "ttff_cost"), default="cost")
    p.add_argument("--solver", choices=("heuristic", "milp"), default="heuristic")
    p.add_argument("--reserved", action="store_true", help="reserved instead of spot prices")
    p.add_argument("--profile", help="local profile YAML (see pipelines/cluster/profiles.py LOCAL_SCHEMA)")
    p.add_argument("--compare-streamwise", action="store_true", help="add the paper's rows, simulated")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_plan)


def _range(i) -> str:
    """' startup, jobs 0-59' style suffix for instances limited to some chunks / scenes."""
    if i.jobs is None:
        return " startup" if i.startup else ""
    hi = "end" if i.jobs[1] >= 10**9 else str(i.jobs[1] - 1)
    return f" {'startup ' if i.startup else ''}jobs {i.jobs[0]}-{hi}"


def _fail(msg: str) -> int:
    print(f"streamwise plan: error: {msg}", file=sys.stderr)
    return 2


def cmd_plan(args: argparse.Namespace) -> int:
    """Validate, search, print; invalid input is exit code 2 with a message, never a traceback."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from .calibration import calibrate
    from .planner import plan, search_steps

    if not args.video_minutes > 0 or args.video_minutes > 600:
        return _fail(f"--video-minutes must be in (0, 600], got {args.video_minutes}")
    if not args.ttff > 0:
        return _fail(f"--ttff must be positive, got {args.ttff}")
    gpus = [g.strip().lower() for g in args.gpus.split(",") if g.strip()]
    try:
        workload = Workload.minutes(args.video_minutes)
        counts = None
        if args.profile:
            profiles, counts = load_local_profiles(args.profile)
            if args.gpus != ",".join(GPU_TYPES):
                profiles = profiles.restrict(gpus)
        else:
            profiles = reference_profiles().restrict(gpus)
    except ProfileError as exc:
        return _fail(str(exc))
    console = Console(stderr=args.json)
    with Progress(console=Console(stderr=True), transient=True, disable=args.json) as bar:
        task = bar.add_task("searching provisions", total=search_steps(args.objective, n_gpu_types=len(profiles.gpu_types)))
        best = plan(profiles, workload, args.ttff, args.objective, args.solver, spot=not args.reserved,
                    counts=counts, on_step=lambda: bar.advance(task))
    calibration = calibrate(reference_profiles()) if args.compare_streamwise and not args.profile else []
    if args.json:
        print(json.dumps({"calibration": [c.to_json() for c in calibration],
                          "plans": [best.to_json()] if best else []}, indent=2))
        return 0 if best else 1
    if best is None:
        console.print(f"[red]no plan meets TTFF <= {args.ttff:g} s on {gpus}[/red] (try a larger --ttff)")
    else:
        r = best.result
        console.print(f"[bold]plan[/bold] ({args.objective}, {best.solver}, pipelined): provision "
                      + ", ".join(f"{n} x {g.upper()}" for g, n in r.billed_gpus.items()))
        t = Table("stage", "instances")
        for stage, insts in best.allocation.items():
            t.add_row(stage, ", ".join(f"{i.replicas} x ({i.devices} {i.gpu.upper()})" + _range(i) for i in insts))
        console.print(t)
        if r.startup_window_s > 0:
            console.print(f"startup pool billed for {r.startup_window_s:.1f} s, bulk for {r.total_time_s:.1f} s; "
                          f"every server for the whole episode would cost ${r.cost_strict:.2f}")
        console.print(f"TTFF {r.ttff_s:.2f} s | TBF {r.tbf_s * 1000:.1f} ms | total {r.total_time_s:.1f} s | "
                      f"cost ${r.cost:.2f} | energy {r.energy_kwh:.2f} kWh | high-quality frames {r.high_share:.1%} "
                      f"| first chunks {best.notes}")
    if calibration:
        t = Table("published row", "TTFF pub/sim (s)", "total pub/sim (s)", "cost pub/sim ($)")
        for c in calibration:
            p, s = c.row, c.simulated
            t.add_row(p.name, f"{p.ttff_s:.1f} / {s.ttff_s:.1f}", f"{p.total_time_s:.0f} / {s.total_time_s:.0f}",
                      f"{p.cost:.2f} / {s.cost:.2f}")
        if best:
            t.add_row("[bold]ours (pipelined)[/bold]", f"- / {best.result.ttff_s:.2f}", f"- / {best.result.total_time_s:.0f}",
                      f"- / {best.result.cost:.2f}")
        console.print(t)
    return 0 if best else 1
