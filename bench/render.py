"""Benchmark of the episode pipeline on this machine: figures for the README, never asserts.

What it measures, in one process, with the deployment's adapters:

1. model load and warm-up time per stage;
2. the streaming render (``render_episode``): time until the first segment is
   ready versus time until the whole episode is ready ("generate everything,
   then play", the baseline), in the same run;
3. each stage alone, so its real-time factor (compute seconds per media second)
   is not blurred by the others: the script writer's stream, Piper over every
   segment, then per tier of the ladder the animator (with the RGB->I420
   conversion) and the MP4 encoder on the same voiced segments, and the speed-up
   of a segment split over the deployment's drawing processes;
4. peak memory (``ru_maxrss``), overall and per phase.

Points 1 and 3 are the product's own measuring code (``pipelines.plan.profiling``, what
``streamwise profile`` runs), so the benchmark and a profile cannot disagree on what a
stage costs; this script adds the streaming render, memory and the report.

Usage::

    .venv/bin/python bench/render.py                      # 60 s episode, every tier
    .venv/bin/python bench/render.py --quick              # 20 s episode, smoke test
    .venv/bin/python bench/render.py --tiers 240p 360p --json out/profile.json

The markdown report goes to stdout (progress to stderr), ready to paste into the
README. ``--json`` also writes the figures; its ``profile`` section (seconds of
compute per second of media, per stage and tier) is what a scheduler can plan with,
and ``pipelines.plan.stage_profiles.profile_from_bench`` reads it.
Figures are noisy on a shared machine: the load average is printed with them.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from rich.progress import Progress as Bar

from pipelines.config import (
    DEFAULT_DEPLOYMENT,
    DEFAULT_WORKFLOW,
    ConfigError,
    Deployment,
    load_deployment,
    load_workflow,
)
from pipelines.offline_render import render_episode
from pipelines.plan.profiling import (
    PROFILE_TOPIC,
    load_and_warm,
    machine_info,
    measure_stages,
    progress_bar,
    record_load_at_end,
)
from pipelines.plan.stage_figures import StageTable
from pipelines.segments import EpisodeRequest, Progress
from pipelines.stages.models_loaded import LoadedModels

SCHEMA = "streamwise.bench.render/1"
QUICK_DURATION_S = 20.0


# ---------------------------------------------------------------------------- memory
class Memory:
    """Peak RSS per phase. ``ru_maxrss`` is the process peak; on Linux the peak is reset
    between phases (``/proc/self/clear_refs``), so the process peak is kept here."""

    def __init__(self) -> None:
        self.overall_mib = self._ru_maxrss_mib()
        self.phases: dict[str, float] = {}
        self.per_phase = self._can_reset()

    @staticmethod
    def _ru_maxrss_mib() -> float:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kib / 1024 if sys.platform != "darwin" else kib / 1024 / 1024

    @staticmethod
    def _can_reset() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            return True
        except OSError:
            return False

    def _reset(self) -> None:
        self.overall_mib = max(self.overall_mib, self._ru_maxrss_mib())
        if self.per_phase:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._reset()
        try:
            yield
        finally:
            peak = self._ru_maxrss_mib()
            self.overall_mib = max(self.overall_mib, peak)
            # Without a reset, ru_maxrss only says "the process peak so far".
            self.phases[name] = peak

    def peak(self) -> float:
        return max(self.overall_mib, self._ru_maxrss_mib())


# ---------------------------------------------------------------------------- streaming
def bench_streaming(models: LoadedModels, deployment: Deployment, topic: str, duration: float, tmp: Path,
                    bar: Bar) -> dict[str, Any]:
    """The real streaming render; first segment versus whole episode, same run."""
    request = EpisodeRequest(topic=topic, duration_s=duration)
    tier = request.quality or deployment.quality.default
    task = bar.add_task(f"streaming render ({tier})", total=None)
    firsts: dict[str, float] = {}
    t0 = time.perf_counter()

    def on_progress(p: Progress) -> None:
        now = time.perf_counter() - t0
        for name in ("written", "voiced", "rendered"):
            if getattr(p, name) >= 1 and name not in firsts:
                firsts[name] = now
        total = p.total if p.total is not None else max(p.estimated_total, p.written)
        bar.update(task, completed=p.rendered, total=total)

    result = asyncio.run(render_episode(models, deployment, request, tmp / "stream" / "episode.mp4", on_progress=on_progress))
    busy: dict[str, dict[str, float]] = {}
    for span in result.timeline.spans():
        entry = busy.setdefault(span.stage, {"run_s": 0.0, "media_s": 0.0, "tasks": 0})
        entry["run_s"] += span.run_s
        entry["media_s"] += span.media_s
        entry["tasks"] += 1
    for entry in busy.values():
        entry["run_s"] = round(entry["run_s"], 3)
        entry["media_s"] = round(entry["media_s"], 3)
    first = result.first_segment_s
    whole = result.wall_s
    return {
        "tier": tier,
        "title": result.title,
        "episode_s": round(result.duration_s, 3),
        "segments": result.segments,
        "frames": result.tiers,
        "first_segment_s": round(first, 3) if first is not None else None,
        "whole_episode_s": round(whole, 3),
        "whole_over_first": round(whole / first, 2) if first else None,
        "first_written_s": round(firsts["written"], 3) if "written" in firsts else None,
        "first_voiced_s": round(firsts["voiced"], 3) if "voiced" in firsts else None,
        "first_rendered_s": round(firsts["rendered"], 3) if "rendered" in firsts else None,
        "stage_busy": busy,
    }


# ---------------------------------------------------------------------------- report
def _f(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    st = report["stages"]
    load = report["load"]
    out: list[str] = []
    mem = f", {m['mem_total_gib']:.1f} GiB RAM" if m.get("mem_total_gib") else ""
    out.append(
        f"**Machine:** {m['cpu_model']}, nproc {m['nproc']}{mem}, load average {m['loadavg_start'][0]:.2f} at start "
        f"(Python {m['versions'].get('python', '?')}). **Deployment:** `{report['deployment']}`, script model "
        f"`{report['script_model']}`, episode of {report['args']['duration']:g} s requested on \"{report['args']['topic']}\"."
    )
    out.append("")
    out.append("| Stage | Tier | Load + warm-up (s) | Compute (s) | Media (s) | RTF (s/s) | CPU (s/s) | Notes |")
    out.append("|---|---|---|---|---|---|---|---|")

    def lw(kind: str) -> str:
        return f"{load[kind]['load_s']:.2f} + {load[kind]['warm_s']:.2f}" if kind in load else "–"

    sc = st["script"]
    notes = [f"{sc['lines']} lines, {sc['words']} words"]
    if sc.get("tokens_per_s"):
        notes.append(f"{sc['tokens']} tokens, {sc['tokens_per_s']:.1f} tok/s")
    if sc.get("first_line_s") is not None:
        notes.append(f"first line {sc['first_line_s']:.2f} s")
    out.append(f"| script | – | {lw('script')} | {sc['compute_s']:.2f} | {sc['media_s']:.2f} | **{_f(sc['rtf'])}** | {_f(sc['cpu_per_media_s'])} | {'; '.join(notes)} |")
    sp = st["speech"]
    per_seg = [c for _, c in sp.get("segments", [])]
    sp_note = f"{sp['n_segments']} segments" + (f", {max(per_seg):.2f} s the longest" if per_seg else "")
    out.append(f"| speech | – | {lw('speech')} | {sp['compute_s']:.2f} | {sp['media_s']:.2f} | **{_f(sp['rtf'])}** | {_f(sp['cpu_per_media_s'])} | {sp_note} |")
    for i, (tier, v) in enumerate(st["video"].items()):
        note = f"{v['width']}x{v['height']}@{v['fps']}, {v['frames']} frames, {v['frames_per_s']:.1f} fps; I420 {100 * (v['i420_share'] or 0):.1f}%"
        out.append(
            f"| video | {tier} ×{v['supersample']} | {lw('video') if i == 0 else '″'} | {v['compute_s']:.2f} | {v['media_s']:.2f} | **{_f(v['rtf'])}** | {_f(v['cpu_per_media_s'])} | {note} |"
        )
    for tier, e in st["encode"].items():
        note = f"{e['frames_per_s']:.1f} fps, {e['kbit_per_s']:.0f} kbit/s ({report['encoder']})"
        out.append(f"| encode | {tier} | – | {e['compute_s']:.2f} | {e['media_s']:.2f} | **{_f(e['rtf'])}** | {_f(e['cpu_per_media_s'])} | {note} |")
    for tier, speedup in (st.get("parallel") or {}).items():
        ks = sorted(speedup, key=int)
        note = ", ".join(f"{k} workers {speedup[k]:.2f}x" for k in ks if k != "1")
        out.append(f"| video split | {tier} | – | – | – | – | – | speed-up over one worker: {note} |")
    out.append("")
    out.append(
        "RTF = compute seconds per media second, each stage alone (under 1: faster than real time). Media is the "
        "voiced timeline the script produced (speech: the synthesized audio itself; video, encode: segments padded "
        "with the pause after each line). CPU (s/s) counts every thread of the process."
    )
    s = report.get("streaming")
    if s:
        out.append("")
        out.append(f"| Streaming render ({s['tier']}, {s['episode_s']:.1f} s episode, {s['segments']} segments) | Seconds |")
        out.append("|---|---|")
        out.append(f"| First script segment written | {_f(s['first_written_s'])} |")
        out.append(f"| First segment voiced | {_f(s['first_voiced_s'])} |")
        out.append(f"| **First segment ready to play** (streaming) | **{_f(s['first_segment_s'])}** |")
        out.append(f"| Whole episode ready (\"generate everything, then play\") | {_f(s['whole_episode_s'])} |")
        if s.get("whole_over_first"):
            out.append(f"| Playback starts sooner by | **{s['whole_over_first']:.1f}×** |")
        seq = report.get("sequential_baseline_s")
        if seq:
            out.append(f"| Stages one after another (sum of the isolated figures above, {s['tier']}) | {seq:.2f} |")
    out.append("")
    out.append("| Memory | Peak RSS (MiB) |")
    out.append("|---|---|")
    for phase, mib in report["memory"]["phases"].items():
        out.append(f"| {phase} | {mib:.0f} |")
    out.append(f"| **whole run** (`ru_maxrss`) | **{report['memory']['peak_rss_mib']:.0f}** |")
    if not report["memory"]["per_phase"]:
        out.append("")
        out.append("(Peak per phase unavailable here: each row is the process peak so far.)")
    return "\n".join(out)


# ---------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark StreamWise's episode pipeline on this machine (prints figures; never asserts).")
    p.add_argument("--duration", type=float, default=None, help="requested episode length in seconds (default 60; 20 with --quick)")
    p.add_argument("--topic", default=PROFILE_TOPIC, help="what the hosts talk about")
    p.add_argument("--tiers", nargs="+", default=None, help="ladder tiers for the video and encode stages, e.g. 240p 360p or 240p,360p (default: every tier)")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the figures as JSON (with a per-stage, per-tier profile)")
    p.add_argument("--quick", action="store_true", help=f"smoke test: a {QUICK_DURATION_S:g} s episode")
    p.add_argument("--no-stream", action="store_true", help="skip the streaming render (first segment vs whole episode)")
    p.add_argument("--no-parallel", action="store_true", help="skip drawing split over the deployment's video workers")
    p.add_argument("--workflow", default=str(DEFAULT_WORKFLOW), help="workflow YAML")
    p.add_argument("--deploy", default=str(os.environ.get("STREAMWISE_DEPLOY", DEFAULT_DEPLOYMENT)), help="deployment YAML")
    args = p.parse_args(argv)
    if args.duration is None:
        args.duration = QUICK_DURATION_S if args.quick else 60.0
    if not 5 <= args.duration <= 3600:
        p.error(f"--duration: {args.duration:g} s is out of range (5 to 3600)")
    args.topic = " ".join(args.topic.split())
    if not args.topic:
        p.error("--topic must not be empty")
    return args


def resolve_tiers(deployment: Deployment, requested: list[str] | None) -> list[str]:
    """``--tiers`` as given (space- or comma-separated), in ladder order without duplicates; every tier by default."""
    ladder = [t.name for t in deployment.quality.ladder]
    if not requested:
        return ladder
    tiers = [t for item in requested for t in item.split(",") if t]
    unknown = [t for t in tiers if t not in ladder]
    if unknown:
        raise ConfigError(f"--tiers: unknown tier(s) {unknown}; the ladder has {ladder}")
    return [t for t in ladder if t in tiers]


def profile_section(stages: StageTable) -> dict[str, Any]:
    """The real-time factors alone: what a scheduler plans with."""
    return {
        "unit": "compute seconds per media second (each stage alone)",
        "script": stages["script"]["rtf"],
        "speech": stages["speech"]["rtf"],
        "video": {t: v["rtf"] for t, v in stages["video"].items()},
        "encode": {t: e["rtf"] for t, e in stages["encode"].items()},
        "parallel": stages.get("parallel", {}),
    }


def sequential_baseline(stages: StageTable, tier: str | None) -> float | None:
    """The stages one after another at the streamed tier: what streaming is compared with."""
    if tier not in stages["video"]:
        return None
    return round(stages["script"]["compute_s"] + stages["speech"]["compute_s"]
                 + stages["video"][tier]["compute_s"] + stages["encode"][tier]["compute_s"], 3)


def run(args: argparse.Namespace) -> dict[str, Any]:
    workflow = load_workflow(args.workflow)
    deployment = load_deployment(args.deploy, workflow)
    tiers = resolve_tiers(deployment, args.tiers)
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "deployment": deployment.name,
        "script_model": deployment.tasks[workflow.task_of_kind("script")].params.get("model", "?"),
        "encoder": f"{deployment.output.video_codec} {deployment.output.preset} crf {deployment.output.crf}",
        "args": {"duration": args.duration, "topic": args.topic, "tiers": tiers, "quick": args.quick},
    }
    memory = Memory()
    with tempfile.TemporaryDirectory(prefix="streamwise-bench-") as tmp_name, progress_bar() as bar:
        tmp = Path(tmp_name)
        with memory.phase("load + warm-up"):
            models, report["load"] = load_and_warm(deployment, workflow, bar)
        # The streaming run comes first after warm-up, like a server's first episode:
        # no cache is warm from the isolated runs below.
        if not args.no_stream:
            with memory.phase("streaming render"):
                report["streaming"] = bench_streaming(models, deployment, args.topic, args.duration, tmp, bar)
        stages = measure_stages(models, deployment, args.topic, args.duration, tiers, tmp, bar,
                                parallel=not args.no_parallel, phase=memory.phase)
        report["stages"] = stages

    report["profile"] = profile_section(stages)
    baseline = sequential_baseline(stages, report.get("streaming", {}).get("tier"))
    if baseline is not None:
        report["sequential_baseline_s"] = baseline
    record_load_at_end(report["machine"])
    report["memory"] = {
        "peak_rss_mib": round(memory.peak(), 1),
        "per_phase": memory.per_phase,
        "phases": {k: round(v, 1) for k, v in memory.phases.items()},
    }
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = run(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(markdown(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nJSON written to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
