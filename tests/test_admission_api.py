"""Admission control through the REST API of a real server: 503 + Retry-After, or a queue for who may wait."""
from __future__ import annotations

import time

import httpx
import pytest
import yaml

from bench.harness import start_server
from pipelines.config import DEFAULT_DEPLOYMENT

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    """A server planning for half a core: one generating episode fills it."""
    tmp = tmp_path_factory.mktemp("admission")
    deploy = yaml.safe_load(DEFAULT_DEPLOYMENT.read_text())
    deploy["runtime"]["admission"] = {"cores": 0.5, "max_load": 1.0, "max_queue": 1}
    path = tmp / "deploy.yaml"
    path.write_text(yaml.safe_dump(deploy))
    server = start_server(tmp, extra_args=["--deploy", str(path)])
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield client
    finally:
        server.stop()


def _status(client, episode_id):
    return client.get(f"/api/episodes/{episode_id}").json()


def test_full_server_refuses_with_retry_after_then_queues_who_may_wait(small_server):
    client = small_server
    assert client.get("/api/admission").json()["admit"] is True
    first = client.post("/api/episodes", json={"topic": "how tides work", "duration_s": 20})
    assert first.status_code == 201, first.text

    refused = client.post("/api/episodes", json={"topic": "why cats purr", "duration_s": 20})
    assert refused.status_code == 503
    assert refused.headers["content-type"].startswith("application/problem+json")
    # At most the first episode's 20 s of media still to generate; the gate never says less than 2 s.
    assert 2 <= int(refused.headers["retry-after"]) <= 20
    detail = refused.json()["detail"]
    assert "capacity" in detail and '"wait": true' in detail
    assert client.get("/api/admission").json()["admit"] is False

    queued = client.post("/api/episodes", json={"topic": "why cats purr", "duration_s": 20, "wait": True})
    assert queued.status_code == 202, queued.text
    body = queued.json()
    assert body["status"] == "queued" and body["queue_position"] == 1

    full = client.post("/api/episodes", json={"topic": "how bread rises", "duration_s": 20, "wait": True})
    assert full.status_code == 503 and "queue is full" in full.json()["detail"]

    # The queued episode starts by itself once the first one has been generated, and finishes.
    deadline = time.monotonic() + 180
    while _status(client, body["id"])["status"] == "queued":
        assert time.monotonic() < deadline, "the queued episode never started"
        time.sleep(0.5)
    assert _status(client, first.json()["id"])["status"] == "finished"
    while (info := _status(client, body["id"]))["status"] == "generating":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert info["status"] == "finished", info
    assert info["queue_position"] is None


def test_a_queued_episode_can_be_deleted(small_server):
    client = small_server
    running = client.post("/api/episodes", json={"topic": "how volcanoes erupt", "duration_s": 20}).json()
    queued = client.post("/api/episodes", json={"topic": "the first computers", "duration_s": 20, "wait": True}).json()
    assert queued["status"] == "queued"
    assert client.delete(f"/api/episodes/{queued['id']}").status_code == 204
    assert client.get(f"/api/episodes/{queued['id']}").status_code == 404
    assert client.delete(f"/api/episodes/{running['id']}").status_code == 204


@pytest.mark.browser
def test_a_viewer_waiting_in_the_queue_is_told_so_then_watches(small_server, browser):
    """/watch on a full server queues the episode: the page says it is next, then plays it."""
    client = small_server
    running = client.post("/api/episodes", json={"topic": "how glaciers move", "duration_s": 40})
    assert running.status_code == 201, running.text
    page = browser.new_page()
    try:
        page.goto(f"{client.base_url}/watch?topic=why+owls+hoot&duration_s=15")
        state = "() => document.getElementById('state').textContent"
        page.wait_for_function(f"() => ({state})().includes('your episode is next')", timeout=30_000)
        episode_id = page.evaluate("() => window.STREAMWISE.episode")
        assert _status(client, episode_id)["status"] == "queued"
        # The title card plays meanwhile, and the page keeps saying why nothing is said.
        page.wait_for_function("() => window.streamwiseMetrics.ttffSeconds !== null", timeout=30_000)
        assert "your episode is next" in page.evaluate(state)
        page.wait_for_function(f"() => ({state})() === 'playing'", timeout=120_000)
        assert _status(client, episode_id)["status"] in ("generating", "finished")
        page.wait_for_function("() => window.streamwiseMetrics.firstSpeechSeconds !== null", timeout=60_000)
    finally:
        page.close()
    for episode in client.get("/api/episodes").json()["episodes"]:
        client.delete(f"/api/episodes/{episode['id']}")
