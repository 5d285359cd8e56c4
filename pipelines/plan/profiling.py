"""Measuring what each stage costs on this machine, with the deployment's own adapters.

Contract: ``measure_stages`` runs, in this process, the script writer over one episode,
speech over every segment it wrote, then per tier of the ladder the animator (with the
RGB->I420 conversion) and the MP4 encoder over the same voiced segments, and last the
speed-up of a segment's frames split over 1..N drawing processes. It returns the
``StageTable`` that ``stage_profiles`` turns into a profile and ``bench/render.py``
prints. Each stage runs alone so its real-time factor is not blurred by the others.
Progress goes to a rich progress bar (on stderr: stdout stays the caller's).

Figures are noisy on a shared machine; ``machine_info`` records the load average with them.
"""
from __future__ import annotations

import importlib
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from models.protocols import (
    DialogueLine,
    SceneInfo,
    ScriptEnd,
    ScriptRequest,
    ShowTitle,
)
from pipelines.config import Deployment, Workflow
from pipelines.plan.stage_figures import (
    EncodeFigures,
    LoadFigures,
    MachineInfo,
    ParallelFigures,
    Point,
    ScriptDetails,
    ScriptFigures,
    SpeechFigures,
    StageTable,
    Timer,
    VideoFigures,
    fitted_figures,
    ratio,
    stage_figures,
)
from pipelines.playout import clock
from pipelines.playout.archive import Mp4Writer
from pipelines.playout.pixels import rgb_to_i420
from pipelines.segments import SegmentText, VoicedSegment
from pipelines.stages.models_loaded import LoadedModels, load_models
from pipelines.stages.segmenter import Segmenter

#: What the hosts talk about while being measured: any topic will do, a fixed one keeps runs comparable.
PROFILE_TOPIC = "why the sky is blue"

#: Segments drawn for each worker count (after one warm-up job per worker and tier), and
#: how many times the worker counts take turns: enough to average out a noisy machine,
#: few enough that the split measurement does not dominate the run.
PARALLEL_SEGMENTS = 4
PARALLEL_ROUNDS = 3

#: Wraps each phase of ``measure_stages`` (given its name); the benchmark records peak memory with it.
PhaseHook = Callable[[str], AbstractContextManager[None]]


def _no_phase(_name: str) -> AbstractContextManager[None]:
    return nullcontext()


@contextmanager
def progress_bar() -> Iterator[Progress]:
    """The bar every measurement reports to, on stderr so that stdout stays free for a report."""
    columns = (TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        yield bar


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
    """Versions of the libraries that do the work: a profile from other versions may not hold."""
    out = {"python": platform.python_version()}
    for mod in ("llama_cpp", "onnxruntime", "av", "cv2", "numpy"):
        # A library this deployment does not use may be missing or fail to import: not worth failing over.
        with suppress(Exception):
            out[mod] = getattr(importlib.import_module(mod), "__version__", "?")
    return out


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, rounded; None where the system keeps none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> MachineInfo:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    return {
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_total_gib": _mem_total_gib(),
        # NaN rather than nothing: the report prints the load average at start in any case.
        "loadavg_start": load_average() or [float("nan")] * 3,
        "platform": platform.platform(),
        "versions": _versions(),
    }


def record_load_at_end(machine: MachineInfo) -> None:
    """Add the load average after the run, where there is one: with the one at start it brackets the noise."""
    end = load_average()
    if end is not None:
        machine["loadavg_end"] = end


# ---------------------------------------------------------------------------- stages
def load_and_warm(deployment: Deployment, workflow: Workflow, bar: Progress) -> tuple[LoadedModels, dict[str, LoadFigures]]:
    """Load without warming (load_models' per-kind load_s), then time each warm-up."""
    task = bar.add_task("load models", total=4)
    models = load_models(deployment, workflow, warm=False)
    bar.advance(task)
    load: dict[str, LoadFigures] = {}
    for kind, adapter in (("script", models.writer), ("speech", models.speech), ("video", models.animator)):
        t0 = time.perf_counter()
        if not getattr(adapter, "_streamwise_warm", False):
            adapter.warm_up()
            adapter._streamwise_warm = True  # what load_models marks, so nothing warms twice
        load[kind] = {"load_s": round(models.load_s[kind], 3), "warm_s": round(time.perf_counter() - t0, 3)}
        bar.advance(task)
    return models, load


def _script_details(models: LoadedModels, request: ScriptRequest, segments: list[SegmentText], lines: int,
                    words: int, marks: dict[str, float], end_reason: str) -> ScriptDetails:
    """What the writer reports about its last stream (token counts where the adapter keeps them)."""
    stats = getattr(models.writer, "last_stats", None)
    tps = getattr(stats, "tokens_per_s", None)
    title_s, first_line_s = marks.get("title"), marks.get("first_line")
    return {
        "title_s": round(title_s, 3) if title_s is not None else None,
        "first_line_s": round(first_line_s, 3) if first_line_s is not None else None,
        "lines": lines,
        "words": words,
        "word_budget": request.word_budget,
        "n_segments": len(segments),
        "end_reason": end_reason,
        "tokens": getattr(stats, "tokens", None),
        "tokens_per_s": round(tps, 2) if tps else None,
        "retries": getattr(stats, "retries", None),
    }


def measure_script(models: LoadedModels, deployment: Deployment, topic: str, duration: float,
                   bar: Progress) -> tuple[Timer, ScriptDetails, str, list[SegmentText]]:
    """Stream one script and cut it into segments as the runtime does; returns its timer, details, title, segments.

    The figures need the voiced length as their media seconds, known only after speech:
    ``script_figures`` builds them then.
    """
    hosts = (deployment.hosts[0].name, deployment.hosts[1].name)
    request = ScriptRequest(topic=topic, duration_s=duration, hosts=hosts)
    seg_spec = deployment.segmenter
    segmenter = Segmenter(hosts, seg_spec.max_words, seg_spec.first_max_words, seg_spec.first_segments)
    task = bar.add_task("script (alone)", total=max(1, request.word_budget))
    title = topic
    segments: list[SegmentText] = []
    lines = words = 0
    marks: dict[str, float] = {}
    end_reason = ""
    timer = Timer()
    t0 = time.perf_counter()
    with timer():
        stream = models.writer.stream(request)
        try:
            for event in stream:
                if isinstance(event, ShowTitle):
                    title = event.title
                    marks["title"] = time.perf_counter() - t0
                elif isinstance(event, DialogueLine):
                    marks.setdefault("first_line", time.perf_counter() - t0)
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
    return timer, _script_details(models, request, segments, lines, words, marks, end_reason), title, segments


def script_figures(timer: Timer, details: ScriptDetails, timeline_s: float) -> ScriptFigures:
    return {**stage_figures(timer.wall, timer.cpu, timeline_s), **details}


def measure_speech(models: LoadedModels, deployment: Deployment, segments: list[SegmentText],
                   bar: Progress) -> tuple[SpeechFigures, list[VoicedSegment]]:
    """Voice every segment and lay it on the clock; media seconds are the synthesized audio itself."""
    voices = (deployment.hosts[0].voice, deployment.hosts[1].voice)
    grid = deployment.grid_samples()
    pause = clock.to_samples(deployment.segmenter.pause_ms / 1000)
    task = bar.add_task("speech (alone)", total=len(segments))
    timer = Timer()
    points: list[Point] = []
    voiced: list[VoicedSegment] = []
    audio_samples = 0
    cursor = 0  # the clock starts at the first words (no title card): Mp4Writer starts at 0
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
    return {**fitted_figures(timer, audio_s, points), "n_segments": len(segments)}, voiced


def measure_tier(models: LoadedModels, deployment: Deployment, scene: SceneInfo, voiced: list[VoicedSegment],
                 tier: str, tmp: Path, bar: Progress) -> tuple[VideoFigures, EncodeFigures]:
    """Draw every voiced segment at ``tier`` (animator + I420), then encode it; one segment in memory at a time."""
    quality = deployment.quality.tier(tier)
    task = bar.add_task(f"video+encode {tier}", total=len(voiced))
    draw, convert, encode = Timer(), Timer(), Timer()
    draw_points: list[Point] = []
    enc_points: list[Point] = []
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
    video: VideoFigures = {
        **fitted_figures(draw, media_s, draw_points), "frames": frames_total,
        "frames_per_s": ratio(frames_total, draw.wall, 2), "i420_s": round(convert.wall, 3),
        "i420_share": ratio(convert.wall, draw.wall, 4),
        "height": quality.height, "width": quality.width, "fps": quality.fps, "supersample": quality.supersample,
    }
    enc: EncodeFigures = {
        **fitted_figures(encode, media_s, enc_points), "frames": frames_total,
        "frames_per_s": ratio(frames_total, encode.wall, 2), "bytes": size,
        "kbit_per_s": ratio(size * 8 / 1000, media_s, 1),
        "height": quality.height, "width": quality.width, "fps": quality.fps, "supersample": quality.supersample,
    }
    return video, enc


def measure_parallel(deployment: Deployment, scene: SceneInfo, voiced: list[VoicedSegment], tiers: list[str],
                     bar: Progress) -> ParallelFigures:
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
    out: ParallelFigures = {}
    try:
        with ThreadPoolExecutor(workers) as threads:
            list(threads.map(lambda d: d.warm_up(), drawers))
            for tier, quality in qualities.items():
                warm = DrawJob(scene, jobs[0].visual(), quality, jpeg, (0, 1), size)
                list(threads.map(ProcessDrawer.draw, drawers, [warm] * workers))  # each worker's first job at a tier costs more
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
                            list(threads.map(ProcessDrawer.draw, drawers, parts))
                        walls[k] += time.perf_counter() - t0
                        bar.advance(task)
                out[tier] = {str(k): round(walls[1] / wall, 3) for k, wall in walls.items()}
    finally:
        for drawer in drawers:
            drawer.shutdown()
    return out


def measure_stages(models: LoadedModels, deployment: Deployment, topic: str, duration: float, tiers: list[str],
                   tmp: Path, bar: Progress, parallel: bool = True, phase: PhaseHook = _no_phase) -> StageTable:
    """Every stage alone, in pipeline order: each feeds the next with what it produced.

    ``tmp`` holds the encoded files while they are measured. Raises RuntimeError when the
    script writer produces no segment: nothing downstream could be measured.
    """
    with phase("script"):
        script_timer, details, title, segments = measure_script(models, deployment, topic, duration, bar)
    if not segments:
        raise RuntimeError(f"the script writer produced no segments (end reason: {details['end_reason']!r})")
    with phase("speech"):
        speech, voiced = measure_speech(models, deployment, segments, bar)
    timeline_s = sum(v.n_samples for v in voiced) / clock.CLOCK_RATE
    stages: StageTable = {"script": script_figures(script_timer, details, timeline_s), "speech": speech,
                          "video": {}, "encode": {}}
    scene = SceneInfo(title=title, hosts=(deployment.hosts[0].name, deployment.hosts[1].name))
    for tier in tiers:
        with phase(f"video + encode {tier}"):
            stages["video"][tier], stages["encode"][tier] = measure_tier(models, deployment, scene, voiced, tier, tmp, bar)
    if parallel:
        with phase("video over N workers"):
            stages["parallel"] = measure_parallel(deployment, scene, voiced, tiers, bar)
    return stages
