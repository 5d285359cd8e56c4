"""The REST API of the real server (``streamwise serve`` as a subprocess, real models)."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from conftest import run_async

pytestmark = [pytest.mark.models, pytest.mark.timeout(180)]

STATUSES = {"generating", "finished", "failed", "cancelled"}
URL_KEYS = {"self", "watch", "offer", "transcript", "timeline", "video", "stream"}
SPAN_KEYS = {"stage", "segment", "tier", "worker", "queued", "started", "finished"}
FINISH_TIMEOUT_S = 120.0


def _detail(response: httpx.Response) -> str:
    """The error detail as text, whatever its shape (a message or FastAPI's list of errors)."""
    try:
        return json.dumps(response.json().get("detail"))
    except (ValueError, AttributeError):
        return response.text


def _create(client: httpx.Client, topic: str = "why the sky is blue", duration_s: float = 10, **extra: Any) -> dict[str, Any]:
    r = client.post("/api/episodes", json={"topic": topic, "duration_s": duration_s, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def _wait_finished(client: httpx.Client, episode_id: str, timeout: float = FINISH_TIMEOUT_S) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        data = client.get(f"/api/episodes/{episode_id}").json()
        if data["status"] != "generating":
            assert data["status"] == "finished", data
            return data
        assert time.monotonic() < deadline, f"episode {episode_id} still generating after {timeout:.0f} s: {data['progress']}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def created(client: httpx.Client):
    """A 10 s episode, with what the API said right after creating it (while it generates)."""
    response = client.post("/api/episodes", json={"topic": "  why   the sky is blue ", "duration_s": 10})
    early_video = client.get(response.headers.get("location", "/api/episodes/-") + "/video.mp4") if response.status_code == 201 else None
    yield {"response": response, "early_video": early_video}
    if response.status_code == 201:
        client.delete(f"/api/episodes/{response.json()['id']}")


@pytest.fixture(scope="module")
def finished(client: httpx.Client, created) -> dict[str, Any]:
    assert created["response"].status_code == 201, created["response"].text
    return _wait_finished(client, created["response"].json()["id"])


# ---------------------------------------------------------------- ops and docs

def test_health_and_ready(client: httpx.Client) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    assert set(r.json()["load_s"]) >= {"script", "speech", "video"}


def test_docs_and_openapi(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    r = client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in ("/api/episodes", "/api/episodes/{episode_id}", "/api/episodes/{episode_id}/offer",
                 "/api/episodes/{episode_id}/transcript", "/api/episodes/{episode_id}/timeline"):
        assert path in paths


# ---------------------------------------------------------------- create, list, get

def test_create_returns_201_with_location_and_urls(created) -> None:
    r = created["response"]
    assert r.status_code == 201, r.text
    body = r.json()
    episode_id = body["id"]
    assert episode_id and r.headers["location"] == f"/api/episodes/{episode_id}"
    assert body["status"] in STATUSES
    assert body["topic"] == "why the sky is blue"  # whitespace normalised
    assert body["duration_s"] == 10 and body["style"] == "conversational"
    assert set(body["urls"]) >= URL_KEYS
    assert body["urls"]["self"] == f"/api/episodes/{episode_id}"
    assert body["urls"]["watch"] == f"/watch/{episode_id}"


def test_video_is_409_while_generating(created) -> None:
    r = created["early_video"]
    assert r is not None
    assert r.status_code == 409, f"{r.status_code}: {r.text[:200]}"
    assert "status" in _detail(r)


def test_list_includes_the_episode(client: httpx.Client, created) -> None:
    episode_id = created["response"].json()["id"]
    r = client.get("/api/episodes")
    assert r.status_code == 200
    listed = {e["id"]: e for e in r.json()["episodes"]}
    assert episode_id in listed
    assert set(listed[episode_id]["urls"]) >= URL_KEYS


def test_get_episode(client: httpx.Client, created) -> None:
    episode_id = created["response"].json()["id"]
    r = client.get(f"/api/episodes/{episode_id}")
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == episode_id and body["status"] in STATUSES
    assert {"progress", "startup", "viewers", "stalls", "viewer_stats", "urls"} <= set(body)
    # Nobody watches this episode.
    assert body["viewers"] == 0 and body["viewer_stats"] == []
    assert body["stalls"] == {"viewer_reports": 0, "freezes": 0, "frozen_s": 0.0, "stall_ratio": None}


# ---------------------------------------------------------------- validation

BAD_BODIES = [
    pytest.param({"topic": ""}, "topic", id="empty-topic"),
    pytest.param({"topic": "   "}, "topic", id="blank-topic"),
    pytest.param({"topic": "a" * 201}, "topic", id="topic-too-long"),
    pytest.param({}, "topic", id="missing-topic"),
    pytest.param({"topic": "x", "duration_s": 9.9}, "duration_s", id="duration-too-short"),
    pytest.param({"topic": "x", "duration_s": 1801}, "duration_s", id="duration-too-long"),
    pytest.param({"topic": "x", "duration_s": -5}, "duration_s", id="duration-negative"),
    pytest.param({"topic": "x", "style": "rap battle"}, "style", id="unknown-style"),
    pytest.param({"topic": "x", "quality": "4k"}, "quality", id="unknown-quality"),
    pytest.param({"topic": 123}, "topic", id="topic-not-a-string"),
    pytest.param({"topic": ["a"]}, "topic", id="topic-a-list"),
    pytest.param({"topic": "x", "duration_s": "long"}, "duration_s", id="duration-not-a-number"),
    pytest.param({"topic": "x", "duration_s": None}, "duration_s", id="duration-null"),
    pytest.param({"topic": "x", "style": 3}, "style", id="style-not-a-string"),
    pytest.param({"topic": "x", "quality": 360}, "quality", id="quality-not-a-string"),
]


@pytest.mark.parametrize("body, field", BAD_BODIES)
def test_create_rejects_invalid_fields(client: httpx.Client, body: dict, field: str) -> None:
    before = len(client.get("/api/episodes").json()["episodes"])
    r = client.post("/api/episodes", json=body)
    assert r.status_code == 422, f"{r.status_code}: {r.text[:300]}"
    assert field in _detail(r), f"the error should name {field!r}: {_detail(r)}"
    assert len(client.get("/api/episodes").json()["episodes"]) == before, "a rejected request must not create an episode"


BAD_PAYLOADS = [
    pytest.param(b"not json", "application/json", id="not-json"),
    pytest.param(b'{"topic": "x"', "application/json", id="truncated-json"),
    pytest.param(b"[1, 2]", "application/json", id="json-array"),
    pytest.param(b'"just a string"', "application/json", id="json-string"),
    pytest.param(b"", "application/json", id="empty-body"),
    pytest.param(b'{"topic": "x"}', "text/plain", id="text-plain"),
    pytest.param(b"topic=x", "application/x-www-form-urlencoded", id="form-encoded"),
    pytest.param(b"\xff\xfe\x00garbage", "application/json", id="binary"),
]


@pytest.mark.parametrize("payload, content_type", BAD_PAYLOADS)
def test_create_rejects_bad_payloads(client: httpx.Client, payload: bytes, content_type: str) -> None:
    r = client.post("/api/episodes", content=payload, headers={"Content-Type": content_type})
    assert r.status_code == 422, f"{r.status_code}: {r.text[:300]}"
    assert "body" in _detail(r) or "topic" in _detail(r)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_create_rejects_non_finite_duration(client: httpx.Client, value: str) -> None:
    r = client.post("/api/episodes", content=f'{{"topic": "x", "duration_s": {value}}}', headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "duration_s" in _detail(r), r.text


# ---------------------------------------------------------------- unknown ids

UNKNOWN = "no-such-episode"


@pytest.mark.parametrize("method, path, body", [
    ("GET", "", None),
    ("DELETE", "", None),
    ("GET", "/transcript", None),
    ("GET", "/timeline", None),
    ("GET", "/captions.vtt", None),
    ("GET", "/video.mp4", None),
    ("GET", "/stream.mp4", None),
    ("POST", "/offer", {"sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", "type": "offer"}),
    ("POST", "/viewer-stats", {"framesDecoded": 1}),
])
def test_unknown_episode_is_404(client: httpx.Client, method: str, path: str, body: dict | None) -> None:
    r = client.request(method, f"/api/episodes/{UNKNOWN}{path}", json=body)
    assert r.status_code == 404, f"{method} {path}: {r.status_code} {r.text[:200]}"
    assert UNKNOWN in _detail(r)


def test_unknown_watch_page_is_404(client: httpx.Client) -> None:
    assert client.get(f"/watch/{UNKNOWN}").status_code == 404


def test_watch_without_a_valid_request_shows_the_form(client: httpx.Client) -> None:
    before = len(client.get("/api/episodes").json()["episodes"])
    r = client.get("/watch")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "Give a topic" in r.text
    r = client.get("/watch", params={"topic": "x", "duration_s": 5})
    assert r.status_code == 200 and "Cannot start this episode" in r.text
    assert len(client.get("/api/episodes").json()["episodes"]) == before


# ---------------------------------------------------------------- WebRTC signalling

BAD_SDP = [
    pytest.param({"sdp": "garbage", "type": "offer"}, id="garbage"),
    pytest.param({"sdp": "", "type": "offer"}, id="empty"),
    pytest.param({"sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", "type": "answer"}, id="type-answer"),
    pytest.param({"sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", "type": "pranswer"}, id="type-pranswer"),
    pytest.param({"sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "type": "offer"}, id="no-ice-credentials"),
    pytest.param({"sdp": "v=0\r\nm=\r\nm=\r\n", "type": "offer"}, id="empty-media-lines"),
    pytest.param({"sdp": (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n"
        "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 00:11\r\n"
        "a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\n"), "type": "offer"}, id="data-channel-only"),
]


@pytest.fixture(scope="module")
def rtc_episode(client: httpx.Client):
    body = _create(client, topic="what makes bread rise", duration_s=10)
    yield body
    client.delete(f"/api/episodes/{body['id']}")


@pytest.mark.parametrize("payload", BAD_SDP)
def test_malformed_sdp_is_400(client: httpx.Client, rtc_episode, payload: dict) -> None:
    episode_id = rtc_episode["id"]
    r = client.post(f"/api/episodes/{episode_id}/offer", json=payload)
    assert r.status_code == 400, f"{r.status_code}: {r.text[:300]}"
    assert _detail(r).startswith('"sdp')
    assert client.get(f"/api/episodes/{episode_id}").status_code == 200  # the server is fine


@pytest.mark.parametrize("payload", [
    pytest.param({}, id="empty-object"),
    pytest.param({"sdp": "v=0"}, id="missing-type"),
    pytest.param({"sdp": 5, "type": "offer"}, id="sdp-not-a-string"),
    pytest.param({"sdp": "v=0\r\n" + "a" * 100_001, "type": "offer"}, id="sdp-too-long"),
])
def test_invalid_offer_body_is_422(client: httpx.Client, rtc_episode, payload: dict) -> None:
    r = client.post(f"/api/episodes/{rtc_episode['id']}/offer", json=payload)
    assert r.status_code == 422, f"{r.status_code}: {r.text[:300]}"


async def _join(http: httpx.AsyncClient, episode_id: str):
    """A real aiortc peer as a viewer: its offer, the server's answer; returns (pc, status, body)."""
    from aiortc import RTCPeerConnection, RTCSessionDescription

    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    pc.createDataChannel("captions")
    await pc.setLocalDescription(await pc.createOffer())
    r = await http.post(f"/api/episodes/{episode_id}/offer", json={"sdp": pc.localDescription.sdp, "type": pc.localDescription.type})
    if r.status_code == 200:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=r.json()["sdp"], type=r.json()["type"]))
    return pc, r.status_code, r.json()


async def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


async def _viewer_session(base_url: str, episode_id: str) -> dict[str, Any]:
    """Join, connect and leave; then join again and send a bad offer alongside."""
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as http:
        async def viewers() -> int:
            return (await http.get(f"/api/episodes/{episode_id}")).json()["viewers"]

        pc, out["offer_status"], out["answer"] = await _join(http, episode_id)
        try:
            if out["offer_status"] != 200:
                return out
            out["viewers_joined"] = await viewers()

            async def connected() -> bool:
                return pc.connectionState == "connected"

            out["connected"] = await _wait_for(connected, 15)
        finally:
            await pc.close()

        async def freed() -> bool:
            out["viewers_after_close"] = await viewers()
            return out["viewers_after_close"] == 0

        await _wait_for(freed, 15)

        pc, _, _ = await _join(http, episode_id)
        try:
            out["viewers_rejoined"] = await viewers()
            bad = await http.post(f"/api/episodes/{episode_id}/offer",
                                  json={"sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "type": "offer"})
            out["bad_offer_status"] = bad.status_code
            out["viewers_after_bad_offer"] = await viewers()
        finally:
            await pc.close()
    return out


@pytest.fixture(scope="module")
def viewer_session(base_url: str, rtc_episode) -> dict[str, Any]:
    return run_async(_viewer_session(base_url, rtc_episode["id"]))


def test_offer_gets_a_sendonly_answer(viewer_session) -> None:
    assert viewer_session["offer_status"] == 200, viewer_session["answer"]
    answer = viewer_session["answer"]
    assert answer["type"] == "answer" and answer["viewer"]
    sdp = answer["sdp"]
    assert "m=video" in sdp and "m=audio" in sdp and "m=application" in sdp
    assert sdp.count("a=sendonly") == 2
    assert viewer_session["viewers_joined"] == 1


def test_viewer_that_leaves_is_freed(viewer_session) -> None:
    assert viewer_session["connected"], "the aiortc viewer should connect to the server"
    assert viewer_session["viewers_after_close"] == 0


def test_failed_offer_keeps_the_viewer_count(viewer_session) -> None:
    assert viewer_session["bad_offer_status"] == 400
    assert viewer_session["viewers_rejoined"] == 1
    assert viewer_session["viewers_after_bad_offer"] == 1


# ---------------------------------------------------------------- viewer stats

def test_viewer_stats_are_stored_per_viewer(client: httpx.Client, rtc_episode) -> None:
    episode_id = rtc_episode["id"]
    url = f"/api/episodes/{episode_id}/viewer-stats"
    assert client.post(url, json={"viewer": "api-test", "framesDecoded": 10, "playedSeconds": 1.0}).status_code == 204
    assert client.post(url, json={"viewer": "api-test", "framesDecoded": 50, "playedSeconds": 2.0,
                                  "freezeCount": 1, "totalFreezesDuration": 0.5}).status_code == 204
    body = client.get(f"/api/episodes/{episode_id}").json()
    mine = [s for s in body["viewer_stats"] if s.get("viewer") == "api-test"]
    assert mine == [{"viewer": "api-test", "framesDecoded": 50, "playedSeconds": 2.0, "freezeCount": 1, "totalFreezesDuration": 0.5}]
    # The aiortc viewers of this episode report nothing: the stalls are this report's, the newer one only.
    assert body["stalls"] == {"viewer_reports": 1, "freezes": 1, "frozen_s": 0.5, "stall_ratio": 0.25}
    for bad in ({"framesDecoded": -1}, {"ttffSeconds": "soon"}, {"viewer": "v" * 65}):
        r = client.post(url, json=bad)
        assert r.status_code == 422, f"{bad}: {r.status_code} {r.text[:200]}"


# ---------------------------------------------------------------- a finished episode

def test_transcript(client: httpx.Client, finished) -> None:
    r = client.get(f"/api/episodes/{finished['id']}/transcript")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert {"title", "hosts", "clock_rate", "lines", "segments", "status"} <= set(body)
    assert body["status"] == "finished" and body["title"]
    assert len(body["hosts"]) == 2 and body["clock_rate"] == 48_000
    assert body["lines"], "a finished episode has spoken lines"
    for line in body["lines"]:
        assert {"index", "speaker", "text", "start", "end", "start_s", "end_s"} <= set(line)
        assert line["speaker"] in body["hosts"] and line["text"].strip()
        assert 0 <= line["start"] < line["end"]
    assert {line["speaker"] for line in body["lines"]} == set(body["hosts"]), "both hosts speak"


def test_timeline(client: httpx.Client, finished) -> None:
    r = client.get(f"/api/episodes/{finished['id']}/timeline")
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == finished["id"] and body["spans"]
    for span in body["spans"]:
        assert SPAN_KEYS <= set(span), span
        assert 0 <= span["queued"] <= span["started"] <= span["finished"], span
    assert {"script", "speech", "video"} <= {s["stage"] for s in body["spans"]}
    assert body["stalls"] == [], "no viewer's playhead ran dry (none watched)"


def test_captions_vtt(client: httpx.Client, finished) -> None:
    r = client.get(f"/api/episodes/{finished['id']}/captions.vtt")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/vtt")
    assert r.text.startswith("WEBVTT") and "-->" in r.text


def test_video_mp4_when_finished(client: httpx.Client, finished) -> None:
    assert 0 < finished["startup"]["finished_s"] < FINISH_TIMEOUT_S
    r = client.get(f"/api/episodes/{finished['id']}/video.mp4")
    assert r.status_code == 200, r.text[:200]
    assert r.headers["content-type"] == "video/mp4"
    assert r.content[4:8] == b"ftyp" and len(r.content) > 10_000


def test_stream_mp4_is_fragmented(client: httpx.Client, finished) -> None:
    with client.stream("GET", f"/api/episodes/{finished['id']}/stream.mp4") as r:
        assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
        data = r.read()
    assert data[4:8] == b"ftyp", data[:16]
    assert b"moov" in data and b"moof" in data, "a fragmented MP4 has moof fragments"


# ---------------------------------------------------------------- delete

def test_delete_episode(client: httpx.Client, live_server) -> None:
    episode_id = _create(client, topic="how tides work", duration_s=20)["id"]
    assert (live_server.media_dir / episode_id).is_dir()
    r = client.delete(f"/api/episodes/{episode_id}")
    assert r.status_code == 204 and r.content == b""
    assert client.get(f"/api/episodes/{episode_id}").status_code == 404
    assert client.delete(f"/api/episodes/{episode_id}").status_code == 404
    assert episode_id not in {e["id"] for e in client.get("/api/episodes").json()["episodes"]}
    assert not (live_server.media_dir / episode_id).exists(), "deleting an episode removes its files"


def test_errors_are_problem_details(client: httpx.Client) -> None:
    """RFC 9457: every error is application/problem+json with status, title and a detail naming the field."""
    r = client.post("/api/episodes", json={"topic": "x", "duration_s": 99999})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 422 and body["title"]
    assert "duration_s" in body["detail"] and body["errors"][0]["field"] == "duration_s"
    r = client.get("/api/episodes/no-such-episode")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["instance"] == "/api/episodes/no-such-episode"
    r = client.get("/no/such/route")
    assert r.status_code == 404 and r.json()["status"] == 404


def test_huge_bodies_are_refused_before_reading(client: httpx.Client) -> None:
    r = client.post("/api/episodes", content=b'{"topic": "' + b"x" * 2_000_000 + b'"}', headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["status"] == 413

    def chunks():
        for _ in range(40):
            yield b"x" * 10_000

    r = client.post("/api/episodes", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
