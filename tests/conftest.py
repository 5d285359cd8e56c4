"""Shared fixtures: the real server as a subprocess, an HTTP client, and headless Chromium.

``live_server`` starts ``python -m server.cli serve`` once per test session on a free
port with a temporary media directory (real models, nothing mocked) and stops it at
the end. ``browser`` launches Debian's Chromium through Playwright; Playwright's own
browser downloads are never used.
"""
from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO_ROOT,
    ServerFailed,
    ServerProcess,
    start_server,
)

TEST_OUTPUT = REPO_ROOT / "test-output"
READY_TIMEOUT_S = 120.0
LiveServer = ServerProcess
#: Fixtures that need a marker on every test using them (directly or through another fixture),
#: so that `-m "not models"` and `-m "not browser"` really leave them out.
FIXTURE_MARKERS = {"live_server": "models", "browser": "browser", "playwright_session": "browser"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = []
    for item in items:
        have = {mark.name for mark in item.iter_markers()}
        needed = {FIXTURE_MARKERS[f] for f in getattr(item, "fixturenames", ()) if f in FIXTURE_MARKERS}
        if needed - have:
            unmarked.append(f"{item.nodeid}: add {', '.join(sorted(needed - have))}")
    if unmarked:
        raise pytest.UsageError("tests use the real server or Chromium without the marker that says so:\n"
                                + "\n".join(unmarked))


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The real server (``streamwise serve``), ready to answer; yields it (``str()`` is the base URL)."""
    server = start_server(tmp_path_factory.mktemp("live-server"))
    try:
        try:
            server.wait_ready(READY_TIMEOUT_S)
        except ServerFailed as exc:
            pytest.fail(str(exc))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def base_url(live_server: LiveServer) -> str:
    return live_server.url


@pytest.fixture(scope="session")
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=30.0) as c:
        yield c


@pytest.fixture(scope="session")
def test_output() -> Path:
    """``test-output/`` under the repository (gitignored): screenshots and other artefacts."""
    TEST_OUTPUT.mkdir(exist_ok=True)
    return TEST_OUTPUT


def _browser_missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so browser tests must run: install Debian's chromium, e.g. `make browser`)")
    pytest.skip(f"{reason}; install Debian's chromium (`make browser`) to run the browser tests")


@pytest.fixture(scope="session")
def playwright_session():
    """Playwright's sync API, started once per session (it cannot run twice at once); yields
    ``(playwright, chromium_executable)`` for tests that launch a Chromium of their own."""
    executable = shutil.which(CHROMIUM)
    if executable is None:
        _browser_missing(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _browser_missing("the Python playwright package is not installed")
    with sync_playwright() as pw:
        yield pw, executable


@pytest.fixture(scope="session")
def browser(playwright_session, tmp_path_factory: pytest.TempPathFactory):
    """Headless Debian Chromium via Playwright (sync API), in a fresh profile per session.

    Yields a ``BrowserContext``: open pages with ``browser.new_page()``.
    """
    pw, executable = playwright_session
    profile = tmp_path_factory.mktemp("chromium-profile")
    context = pw.chromium.launch_persistent_context(
        str(profile), executable_path=executable, args=CHROMIUM_ARGS, headless=True,
        viewport={"width": 1280, "height": 720},
    )
    try:
        yield context
    finally:
        context.close()


def run_async(coro):
    """``asyncio.run`` on a thread of its own.

    Playwright's sync API keeps an event loop running on the main thread for the
    whole session once a browser test has run, and ``asyncio.run`` refuses to
    start inside a running loop.
    """
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
