"""200 viewers connect and leave: memory, file descriptors, threads and tasks stay flat (slow)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
from conftest import run_async
from test_api import _join, _wait_for  # tests/ is on sys.path: the real aiortc viewer

from bench.harness import start_server

pytestmark = [pytest.mark.models, pytest.mark.slow]
CYCLES = 200
WARM_UP = 20


def _usage(pid: int, url: str) -> dict[str, int]:
    text = Path(f"/proc/{pid}/status").read_text()
    status = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    ready = httpx.get(f"{url}/readyz", timeout=10).json()
    return {
        "rss_kb": int(status["VmRSS"].split()[0]),
        "threads": int(status["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "tasks": ready["tasks"],
    }


async def _cycles(url: str, episode_id: str, n: int) -> int:
    connected = 0
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for _ in range(n):
            pc, status, _ = await _join(http, episode_id)
            assert status == 200
            async def is_connected(pc=pc) -> bool:
                return pc.connectionState == "connected"
            connected += await _wait_for(is_connected, 10)
            await pc.close()

            async def freed() -> bool:
                return (await http.get(f"/api/episodes/{episode_id}")).json()["viewers"] == 0
            assert await _wait_for(freed, 10), "a viewer that left was not freed"
    return connected


def test_viewer_churn_does_not_leak(tmp_path):
    server = start_server(tmp_path)
    try:
        server.wait_ready()
        pid = server.process.pid
        with httpx.Client(base_url=server.url, timeout=30) as client:
            episode = client.post("/api/episodes", json={"topic": "how tides work", "duration_s": 10}).json()["id"]
            deadline = time.monotonic() + 120
            while client.get(f"/api/episodes/{episode}").json()["status"] != "finished":
                assert time.monotonic() < deadline
                time.sleep(0.5)
        run_async(_cycles(server.url, episode, WARM_UP))
        time.sleep(2)
        before = _usage(pid, server.url)
        connected = run_async(_cycles(server.url, episode, CYCLES - WARM_UP))
        time.sleep(3)
        after = _usage(pid, server.url)
        print(f"leak check over {CYCLES - WARM_UP} cycles ({connected} connected): before {before}, after {after}")
        assert connected >= 0.95 * (CYCLES - WARM_UP)
        assert after["fds"] - before["fds"] <= 10, (before, after)
        assert after["tasks"] - before["tasks"] <= 5, (before, after)
        assert after["threads"] - before["threads"] <= 5, (before, after)
        assert after["rss_kb"] - before["rss_kb"] <= 60_000, (before, after)
    finally:
        server.stop()
