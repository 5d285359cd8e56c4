"""A drawing process killed mid-episode: the segment is drawn again in a new process and the episode plays on."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from bench.harness import start_server
from pipelines.config import load_deployment
from pipelines.plan.cpu import child_pids

pytestmark = pytest.mark.models


def _drawing_children(pid: int) -> list[int]:
    out = []
    for child in child_pids(pid):
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"spawn_main" in cmdline:
            out.append(int(child))
    return out


def test_killed_drawing_process_is_replaced_and_the_episode_finishes(tmp_path):
    server = start_server(tmp_path)
    try:
        server.wait_ready()
        workers = _drawing_children(server.process.pid)
        pools = load_deployment().tasks["video"].pools
        assert len(workers) == sum(p.workers for p in pools), "video drawing runs in worker processes, one per worker"
        with httpx.Client(base_url=server.url, timeout=30) as client:
            episode = client.post("/api/episodes", json={"topic": "how tides work", "duration_s": 30}).json()["id"]
            deadline = time.monotonic() + 60
            while client.get(f"/api/episodes/{episode}").json()["progress"]["segments_rendered"] < 2:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            for pid in workers:
                os.kill(pid, signal.SIGKILL)  # dies mid-episode, probably mid-segment
            deadline = time.monotonic() + 120
            while (info := client.get(f"/api/episodes/{episode}").json())["status"] == "generating":
                assert time.monotonic() < deadline
                time.sleep(0.3)
            assert info["status"] == "finished", info
            spans = client.get(f"/api/episodes/{episode}/timeline").json()["spans"]
            assert any(s["worker"] == "respawn" for s in spans), "the retry is on the timeline"
            rendered = {s["segment"] for s in spans if s["stage"] == "video" and s["segment"] is not None}
            assert rendered == set(range(info["progress"]["segments_total"])), "every segment was drawn"
            assert client.get(f"/api/episodes/{episode}/video.mp4").status_code == 200
        assert set(_drawing_children(server.process.pid)).isdisjoint(workers), "dead workers were replaced"
    finally:
        server.stop()
