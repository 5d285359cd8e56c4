"""Episodes survive a restart; one cut off mid-generation comes back interrupted and can be re-run."""
from __future__ import annotations

import time

import httpx
import pytest

from bench.harness import start_server

pytestmark = pytest.mark.models


def _wait_status(client: httpx.Client, episode_id: str, wanted: set[str], timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = client.get(f"/api/episodes/{episode_id}").json()
        if info["status"] in wanted:
            return info
        time.sleep(0.3)
    raise AssertionError(f"episode {episode_id} never reached {wanted}: {info}")


def test_restart_keeps_episodes_and_interrupts_running_ones(tmp_path):
    server = start_server(tmp_path)
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            done = client.post("/api/episodes", json={"topic": "how tides work", "duration_s": 10}).json()
            _wait_status(client, done["id"], {"finished"})
            lines_before = client.get(f"/api/episodes/{done['id']}/transcript").json()["lines"]
            running = client.post("/api/episodes", json={"topic": "why cats purr", "duration_s": 120}).json()
            time.sleep(2.0)
    finally:
        server.stop()  # SIGTERM while the second episode is generating
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why it stopped.
    assert server.process.returncode in (0, -15), server.log_tail()

    server = start_server(tmp_path)
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            listed = {e["id"]: e for e in client.get("/api/episodes").json()["episodes"]}
            assert set(listed) == {done["id"], running["id"]}
            assert listed[done["id"]]["status"] == "finished"
            assert client.get(f"/api/episodes/{done['id']}/transcript").json()["lines"] == lines_before
            video = client.get(f"/api/episodes/{done['id']}/video.mp4")
            assert video.status_code == 200 and video.content[4:8] == b"ftyp"
            # Playable again: the buffer is rebuilt from the archive for the fallback stream.
            with client.stream("GET", f"/api/episodes/{done['id']}/stream.mp4") as stream:
                body = b"".join(stream.iter_bytes())
            assert body[4:8] == b"ftyp" and len(body) > 50_000

            interrupted = listed[running["id"]]
            assert interrupted["status"] == "interrupted" and "rerun" in interrupted["error"]
            assert client.post(f"/api/episodes/{done['id']}/rerun").status_code == 409
            rerun = client.post(f"/api/episodes/{running['id']}/rerun")
            assert rerun.status_code == 202 and rerun.json()["status"] == "generating"
            client.delete(f"/api/episodes/{running['id']}")
            assert client.get(f"/api/episodes/{running['id']}").status_code == 404
    finally:
        server.stop()


def test_a_full_disk_refuses_new_episodes_clearly(tmp_path):
    # Ask for more free space than any disk has: the same path as a disk that filled up.
    server = start_server(tmp_path, env={"STREAMWISE_MIN_FREE_MB": str(10**9)})
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            r = client.post("/api/episodes", json={"topic": "owls", "duration_s": 10})
            assert r.status_code == 507
            assert "free" in r.json()["detail"] and "DELETE /api/episodes" in r.json()["detail"]
            assert client.get("/api/episodes").json()["episodes"] == [], "nothing half-created"
            assert client.get("/healthz").status_code == 200, "the server keeps running"
    finally:
        server.stop()
