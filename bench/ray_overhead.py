"""Local process pools versus Ray actors on this machine: what moving the drawing costs.

Figures for the README, never asserts. In one run, with the real models:

1. Episodes, alternating backends: each run builds the pools from the deployment
   (``configs/deploy/local.yaml``: a process worker; ``configs/deploy/ray.yaml``: a
   Ray actor, on a local cluster started for it), renders one episode offline and
   records the pools' start-up time, the time to the first segment's frames (the
   first frame a viewer can be shown), the episode's wall time and, per segment,
   the round trip minus the drawing time (what the backend adds).
2. Replay: the segments of those episodes drawn again one at a time on each backend
   (a thread in this process, a local process, a Ray actor), with nothing else
   running, JPEG-compressed (the default) and raw I420 (frames through the pipe or
   the object store); per segment the overhead (round trip minus drawing), Ray's
   own transfer (round trip minus the actor's time) and the bytes moved.

Ratios are against the local process pool measured in the same run. The markdown
report goes to stdout (progress to stderr); ``--json`` writes the figures.

Usage::

    .venv/bin/python bench/ray_overhead.py                 # 3 episodes of 30 s per backend
    .venv/bin/python bench/ray_overhead.py --runs 1 --duration 20 --replays 1   # smoke test
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from pipelines.config import CONFIG_DIR, Deployment, load_deployment, load_workflow
from pipelines.offline_render import render_episode
from pipelines.segments import EpisodeRequest
from pipelines.stages.drawers import ProcessDrawer, ThreadDrawer
from pipelines.stages.drawing import DrawJob, Drawn
from pipelines.stages.models_loaded import load_models
from pipelines.stages.pools import StagePools

SCHEMA = "streamwise.bench.ray_overhead/1"
LOCAL = CONFIG_DIR / "deploy" / "local.yaml"
RAY = CONFIG_DIR / "deploy" / "ray.yaml"


@dataclass
class Draw:
    job: DrawJob
    round_trip_s: float
    elapsed_s: float
    nbytes: int

    @property
    def overhead_s(self) -> float:
        return max(0.0, self.round_trip_s - self.elapsed_s)


@dataclass
class Timed:
    """Wraps a slot's drawer: every draw's round trip as the slot's thread sees it."""

    inner: Any
    draws: list[Draw] = field(default_factory=list)

    def warm_up(self) -> None:
        self.inner.warm_up()

    def draw(self, job: DrawJob) -> Drawn:
        t0 = time.perf_counter()
        drawn = self.inner.draw(job)
        self.draws.append(Draw(job, time.perf_counter() - t0, drawn.elapsed_s, drawn.frames.nbytes()))
        return drawn

    def cancel(self) -> None:
        self.inner.cancel()

    def shutdown(self) -> None:
        self.inner.shutdown()


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p90(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                children = [int(c) for c in Path(f"/proc/{parent}/task/{task}/children").read_text().split()]
            except OSError:
                continue
            out += children
            todo += children
    return out


# ---------------------------------------------------------------------------- episodes
async def _episode(models: Any, deployment: Deployment, topic: str, duration: float, out: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    pools = StagePools.for_deployment(deployment)
    startup_s = time.perf_counter() - t0
    # Every process besides this one: the drawing process, or Ray's services and actor.
    helpers = descendants(os.getpid())
    helper_mib = rss_mib(helpers)
    timed = []
    for slot in pools.video.slots:
        slot.drawer = Timed(slot.drawer)
        timed.append(slot.drawer)
    try:
        result = await render_episode(models, deployment, EpisodeRequest(topic=topic, duration_s=duration), out,
                                      pools=pools)
    finally:
        pools.shutdown()
    draws = [d for t in timed for d in t.draws]
    return {
        "startup_s": startup_s,
        "helper_processes": len(helpers),
        "helper_rss_mib": helper_mib,
        "first_frame_s": result.first_segment_s,
        "wall_s": result.wall_s,
        "media_s": result.duration_s,
        "segments": result.segments,
        "draws": len(draws),
        "frames_per_tier": dict(result.tiers),
        "overhead_ms_median": 1000 * med([d.overhead_s for d in draws]),
        "overhead_ms_p90": 1000 * p90([d.overhead_s for d in draws]),
        "jobs": [d.job for d in draws],
    }


def run_episodes(args: argparse.Namespace, local: Deployment, ray_dep: Deployment) -> tuple[dict, list[DrawJob]]:
    from pipelines.stages import ray_drawers as ray_workers

    workflow = load_workflow()
    models = load_models(local, workflow)
    runs: dict[str, list[dict[str, Any]]] = {"process": [], "ray": [], "ray (cluster up)": []}
    jobs: list[DrawJob] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            order = (("process", local), ("ray", ray_dep))
            for name, dep in order if i % 2 == 0 else order[::-1]:
                print(f"episode {i + 1}/{args.runs} on {name}...", file=sys.stderr)
                res = asyncio.run(_episode(models, dep, args.topic, args.duration, Path(tmp) / f"{name}-{i}.mp4"))
                if name == "process" and not jobs:
                    jobs = res["jobs"]
                runs[name].append(res)
        # Start-up without the cluster's: the cluster stays up while pools come and go.
        with ray_workers.keep_connected(ray_dep.ray):
            for i in range(args.runs):
                print(f"episode {i + 1}/{args.runs} on ray, cluster already up...", file=sys.stderr)
                res = asyncio.run(_episode(models, ray_dep, args.topic, args.duration, Path(tmp) / f"warm-{i}.mp4"))
                runs["ray (cluster up)"].append(res)
    for results in runs.values():
        for r in results:
            r.pop("jobs", None)
    return runs, jobs


# ---------------------------------------------------------------------------- replay
def replay(args: argparse.Namespace, ray_dep: Deployment, jobs: list[DrawJob]) -> dict[str, dict[str, Any]]:
    from pipelines.stages import ray_drawers as ray_workers

    spec = ray_dep.video_pools()[0]
    adapter = ray_dep.tasks["video"].adapter
    params = ray_dep.tasks["video"].params
    out: dict[str, dict[str, Any]] = {}
    with ray_workers.keep_connected(ray_dep.ray):
        drawers = {
            "thread": ThreadDrawer(adapter, params),
            "process": ProcessDrawer(adapter, params),
            "ray": ray_workers.RayDrawer(spec, adapter, params, ray_dep.ray, 0),
        }
        try:
            for d in drawers.values():
                d.warm_up()
            for encoding, quality in (("jpeg", jobs[0].jpeg_quality or 90), ("raw", None)):
                variant = [replace(j, jpeg_quality=quality) for j in jobs]
                for name, drawer in drawers.items():
                    print(f"replay: {len(variant)} segments x {args.replays} on {name} ({encoding})...", file=sys.stderr)
                    timed = Timed(drawer)
                    ray_from = len(drawer.stats) if name == "ray" else 0
                    for _ in range(args.replays):
                        for job in variant:
                            timed.draw(job)
                    row = {
                        "segments": len(timed.draws),
                        "draw_ms_median": 1000 * med([d.elapsed_s for d in timed.draws]),
                        "overhead_ms_median": 1000 * med([d.overhead_s for d in timed.draws]),
                        "overhead_ms_p90": 1000 * p90([d.overhead_s for d in timed.draws]),
                        "kib_per_segment": med([d.nbytes for d in timed.draws]) / 1024,
                    }
                    if name == "ray":
                        stats = list(drawer.stats)[ray_from:]
                        row["transfer_ms_median"] = 1000 * med([s.transfer_s for s in stats])
                        row["transfer_ms_p90"] = 1000 * p90([s.transfer_s for s in stats])
                    out[f"{name}/{encoding}"] = row
        finally:
            for d in drawers.values():
                d.shutdown()
    return out


# ---------------------------------------------------------------------------- report
def ratio(value: float, base: float) -> str:
    if not base or math.isnan(base) or math.isnan(value):
        return "n/a"
    return f"{value / base:.2f}x"


def report(runs: dict[str, list[dict]], replayed: dict[str, dict], args: argparse.Namespace) -> None:
    n = len(runs["process"])
    print(f"\n### Episodes ({n} per backend, {args.duration:g} s, offline render, medians)\n")
    print("| backend | pools start | vs process | first frame | vs process | episode wall | draws | "
          "overhead / draw (p50, p90) | vs process | helper RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    base = {k: med([r[k] for r in runs["process"]]) for k in ("startup_s", "first_frame_s", "overhead_ms_median")}
    for name, results in runs.items():
        if not results:
            continue
        s, f, w = (med([r[k] for r in results]) for k in ("startup_s", "first_frame_s", "wall_s"))
        o, o90 = med([r["overhead_ms_median"] for r in results]), med([r["overhead_ms_p90"] for r in results])
        rss = med([r["helper_rss_mib"] for r in results])
        draws = med([r["draws"] for r in results])
        print(f"| {name} | {s:.2f} s | {ratio(s, base['startup_s'])} | {f:.2f} s | {ratio(f, base['first_frame_s'])} "
              f"| {w:.1f} s | {draws:.0f} | {o:.0f} / {o90:.0f} ms | {ratio(o, base['overhead_ms_median'])} "
              f"| {rss:.0f} MiB |")
    for name, results in runs.items():
        tiers: dict[str, int] = {}
        for r in results:
            for tier, count in r["frames_per_tier"].items():
                tiers[tier] = tiers.get(tier, 0) + count
        print(f"\n{name}: segments {[r['segments'] for r in results]}, frames per tier {tiers}", end="")
    print()
    print("\npools start: building the video pools until every worker is warm (Ray: the local cluster's "
          "start too, except for *cluster up*); first frame: request to the first segment's frames; overhead: "
          "a draw's round trip minus its drawing time (compression, transfer, scheduling; a segment is one draw, or "
          "several when the planner splits it); helper RSS: every "
          "process besides the server's own once the pools are warm (the drawing process; Ray's head services, "
          "agents, idle workers and the actor).")
    if replayed:
        print(f"\n### Replay ({args.replays} x the episode's segments, one at a time, nothing else running)\n")
        print("| backend | frames | drawing / segment | overhead / segment (p50, p90) | vs process | "
              "Ray transfer (p50, p90) | moved / segment |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for key, row in replayed.items():
            name, encoding = key.split("/")
            b = replayed.get(f"process/{encoding}", {}).get("overhead_ms_median", float("nan"))
            transfer = (f"{row['transfer_ms_median']:.1f} / {row['transfer_ms_p90']:.1f} ms"
                        if "transfer_ms_median" in row else "")
            print(f"| {name} | {encoding} | {row['draw_ms_median']:.0f} ms | {row['overhead_ms_median']:.1f} / "
                  f"{row['overhead_ms_p90']:.1f} ms | {ratio(row['overhead_ms_median'], b)} | {transfer} | "
                  f"{row['kib_per_segment']:.0f} KiB |")
        print("\nRay transfer: round trip minus the time in the actor's method (job out, frames back, Ray's "
              "bookkeeping). The thread backend moves nothing: its overhead is compression alone.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="episodes per backend")
    parser.add_argument("--duration", type=float, default=30.0, help="episode length in seconds")
    parser.add_argument("--topic", default="how tides work")
    parser.add_argument("--replays", type=int, default=3, help="times each segment is drawn again per backend")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    workflow = load_workflow()
    local = load_deployment(LOCAL, workflow)
    ray_dep = load_deployment(RAY, workflow)
    load_start = os.getloadavg()
    runs, jobs = run_episodes(args, local, ray_dep)
    replayed = replay(args, ray_dep, jobs) if args.replays and jobs else {}
    print(f"\nMachine: {os.cpu_count()} CPUs, load average {load_start[0]:.2f} at the start and "
          f"{os.getloadavg()[0]:.2f} at the end.", file=sys.stderr)
    report(runs, replayed, args)
    print(f"\nLoad average (1 min): {load_start[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; "
          f"{os.cpu_count()} CPUs.")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"schema": SCHEMA, "args": {k: str(v) for k, v in vars(args).items()},
                                         "episodes": runs, "replay": replayed}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
