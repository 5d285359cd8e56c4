"""Render one episode to files: the MP4 archive, transcript JSON and WebVTT captions.

This is the episode stream with the archive as its only sink; the live server
puts a playout buffer on the same stream.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.config import Deployment
from pipelines.playout.archive import Mp4Writer
from pipelines.playout.transcript import TranscriptBuilder
from pipelines.segments import EpisodeRequest, Progress
from pipelines.spans import Timeline
from pipelines.stages.models_loaded import LoadedModels
from pipelines.stages.pools import StagePools
from pipelines.stages.runtime import EpisodeRuntime


@dataclass
class RenderResult:
    video: Path
    transcript: Path
    captions: Path
    title: str
    duration_s: float
    wall_s: float
    first_segment_s: float | None
    segments: int
    timeline: Timeline
    tiers: dict[str, int] = field(default_factory=dict)


def output_paths(out: Path) -> tuple[Path, Path, Path]:
    return out, out.with_suffix(".json"), out.with_suffix(".vtt")


async def render_episode(
    models: LoadedModels,
    deployment: Deployment,
    request: EpisodeRequest,
    out: Path,
    pools: StagePools | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> RenderResult:
    own_pools = pools is None
    pools = pools or StagePools.for_deployment(deployment)
    timeline = Timeline()
    runtime = EpisodeRuntime(models, deployment, pools, request, timeline=timeline, on_progress=on_progress)
    quality = deployment.quality.stream_tier(request.quality)
    video_path, json_path, vtt_path = output_paths(out)
    writer = Mp4Writer(video_path, quality, deployment.output)
    transcript = TranscriptBuilder(hosts=runtime.hosts)
    first_segment_s: float | None = None
    tiers: dict[str, int] = {}
    t0 = time.perf_counter()
    try:
        async for segment in runtime.run():
            if segment.kind == "speech" and first_segment_s is None:
                first_segment_s = timeline.now()
            writer.write(segment)
            transcript.add(segment)
            tiers[segment.quality.name] = tiers.get(segment.quality.name, 0) + len(segment.frames)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        if own_pools:
            pools.shutdown()
    transcript.title = runtime.title
    transcript.write(json_path, vtt_path)
    return RenderResult(
        video=video_path,
        transcript=json_path,
        captions=vtt_path,
        title=runtime.title,
        duration_s=writer.samples_written / 48_000,
        wall_s=time.perf_counter() - t0,
        first_segment_s=first_segment_s,
        segments=len(transcript.segments),
        timeline=timeline,
        tiers=tiers,
    )
