"""GET /metrics and the dashboard stream: derived from spans and live state.

Unit tests drive ``Observability`` with real Episode, Timeline and Span objects (no
models); the live tests check that the families exist on the real server and move
when an episode plays, that the dashboard stream ticks, and that an open stream does
not hold up shutdown.
"""
from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections import Counter, deque
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from conftest import run_async
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pipelines.config import ConfigError
from pipelines.playout.buffer import PlayheadStats
from pipelines.segments import EpisodeRequest
from pipelines.spans import Span
from server.episodes.episode import Episode
from server.observability.dashboard import DashboardHub, Subscriber
from server.observability.metrics import (
    LATENCY_BUCKETS,
    Observability,
    percentile,
    quality_changes,
)
from server.observability.pricing import Pricing, load_pricing
from server.observability.prometheus import make_registry

REPO = Path(__file__).resolve().parents[1]
RATE = 48_000


# ------------------------------------------------------------------ fakes around real objects
class FakeState:
    def __init__(self) -> None:
        self.ready = True
        self.manager = SimpleNamespace(episodes={})
        self.gateway = SimpleNamespace(viewers={}, frames_sent=Counter(), recently_closed=deque())

    def episode(self, episode_id: str, status: str = "generating", **fields) -> Episode:
        ep = Episode(id=episode_id, request=EpisodeRequest(topic=f"topic {episode_id}", duration_s=30), directory=Path("/nonexistent"))
        ep.status = status
        for k, v in fields.items():
            setattr(ep, k, v)
        self.manager.episodes[episode_id] = ep
        return ep

    def viewer(self, viewer_id: str, episode_id: str, position_s: float = 0.0, stalls: int = 0, stalled_s: float = 0.0):
        v = SimpleNamespace(id=viewer_id, episode_id=episode_id,
                            playhead=SimpleNamespace(position=int(position_s * RATE),
                                                     stats=PlayheadStats(stalls=stalls, stalled_samples=int(stalled_s * RATE))))
        self.gateway.viewers[viewer_id] = v
        return v


def span(stage: str, segment: int | None, tier: str | None, queued: float, started: float, finished: float, worker: str | None = None) -> Span:
    return Span(stage=stage, segment=segment, tier=tier, worker=worker or f"sw-{stage}_0", queued=queued, started=started, finished=finished)


def pricing(**charge) -> Pricing:
    return Pricing.model_validate({"cpu": {"core_hour": 0.036}, "gpu": {"H100": {"spot": 4.03, "reserved": 5.39}},
                                   "charge": {"default": "cpu", "stages": charge}})


def scrape(obs: Observability) -> dict[str, float]:
    """Every sample as ``name{k="v",...}`` -> value (labels sorted), via the real text format."""
    text = generate_latest(make_registry(obs)).decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


# ------------------------------------------------------------------ unit tests
def test_stage_latency_and_queue_wait_histograms_come_from_spans() -> None:
    state = FakeState()
    ep = state.episode("a")
    ep.timeline.add(span("speech", 0, None, 0.0, 0.1, 0.4))   # run 0.3, wait 0.1
    ep.timeline.add(span("video", 0, "240p", 0.4, 0.4, 1.9))  # run 1.5, wait 0
    ep.timeline.add(span("video", 1, "240p", 1.0, 1.9, 2.4))  # run 0.5, wait 0.9
    obs = Observability(state, pricing())
    m = scrape(obs)
    assert m['streamwise_stage_latency_seconds_count{stage="video",tier="240p"}'] == 2
    assert m['streamwise_stage_latency_seconds_sum{stage="video",tier="240p"}'] == pytest.approx(2.0)
    assert m['streamwise_stage_latency_seconds_bucket{le="1.0",stage="video",tier="240p"}'] == 1
    assert m['streamwise_stage_latency_seconds_bucket{le="2.0",stage="video",tier="240p"}'] == 2
    assert m['streamwise_stage_latency_seconds_count{stage="speech",tier="none"}'] == 1
    assert m['streamwise_queue_wait_seconds_sum{stage="video",tier="240p"}'] == pytest.approx(0.9)
    assert m['streamwise_queue_wait_seconds_bucket{le="0.5",stage="video",tier="240p"}'] == 1
    assert m['streamwise_worker_busy_seconds_total{stage="video",worker="sw-video_0"}'] == pytest.approx(2.0)
    # Spans are read once: a second scrape adds only what is new.
    ep.timeline.add(span("video", 2, "240p", 2.4, 2.4, 2.6))
    m = scrape(obs)
    assert m['streamwise_stage_latency_seconds_count{stage="video",tier="240p"}'] == 3
    assert len(LATENCY_BUCKETS) + 1 == sum(1 for k in m if k.startswith('streamwise_stage_latency_seconds_bucket') and 'tier="240p"' in k)


def test_startup_histograms_server_and_viewer() -> None:
    state = FakeState()
    ep = state.episode("a", first_content_s=0.7, first_speech_s=1.2)
    ep.viewer_stats = [{"viewer": "v1", "ttffSeconds": 1.1, "firstSpeechSeconds": 2.6}, {"ttffSeconds": 9.0}]  # anonymous: ignored
    obs = Observability(state, pricing())
    m = scrape(obs)
    assert m['streamwise_time_to_first_frame_seconds_count{source="server"}'] == 1
    assert m['streamwise_time_to_first_frame_seconds_sum{source="server"}'] == pytest.approx(0.7)
    assert m['streamwise_time_to_first_speech_seconds_sum{source="server"}'] == pytest.approx(1.2)
    assert m['streamwise_time_to_first_frame_seconds_count{source="viewer"}'] == 1
    assert m['streamwise_time_to_first_speech_seconds_bucket{le="3.0",source="viewer"}'] == 1
    assert m['streamwise_time_to_first_speech_seconds_bucket{le="2.0",source="viewer"}'] == 0
    # The same viewer reporting again is not a second observation.
    ep.viewer_stats = [{"viewer": "v1", "ttffSeconds": 1.1, "firstSpeechSeconds": 2.6, "framesDecoded": 90}]
    assert scrape(obs)['streamwise_time_to_first_frame_seconds_count{source="viewer"}'] == 1


def test_quality_changes_count_tier_switches_between_consecutive_segments() -> None:
    assert quality_changes({0: "240p", 1: "240p", 2: "360p", 3: "360p", 4: "240p"}) == 2
    assert quality_changes({}) == 0
    state = FakeState()
    ep = state.episode("a")
    # Out of order (two video workers): segment 1 arrives last.
    for seg, tier in ((0, "240p"), (2, "360p"), (3, "360p")):
        ep.timeline.add(span("video", seg, tier, 0, 0, 0.1))
    ep.timeline.add(span("video", None, None, 0, 0, 0.1))  # a title card has no tier: ignored
    obs = Observability(state, pricing())
    assert scrape(obs)["streamwise_quality_changes_total"] == 1
    ep.timeline.add(span("video", 1, "240p", 0, 0, 0.1))
    assert scrape(obs)["streamwise_quality_changes_total"] == 1  # 240p 240p 360p 360p


def test_counters_never_go_down_when_episodes_and_viewers_leave() -> None:
    state = FakeState()
    ep = state.episode("a", status="failed")
    ep.timeline.add(span("script", None, None, 0, 0, 2.0))
    ep.buffer.end = 30 * RATE
    ep.viewer_stats = [{"viewer": "v1", "freezeCount": 2, "totalFreezesDuration": 0.5}]
    state.viewer("v1", "a", position_s=10, stalls=3, stalled_s=1.5)
    obs = Observability(state, pricing())
    m = scrape(obs)
    assert m['streamwise_stalls_total{source="viewer"}'] == 2
    assert m['streamwise_stalls_total{source="server"}'] == 3
    assert m['streamwise_stalled_seconds_total{source="server"}'] == pytest.approx(1.5)
    assert m["streamwise_episode_errors_total"] == 1
    assert m["streamwise_episodes_started_total"] == 1
    assert m["streamwise_generated_media_seconds_total"] == pytest.approx(30)
    # Reports are cumulative per viewer: the newer one adds only its increase.
    ep.viewer_stats = [{"viewer": "v1", "freezeCount": 3, "totalFreezesDuration": 0.75}]
    state.gateway.viewers["v1"].playhead.stats.stalls = 4
    m = scrape(obs)
    assert m['streamwise_stalls_total{source="viewer"}'] == 3
    assert m['streamwise_stalled_seconds_total{source="viewer"}'] == pytest.approx(0.75)
    assert m['streamwise_stalls_total{source="server"}'] == 4
    # The viewer leaves and the episode is deleted: nothing goes down.
    del state.gateway.viewers["v1"]
    del state.manager.episodes["a"]
    after = scrape(obs)
    for key in ('streamwise_stalls_total{source="viewer"}', 'streamwise_stalls_total{source="server"}',
                "streamwise_episode_errors_total", "streamwise_generated_media_seconds_total",
                'streamwise_worker_busy_seconds_total{stage="script",worker="sw-script_0"}',
                'streamwise_stage_latency_seconds_count{stage="script",tier="none"}'):
        assert after[key] == m[key], key
    assert after['streamwise_admission_refusals_total{reason="quota"}'] == 0


def test_a_viewer_that_leaves_between_scrapes_still_counts_its_stalls() -> None:
    state = FakeState()
    state.episode("a")
    state.viewer("v1", "a", position_s=5)
    obs = Observability(state, pricing())
    assert scrape(obs)['streamwise_stalls_total{source="server"}'] == 0
    viewer = state.gateway.viewers.pop("v1")  # it stalls twice, then leaves before the next scrape
    viewer.playhead.stats.stalls, viewer.playhead.stats.stalled_samples = 2, RATE
    state.gateway.recently_closed.append((viewer.id, viewer.playhead.stats))
    m = scrape(obs)
    assert m['streamwise_stalls_total{source="server"}'] == 2
    assert m['streamwise_stalled_seconds_total{source="server"}'] == pytest.approx(1.0)
    assert scrape(obs)['streamwise_stalls_total{source="server"}'] == 2, "counted once"


def test_gauges_buffer_viewers_active_and_utilisation() -> None:
    state = FakeState()
    live = state.episode("live")
    live.buffer.end = 20 * RATE
    state.viewer("v1", "live", position_s=5)
    state.viewer("v2", "live", position_s=12)  # the furthest along: 8 s ahead of it
    alone = state.episode("alone")
    alone.buffer.end = 3 * RATE
    state.episode("done", status="finished").buffer.end = 40 * RATE
    # 6 s of video work inside the last 60 s; the span ended just now.
    live.timeline.t0 = time.monotonic() - 10
    live.timeline.add(span("video", 0, "360p", 3.0, 4.0, 10.0))
    obs = Observability(state, pricing())
    m = scrape(obs)
    assert m['streamwise_episode_buffered_seconds{episode="live"}'] == pytest.approx(8)
    assert m['streamwise_episode_buffered_seconds{episode="alone"}'] == pytest.approx(3)
    assert 'streamwise_episode_buffered_seconds{episode="done"}' not in m  # not live
    assert m['streamwise_episode_generated_seconds{episode="live"}'] == pytest.approx(20)
    assert m["streamwise_active_episodes"] == 2
    assert m['streamwise_episodes{status="finished"}'] == 1
    assert m["streamwise_viewers"] == 2
    assert m['streamwise_worker_utilisation_ratio{stage="video",worker="sw-video_0"}'] == pytest.approx(0.1, abs=0.01)


def test_cost_is_busy_seconds_times_the_configured_price() -> None:
    state = FakeState()
    ep = state.episode("a")
    ep.timeline.add(span("speech", 0, None, 0, 0, 100.0))
    ep.timeline.add(span("video", 0, "360p", 0, 100.0, 136.0))
    ep.buffer.end = 120 * RATE  # two minutes of media
    obs = Observability(state, pricing(video="H100:spot"))
    m = scrape(obs)
    speech = 100 * 0.036 / 3600
    video = 36 * 4.03 / 3600
    assert m['streamwise_estimated_cost_dollars_total{device="cpu",stage="speech"}'] == pytest.approx(speech)
    assert m['streamwise_estimated_cost_dollars_total{device="H100:spot",stage="video"}'] == pytest.approx(video)
    assert m["streamwise_cost_per_episode_minute_dollars"] == pytest.approx((speech + video) / 2)


def test_restored_episodes_are_a_baseline_and_a_rerun_counts_anew() -> None:
    state = FakeState()
    old = state.episode("a", status="failed", first_content_s=0.8, restored=True)
    old.timeline.add(span("video", 0, "240p", 0, 0, 2.0))
    old.timeline.add(span("video", 1, "360p", 0, 2.0, 3.0))
    old.viewer_stats = [{"viewer": "v1", "freezeCount": 5, "ttffSeconds": 1.0}]
    obs = Observability(state, pricing())
    m = scrape(obs)
    # What happened before the restart is not counted again by this process ...
    assert m["streamwise_episodes_started_total"] == 0
    assert m["streamwise_episode_errors_total"] == 0
    assert m["streamwise_quality_changes_total"] == 0
    assert m['streamwise_stalls_total{source="viewer"}'] == 0
    assert m['streamwise_time_to_first_frame_seconds_count{source="server"}'] == 0
    assert not any(k.startswith("streamwise_stage_latency_seconds_count") for k in m)
    # ... but the dashboard still knows its cost and tier changes.
    track = obs.episode_track("a")
    assert track.cost == pytest.approx(3.0 * 0.036 / 3600) and track.quality_changes == 1
    # A new viewer of its replay counts; so does the old viewer's increase.
    old.viewer_stats = [{"viewer": "v1", "freezeCount": 6}, {"viewer": "v2", "freezeCount": 1, "ttffSeconds": 0.4}]
    m = scrape(obs)
    assert m['streamwise_stalls_total{source="viewer"}'] == 2
    assert m['streamwise_time_to_first_frame_seconds_count{source="viewer"}'] == 1
    # Re-run under the same id: a new Episode whose spans count from its first.
    new = state.episode("a")
    new.timeline.add(span("video", 0, "240p", 0, 0, 0.5))
    m = scrape(obs)
    assert m["streamwise_episodes_started_total"] == 1
    assert m['streamwise_stage_latency_seconds_count{stage="video",tier="240p"}'] == 1
    assert obs.episode_track("a").episode is new


def test_metrics_never_carry_a_whole_episode_id() -> None:
    state = FakeState()
    state.episode("abcdefghijklmnop").buffer.end = RATE
    m = scrape(Observability(state, pricing()))
    assert m['streamwise_episode_buffered_seconds{episode="abcdefgh"}'] == 1
    assert not any("abcdefghijklmnop" in k for k in m)


def test_the_dashboard_stream_needs_a_key_when_keys_are_configured() -> None:
    from fastapi.testclient import TestClient

    from server.access import AccessPolicy, parse_keys
    from server.app import create_app
    from server.state import Settings

    key = "k" * 24
    client = TestClient(create_app(Settings(access=AccessPolicy(keys=parse_keys(f"ops:admin:{key}")))))  # no lifespan: no models
    assert client.get("/api/dashboard/stream").status_code == 401
    assert client.get("/api/dashboard/stream", params={"key": "x" * 24}).status_code == 403
    assert client.get("/dashboard").status_code == 200  # the page itself holds no data
    assert client.get("/metrics").status_code == 401  # Prometheus sends a key (monitoring/prometheus.yml)


def test_refused_creations_are_counted_from_their_responses() -> None:
    from fastapi import FastAPI, HTTPException
    from fastapi.testclient import TestClient

    from server.observability.middleware import RefusalCounter
    from server.observability.prometheus import make_registry
    from server.routes import operations

    app = FastAPI()
    answers = iter([429, 507, 201, 429, 400])

    @app.post("/api/episodes")
    async def create() -> dict:
        status = next(answers)
        if status >= 400:
            raise HTTPException(status, "no")
        return {}

    @app.post("/api/episodes/{episode_id}/rerun")
    async def rerun(episode_id: str) -> dict:
        raise HTTPException(507, "full")

    @app.get("/api/episodes")
    async def listing() -> dict:
        raise HTTPException(429, "not a creation")

    obs = Observability(FakeState(), pricing())
    app.add_middleware(RefusalCounter, obs=obs)
    app.state.observability, app.state.metrics_registry = obs, make_registry(obs)
    app.include_router(operations.router)
    client = TestClient(app)
    for _ in range(5):
        client.post("/api/episodes")
    client.post("/api/episodes/x/rerun")
    client.get("/api/episodes")
    m = scrape(obs)
    assert m['streamwise_admission_refusals_total{reason="quota"}'] == 2
    assert m['streamwise_admission_refusals_total{reason="disk"}'] == 2
    assert client.get("/metrics").status_code == 200


def test_openapi_documents_the_ops_routes() -> None:
    from fastapi.testclient import TestClient

    from server.app import create_app

    r = TestClient(create_app()).get("/openapi.json")  # no lifespan: no models
    assert r.status_code == 200, r.text
    paths = set(r.json()["paths"])
    assert "/metrics" in paths
    assert "/api/dashboard/stream" not in paths  # endless: kept away from generic clients and fuzzers


def test_every_family_is_prefixed_and_documented() -> None:
    state = FakeState()
    state.episode("a").timeline.add(span("video", 0, "240p", 0, 0, 1))
    text = generate_latest(make_registry(Observability(state, pricing()))).decode()
    families = [f for f in text_string_to_metric_families(text) if not f.name.startswith("process_")]
    assert sorted(f.name for f in families) == [
        "streamwise_active_episodes", "streamwise_admission_refusals", "streamwise_cost_per_episode_minute_dollars",
        "streamwise_episode_buffered_seconds", "streamwise_episode_errors", "streamwise_episode_generated_seconds",
        "streamwise_episodes", "streamwise_episodes_started", "streamwise_estimated_cost_dollars",
        "streamwise_event_loop_lag_seconds", "streamwise_generated_media_seconds", "streamwise_quality_changes", "streamwise_queue_wait_seconds",
        "streamwise_stage_latency_seconds", "streamwise_stalled_seconds", "streamwise_stalls",
        "streamwise_time_to_first_frame_seconds", "streamwise_time_to_first_speech_seconds", "streamwise_viewers",
        "streamwise_webrtc_frames_sent", "streamwise_worker_busy_seconds", "streamwise_worker_utilisation_ratio",
    ]
    for fam in families:
        assert fam.name.startswith("streamwise_"), fam.name
        assert fam.documentation, fam.name


def test_event_loop_lag_is_measured_from_inside_the_loop() -> None:
    """A callback that holds the loop shows as one late wake-up of the ticker."""
    obs = Observability(FakeState(), pricing())

    async def scenario() -> None:
        ticker = asyncio.create_task(obs.loop_lag.run())
        await asyncio.sleep(0.1)
        time.sleep(0.3)  # noqa: ASYNC251 - holds the event loop, as a slow callback would
        await asyncio.sleep(0.1)
        ticker.cancel()

    run_async(scenario())
    m = scrape(obs)
    assert m["streamwise_event_loop_lag_seconds_count"] >= 5
    assert m['streamwise_event_loop_lag_seconds_bucket{le="0.2"}'] < m["streamwise_event_loop_lag_seconds_count"]
    assert max(obs.loop_lag.hist.recent) >= 0.25


def test_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([3, 1, 2], 50) == 2
    assert percentile([0, 10], 95) == pytest.approx(9.5)


# ------------------------------------------------------------------ pricing
def test_default_pricing_charges_gpus_at_the_planners_prices() -> None:
    """The shipped file lists no GPU prices: the server charges what the fleet planner plans with."""
    from fleet.paper_profiles import RESERVED_PRICE, SPOT_PRICE

    p = load_pricing(REPO / "configs" / "pricing.yaml")
    assert {k.lower(): (v.spot, v.reserved) for k, v in p.gpu.items()} == {
        k: (SPOT_PRICE[k], RESERVED_PRICE[k]) for k in SPOT_PRICE}
    assert p.cpu.core_hour > 0
    assert p.device_for("video") == "cpu"
    assert p.hourly("H200:reserved") == RESERVED_PRICE["h200"]


def test_gpu_prices_in_the_file_replace_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "pricing.yaml"
    path.write_text("cpu: {core_hour: 0.05}\ngpu:\n  L4: {spot: 0.5, reserved: 0.8}\n")
    p = load_pricing(path)
    assert set(p.gpu) == {"L4"}
    assert p.hourly("L4:spot") == 0.5
    with pytest.raises(ConfigError, match="unknown device 'H100:spot'"):
        load_pricing(_write(tmp_path / "bad.yaml", "cpu: {core_hour: 0.05}\ngpu: {L4: {spot: 1, reserved: 1}}\n"
                                                    "charge: {stages: {video: 'H100:spot'}}\n"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, expected", [
    ("cpu: {core_hour: -1}\n", "cpu.core_hour: Input should be greater than or equal to 0"),
    ("cpu: {core_hour: .nan}\n", "cpu.core_hour"),
    ("gpu: {H100: {spot: 1}}\n", "cpu: required field is missing"),
    ("cpu: {core_hour: 1}\ngpu: {H100: {spot: 1}}\n", "gpu.H100.reserved: required field is missing"),
    ("cpu: {core_hour: 1}\ncharge: {default: 'H300:spot'}\n", "charge.default: unknown device 'H300:spot'; allowed: cpu"),
    ("cpu: {core_hour: 1}\ngpu: {A100: {spot: 1, reserved: 2}}\ncharge: {stages: {video: A100}}\n",
     "charge.stages.video: unknown device 'A100'; allowed: cpu, A100:spot, A100:reserved"),
    ("cpu: {core_hour: 1}\nprice: 3\n", "price: unknown field"),
    ("- 1\n", "expected a mapping"),
    ("cpu: [\n", "not valid YAML"),
])
def test_bad_pricing_names_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "pricing.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_pricing(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_missing_pricing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_pricing(tmp_path / "nope.yaml")


# ------------------------------------------------------------------ the dashboard hub
def _events(sub: Subscriber) -> list[tuple[str, dict]]:
    out = []
    while not sub.queue.empty():
        raw = sub.queue.get_nowait().decode()
        event = raw.split("\n", 1)[0].removeprefix("event: ")
        data = next(line for line in raw.split("\n") if line.startswith("data: "))[6:]
        out.append((event, json.loads(data)))
    return out


def test_hub_sends_new_spans_once_and_a_hello_with_the_past() -> None:
    async def scenario() -> None:
        state = FakeState()
        ep = state.episode("a", title="<img src=x onerror=alert(1)>")
        ep.timeline.add(span("speech", 0, None, 0, 0, 0.3))
        hub = DashboardHub(Observability(state, pricing()), tick_s=3600)
        first = hub.subscribe()
        hub.tick()
        ep.timeline.add(span("video", 0, "240p", 0.3, 0.3, 0.9))
        hub.tick()
        events = _events(first)
        assert [e for e, _ in events] == ["hello", "tick", "tick"]
        assert events[1][1]["spans"]["a"] == {"from": 0, "rows": [["speech", 0, None, "sw-speech_0", 0, 0, 0.3, ""]]}
        assert events[2][1]["spans"]["a"]["from"] == 1 and len(events[2][1]["spans"]["a"]["rows"]) == 1
        assert events[2][1]["seq"] == events[1][1]["seq"] + 1
        assert events[2][1]["episodes"][0]["title"] == "<img src=x onerror=alert(1)>"  # data; the page uses textContent
        # A page that connects now gets both spans in its hello, then only new ones.
        second = hub.subscribe()
        hello = _events(second)[0][1]
        assert len(hello["spans"]["a"]["rows"]) == 2 and hello["spans"]["a"]["from"] == 0
        assert len(hello["history"]) == 2
        hub.tick()
        assert "a" not in _events(second)[0][1]["spans"]
        # A page that stops reading is cut off (it reconnects to a fresh hello).
        for _ in range(40):
            hub.tick()
        assert second.closed and first.closed and not hub.subscribers
        await asyncio.sleep(0)

    _run_in_own_loop(scenario)


def _run_in_own_loop(scenario) -> None:
    """asyncio.run in a thread: the browser tests' Playwright may own this thread's loop."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run_async(scenario())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    if errors:
        raise errors[0]


# ------------------------------------------------------------------ live server
def _samples(client: httpx.Client) -> dict[str, float]:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def _total(samples: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in samples.items() if k.startswith(prefix))


@pytest.mark.models
@pytest.mark.timeout(60)
def test_live_metrics_move_when_an_episode_plays(client: httpx.Client) -> None:
    before = _samples(client)
    for family in ("streamwise_time_to_first_frame_seconds_count", "streamwise_active_episodes", "streamwise_viewers",
                   "streamwise_stalls_total", "streamwise_quality_changes_total", "streamwise_admission_refusals_total",
                   "streamwise_episode_errors_total", "streamwise_event_loop_lag_seconds_count",
                   "process_cpu_seconds_total"):
        assert any(k.startswith(family) for k in before), family
    r = client.post("/api/episodes", json={"topic": "how bees talk", "duration_s": 10})
    assert r.status_code == 201
    episode_id = r.json()["id"]
    try:
        deadline = time.monotonic() + 40
        while True:
            now = _samples(client)
            moved = (_total(now, "streamwise_stage_latency_seconds_count{stage=\"video\"") > _total(before, "streamwise_stage_latency_seconds_count{stage=\"video\"")
                     and now['streamwise_time_to_first_speech_seconds_count{source="server"}'] > before['streamwise_time_to_first_speech_seconds_count{source="server"}'])
            if moved or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert moved, "stage latency and first speech histograms did not move"
        assert now["streamwise_episodes_started_total"] == before["streamwise_episodes_started_total"] + 1
        assert now["streamwise_generated_media_seconds_total"] > before["streamwise_generated_media_seconds_total"]
        assert _total(now, "streamwise_worker_busy_seconds_total") > _total(before, "streamwise_worker_busy_seconds_total")
        assert _total(now, "streamwise_estimated_cost_dollars_total") > _total(before, "streamwise_estimated_cost_dollars_total")
        assert _total(now, "streamwise_worker_utilisation_ratio") > 0
        if client.get(f"/api/episodes/{episode_id}").json()["status"] == "generating":
            assert f'streamwise_episode_buffered_seconds{{episode="{episode_id[:8]}"}}' in now
    finally:
        client.delete(f"/api/episodes/{episode_id}")
    after = _samples(client)
    assert f'streamwise_episode_buffered_seconds{{episode="{episode_id[:8]}"}}' not in after
    assert after["streamwise_generated_media_seconds_total"] >= now["streamwise_generated_media_seconds_total"]


@pytest.mark.models
@pytest.mark.timeout(30)
def test_live_dashboard_stream_ticks(base_url: str) -> None:
    events: list[tuple[str, dict]] = []
    with httpx.Client(base_url=base_url, timeout=10) as c, c.stream("GET", "/api/dashboard/stream") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[6:])))
                if len(events) == 3:
                    break
    assert [e for e, _ in events] == ["hello", "tick", "tick"]
    # The pricing the server loaded: configs/pricing.yaml, or $STREAMWISE_PRICING (it inherits this environment).
    assert events[0][1]["pricing"] == json.loads(json.dumps(load_pricing().to_json()))
    assert events[2][1]["seq"] == events[1][1]["seq"] + 1
    assert 0.5 <= events[2][1]["t"] - events[1][1]["t"] <= 2.0
    assert events[1][1]["tick_ms"] < 50, "a snapshot must stay cheap"


@pytest.mark.models
@pytest.mark.timeout(90)
def test_an_open_dashboard_does_not_hold_up_shutdown(tmp_path: Path) -> None:
    from bench.harness import start_server

    server = start_server(tmp_path)
    try:
        t0 = time.monotonic()
        server.wait_ready(60)
        print(f"second server ready in {time.monotonic() - t0:.1f} s")
        got: list[str] = []

        def listen() -> None:
            try:
                with httpx.stream("GET", f"{server.url}/api/dashboard/stream", timeout=30) as r:
                    got.extend(r.iter_lines())
            except httpx.HTTPError:
                pass

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not any(line.startswith("event: tick") for line in got) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert any(line.startswith("event: tick") for line in got), "the stream never ticked"
        began = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=10)
        assert time.monotonic() - began < 6, "SIGTERM with an open dashboard took too long"
        thread.join(timeout=5)
        assert not thread.is_alive(), "the stream did not end"
    finally:
        server.stop()
