"""End to end in headless Chromium: a question typed into the player is read out in the show,
and one spoken into the page's microphone is heard and asked.

The real server and models: a viewer opens /watch, types a question into "Ask the hosts"
once the hosts are talking, and its text then appears in that viewer's captions (a host
reads it out); the page shows where the question stands, and the episode still finishes
with every line played to the viewer. No console errors are allowed (bar the favicon).

By voice, Chromium's fake microphone plays a WAV of the project's Piper voice asking a
question (Chromium's own flags; nothing is mocked in the page or the server): the viewer
holds the talk button while it plays, lets go, and the recognised question is listed with
where it stands, on the page and by the API.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.harness import CHROMIUM_ARGS
from tests.support.speech import MIN_OVERLAP, QUESTIONS, overlap, spoken, write_wav

pytestmark = [pytest.mark.browser, pytest.mark.models, pytest.mark.timeout(240)]

TOPIC = "how owls hunt at night"
QUESTION = "Why do owls have zebra stripes on their feathers"
#: A word of the question the show would not say by itself.
MARKER = "zebra"
TIMEOUT_MS = 30_000


def _wait(page: Any, js: str, what: str, timeout_ms: int = TIMEOUT_MS) -> None:
    try:
        page.wait_for_function(js, timeout=timeout_ms)
    except Exception as exc:  # noqa: BLE001 - report what the page shows with the timeout
        shown = page.evaluate("() => [document.getElementById('state')?.textContent,"
                              " document.getElementById('ask-status')?.textContent,"
                              " document.getElementById('ask-mine')?.textContent,"
                              " document.getElementById('caption')?.textContent]")
        pytest.fail(f"{what} within {timeout_ms / 1000:.0f} s; state, ask status, questions, caption = {shown!r} "
                    f"({exc.__class__.__name__})")


def _watch(browser: Any, base_url: str, duration_s: float) -> tuple[Any, list[tuple[str, str, str]], str]:
    """A new page watching a new episode on ``TOPIC``; its console messages; the episode's id."""
    page = browser.new_page()
    console: list[tuple[str, str, str]] = []
    page.on("console", lambda m: console.append((m.type, m.text, (m.location or {}).get("url", ""))))
    page.on("pageerror", lambda e: console.append(("pageerror", str(e), "")))
    page.goto(f"{base_url}/watch?topic={TOPIC.replace(' ', '+')}&duration_s={duration_s:g}", wait_until="domcontentloaded")
    return page, console, page.evaluate("() => window.STREAMWISE.episode")


def _errors(console: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The page's errors (a missing favicon is none)."""
    return [(kind, text, url) for kind, text, url in console
            if kind in ("error", "pageerror") and not url.endswith("/favicon.ico")]


def test_a_question_typed_in_the_page_is_heard(browser, base_url: str, client: httpx.Client, test_output) -> None:
    page, console, episode_id = _watch(browser, base_url, 30)
    try:
        assert page.locator("#ask-text").get_attribute("maxlength") == "280"
        # Once a host speaks (the data channel is open by then), ask.
        _wait(page, "() => document.getElementById('caption').textContent.includes(': ')", "no caption")
        page.fill("#ask-text", QUESTION)
        page.fill("#ask-name", "Maya")
        asked = time.monotonic()
        page.click("#ask-send")
        _wait(page, "() => document.querySelector('#ask-mine li') !== null", "the page never showed the question")
        assert page.locator("#ask-text").input_value() == "", "the box is cleared once the question is taken"
        _wait(page, f"() => document.getElementById('caption').textContent.toLowerCase().includes({MARKER!r})",
              "the question was never read out in the captions")
        heard_s = time.monotonic() - asked
        print(f"question to its reading in the captions: {heard_s:.2f} s")
        # Captions show a segment at a time; the transcript line holds the whole reading.
        _wait(page, "() => [...document.querySelectorAll('#lines li')].some((li) => "
                    f"li.textContent.includes('Maya from the chat asks') && li.textContent.includes({MARKER!r}))",
              "the reading never reached the transcript")
        _wait(page, "() => /being answered at \\d+:\\d\\d|answered at/.test("
                    "document.getElementById('ask-mine').textContent)", "the page never showed the question on air")
        page.screenshot(path=str(test_output / "ask.png"), full_page=True)

        # The episode goes on and finishes; the viewer hears every line, the question's included.
        _wait(page, "() => document.getElementById('state').textContent === 'ended'", "the episode did not end",
              timeout_ms=120_000)
        transcript = client.get(f"/api/episodes/{episode_id}/transcript").json()
        assert transcript["status"] == "finished"
        assert any(MARKER in line["text"].lower() for line in transcript["lines"]), "the reading is in the transcript"
        assert page.locator("#lines li").count() == len(transcript["lines"])
        questions = client.get(f"/api/episodes/{episode_id}/questions").json()["questions"]
        assert [q["status"] for q in questions] == ["answered"], questions
        assert page.locator("#ask-send").is_disabled(), "questions close with the episode"
    finally:
        page.close()
        client.delete(f"/api/episodes/{episode_id}")
    assert not (errors := _errors(console)), errors


# ---------------------------------------------------------------- asking by voice

SPOKEN = QUESTIONS[0]
#: How long the talk button is held: the WAV's lead silence, the question, and some silence.
HOLD_S = 4.0
#: Long enough that the hosts are not yet wrapping up (which closes questions) when it is asked;
#: the episode is deleted once the question is seen.
VOICE_EPISODE_S = 60


@pytest.fixture(scope="module")
def microphone_browser(playwright_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium whose microphone plays a WAV of ``SPOKEN`` (looped: the silence after
    it is longer than the hold), with the permission granted."""
    pw, executable = playwright_session
    folder = tmp_path_factory.mktemp("voice")
    wav = write_wav(folder / "question.wav", spoken(SPOKEN), lead_s=0.5, trail_s=8.0)
    args = [*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}"]
    context = pw.chromium.launch_persistent_context(str(folder / "profile"), executable_path=executable, args=args,
                                                    headless=True, viewport={"width": 1280, "height": 720})
    try:
        yield context
    finally:
        context.close()


def _ask_by_voice(page: Any) -> None:
    """Hold the talk button while the question plays, then let go."""
    talk = page.locator("#ask-talk")
    talk.scroll_into_view_if_needed()
    box = talk.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    _wait(page, "() => document.getElementById('ask-status').textContent.startsWith('listening')",
          "the page never said it was listening", timeout_ms=10_000)
    assert talk.text_content() == "● Release to send"
    time.sleep(HOLD_S)
    page.mouse.up()


@pytest.mark.browser
def test_a_question_spoken_in_the_page_is_asked(microphone_browser: Any, base_url: str, client: httpx.Client,
                                                 test_output: Path) -> None:
    page, console, episode_id = _watch(microphone_browser, base_url, VOICE_EPISODE_S)
    try:
        _wait(page, "() => document.getElementById('caption').textContent.includes(': ')", "no caption")
        assert page.locator("#ask-talk").is_enabled()
        _ask_by_voice(page)
        _wait(page, "() => document.querySelector('#ask-mine li') !== null", "the page never showed the question")
        status = page.locator("#ask-status").text_content()
        assert status.startswith("Heard “") and "sent" in status, status
        shown = page.locator("#ask-mine li").first
        assert overlap(SPOKEN, shown.locator("q").text_content()) >= MIN_OVERLAP, shown.text_content()
        assert page.locator("#ask-talk").text_content() == "Hold to talk", "ready for another"
        page.screenshot(path=str(test_output / "ask-by-voice.png"), full_page=True)
        (asked,) = client.get(f"/api/episodes/{episode_id}/questions").json()["questions"]
        assert asked["text"] == shown.locator("q").text_content()
        assert asked["status"] in ("queued", "answering", "answered"), asked
        assert shown.get_attribute("data-status") in ("queued", "answering", "answered")
        standing = {"queued": "queued: the hosts will read it out soon", "answering": "being answered",
                    "answered": "answered"}[shown.get_attribute("data-status")]
        assert standing in shown.text_content()
    finally:
        page.close()
        client.delete(f"/api/episodes/{episode_id}")
    assert not (errors := _errors(console)), errors


@pytest.mark.browser
def test_without_a_microphone_the_talk_button_says_why_and_typing_still_works(browser: Any, base_url: str,
                                                                            client: httpx.Client) -> None:
    """The session's Chromium has no microphone permission (nothing grants it): pressing the
    talk button says so on the button and in the status, and a typed question is still taken."""
    page = browser.new_page()
    page.goto(f"{base_url}/watch?topic={TOPIC.replace(' ', '+')}&duration_s={VOICE_EPISODE_S}", wait_until="domcontentloaded")
    episode_id = page.evaluate("() => window.STREAMWISE.episode")
    try:
        _wait(page, "() => document.getElementById('caption').textContent.includes(': ')", "no caption")
        talk = page.locator("#ask-talk")
        talk.scroll_into_view_if_needed()
        talk.dispatch_event("pointerdown", {"button": 0, "pointerId": 1})
        talk.dispatch_event("pointerup", {"button": 0, "pointerId": 1})
        _wait(page, "() => document.getElementById('ask-talk').disabled", "the talk button never gave up",
              timeout_ms=10_000)
        assert talk.text_content() in ("Microphone blocked", "No microphone"), talk.text_content()
        assert "type your question" in talk.get_attribute("title")
        assert "type your question" in page.locator("#ask-status").text_content()
        page.fill("#ask-text", QUESTION)
        page.click("#ask-send")
        _wait(page, "() => document.querySelector('#ask-mine li') !== null", "the typed question was not taken")
    finally:
        page.close()
        client.delete(f"/api/episodes/{episode_id}")
