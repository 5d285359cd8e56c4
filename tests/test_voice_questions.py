"""Asking the hosts by voice: the server side (server/transport/listening.py, server/hearing.py).

The first tests drive ``VoiceListener`` with stand-ins for the microphone track, the data
channel and the recogniser (unit tests: the timing and the messages). The last one is the
real thing: an aiortc viewer on loopback offers the show's video and audio and a microphone
(as the page does), asks the real application's
offer route for a connection, says a Piper-voiced question on it between ``voice_start``
and ``voice_end``, and the question, recognised by pocketsphinx in its worker process, is
then listed by ``GET /api/episodes/{id}/questions``.
"""
from __future__ import annotations

import asyncio
import fractions
import json
import time
from types import SimpleNamespace
from typing import Any

import av
import httpx
import numpy as np
import pytest
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from conftest import run_async
from test_questions_api import KEYS, Channel, Manager

from models.protocols import CLOCK_RATE
from pipelines.config import QuestionsSpec
from server.access import AccessPolicy, parse_keys
from server.app import create_app
from server.episodes.episode import Episode
from server.state import Settings
from server.transport import listening
from server.transport.asking import QuestionChannel, QuestionDesk
from server.transport.listening import MISSED, VoiceListener, as_question, parse_voice
from tests.support.speech import MIN_OVERLAP, QUESTIONS, int16, overlap, spoken

FRAME = 960  # 20 ms at 48 kHz, as a browser sends Opus


def frames(seconds: float, level: int = 3000, start: int = 0) -> list[av.AudioFrame]:
    """A 200 Hz tone in 20 ms stereo frames, as aiortc's Opus decoder hands them over."""
    out = []
    for n in range(int(seconds * CLOCK_RATE) // FRAME):
        t = (start + n * FRAME + np.arange(FRAME)) / CLOCK_RATE
        mono = (np.sin(2 * np.pi * 200 * t) * level).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(mono, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = CLOCK_RATE, start + n * FRAME, fractions.Fraction(1, CLOCK_RATE)
        out.append(frame)
    return out


class Microphone:
    """A received audio track: frames put in are read out; ``None`` ends it."""

    kind = "audio"

    def __init__(self) -> None:
        self.queue: asyncio.Queue[av.AudioFrame | None] = asyncio.Queue()

    async def recv(self) -> av.AudioFrame:
        frame = await self.queue.get()
        if frame is None:
            raise MediaStreamError
        return frame

    async def say(self, chunk: list[av.AudioFrame]) -> None:
        for frame in chunk:
            self.queue.put_nowait(frame)
        while not self.queue.empty():  # the listener has read them all
            await asyncio.sleep(0.001)


class Viewer:
    """One viewer's listener over stand-ins; ``heard`` is every utterance given to the recogniser."""

    def __init__(self, episode: Episode, words: str = "why is the sky blue", microphone: bool = True,
                 voice: bool = True) -> None:
        self.heard: list[bytes] = []
        self.words = words
        self.release = asyncio.Event()
        self.release.set()
        self.channel = Channel()
        self.microphone = Microphone() if microphone else None
        desk = QuestionDesk(ask=episode.ask, listeners=episode.questions.listeners, check=episode.check_ask,
                            hear=self.hear if voice else None)
        self.asking = QuestionChannel(self.channel, desk, "v1")
        self.listener = VoiceListener(self.microphone, desk.hear)  # type: ignore[arg-type]
        self.listener.attach(self.asking)

    async def hear(self, pcm: bytes) -> str:
        self.heard.append(pcm)
        await self.release.wait()
        if self.words == "fail":
            raise RuntimeError("the recogniser broke")
        return self.words

    def send(self, kind: str, **fields: Any) -> None:
        self.listener.on_message(json.dumps({"type": kind, **fields}))

    async def until(self, predicate: Any, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            assert time.monotonic() < deadline, f"timed out; sent: {self.channel.sent}"
            await asyncio.sleep(0.005)

    def said(self) -> list[tuple[str, Any]]:
        """What the page was told: (type, the voice state or question status) per message."""
        return [(m["type"], m.get("state", m.get("status"))) for m in self.channel.sent]


def episode_with(**spec: Any) -> Episode:
    return Manager().add("ep1", **spec)


@pytest.fixture(autouse=True)
def short_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listening, "TAIL_S", 0.02)


def test_parse_voice_and_writing_the_words() -> None:
    assert parse_voice('{"type": "voice_start"}') == ("start", None)
    assert parse_voice('{"type": "voice_end", "name": "Maya"}') == ("end", "Maya")
    assert parse_voice('{"type": "voice_end", "name": 7}') == ("end", None)
    assert parse_voice('{"type": "voice_cancel"}') == ("cancel", None)
    for message in ('{"type": "ask", "text": "hi"}', "not json", b'{"type": "voice_start"}', "[" * 10_000, 5, None,
                    '{"type": "voice_start"' + " " * 20_000 + "}"):
        assert parse_voice(message) is None, message
    assert as_question("  why am i here and i'm not  ") == "Why am I here and I'm not"


def test_an_utterance_is_heard_and_asked_like_a_typed_question() -> None:
    episode = episode_with(per_viewer_interval_s=0)

    async def scenario() -> Viewer:
        viewer = Viewer(episode)
        await viewer.microphone.say(frames(0.5))  # type: ignore[union-attr]  # before the start: dropped
        viewer.send("voice_start")
        await viewer.microphone.say(frames(1.0, start=24_000))  # type: ignore[union-attr]
        viewer.send("voice_end", name="Maya")
        await viewer.until(lambda: any(m["type"] == "question" for m in viewer.channel.sent))
        await viewer.microphone.say(frames(0.5, start=72_000))  # type: ignore[union-attr]  # after: dropped
        return viewer

    viewer = run_async(scenario())
    assert viewer.said() == [("voice", "listening"), ("voice", "recognising"), ("voice", "heard"), ("question", "queued")]
    assert viewer.channel.sent[0]["max_s"] == listening.MAX_UTTERANCE_S
    assert viewer.channel.sent[1]["capped"] is False
    assert viewer.channel.sent[2]["text"] == "Why is the sky blue"
    (question,) = episode.questions.questions
    assert (question.text, question.name, question.asker) == ("Why is the sky blue?", "Maya", "viewer:v1")
    (pcm,) = viewer.heard
    # Only the second between start and end, at 16 kHz mono int16 (the resampler's delay aside).
    assert abs(len(pcm) / 2 - 16_000) <= 100, len(pcm)
    level = np.sqrt(np.mean(np.frombuffer(pcm, np.int16)[200:-200].astype(np.float64) ** 2))
    assert 1800 < level < 2400, "the tone, mixed down to one channel at its level"


def test_nothing_heard_is_missed_and_nothing_is_asked() -> None:
    episode = episode_with()

    async def scenario() -> Viewer:
        viewer = Viewer(episode, words="")
        viewer.send("voice_start")
        await viewer.microphone.say(frames(0.4, level=0))  # type: ignore[union-attr]
        viewer.send("voice_end")
        await viewer.until(lambda: len(viewer.channel.sent) == 3)
        return viewer

    viewer = run_async(scenario())
    assert viewer.said() == [("voice", "listening"), ("voice", "recognising"), ("voice", "missed")]
    assert viewer.channel.sent[2]["detail"] == MISSED
    assert episode.questions.questions == []


@pytest.mark.parametrize("case, expected", [
    ("voice off", [("voice", "refused")]),
    ("questions off", [("question_error", 403)]),
    ("a question a moment ago", [("question", "queued"), ("question_error", 429)]),
    ("finished", [("question_error", 409)]),
    ("no microphone", [("voice", "refused")]),
])
def test_refusals_come_before_the_viewer_talks(case: str, expected: list[tuple[str, Any]]) -> None:
    episode = episode_with(enabled=case != "questions off", per_viewer_interval_s=30)
    if case == "finished":
        episode.status = "finished"
        episode.close_questions()

    async def scenario() -> Viewer:
        viewer = Viewer(episode, voice=case != "voice off", microphone=case != "no microphone")
        if case == "a question a moment ago":
            viewer.asking.on_message('{"type": "ask", "text": "typed first"}')
        viewer.send("voice_start")
        await viewer.microphone.say(frames(0.2)) if viewer.microphone else None  # type: ignore[func-returns-value]
        viewer.send("voice_end")
        await asyncio.sleep(0.1)
        return viewer

    viewer = run_async(scenario())
    assert viewer.said() == expected and viewer.heard == []
    last = viewer.channel.sent[-1]
    if case == "voice off":
        assert (last["status"], last["detail"]) == (403, listening.VOICE_OFF)
    if case == "no microphone":
        assert (last["status"], last["detail"]) == (409, listening.NO_MICROPHONE)
    if case == "a question a moment ago":
        assert 29 <= last["retry_after_s"] <= 30


def test_a_long_utterance_is_cut_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listening, "MAX_UTTERANCE_S", 0.5)
    episode = episode_with()

    async def scenario() -> Viewer:
        viewer = Viewer(episode)
        viewer.send("voice_start")
        await viewer.microphone.say(frames(1.0))  # type: ignore[union-attr]
        await viewer.until(lambda: len(viewer.channel.sent) >= 4)
        viewer.send("voice_end")  # too late: already recognised
        await asyncio.sleep(0.05)
        return viewer

    viewer = run_async(scenario())
    assert viewer.said() == [("voice", "listening"), ("voice", "recognising"), ("voice", "heard"), ("question", "queued")]
    assert viewer.channel.sent[1]["capped"] is True
    assert len(viewer.heard) == 1 and len(viewer.heard[0]) == 0.5 * 16_000 * 2


def test_an_end_that_never_comes_ends_the_utterance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listening, "MAX_UTTERANCE_S", 0.2)
    monkeypatch.setattr(listening, "END_GRACE_S", 0.1)
    episode = episode_with()

    async def scenario() -> Viewer:
        viewer = Viewer(episode, words="")
        viewer.send("voice_start")  # and then nothing: the page went away
        await viewer.until(lambda: len(viewer.channel.sent) == 3, timeout_s=2.0)
        return viewer

    assert run_async(scenario()).said() == [("voice", "listening"), ("voice", "recognising"), ("voice", "missed")]


def test_one_utterance_at_a_time_and_a_failing_recogniser_keeps_the_connection() -> None:
    episode = episode_with(per_viewer_interval_s=0)

    async def scenario() -> Viewer:
        viewer = Viewer(episode, words="fail")
        viewer.release.clear()
        viewer.send("voice_start")
        await viewer.microphone.say(frames(0.3))  # type: ignore[union-attr]
        viewer.send("voice_end")
        await viewer.until(lambda: viewer.heard)
        viewer.send("voice_start")  # while the first is being recognised
        viewer.release.set()
        await viewer.until(lambda: len(viewer.channel.sent) == 4)
        viewer.asking.on_message('{"type": "ask", "text": "typed instead"}')
        return viewer

    viewer = run_async(scenario())
    assert viewer.said() == [("voice", "listening"), ("voice", "recognising"), ("voice", "refused"),
                             ("voice", "refused"), ("question", "queued")]
    assert viewer.channel.sent[2]["status"] == 409 and viewer.channel.sent[3]["status"] == 503


def test_a_dropped_utterance_is_not_recognised_and_the_listener_closes() -> None:
    episode = episode_with()

    async def scenario() -> Viewer:
        viewer = Viewer(episode)
        viewer.send("voice_start")
        await viewer.microphone.say(frames(0.3))  # type: ignore[union-attr]
        viewer.send("voice_cancel")
        viewer.send("voice_end")
        await asyncio.sleep(0.1)
        viewer.listener.close()
        viewer.send("voice_start")
        await asyncio.sleep(0.01)
        return viewer

    viewer = run_async(scenario())
    assert viewer.said() == [("voice", "listening")] and viewer.heard == []
    assert viewer.listener._reader is not None and viewer.listener._reader.cancelled()


# ---------------------------------------------------------------- over a real connection

class SpeakingTrack(MediaStreamTrack):
    """A viewer's microphone: silence in real time, and what it is told to ``say``."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._speech = np.zeros(0, np.int16)
        self._sent = 0
        self._start: float | None = None

    def say(self, pcm48: np.ndarray) -> None:
        self._speech = np.concatenate([self._speech, int16(pcm48)])

    async def recv(self) -> av.AudioFrame:
        self._start = self._start or time.monotonic()
        wait = self._start + self._sent / CLOCK_RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        chunk, self._speech = self._speech[:FRAME], self._speech[FRAME:]
        frame = av.AudioFrame.from_ndarray(np.pad(chunk, (0, FRAME - len(chunk))).reshape(1, -1), format="s16",
                                           layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = CLOCK_RATE, self._sent, fractions.Fraction(1, CLOCK_RATE)
        self._sent += FRAME
        return frame


class OfferingManager(Manager):
    """What the offer route also needs of the manager: the stream's quality, playability, and
    the title card a viewer sees while the episode has not started."""

    deployment = SimpleNamespace(
        quality=SimpleNamespace(stream_tier=lambda name: SimpleNamespace(fps=25, width=640, height=360)),
        hosts=[SimpleNamespace(name="Alex"), SimpleNamespace(name="Sam")])
    models = SimpleNamespace(animator=SimpleNamespace(title_card=lambda scene, quality, t: np.zeros((360, 640, 3), np.uint8)))

    async def ensure_playable(self, episode: Episode) -> None:
        pass

    def queue_status(self, episode_id: str) -> dict[str, Any] | None:
        return None


async def _speak_a_question(question: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Connect, say nothing (missed), then ``question``; what the page was told, and the questions listed."""
    manager = OfferingManager()
    manager.add("ep1", per_viewer_interval_s=0)
    app = create_app(Settings(access=AccessPolicy(keys=parse_keys(KEYS))))
    state = app.state.sw
    state.manager = manager  # no lifespan: no models
    speech = spoken(question)
    # As the page lays its offer out: the show's video and audio, then the microphone (a
    # second audio m-line, which aiortc's default bundling leaves on a transport it closes:
    # on this side too, hence max-bundle; a browser bundles them all).
    client = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    microphone = SpeakingTrack()
    client.addTransceiver("video", direction="recvonly")
    client.addTransceiver("audio", direction="recvonly")
    client.addTransceiver(microphone, direction="sendonly")
    channel = client.createDataChannel("captions")
    told: list[dict[str, Any]] = []
    opened, changed = asyncio.Event(), asyncio.Event()
    channel.on("open", opened.set)

    @channel.on("message")
    def _message(data: str) -> None:
        message = json.loads(data)
        if message["type"] in ("voice", "question", "question_error"):
            told.append(message)
            changed.set()

    async def until(kind: str, state_or_status: str) -> None:
        while not any(m["type"] == kind and m.get("state", m.get("status")) == state_or_status for m in told):
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), 30)
            except TimeoutError:
                raise AssertionError(f"never told {kind} {state_or_status}; told: {told}") from None

    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sw") as http:
            await client.setLocalDescription(await client.createOffer())
            r = await http.post("/api/episodes/ep1/offer", json={"sdp": client.localDescription.sdp, "type": "offer"})
            assert r.status_code == 200, r.text
            await client.setRemoteDescription(RTCSessionDescription(r.json()["sdp"], "answer"))
            await asyncio.wait_for(opened.wait(), 10)
            for words in (None, speech):
                channel.send(json.dumps({"type": "voice_start"}))
                await until("voice", "listening")
                await asyncio.sleep(0.2)
                if words is not None:
                    microphone.say(words)
                await asyncio.sleep(0.8 + (len(words) / CLOCK_RATE if words is not None else 0))
                channel.send(json.dumps({"type": "voice_end", "name": "Maya"}))
                await until("voice", "missed" if words is None else "heard")
            await until("question", "queued")
            listed = (await http.get("/api/episodes/ep1/questions")).json()["questions"]
        return told, listed
    finally:
        await client.close()
        await state.gateway.shutdown()
        state.hearing.shutdown()


@pytest.mark.models
@pytest.mark.timeout(120)
def test_a_question_spoken_over_a_real_connection_is_asked() -> None:
    question = QUESTIONS[0]
    told, listed = run_async(_speak_a_question(question))
    assert [(m["type"], m.get("state", m.get("status"))) for m in told] == [
        ("voice", "listening"), ("voice", "recognising"), ("voice", "missed"),
        ("voice", "listening"), ("voice", "recognising"), ("voice", "heard"), ("question", "queued")]
    heard = told[5]["text"]
    assert overlap(question, heard) >= MIN_OVERLAP, heard
    (asked,) = listed  # the silence asked nothing
    assert (asked["text"], asked["name"], asked["status"]) == (told[6]["text"], "Maya", "queued")
    assert asked["text"] == heard + "?"


def test_the_question_spec_takes_voice() -> None:
    assert QuestionsSpec().voice is True and QuestionsSpec(voice=False).voice is False
    with pytest.raises(ValueError):
        QuestionsSpec(voice="sometimes")  # type: ignore[arg-type]
