"""End to end in headless Chromium: /watch plays an episode over WebRTC while it is generated.

One 15 s episode, two viewers. The tests run in file order and share the pages:
(a) the first viewer plays (frames, audio, captions, transcript, stats reported back),
(b) a second viewer plays the same episode from its own start, (c) closing a page frees
its peer connection on the server. No console errors are allowed (bar the favicon).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.models, pytest.mark.timeout(120)]

TOPIC = "why the sky is blue"
PLAY_TIMEOUT_MS = 20_000


@dataclass
class Viewer:
    page: Any
    console: list[tuple[str, str, str]] = field(default_factory=list)
    #: time.monotonic() before the page navigated: its TTFF cannot be longer than the time since.
    opened: float = field(default_factory=time.monotonic)

    def metrics(self) -> dict[str, Any]:
        return self.page.evaluate("() => JSON.parse(JSON.stringify(window.streamwiseMetrics || {}))")

    def wait(self, js: str, what: str, timeout_ms: int = PLAY_TIMEOUT_MS) -> None:
        try:
            self.page.wait_for_function(js, timeout=timeout_ms)
        except Exception as exc:  # noqa: BLE001 - report the page state with the timeout
            state = self.page.evaluate("() => document.getElementById('state')?.textContent")
            pytest.fail(f"{what} within {timeout_ms / 1000:.0f} s; state={state!r} metrics={self.metrics()} ({exc.__class__.__name__})")


def _open(browser, url: str) -> Viewer:
    page = browser.new_page()
    viewer = Viewer(page)
    page.on("console", lambda m: viewer.console.append((m.type, m.text, (m.location or {}).get("url", ""))))
    page.on("pageerror", lambda e: viewer.console.append(("pageerror", str(e), "")))
    page.goto(url, wait_until="domcontentloaded")
    return viewer


def _poll(fetch: Callable[[], Any], ok: Callable[[Any], bool], timeout: float, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    value = fetch()
    while not ok(value) and time.monotonic() < deadline:
        time.sleep(interval)
        value = fetch()
    return value


def _assert_playing(viewer: Viewer) -> dict[str, Any]:
    viewer.wait("() => (window.streamwiseMetrics?.framesDecoded || 0) > 0", "no video frame decoded")
    first = viewer.metrics()["framesDecoded"]
    time.sleep(1.0)
    viewer.page.wait_for_function(f"() => window.streamwiseMetrics.framesDecoded > {first}", timeout=5_000)
    m = viewer.metrics()
    assert m["framesDecoded"] > first, "frames must keep advancing"
    assert 0 < m["ttffSeconds"] < time.monotonic() - viewer.opened, m
    viewer.wait("() => (window.streamwiseMetrics?.totalSamplesReceived || 0) > 0"
                " || window.streamwiseMetrics?.firstAudioSeconds != null", "no audio received")
    return viewer.metrics()


@pytest.fixture(scope="module")
def session(browser, client: httpx.Client):
    state: dict[str, Any] = {"viewers": []}
    yield state
    for viewer in state["viewers"]:
        if not viewer.page.is_closed():
            viewer.page.close()
    if "episode" in state:
        client.delete(f"/api/episodes/{state['episode']}")


def _episode(client: httpx.Client, episode_id: str) -> dict[str, Any]:
    r = client.get(f"/api/episodes/{episode_id}")
    assert r.status_code == 200, r.text
    return r.json()


def test_a_watch_plays_live(browser, base_url: str, client: httpx.Client, session, test_output) -> None:
    viewer = _open(browser, f"{base_url}/watch?topic={TOPIC.replace(' ', '+')}&duration_s=15")
    session["viewers"].append(viewer)
    page = viewer.page
    episode_id = page.evaluate("() => window.STREAMWISE.episode")
    session["episode"] = episode_id
    assert _episode(client, episode_id)["topic"] == TOPIC, "the page created the episode it asked for"
    page.wait_for_url(f"{base_url}/watch/{episode_id}", timeout=5_000)  # the player rewrites /watch?topic=...
    assert page.locator("#title").inner_text() == TOPIC

    m = _assert_playing(viewer)
    hosts = client.get(f"/api/episodes/{episode_id}/transcript").json()["hosts"]
    assert len(hosts) == 2

    # A caption naming the host who speaks, then the transcript's first line.
    host_js = " || ".join(f"t.startsWith({h + ': '!r})" for h in hosts)
    viewer.wait(f"() => {{ const t = document.getElementById('caption').textContent; return {host_js}; }}",
                "no caption with a host name")
    caption = page.locator("#caption").inner_text()
    assert caption.split(":")[0] in hosts and len(caption) > len("Alex: ")
    viewer.wait("() => document.querySelectorAll('#lines li').length > 0", "no transcript line")
    first_line = page.locator("#lines li").first.inner_text()
    assert first_line.split(":")[0] in hosts
    page.screenshot(path=str(test_output / "watch.png"))

    # The page reports its measurements to the server (every 2 s).
    viewer_id = m["viewer"]
    assert viewer_id

    def reported(ep: dict[str, Any]) -> bool:
        return any(s.get("viewer") == viewer_id and s.get("framesDecoded", 0) > 0 for s in ep["viewer_stats"])

    episode = _poll(lambda: _episode(client, episode_id), reported, timeout=10)
    assert reported(episode), episode["viewer_stats"]
    report = next(s for s in episode["viewer_stats"] if s.get("viewer") == viewer_id)
    assert report["ttffSeconds"] == m["ttffSeconds"] and report.get("totalSamplesReceived", 0) > 0
    assert episode["viewers"] == 1
    assert episode["stalls"]["viewer_reports"] >= 1
    assert page.locator("#state").inner_text() in ("playing", "ended")


def test_a_first_speech_is_measured(session, test_output, client: httpx.Client) -> None:
    viewer: Viewer = session["viewers"][0]
    # A caption has been shown, so a host has spoken: allow the detector a moment.
    m = _poll(viewer.metrics, lambda m: m.get("firstSpeechSeconds") is not None, timeout=3)
    (test_output / "watch-metrics.json").write_text(json.dumps(m, indent=2))
    assert m.get("firstSpeechSeconds") is not None, f"first speech never detected: {m}"
    # Speech cannot be heard before the server had it: the detector fires on the
    # words, not on the silent filler packets that arrive first.
    server_first_speech = client.get(f"/api/episodes/{session['episode']}").json()["startup"]["first_speech_s"]
    assert m["firstAudioSeconds"] is not None and server_first_speech is not None
    assert server_first_speech <= m["firstSpeechSeconds"] <= m["firstAudioSeconds"] + 15, (server_first_speech, m)


def test_b_second_viewer_plays_from_its_own_start(browser, base_url: str, client: httpx.Client, session) -> None:
    episode_id = session["episode"]
    first: Viewer = session["viewers"][0]
    ahead = first.metrics().get("playedSeconds", 0)
    viewer = _open(browser, f"{base_url}/watch/{episode_id}")
    session["viewers"].append(viewer)
    assert viewer.page.evaluate("() => window.STREAMWISE.episode") == episode_id
    m = _assert_playing(viewer)
    # Its own playhead: it starts at the beginning, not where the first viewer is.
    assert m.get("playedSeconds", 0) < first.metrics().get("playedSeconds", 0)
    assert ahead > 1.0, "the first viewer should already be well into the episode"
    viewer.wait("() => document.querySelectorAll('#lines li').length > 0", "no transcript line for the second viewer")
    transcript = client.get(f"/api/episodes/{episode_id}/transcript").json()
    li = viewer.page.locator("#lines li").first
    assert li.get_attribute("data-line") == str(transcript["lines"][0]["index"])
    assert li.inner_text().startswith(f"{transcript['lines'][0]['speaker']}: ")
    assert transcript["segments"][0]["text"] in li.inner_text()
    episode = _poll(lambda: _episode(client, episode_id), lambda e: e["viewers"] == 2, timeout=5)
    assert episode["viewers"] == 2


def test_c_closing_a_page_frees_its_viewer(session, client: httpx.Client) -> None:
    episode_id = session["episode"]
    first, second = session["viewers"]
    second.page.close()
    episode = _poll(lambda: _episode(client, episode_id), lambda e: e["viewers"] == 1, timeout=10)
    assert episode["viewers"] == 1, "closing the second page must free its peer connection"

    # The first viewer plays to the end: every line of the transcript arrives.
    first.wait("() => document.getElementById('state').textContent === 'ended'", "the episode did not end", timeout_ms=40_000)
    transcript = client.get(f"/api/episodes/{episode_id}/transcript").json()
    assert transcript["status"] == "finished"
    assert first.page.locator("#lines li").count() == len(transcript["lines"])
    first.page.close()
    episode = _poll(lambda: _episode(client, episode_id), lambda e: e["viewers"] == 0, timeout=10)
    assert episode["viewers"] == 0, "closing the last page must free its peer connection"


def test_e_viewers_were_sent_the_frames_encoded_once(client: httpx.Client) -> None:
    """Both browsers played the episode's shared VP8 and Opus frames, not encoders of their own."""
    sent = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("streamwise_webrtc_frames_sent_total{"):
            labels, value = line.rsplit(" ", 1)
            sent[labels.split('track="')[1].split('"')[0], labels.split('encoder="')[1].split('"')[0]] = float(value)
    print("frames sent:", sent)
    assert sent.get(("video", "shared"), 0) > 10 * max(1.0, sent.get(("video", "own"), 0)), sent
    # A viewer at the live edge may reach a packet the encoding thread has not written yet
    # and encode those 20 ms itself: rare, never the rule.
    assert sent.get(("audio", "shared"), 0) > 100 * max(1.0, sent.get(("audio", "own"), 0)), sent


def test_d_no_console_errors(session) -> None:
    errors = [
        (kind, text, url) for viewer in session["viewers"] for kind, text, url in viewer.console
        if kind in ("error", "pageerror") and not url.endswith("/favicon.ico")
    ]
    assert not errors, errors
