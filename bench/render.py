"""Benchmark of the episode pipeline on this machine: figures for the README, never asserts.

What it measures, in one process, with the deployment's adapters:

1. model load and warm-up time per stage (``load_models``);
2. the streaming render (``render_episode``): time until the first segment is
   ready versus time until the whole episode is ready ("generate everything,
   then play", the baseline), in the same run;
3. each stage alone, so its real-time factor (compute seconds per media second)
   is not blurred by the others: the script writer's stream, Piper over every
   segment, then per tier of the ladder the animator (with the RGB->I420
   conversion) and the MP4 encoder on the same voiced segments;
4. peak memory (``ru_maxrss``), overall and per phase.

Usage::

    .venv/bin/python bench/render.py                      # 60 s episode, every tier
    .venv/bin/python bench/render.py --quick              # 20 s episode, smoke test
    .venv/bin/python bench/render.py --tiers 240p 360p --json out/profile.json

The markdown report goes to stdout (progress to stderr), ready to paste into the
README. ``--json`` also writes the figures; its ``profile`` section (seconds of
compute per second of media, per stage and tier) is what a scheduler can plan with.
Figures are noisy on a shared machine: the load average is printed with them.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import resource
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from models.protocols import (  # noqa: E402
    DialogueLine,
    SceneInfo,
    ScriptEnd,
    ScriptRequest,
    ShowTitle,
)
from pipelines.config import (  # noqa: E402
    DEFAULT_DEPLOYMENT,
    DEFAULT_WORKFLOW,
    ConfigError,
    Deployment,
    load_deployment,
    load_workflow,
)
from pipelines.offline_render import render_episode  # noqa: E402
from pipelines.playout import clock  # noqa: E402
from pipelines.playout.archive import Mp4Writer  # noqa: E402
from pipelines.playout.pixels import rgb_to_i420  # noqa: E402
from pipelines.segments import (  # noqa: E402
    EpisodeRequest,
    Progress,
    SegmentText,  # noqa: E402
    VoicedSegment,
)
from pipelines.stages.models_loaded import LoadedModels, load_models  # noqa: E402
from pipelines.stages.segmenter import Segmenter  # noqa: E402

SCHEMA = "streamwise.bench.render/1"
QUICK_DURATION_S = 20.0


# ---------------------------------------------------------------------------- machine
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 2)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for mod in ("llama_cpp", "onnxruntime", "av", "cv2", "numpy"):
        try:
            out[mod] = getattr(__import__(mod), "__version__", "?")
        except Exception:  # noqa: BLE001 - an optional extra for the report
            pass
    return out


def machine_info() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return {
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_total_gib": _mem_total_gib(),
        "loadavg_start": [round(x, 2) for x in load],
        "platform": platform.platform(),
        "versions": _versions(),
    }


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


# ---------------------------------------------------------------------------- helpers
class Timer:
    """Wall and process-CPU seconds of a block (CPU counts every thread: >1 s/s uses >1 core)."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    @contextmanager
    def __call__(self) -> Iterator[None]:
        w, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall += time.perf_counter() - w
            self.cpu += time.process_time() - c


def _fit(points: list[tuple[float, float]]) -> dict[str, float] | None:
    """compute_s ~= fixed_s + per_media_s * media_s over segments (least squares)."""
    if len(points) < 3:
        return None
    x = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    if np.ptp(x) < 1e-6:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    return {"fixed_s": round(float(intercept), 4), "per_media_s": round(float(slope), 4)}


def _stage(wall: float, cpu: float, media: float, points: list[tuple[float, float]] | None = None, **extra: Any) -> dict:
    out: dict[str, Any] = {
        "compute_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "media_s": round(media, 3),
        "rtf": round(wall / media, 4) if media > 0 else None,
        "cpu_per_media_s": round(cpu / media, 4) if media > 0 else None,
    }
    if points is not None:
        out["fit"] = _fit(points)
        out["segments"] = [[round(m, 3), round(c, 4)] for m, c in points]
    out.update(extra)
    return out


# ---------------------------------------------------------------------------- phases
def bench_load(deployment: Deployment, workflow, bar) -> tuple[LoadedModels, dict[str, dict[str, float]]]:
    """Load without warming (load_models' per-kind load_s), then time each warm-up."""
    task = bar.add_task("load models", total=4)
    models = load_models(deployment, workflow, warm=False)
    bar.advance(task)
    load: dict[str, dict[str, float]] = {}
    for kind, adapter in (("script", models.writer), ("speech", models.speech), ("video", models.animator)):
        t0 = time.perf_counter()
        if not getattr(adapter, "_streamwise_warm", False):
            adapter.warm_up()
            adapter._streamwise_warm = True  # what load_models marks, so nothing warms twice
        load[kind] = {"load_s": round(models.load_s[kind], 3), "warm_s": round(time.perf_counter() - t0, 3)}
        bar.advance(task)
    return models, load


def bench_streaming(models: LoadedModels, deployment: Deployment, topic: str, duration: float, tmp: Path, bar) -> dict:
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


def bench_script(models: LoadedModels, deployment: Deployment, topic: str, duration: float, bar) -> tuple[dict, str, list[SegmentText]]:
    hosts = (deployment.hosts[0].name, deployment.hosts[1].name)
    request = ScriptRequest(topic=topic, duration_s=duration, hosts=hosts)
    seg_spec = deployment.segmenter
    segmenter = Segmenter(hosts, seg_spec.max_words, seg_spec.first_max_words, seg_spec.first_segments)
    task = bar.add_task("script (alone)", total=max(1, request.word_budget))
    title = topic
    segments: list[SegmentText] = []
    lines = words = 0
    title_s = first_line_s = None
    end_reason = ""
    timer = Timer()
    t0 = time.perf_counter()
    with timer():
        stream = models.writer.stream(request)
        try:
            for event in stream:
                if isinstance(event, ShowTitle):
                    title = event.title
                    title_s = time.perf_counter() - t0
                elif isinstance(event, DialogueLine):
                    if first_line_s is None:
                        first_line_s = time.perf_counter() - t0
                    lines += 1
                    words += len(event.text.split())
                    segments.extend(segmenter.add_line(event))
                    bar.update(task, completed=min(words, request.word_budget))
                elif isinstance(event, ScriptEnd):
                    end_reason = event.reason
                    break
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()
    bar.update(task, completed=request.word_budget)
    stats = getattr(models.writer, "last_stats", None)
    tokens = getattr(stats, "tokens", None)
    tps = getattr(stats, "tokens_per_s", None)
    out = {
        "wall_s": timer.wall,
        "cpu_s": timer.cpu,
        "title_s": round(title_s, 3) if title_s is not None else None,
        "first_line_s": round(first_line_s, 3) if first_line_s is not None else None,
        "lines": lines,
        "words": words,
        "word_budget": request.word_budget,
        "n_segments": len(segments),
        "end_reason": end_reason,
        "tokens": tokens,
        "tokens_per_s": round(tps, 2) if tps else None,
        "retries": getattr(stats, "retries", None),
    }
    return out, title, segments


def bench_speech(models: LoadedModels, deployment: Deployment, segments: list[SegmentText], bar) -> tuple[dict, list[VoicedSegment]]:
    voices = (deployment.hosts[0].voice, deployment.hosts[1].voice)
    grid = deployment.grid_samples()
    pause = clock.to_samples(deployment.segmenter.pause_ms / 1000)
    task = bar.add_task("speech (alone)", total=len(segments))
    timer = Timer()
    points: list[tuple[float, float]] = []
    voiced: list[VoicedSegment] = []
    audio_samples = 0
    cursor = 0  # the bench's clock starts at the first words (no title card): Mp4Writer starts at 0
    for seg in segments:
        t0 = time.perf_counter()
        with timer():
            speech = models.speech.synthesize(seg.text, voices[seg.speaker])
        points.append((speech.n_samples / clock.CLOCK_RATE, time.perf_counter() - t0))
        audio_samples += speech.n_samples
        # Same layout as EpisodeRuntime._speech: the line's pause, padded to the tier grid.
        n = clock.pad_to_grid(max(speech.n_samples + (pause if seg.ends_line else 0), grid), grid)
        voiced.append(VoicedSegment(seg, cursor, n, speech.n_samples, clock.fit_audio(speech.pcm, n), tuple(speech.phonemes)))
        cursor += n
        bar.advance(task)
    audio_s = audio_samples / clock.CLOCK_RATE
    return _stage(timer.wall, timer.cpu, audio_s, points, n_segments=len(segments)), voiced


def bench_tier(models: LoadedModels, deployment: Deployment, scene: SceneInfo, voiced: list[VoicedSegment], tier: str, tmp: Path, bar) -> tuple[dict, dict]:
    """Draw every voiced segment at ``tier`` (animator + I420), then encode it; one segment in memory at a time."""
    quality = deployment.quality.tier(tier)
    task = bar.add_task(f"video+encode {tier}", total=len(voiced))
    draw, convert, encode = Timer(), Timer(), Timer()
    draw_points: list[tuple[float, float]] = []
    enc_points: list[tuple[float, float]] = []
    media_s = 0.0
    frames_total = 0
    path = tmp / f"tier-{tier}.mp4"
    writer = Mp4Writer(path, quality, deployment.output)
    try:
        for v in voiced:
            seg_s = v.n_samples / clock.CLOCK_RATE
            visual = v.visual()
            frames: list[np.ndarray] = []
            t0 = time.perf_counter()
            with draw():
                for rgb in models.animator.render(scene, visual, quality):
                    with convert():
                        frames.append(rgb_to_i420(rgb))
            draw_points.append((seg_s, time.perf_counter() - t0))
            ready = v.ready(quality, frames)
            t0 = time.perf_counter()
            with encode():
                writer.write(ready)
            enc_points.append((seg_s, time.perf_counter() - t0))
            media_s += seg_s
            frames_total += len(frames)
            del frames, ready
            bar.advance(task)
        with encode():
            writer.close()  # flushing the encoder is part of encoding
    except BaseException:
        writer.abort()
        raise
    size = path.stat().st_size
    path.unlink(missing_ok=True)
    tier_info = {"height": quality.height, "width": quality.width, "fps": quality.fps, "supersample": quality.supersample}
    video = _stage(
        draw.wall, draw.cpu, media_s, draw_points,
        frames=frames_total,
        frames_per_s=round(frames_total / draw.wall, 2) if draw.wall > 0 else None,
        i420_s=round(convert.wall, 3),
        i420_share=round(convert.wall / draw.wall, 4) if draw.wall > 0 else None,
        **tier_info,
    )
    enc = _stage(
        encode.wall, encode.cpu, media_s, enc_points,
        frames=frames_total,
        frames_per_s=round(frames_total / encode.wall, 2) if encode.wall > 0 else None,
        bytes=size,
        kbit_per_s=round(size * 8 / 1000 / media_s, 1) if media_s > 0 else None,
        **tier_info,
    )
    return video, enc


#: Segments drawn for each worker count (after one warm-up job per worker and tier), and
#: how many times the worker counts take turns.
PARALLEL_SEGMENTS = 4
PARALLEL_ROUNDS = 3


def bench_parallel(deployment: Deployment, scene: SceneInfo, voiced: list[VoicedSegment], tiers: list[str],
                   bar) -> dict[str, dict[str, float]]:
    """Speed-up of a segment's frames split over 1..N worker processes, per tier.

    The planner splits a segment across workers when one alone would miss its deadline.
    On a machine with few cores, two workers are not twice as fast: they share the cores,
    the memory bandwidth and the frames' trip back. Measured with the server's own
    drawing processes on the same jobs as live (frames at the stream's size, compressed as
    the deployment says); N is the deployment's video workers. Empty with one worker.
    """
    from concurrent.futures import ThreadPoolExecutor

    from pipelines.stages.drawers import ProcessDrawer
    from pipelines.stages.drawing import DrawJob

    workers = sum(pool.workers for pool in deployment.video_pools())
    spec = deployment.tasks.get("video")
    if workers < 2 or spec is None or not voiced:
        return {}
    qualities = {t: deployment.quality.tier(t) for t in tiers}
    stream = deployment.quality.stream_tier()
    size = (stream.width, stream.height)
    jpeg = deployment.runtime.frame_jpeg_quality
    jobs = voiced[:PARALLEL_SEGMENTS]
    drawers = [ProcessDrawer(spec.adapter, spec.params, qualities=list(qualities.values())) for _ in range(workers)]
    task = bar.add_task("video over N workers", total=len(tiers) * workers * PARALLEL_ROUNDS)
    out: dict[str, dict[str, float]] = {}
    try:
        with ThreadPoolExecutor(workers) as threads:
            list(threads.map(lambda d: d.warm_up(), drawers))
            for tier, quality in qualities.items():
                warm = DrawJob(scene, jobs[0].visual(), quality, jpeg, (0, 1), size)
                list(threads.map(lambda d: d.draw(warm), drawers))  # each worker's first job at a tier costs more
                walls = {k: 0.0 for k in range(1, workers + 1)}
                # Worker counts interleaved, rounds summed: the machine's drift hits them alike.
                for _ in range(PARALLEL_ROUNDS):
                    for k in walls:
                        t0 = time.perf_counter()
                        for v in jobs:
                            n = clock.frame_count(v.n_samples, quality.fps)
                            bounds = [round(n * i / k) for i in range(k + 1)]
                            parts = [DrawJob(scene, v.visual(), quality, jpeg,
                                             (bounds[i], bounds[i + 1]) if k > 1 else None, size) for i in range(k)]
                            list(threads.map(lambda pair: pair[0].draw(pair[1]), zip(drawers, parts)))
                        walls[k] += time.perf_counter() - t0
                        bar.advance(task)
                out[tier] = {str(k): round(walls[1] / wall, 3) for k, wall in walls.items()}
    finally:
        for drawer in drawers:
            drawer.shutdown()
    return out


# ---------------------------------------------------------------------------- report
def _f(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def markdown(report: dict) -> str:
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
    p.add_argument("--topic", default="why the sky is blue", help="what the hosts talk about")
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


def run(args: argparse.Namespace) -> dict:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import Progress as Bar

    workflow = load_workflow(args.workflow)
    deployment = load_deployment(args.deploy, workflow)
    ladder = [t.name for t in deployment.quality.ladder]
    if args.tiers:
        tiers = [t for item in args.tiers for t in item.split(",") if t]
        unknown = [t for t in tiers if t not in ladder]
        if unknown:
            raise ConfigError(f"--tiers: unknown tier(s) {unknown}; the ladder has {ladder}")
        tiers = [t for t in ladder if t in tiers]  # ladder order, no duplicates
    else:
        tiers = ladder

    report: dict[str, Any] = {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "deployment": deployment.name,
        "script_model": deployment.tasks[workflow.task_of_kind("script")].params.get("model", "?"),
        "encoder": f"{deployment.output.video_codec} {deployment.output.preset} crf {deployment.output.crf}",
        "args": {"duration": args.duration, "topic": args.topic, "tiers": tiers, "quick": args.quick},
    }
    memory = Memory()
    console = Console(stderr=True)
    columns = (TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with tempfile.TemporaryDirectory(prefix="streamwise-bench-") as tmp_name, Bar(*columns, console=console) as bar:
        tmp = Path(tmp_name)
        with memory.phase("load + warm-up"):
            models, report["load"] = bench_load(deployment, workflow, bar)
        # The streaming run comes first after warm-up, like a server's first episode:
        # no cache is warm from the isolated runs below.
        if not args.no_stream:
            with memory.phase("streaming render"):
                report["streaming"] = bench_streaming(models, deployment, args.topic, args.duration, tmp, bar)
        with memory.phase("script"):
            script, title, segments = bench_script(models, deployment, args.topic, args.duration, bar)
        if not segments:
            raise RuntimeError(f"the script writer produced no segments (end reason: {script['end_reason']!r})")
        with memory.phase("speech"):
            speech, voiced = bench_speech(models, deployment, segments, bar)
        timeline_s = sum(v.n_samples for v in voiced) / clock.CLOCK_RATE
        wall, cpu = script.pop("wall_s"), script.pop("cpu_s")
        stages: dict[str, Any] = {"script": _stage(wall, cpu, timeline_s, **script), "speech": speech, "video": {}, "encode": {}}
        scene = SceneInfo(title=title, hosts=(deployment.hosts[0].name, deployment.hosts[1].name))
        for tier in tiers:
            with memory.phase(f"video + encode {tier}"):
                stages["video"][tier], stages["encode"][tier] = bench_tier(models, deployment, scene, voiced, tier, tmp, bar)
        if not args.no_parallel:
            with memory.phase("video over N workers"):
                stages["parallel"] = bench_parallel(deployment, scene, voiced, tiers, bar)
        report["stages"] = stages

    report["profile"] = {
        "unit": "compute seconds per media second (each stage alone)",
        "script": stages["script"]["rtf"],
        "speech": stages["speech"]["rtf"],
        "video": {t: v["rtf"] for t, v in stages["video"].items()},
        "encode": {t: e["rtf"] for t, e in stages["encode"].items()},
        "parallel": stages.get("parallel", {}),
    }
    stream_tier = report.get("streaming", {}).get("tier")
    if stream_tier in stages["video"]:
        report["sequential_baseline_s"] = round(
            stages["script"]["compute_s"] + stages["speech"]["compute_s"]
            + stages["video"][stream_tier]["compute_s"] + stages["encode"][stream_tier]["compute_s"],
            3,
        )
    try:
        report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
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
