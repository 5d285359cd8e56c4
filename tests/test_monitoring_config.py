"""docker-compose.yml, the Prometheus config and the Grafana provisioning parse and fit together.

Docker cannot run here, so the files are checked as data: the services exist, every
bind mount points at a file in the repository, Prometheus scrapes the server's
/metrics, Grafana's dashboard uses the provisioned data source, and every metric and
label its queries name is one the server exposes.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_metrics import FakeState  # tests/ is on sys.path (rootdir-relative imports)

from pipelines.spans import Span
from server.observability.metrics import Observability
from server.observability.pricing import load_pricing
from server.observability.prometheus import make_registry

REPO = Path(__file__).resolve().parents[1]
MONITORING = REPO / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "streamwise.json"
#: Labels Prometheus attaches to every scraped series.
TARGET_LABELS = {"job", "instance", "deployment"}
METRIC = re.compile(r"\b((?:streamwise|process)_[a-zA-Z0-9_]+)")
BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
MATCHER = re.compile(r"\{([^}]*)\}")


def _yaml(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def _exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def _exposed() -> dict[str, set[str]]:
    """Sample names -> label names, from the collector with every family populated."""
    state = FakeState()
    ep = state.episode("e1", first_content_s=0.5, first_speech_s=1.0)
    ep.timeline.add(Span("video", 0, "240p", "sw-video_0", 0.0, 0.1, 0.5))
    ep.buffer.end = 48_000
    ep.viewer_stats = [{"viewer": "v1", "ttffSeconds": 1.0, "firstSpeechSeconds": 2.0, "freezeCount": 1}]
    state.viewer("v1", "e1", position_s=0.5)
    text = generate_latest(make_registry(Observability(state, load_pricing()))).decode()
    out: dict[str, set[str]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, set()).update(s.labels)
    return out


def test_compose_runs_server_prometheus_and_grafana() -> None:
    compose = _yaml(REPO / "docker-compose.yml")
    services = compose["services"]
    assert {"streamwise", "prometheus", "grafana"} <= set(services)
    named = set(compose.get("volumes") or {})
    for name, service in services.items():
        image = service.get("image")
        if image:
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image version ({image})"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("${"):
                source = volume[: volume.index("}") + 1]
                assert ":?" in source, f"{name}: {source} must fail with a message when unset"
            elif source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name}: mounts {source}, which is not in the repository"
            else:
                assert source in named, f"{name}: volume {source} is not declared"
        for dep in service.get("depends_on", []):
            assert dep in services
    assert "build" in services["streamwise"]
    # Prometheus and Grafana read the files this repository provides.
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]}
    assert mounts["/etc/prometheus/prometheus.yml"] == "./monitoring/prometheus.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    # Prometheus has no authentication: loopback only, where Grafana's data source finds it.
    source = _yaml(MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml")["datasources"][0]
    assert f"--web.listen-address={source['url'].removeprefix('http://')}" in services["prometheus"]["command"]
    assert services["grafana"]["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert ":?" in services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"], "no default admin password"
    grafana = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    assert grafana["/etc/grafana/provisioning"] == "./monitoring/grafana/provisioning"
    provider = _yaml(MONITORING / "grafana" / "provisioning" / "dashboards" / "streamwise.yml")["providers"][0]
    assert grafana[provider["options"]["path"]] == "./monitoring/grafana/dashboards"
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"


def test_prometheus_scrapes_the_servers_metrics() -> None:
    from server.app import create_app
    from server.state import Settings

    config = _yaml(MONITORING / "prometheus.yml")
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    job = jobs["streamwise"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    # The server shares the host network and listens on its default port.
    assert targets == [f"127.0.0.1:{Settings().port}"]
    app = create_app()
    # By route name, through the routers the app includes (url_path_for fails on a missing one).
    paths = {app.url_path_for(name) for name in ("metrics", "dashboard_page", "dashboard_stream")}
    assert {"/metrics", "/dashboard", "/api/dashboard/stream"} <= paths


def test_grafana_dashboard_uses_the_provisioned_data_source() -> None:
    sources = _yaml(MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert len(sources) == 1 and sources[0]["type"] == "prometheus"
    assert sources[0]["url"] == "http://127.0.0.1:9090"
    uid = sources[0]["uid"]
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    graphs = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(graphs) >= 12
    for panel in graphs:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid and target["expr"].strip(), panel["title"]
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]


def test_every_metric_and_label_in_the_dashboard_exists() -> None:
    exposed = _exposed()
    referenced = set()
    for expr in _exprs():
        names = set(METRIC.findall(expr))
        assert names, expr
        referenced |= names
        missing = names - set(exposed)
        assert not missing, f"{expr}: no such metric {sorted(missing)}"
        labels = set().union(*(exposed[n] for n in names)) | TARGET_LABELS
        used = {label.strip() for group in BY.findall(expr) for label in group.split(",") if label.strip()}
        used |= {m.split("=")[0].strip().rstrip("!~") for group in MATCHER.findall(expr) for m in group.split(",") if m.strip()}
        assert used <= labels, f"{expr}: unknown labels {sorted(used - labels)}"
    # The dashboard covers what the issue asks for.
    for family in ("time_to_first_frame", "time_to_first_speech", "stage_latency", "queue_wait", "episode_buffered",
                   "active_episodes", "viewers", "worker_utilisation", "stalls", "quality_changes",
                   "admission_refusals", "episode_errors", "estimated_cost"):
        assert any(f"streamwise_{family}" in name for name in referenced), family


@pytest.mark.models
def test_the_live_server_exposes_every_referenced_family(client: httpx.Client) -> None:
    text = client.get("/metrics").text
    families = {m.group(1) for m in re.finditer(r"^# TYPE (\S+) ", text, re.MULTILINE)}
    suffixes = ("_bucket", "_count", "_sum", "_total")
    for name in {n for e in _exprs() for n in METRIC.findall(e)}:
        base = next((name[: -len(s)] for s in suffixes if name.endswith(s) and name[: -len(s)] in families), name)
        assert base in families or name in families, f"{name} is not on the live /metrics"
