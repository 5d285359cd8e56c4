"""End to end in headless Chromium: /dashboard draws live charts while an episode plays.

One 30 s episode with a viewer on /watch (so browsers report TTFF, freezes and A/V
skew) and the dashboard open beside it. The charts must hold data and keep changing,
titles (user data) must stay text, and the page must log no console errors.
"""
from __future__ import annotations

import time

import httpx
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.models, pytest.mark.timeout(120)]

TOPIC = "the <b>sky</b> & the sea"
CHARTS = ("gantt", "buffer", "ttff", "speech", "stages", "workers", "viewers", "cost")

#: Per chart: points in its datasets, and painted (non-transparent) pixels on its canvas.
SAMPLE_JS = """() => {
  const d = window.streamwiseDashboard;
  const out = {seq: d.state.seq, ticks: d.state.ticks, charts: {}, selected: d.state.selected,
               spans: (d.state.spans[d.state.selected] || []).length};
  for (const [name, chart] of Object.entries(d.charts)) {
    const canvas = chart.canvas;
    const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0, hash = 0;
    for (let i = 3; i < px.length; i += 4) if (px[i]) { painted++; hash = (hash * 31 + px[i - 3] + px[i - 2] * 7 + px[i - 1] * 13 + i) % 1000000007; }
    const values = chart.data.datasets.flatMap((ds) => ds.data).filter((v) => v !== null && v !== undefined);
    out.charts[name] = {points: values.length, nonzero: values.filter((v) => v !== 0).length, painted, hash, w: canvas.width, h: canvas.height};
  }
  const s = d.state.snapshot;
  const ep = s && s.episodes.find((e) => e.id === d.state.selected);
  out.generated = ep ? ep.generated_s : null;
  out.buffered = ep ? ep.buffered_s : null;
  out.viewerReports = s ? s.viewers.length : 0;
  out.tiles = Object.fromEntries([...document.querySelectorAll('.tile b')].map((b) => [b.id, b.textContent]));
  return out;
}"""


def _console(page) -> list[tuple[str, str]]:
    log: list[tuple[str, str]] = []
    page.on("console", lambda m: log.append((m.type, m.text)))
    page.on("pageerror", lambda e: log.append(("pageerror", str(e))))
    return log


def _wait(page, js: str, what: str, timeout_ms: int = 30_000) -> None:
    try:
        page.wait_for_function(js, timeout=timeout_ms)
    except Exception as exc:  # noqa: BLE001 - report the dashboard's state with the timeout
        state = page.evaluate(SAMPLE_JS) if page.evaluate("() => !!window.streamwiseDashboard") else None
        pytest.fail(f"{what} within {timeout_ms / 1000:.0f} s ({exc.__class__.__name__}); dashboard: {state}")


def test_dashboard_charts_update_live(browser, base_url: str, client: httpx.Client, test_output) -> None:
    r = client.post("/api/episodes", json={"topic": TOPIC, "duration_s": 30})
    assert r.status_code == 201, r.text
    episode_id = r.json()["id"]
    pages = []
    try:
        watch = browser.new_page()
        pages.append(watch)
        watch_log = _console(watch)
        watch.goto(f"{base_url}/watch/{episode_id}", wait_until="domcontentloaded")

        dash = browser.new_page()
        pages.append(dash)
        dash.set_viewport_size({"width": 1440, "height": 1000})
        log = _console(dash)
        dash.goto(f"{base_url}/dashboard", wait_until="domcontentloaded")
        _wait(dash, "() => (window.streamwiseDashboard?.state.ticks || 0) >= 1", "no snapshot arrived")
        assert dash.evaluate("() => window.streamwiseDashboard.state.selected") == episode_id
        # The live episode's timeline fills in; the viewer reports its startup and freezes.
        _wait(dash, "() => window.streamwiseDashboard.charts.gantt.data.datasets.some((d) => d.data.length >= 3)",
              "the timeline has no spans")
        _wait(dash, "() => window.streamwiseDashboard.state.snapshot.startup.viewer_ttff.length > 0"
                    " && window.streamwiseDashboard.state.snapshot.viewers.length > 0", "no viewer report reached the dashboard")
        _wait(dash, "() => window.streamwiseDashboard.charts.buffer.data.datasets.some((d) => d.data.length >= 3)",
              "the buffer chart has no history")
        first = dash.evaluate(SAMPLE_JS)
        time.sleep(3.0)
        second = dash.evaluate(SAMPLE_JS)

        # Every chart holds data and paints its canvas.
        for name in CHARTS:
            c = second["charts"][name]
            assert c["w"] > 100 and c["h"] > 100, (name, c)
            assert c["points"] > 0, f"{name} has no data: {second}"
            # Zero freezes and zero stalls are data too; every other chart needs a non-zero value.
            assert c["nonzero"] > 0 or name == "viewers", f"{name} holds only zeros: {second}"
            assert c["painted"] > 0.02 * c["w"] * c["h"], f"{name} canvas is nearly empty: {c}"
        # ... and the values move: new ticks, a buffer curve that redraws, more media.
        assert second["seq"] >= first["seq"] + 2, (first["seq"], second["seq"])
        assert second["charts"]["buffer"]["hash"] != first["charts"]["buffer"]["hash"], "the buffer chart did not change"
        assert (second["generated"], second["buffered"], second["spans"]) != (first["generated"], first["buffered"], first["spans"])
        assert second["tiles"]["t-viewers"] == "1"
        assert second["tiles"]["t-ttff"].endswith(" s")
        assert second["tiles"]["t-cost"].startswith("$")

        # Titles are data: the topic's markup shows as text, nothing is injected.
        assert dash.locator("#episodes b, #episodes img, #episode b").count() == 0
        link = dash.locator(f'#episodes a[href="/watch/{episode_id}"]')
        assert link.get_attribute("title") == TOPIC
        dash.evaluate("() => window.scrollTo(0, 0)")
        dash.screenshot(path=str(test_output / "dashboard.png"), full_page=True)

        errors = [e for e in log + watch_log if e[0] in ("error", "pageerror") and "favicon" not in e[1]]
        assert not errors, errors
    finally:
        for page in pages:
            page.close()
        client.delete(f"/api/episodes/{episode_id}")
