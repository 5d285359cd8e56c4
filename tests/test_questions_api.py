"""Asking the hosts over the server: the REST routes, the data channel, persistence.

The routes run in the real application (``create_app``, real access policy, share links,
problem responses) over real ``Episode`` objects held by a small stand-in for the episode
manager, so no model is loaded. The data channel is tested on ``QuestionChannel`` with a
stand-in channel, and once end to end over real aiortc on loopback.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from conftest import run_async
from fastapi.testclient import TestClient

from models.protocols import CLOCK_RATE
from pipelines.config import QuestionsSpec
from pipelines.playout.buffer import Playhead, PlayoutBuffer
from pipelines.questions import QuestionBoard, QuestionsClosed
from pipelines.segments import EpisodeRequest
from server.access import AccessPolicy, parse_keys
from server.app import create_app
from server.episodes.episode import QUESTIONS_CLOSED, QUESTIONS_CUT_SHORT, Episode
from server.episodes.restore import episode_from_record, settle
from server.shares import ShareSigner
from server.state import Settings
from server.transport.asking import QuestionChannel, QuestionDesk
from server.transport.webrtc import WebRTCGateway

ALICE, BOB, OPS = "a" * 24, "b" * 24, "o" * 24
KEYS = f"alice:client:{ALICE},bob:client:{BOB},ops:admin:{OPS}"
QUESTION_KEYS = {"id", "text", "name", "status", "asked_at", "media_s", "reason"}


def auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


class Manager:
    """What the routes ask of the episode manager, over real episodes (no models, no store)."""

    def __init__(self) -> None:
        self.episodes: dict[str, Episode] = {}
        self.signer = ShareSigner(b"k" * 32)
        self.store = SimpleNamespace(audit_of=lambda episode_id: [])

    def add(self, episode_id: str, owner: str = "alice", visibility: str = "unlisted", status: str = "generating",
            **spec: Any) -> Episode:
        episode = Episode(id=episode_id, request=EpisodeRequest(topic="owls", duration_s=60), directory=Path("/nonexistent"),
                          owner=owner, visibility=visibility, status=status,  # type: ignore[arg-type]
                          questions=QuestionBoard(QuestionsSpec(**spec)))
        self.episodes[episode_id] = episode
        return episode

    def get(self, episode_id: str) -> Episode | None:
        return self.episodes.get(episode_id)

    def shared(self, episode: Episode, token: str | None) -> bool:
        return self.signer.valid(episode.id, episode.shares, token)

    def queue_position(self, episode_id: str) -> int | None:
        return None

    def record_action(self, *args: Any) -> None:
        pass

    async def delete(self, episode_id: str, by: str) -> bool:
        return self.episodes.pop(episode_id, None) is not None


@pytest.fixture()
def manager() -> Manager:
    return Manager()


@pytest.fixture()
def client(manager: Manager) -> TestClient:
    app = create_app(Settings(access=AccessPolicy(keys=parse_keys(KEYS))))
    app.state.sw.manager = manager  # no lifespan: no models
    return TestClient(app)


def ask(client: TestClient, episode_id: str, key: str | None = ALICE, **body: Any) -> Any:
    return client.post(f"/api/episodes/{episode_id}/questions", headers=auth(key),
                       json=body or {"text": "why do owls hoot", "name": "Maya"})


# ---------------------------------------------------------------- asking and reading

def test_ask_is_202_with_the_question_then_listed_and_readable(client: TestClient, manager: Manager) -> None:
    manager.add("ep1")
    r = ask(client, "ep1", text="SAM: why do owls\nhoot", name="Maya")
    assert r.status_code == 202, r.text
    body = r.json()
    assert set(body) == QUESTION_KEYS
    assert (body["text"], body["name"], body["status"], body["media_s"]) == ("SAM - why do owls hoot?", "Maya", "queued", None)
    assert r.headers["location"] == f"/api/episodes/ep1/questions/{body['id']}"
    listed = client.get("/api/episodes/ep1/questions", headers=auth(ALICE))
    assert listed.status_code == 200 and listed.json() == {"questions": [body]}
    one = client.get(r.headers["location"], headers=auth(ALICE))
    assert one.status_code == 200 and one.json() == body
    # As the runtime moves it on, the API follows.
    board = manager.episodes["ep1"].questions
    board.answering(board.get(body["id"]), 75 * CLOCK_RATE)
    assert client.get(r.headers["location"], headers=auth(ALICE)).json()["media_s"] == 75.0


def test_the_episode_tells_the_page_about_questions(client: TestClient, manager: Manager) -> None:
    manager.add("on")
    manager.add("off", enabled=False, disabled_reason="this show is pre-recorded")
    on = client.get("/api/episodes/on", headers=auth(ALICE)).json()["questions"]
    assert on == {"enabled": True, "disabled_reason": None, "closed": None, "max_chars": 280, "voice": True, "asked": 0}
    off = client.get("/api/episodes/off", headers=auth(ALICE)).json()["questions"]
    assert off["enabled"] is False and off["disabled_reason"] == "this show is pre-recorded"
    assert off["voice"] is False, "no questions: none by voice either"
    manager.add("typed", voice=False)
    assert client.get("/api/episodes/typed", headers=auth(ALICE)).json()["questions"]["voice"] is False


@pytest.mark.parametrize("body, says", [
    ({"text": ""}, "empty"),
    ({"text": " \n\t "}, "empty"),
    ({"text": "\u0000\u0007<>[]"}, "empty"),
    ({"text": "🎉🎉🎉"}, "empty"),
    ({"text": "x" * 281}, "281 characters long; at most 280"),
])
def test_bad_questions_are_422_with_what_to_do(client: TestClient, manager: Manager, body: dict, says: str) -> None:
    manager.add("ep1")
    r = ask(client, "ep1", **body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert says in r.json()["detail"]
    assert r.json()["errors"][0]["field"] == "text"


@pytest.mark.parametrize("raw", [
    '{"text": 5}', '{"text": null}', '{"text": ["a"]}', '{"text": {"a": 1}}', '{"name": "Maya"}',
    '{"text": "hi", "name": 7}', '{"text": "hi", "name": ["a"]}', "[]", '"text"', "not json", "",
    '{"text": "' + "y" * 2001 + '"}', '{"text": "hi", "name": "' + "n" * 201 + '"}',
    '{"text": "why \\ud800 blue"}', '{"text": "hi", "name": "\\udfff"}',  # lone surrogates: not text
])
def test_malformed_bodies_are_422_never_500(client: TestClient, manager: Manager, raw: str) -> None:
    manager.add("ep1")
    r = client.post("/api/episodes/ep1/questions", headers=auth(ALICE) | {"content-type": "application/json"},
                    content=raw.encode())
    assert r.status_code == 422, (raw[:40], r.status_code, r.text[:200])
    assert r.headers["content-type"] == "application/problem+json"
    assert manager.episodes["ep1"].questions.questions == []


def test_a_body_nested_too_deep_to_parse_is_400_never_500(client: TestClient, manager: Manager) -> None:
    manager.add("ep1")
    r = client.post("/api/episodes/ep1/questions", headers=auth(ALICE) | {"content-type": "application/json"},
                    content=b"[" * 5000)
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("text, expected", [
    ("why\\u0000 blue\\u001b", "why blue?"),
    ("\\u202ewhy blue", "why blue?"),
    ("cafe\\u0301 au lait", "café au lait?"),
    ("لماذا السماء زرقاء", "لماذا السماء زرقاء?"),
])
def test_unicode_and_control_characters_are_cleaned(client: TestClient, manager: Manager,
                                                             text: str, expected: str) -> None:
    manager.add("ep1", per_viewer_interval_s=0)
    raw = '{"text": "' + text + '", "name": "Zo\\u0308\\u200b"}'
    r = client.post("/api/episodes/ep1/questions", headers=auth(ALICE) | {"content-type": "application/json"},
                    content=raw.encode())
    assert r.status_code == 202, r.text
    assert (r.json()["text"], r.json()["name"]) == (expected, "Zö")  # composed; zero-width dropped


def test_unknown_episode_or_question_is_404(client: TestClient, manager: Manager) -> None:
    manager.add("ep1")
    assert ask(client, "nope").status_code == 404
    assert client.get("/api/episodes/nope/questions", headers=auth(ALICE)).status_code == 404
    r = client.get("/api/episodes/ep1/questions/nope", headers=auth(ALICE))
    assert r.status_code == 404 and "GET /api/episodes/ep1/questions" in r.json()["detail"]


def test_while_the_models_load_it_is_503_with_retry_after() -> None:
    client = TestClient(create_app(Settings(access=AccessPolicy(keys=parse_keys(KEYS)))))
    r = ask(client, "ep1")
    assert r.status_code == 503 and r.headers["retry-after"] == "2"


# ---------------------------------------------------------------- refusals

def test_questions_off_is_403_with_the_reason(client: TestClient, manager: Manager) -> None:
    manager.add("ep1", enabled=False, disabled_reason="this show is pre-recorded")
    r = ask(client, "ep1")
    assert r.status_code == 403 and "this show is pre-recorded" in r.json()["detail"]


@pytest.mark.parametrize("status", ["finished", "failed", "cancelled", "interrupted"])
def test_an_episode_that_ended_is_409_with_why(client: TestClient, manager: Manager, status: str) -> None:
    episode = manager.add("ep1", status=status)
    episode.close_questions()
    r = ask(client, "ep1")
    assert r.status_code == 409 and r.json()["detail"] == QUESTIONS_CLOSED[status]


def test_a_queued_episode_is_409_until_it_plays(client: TestClient, manager: Manager) -> None:
    episode = manager.add("ep1", status="queued")
    r = ask(client, "ep1")
    assert r.status_code == 409 and "waiting for its turn" in r.json()["detail"]
    episode.status = "generating"
    assert ask(client, "ep1").status_code == 202


def test_rate_limit_is_429_with_retry_after_per_key(client: TestClient, manager: Manager) -> None:
    manager.add("ep1", per_viewer_interval_s=30, max_queued=10)
    assert ask(client, "ep1", ALICE).status_code == 202
    r = ask(client, "ep1", ALICE)
    assert r.status_code == 429, r.text
    assert 29 <= int(r.headers["retry-after"]) <= 30 and r.json()["retry_after_s"] == int(r.headers["retry-after"])
    assert "one question every 30 s" in r.json()["detail"]
    assert ask(client, "ep1", BOB).status_code == 202, "another key has its own allowance"
    assert ask(client, "ep1", None).status_code == 202, "without a key: counted per address"
    assert ask(client, "ep1", None).status_code == 429


def test_queue_cap_is_429(client: TestClient, manager: Manager) -> None:
    manager.add("ep1", max_queued=2)
    assert ask(client, "ep1", ALICE).status_code == 202
    assert ask(client, "ep1", BOB).status_code == 202
    r = ask(client, "ep1", OPS)
    assert r.status_code == 429 and "already waiting" in r.json()["detail"] and int(r.headers["retry-after"]) >= 1


# ---------------------------------------------------------------- who may ask

def test_whoever_may_watch_may_ask_and_no_one_else(client: TestClient, manager: Manager) -> None:
    private = manager.add("priv", owner="alice", visibility="private", per_viewer_interval_s=0)
    manager.add("unl", owner="alice", visibility="unlisted", per_viewer_interval_s=0)
    for key in (None, BOB):
        for r in (ask(client, "priv", key), client.get("/api/episodes/priv/questions", headers=auth(key))):
            ghost = client.get("/api/episodes/ghost/questions", headers=auth(key))
            assert r.status_code == ghost.status_code == 404, "a private episode does not exist for them"
            assert r.json()["detail"].replace("priv", "ghost") == ghost.json()["detail"]
    assert ask(client, "priv", ALICE).status_code == 202
    assert ask(client, "priv", OPS).status_code == 202
    assert ask(client, "priv", "w" * 24).status_code == 403, "a wrong key is refused whatever the episode"
    token = manager.signer.token("priv", share := manager.signer.new_share("alice", 60))
    private.shares.append(share)
    r = client.post(f"/api/episodes/priv/questions?share={token}", json={"text": "from a share link"})
    assert r.status_code == 202, r.text
    assert ask(client, "unl", None).status_code == 202, "unlisted: anyone with the link"


def test_deleting_an_episode_declines_its_questions_with_why(client: TestClient, manager: Manager) -> None:
    episode = manager.add("ep1")
    question_id = ask(client, "ep1").json()["id"]
    assert client.delete("/api/episodes/ep1", headers=auth(ALICE)).status_code == 204
    question = episode.questions.get(question_id)
    assert question is not None and (question.status, question.reason) == ("declined", QUESTIONS_CUT_SHORT)
    assert episode.questions.closed == QUESTIONS_CUT_SHORT


def test_openapi_documents_the_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    post = paths["/api/episodes/{episode_id}/questions"]["post"]
    assert {"202", "403", "409", "422", "429"} <= set(post["responses"])
    assert "/api/episodes/{episode_id}/questions/{question_id}" in paths


# ---------------------------------------------------------------- the episode's end and a restart

def test_the_end_of_an_episode_settles_its_questions() -> None:
    for status, expected in (("finished", "answered"), ("failed", "declined")):
        episode = Manager().add("ep1", status="generating", per_viewer_interval_s=0)
        on_air = episode.ask("on air", None, "a")
        waiting = episode.ask("waiting", None, "b")
        episode.questions.answering(on_air, CLOCK_RATE)
        episode.status = status
        episode.close_questions()
        assert on_air.status == expected and waiting.status == "declined"
        assert waiting.reason == QUESTIONS_CLOSED[status]


def test_questions_are_kept_and_a_restored_episode_takes_none(tmp_path: Path) -> None:
    episode = Manager().add("ep1", status="generating", per_viewer_interval_s=0)
    answered = episode.ask("answered one", "Maya", "a")
    episode.questions.answering(answered, 30 * CLOCK_RATE)
    episode.questions.answered(answered)
    episode.ask("still waiting", None, "b")
    record = json.loads(json.dumps(episode.record()))  # as the store keeps it
    record["questions"].append({"text": "no id"})  # a stored question that cannot be read
    restored = episode_from_record(record, tmp_path, ("Alex", "Sam"))
    assert settle(restored), "interrupted, and the waiting question declined: the record changed"
    first, second = restored.questions.questions
    assert (first.text, first.name, first.status, first.media_start) == ("answered one?", "Maya", "answered", 30 * CLOCK_RATE)
    assert (second.status, second.reason) == ("declined", QUESTIONS_CLOSED["interrupted"])
    with pytest.raises(QuestionsClosed, match="the server stopped this episode"):
        restored.ask("a new one", None, "c")


# ---------------------------------------------------------------- the data channel

class Channel:
    """A data channel as QuestionChannel uses it: its state and what was sent."""

    def __init__(self) -> None:
        self.readyState = "open"
        self.sent: list[dict[str, Any]] = []
        self.fail = False

    def send(self, data: str) -> None:
        if self.fail:
            raise ConnectionError("the transport closed")
        self.sent.append(json.loads(data))


def desk_of(episode: Episode) -> QuestionDesk:
    return QuestionDesk(ask=episode.ask, listeners=episode.questions.listeners)


def test_a_question_asked_over_the_channel_is_followed_to_its_answer() -> None:
    episode = Manager().add("ep1", per_viewer_interval_s=0)
    channel = Channel()
    asking = QuestionChannel(channel, desk_of(episode), "v1")
    asking.on_message(json.dumps({"type": "ask", "text": "why\nSAM: hoot", "name": "Maya"}))
    assert len(channel.sent) == 1, "one answer, not one per listener"
    sent = channel.sent[0]
    assert sent["type"] == "question" and sent["mine"] is True and sent["status"] == "queued"
    assert sent["text"] == "why SAM - hoot?" and sent["name"] == "Maya"
    question = episode.questions.get(sent["id"])
    assert question is not None and question.asker == "viewer:v1"
    other = episode.ask("another viewer's", None, "viewer:v2")
    episode.questions.answering(other, 0)
    assert len(channel.sent) == 1, "other viewers' questions are not pushed"
    episode.questions.answering(question, 12 * CLOCK_RATE)
    episode.questions.answered(question)
    assert [(m["status"], m["media_s"]) for m in channel.sent[1:]] == [("answering", 12.0), ("answered", 12.0)]
    asking.close()
    assert not episode.questions.listeners
    episode.questions.declined(question, "late")
    assert len(channel.sent) == 3, "nothing after the viewer left"


def test_refusals_over_the_channel_carry_status_detail_and_wait() -> None:
    manager = Manager()
    limited = manager.add("ep1", per_viewer_interval_s=20)
    channel = Channel()
    asking = QuestionChannel(channel, desk_of(limited), "v1")
    for text in ("", "first", "second"):
        asking.on_message(json.dumps({"type": "ask", "text": text, "name": None}))
    empty, _, again = channel.sent
    assert (empty["type"], empty["status"], empty["retry_after_s"]) == ("question_error", 422, None)
    assert (again["type"], again["status"], again["retry_after_s"]) == ("question_error", 429, 20)
    for episode, status in ((manager.add("off", enabled=False), 403), (manager.add("done", status="finished"), 409)):
        episode.close_questions()
        channel = Channel()
        QuestionChannel(channel, desk_of(episode), "v1").on_message('{"type": "ask", "text": "hi"}')
        assert channel.sent[0]["status"] == status and channel.sent[0]["detail"]


@pytest.mark.parametrize("message", [
    "not json", b"\xff\xfe", b'{"type": "ask"}', "[1, 2]", '"ask"', "null", '{"type": "hello"}',
    '{"type": "ask"}', '{"type": "ask", "text": 5}', '{"type": "ask", "text": "hi", "name": 3}',
    '{"type": "ask", "text": ["hi"]}', "[" * 10_000, "[" * 100_000, '{"type": "ask", "text": "' + "z" * 20_000 + '"}', 42, None,
])
def test_malformed_messages_are_ignored(message: Any) -> None:
    episode = Manager().add("ep1")
    channel = Channel()
    QuestionChannel(channel, desk_of(episode), "v1").on_message(message)
    assert channel.sent == [] and episode.questions.questions == []


def test_a_closed_or_failing_channel_never_raises_into_the_episode() -> None:
    episode = Manager().add("ep1", per_viewer_interval_s=0)
    channel = Channel()
    QuestionChannel(channel, desk_of(episode), "v1").on_message('{"type": "ask", "text": "hi"}')
    question = episode.questions.questions[0]
    channel.fail = True
    episode.questions.answering(question, 0)  # the runtime moves it on: the send fails quietly
    channel.readyState = "closed"
    episode.questions.answered(question)
    assert question.status == "answered"


def test_a_bug_behind_the_desk_answers_500_and_keeps_the_channel() -> None:
    def broken(text: str, name: str | None, asker: str) -> Any:
        raise RuntimeError("bug")

    channel = Channel()
    QuestionChannel(channel, QuestionDesk(ask=broken, listeners=[]), "v1").on_message('{"type": "ask", "text": "hi"}')
    assert channel.sent[0]["type"] == "question_error" and channel.sent[0]["status"] == 500


async def _ask_over_webrtc(episode: Episode) -> list[dict[str, Any]]:
    """A real viewer (aiortc on loopback) asks over its data channel; what it receives about questions."""
    gateway = WebRTCGateway()
    client = RTCPeerConnection()
    client.addTransceiver("audio", direction="recvonly")
    channel = client.createDataChannel("captions")
    received: list[dict[str, Any]] = []
    got = asyncio.Event()

    @channel.on("message")
    def _message(data: str) -> None:
        message = json.loads(data)
        if message["type"].startswith("question"):
            received.append(message)
            got.set()

    opened = asyncio.Event()
    channel.on("open", opened.set)
    try:
        await client.setLocalDescription(await client.createOffer())
        viewer, answer = await gateway.answer("ep1", client.localDescription.sdp, "offer", Playhead(PlayoutBuffer()), 25,
                                              lambda: None, lambda v: None, questions=desk_of(episode))
        await client.setRemoteDescription(RTCSessionDescription(answer.sdp, answer.type))
        await asyncio.wait_for(opened.wait(), 10)
        channel.send(json.dumps({"type": "ask", "text": "do owls sleep", "name": "Maya"}))
        await asyncio.wait_for(got.wait(), 10)
        got.clear()
        question = episode.questions.questions[0]
        episode.questions.answering(question, 3 * CLOCK_RATE)
        await asyncio.wait_for(got.wait(), 10)
        await gateway.close(viewer.id)
        assert not episode.questions.listeners, "the viewer's listener left with it"
        return received
    finally:
        await client.close()
        await gateway.shutdown()


@pytest.mark.timeout(60)
def test_asking_over_a_real_data_channel() -> None:
    episode = Manager().add("ep1")
    received = run_async(_ask_over_webrtc(episode))
    assert [(m["type"], m["status"], m["mine"]) for m in received] == [("question", "queued", True),
                                                                       ("question", "answering", True)]
    assert received[0]["text"] == "do owls sleep?" and received[1]["media_s"] == 3.0
    assert episode.questions.questions[0].asker.startswith("viewer:")
