"""End to end in headless Chromium: a question typed into the player is read out in the show.

The real server and models: a viewer opens /watch, types a question into "Ask the hosts"
once the hosts are talking, and its text then appears in that viewer's captions (a host
reads it out); the page shows where the question stands, and the episode still finishes
with every line played to the viewer. No console errors are allowed (bar the favicon).
"""
from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

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


def test_a_question_typed_in_the_page_is_heard(browser, base_url: str, client: httpx.Client, test_output) -> None:
    page = browser.new_page()
    console: list[tuple[str, str, str]] = []
    page.on("console", lambda m: console.append((m.type, m.text, (m.location or {}).get("url", ""))))
    page.on("pageerror", lambda e: console.append(("pageerror", str(e), "")))
    page.goto(f"{base_url}/watch?topic={TOPIC.replace(' ', '+')}&duration_s=30", wait_until="domcontentloaded")
    episode_id = page.evaluate("() => window.STREAMWISE.episode")
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
    errors = [(kind, text, url) for kind, text, url in console
              if kind in ("error", "pageerror") and not url.endswith("/favicon.ico")]
    assert not errors, errors
