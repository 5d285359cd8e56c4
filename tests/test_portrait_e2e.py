"""The portrait look end to end: real script and speech models, tiny random-weight lip-sync networks.

An episode rendered on the portrait look's CPU floor tier passes the lip-sync check the
cartoon's end-to-end test uses; one on the neural tier streams over WebRTC to a real
aiortc viewer at the stream's size.
"""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from conftest import run_async

pytest.importorskip("diffusers", reason="the neural extra: pip install -e '.[neural]'")

from test_api import _join, _wait_for

from bench.harness import start_server
from models.protocols import Shot
from models.registry import load_adapter
from pipelines.config import REPO_ROOT, load_deployment, load_workflow
from pipelines.offline_render import render_episode
from pipelines.segments import EpisodeRequest
from pipelines.stages.models_loaded import load_models
from tests.support.lipsync_check import mouth_correlations
from tests.support.tiny_weights import write

pytestmark = pytest.mark.models
DEPLOY = REPO_ROOT / "configs" / "deploy" / "portrait.yaml"


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write(tmp_path_factory.mktemp("weights"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["STREAMWISE_WEIGHTS"] = str(root)  # the drawing processes inherit it
    return root


def test_the_floor_tier_moves_the_mouth_with_the_voice(weights: Path, tmp_path: Path) -> None:
    workflow = load_workflow()
    deployment = load_deployment(DEPLOY, workflow)
    models = load_models(deployment, workflow)
    request = EpisodeRequest(topic="why the sky is blue", duration_s=15, quality="portrait-360p")
    result = run_async(render_episode(models, deployment, request, tmp_path / "episode.mp4"))
    with av.open(str(result.video)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    with av.open(str(result.video)) as container:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]).astype(np.float32)
    assert frames.shape[1:] == (360, 640, 3)
    animator = load_adapter("video", "lipsync", deployment.tasks["video"].params)
    quality = deployment.quality.tier("portrait-360p")
    host_of = {h.name: n for n, h in enumerate(deployment.hosts)}
    lines = json.loads(result.transcript.read_text())["lines"]

    def mouth_of(line: dict) -> tuple[int, int, int, int] | None:
        host, shot = host_of[line["speaker"]], Shot(**line["shot"])
        return None if shot.kind == "close_up" and shot.host != host else animator.mouth_box(quality, host, shot)

    correlations = mouth_correlations(frames, audio, lines, quality.fps, mouth_of)
    assert correlations, "no line was long enough to measure"
    assert np.median(correlations) > 0.3, correlations


def test_a_neural_episode_streams_over_webrtc(weights: Path, tmp_path: Path) -> None:
    server = start_server(tmp_path, ["--deploy", str(DEPLOY), "--weights", str(weights)])
    try:
        server.wait_ready()
        run_async(_watch(server.url))
    finally:
        server.stop()


async def _watch(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        created = await http.post("/api/episodes", json={"topic": "owls", "duration_s": 10, "quality": "neural-360p"})
        assert created.status_code == 201, created.text
        pc, status, _ = await _join(http, created.json()["id"])
        assert status == 200
        sizes: list[tuple[int, int]] = []

        async def frames_arrived() -> bool:
            return len(sizes) >= 30

        async def read(track) -> None:
            while len(sizes) < 30:
                frame = await track.recv()
                sizes.append((frame.width, frame.height))

        video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
        reader = asyncio.create_task(read(video))
        try:
            assert await _wait_for(frames_arrived, 90.0), f"{len(sizes)} frames arrived"
        finally:
            reader.cancel()
            await pc.close()
        assert set(sizes) == {(640, 360)}
        episode = (await http.get(f"/api/episodes/{created.json()['id']}")).json()
        assert episode["quality"] == "neural-360p" and episode["status"] in ("generating", "finished")
