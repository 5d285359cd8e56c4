"""Video drawn by Ray actors: an episode rendered and streamed through a local Ray cluster,
an actor killed mid-episode, a node lost, a pool no node can host.

Every cluster here is a real one on loopback (``ray.init`` or ``ray.cluster_utils``),
small (two CPUs, a small object store, no dashboard, no usage reporting), and stopped
when its test ends; the end of the module checks that no Ray process is left behind.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import run_async

pytest.importorskip("ray")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray
import ray.exceptions as rex

from bench.harness import free_port, start_server
from models.protocols import Quality, SceneInfo, VisualSegment
from pipelines.config import (
    REPO_ROOT,
    PoolSpec,
    RaySpec,
    load_deployment,
    load_workflow,
)
from pipelines.plan.cpu import child_pids
from pipelines.playout.frames import FrameList
from pipelines.stages import ray_drawers as ray_workers
from pipelines.stages.drawing import DrawCancelled, DrawJob

RAY_DEPLOY = REPO_ROOT / "configs" / "deploy" / "ray.yaml"
COMPOSE_DEPLOY = REPO_ROOT / "configs" / "deploy" / "ray-compose.yaml"
SMALL = RaySpec(num_cpus=2, object_store_mb=128)


def _job(index: int = 0, seconds: float = 1.0, jpeg: int | None = 90) -> DrawJob:
    n = int(48_000 * seconds)
    visual = VisualSegment(index=index, start=index * n, n_samples=n, speaker=index % 2, caption="hello there",
                           pcm=np.zeros(n, dtype=np.int16), phonemes=())
    return DrawJob(SceneInfo("Tides", ("Alex", "Sam")), visual, Quality("240p", 240, 25), jpeg)


def _descendants(pid: int) -> list[int]:
    seen, todo = [], [pid]
    while todo:
        for child in child_pids(todo.pop()):
            seen.append(child)
            todo.append(child)
    return seen


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _draw_actors(pid: int) -> list[int]:
    """Ray worker processes running a DrawActor, under the process tree of ``pid``."""
    return [p for p in _descendants(pid) if _cmdline(p).startswith("ray::DrawActor")]


@pytest.fixture(autouse=True)
def _no_ray_left_behind():
    # Session fixtures (the live server, Chromium, which starts helpers of its own at any
    # time) are descendants too: only new Ray processes count.
    before = set(_descendants(os.getpid()))
    yield
    ray_workers.disconnect()
    deadline = time.monotonic() + 20
    while (left := [p for p in _descendants(os.getpid())
                    if p not in before and _alive(p) and "ray" in _cmdline(p).lower()]) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"processes left behind: {[_cmdline(p)[:80] for p in left]}"


# ---------------------------------------------------------------- without a cluster
def test_frames_cross_compactly_raw_and_jpeg():
    rows, cols = 360, 320
    frames = [np.full((rows, cols), i, dtype=np.uint8) for i in range(4)]
    raw = ray_workers._Wire(FrameList.raw(frames))
    assert raw.stack is not None and raw.stack.shape == (4, rows, cols), "raw frames travel as one array"
    back = raw.frames()
    assert len(back) == 4 and all(np.array_equal(a, b) for a, b in zip(back, frames))
    assert back[0].flags.writeable, "frames are copied out of the object store"
    jpeg = ray_workers._Wire(FrameList.compress(frames, 90))
    assert jpeg.stack is None and jpeg.nbytes() < raw.nbytes() / 10
    assert len(jpeg.frames()) == 4 and jpeg.frames().compressed


class _FakeMethod:
    def __init__(self, fn):
        self.fn = fn

    def remote(self, *args):
        return lambda: self.fn(*args)


class _FakeActor:
    def __init__(self, dies: bool):
        self.draw = _FakeMethod(self._draw)
        self.ready = _FakeMethod(lambda: {"pid": 1, "node_id": "n", "host": "h"})
        self.dies = dies

    def _draw(self, job):
        if self.dies:
            raise rex.ActorDiedError()
        return ray_workers._Wire(FrameList.compress([np.zeros((360, 320), np.uint8)], 90)), 0.01, 0.02


def test_dead_actor_is_replaced_and_the_job_retried(monkeypatch):
    """Unit test of the retry loop, with stand-ins for Ray (the real thing is below)."""
    made: list[dict] = []
    deaths = iter([True, True, False])

    class FakeRemote:
        def options(self, **kw):
            made.append(kw)
            return self

        def remote(self, *args):
            return _FakeActor(next(deaths))

    monkeypatch.setattr(ray_workers, "connect", lambda spec: None)
    monkeypatch.setattr(ray_workers, "_RemoteDrawActor", FakeRemote())
    monkeypatch.setattr(ray_workers.ray, "get", lambda ref, timeout=None: ref())
    monkeypatch.setattr(ray_workers.ray, "kill", lambda actor, no_restart=True: None)
    pool = PoolSpec(name="gpu", backend="ray", num_cpus=0.5, num_gpus=0.25, resources={"gpu_l4": 0.25})
    drawer = ray_workers.RayDrawer(pool, "avatar2d", {}, RaySpec(), 3)
    drawn = drawer.draw(_job())
    assert drawn.retries == 2 and drawer.restarts == 2 and len(drawn.frames) == 1
    assert [m["name"].rsplit("-", 1)[1] for m in made] == ["g1", "g2", "g3"], "each replacement has a new name"
    assert made[0]["num_cpus"] == 0.5 and made[0]["num_gpus"] == 0.25 and made[0]["resources"] == {"gpu_l4": 0.25}
    assert made[0]["namespace"] == "streamwise" and made[0]["name"].startswith("sw-video-gpu-3-")
    stat = drawer.stats[-1]
    assert stat.frames == 1 and stat.elapsed_s == 0.01 and stat.actor_s == 0.02

    drawer.actor.dies = True  # and so do the next two: the third death is the episode's
    deaths = iter([True] * 2)
    with pytest.raises(rex.ActorDiedError):
        drawer.draw(_job())
    drawer.shutdown()


# ---------------------------------------------------------------- a local cluster in this process
@pytest.mark.models
def test_episode_renders_through_ray_actors_and_survives_a_killed_actor(tmp_path):
    """The offline render path on a ray deployment; the actor is killed (SIGKILL) mid-episode."""
    from pipelines.offline_render import render_episode
    from pipelines.segments import EpisodeRequest
    from pipelines.stages.models_loaded import load_models
    from pipelines.stages.pools import StagePools

    workflow = load_workflow()
    deployment = load_deployment(RAY_DEPLOY, workflow)
    # No backup runs: while the new actor starts, the other one could otherwise finish the
    # killed segment first and cancel the retry this test is about.
    runtime = deployment.runtime.model_copy(update={"backup_runs": False})
    deployment = deployment.model_copy(update={"ray": SMALL, "runtime": runtime})
    models = load_models(deployment, workflow)
    pools = StagePools.for_deployment(deployment)
    drawers = pools.drawers
    assert len(drawers) == sum(p.workers for p in deployment.tasks["video"].pools)
    assert all(isinstance(d, ray_workers.RayDrawer) for d in drawers)
    assert ray_workers.started_local() and ray.is_initialized()
    first = drawers[0]
    victim = first.pid()
    assert victim in _draw_actors(os.getpid()), "the actor runs in a Ray worker process"
    killed: list[int] = []

    def on_progress(p) -> None:
        if p.rendered >= 2 and not killed:
            killed.append(victim)
            os.kill(victim, signal.SIGKILL)  # probably mid-segment

    try:
        # run_async, not asyncio.run: Playwright's sync API may hold the main thread's loop.
        result = run_async(render_episode(models, deployment, EpisodeRequest(topic="how tides work", duration_s=25),
                                          tmp_path / "ep.mp4", pools=pools, on_progress=on_progress))
    finally:
        pools.shutdown()
    assert killed, "the actor was killed mid-episode"
    video = result.timeline.spans("video")
    assert {s.segment for s in video if s.segment is not None} == set(range(result.segments)), "every segment was drawn"
    assert any(s.worker == "respawn" for s in video), "the retry is on the timeline"
    assert first.restarts >= 1 and first.pid() != victim, "a new actor took over"
    assert result.video.stat().st_size > 10_000 and result.duration_s > 5
    stats = list(first.stats)
    assert stats and all(s.round_trip_s >= s.actor_s >= s.elapsed_s > 0 for s in stats), "transfer is measured"
    assert all(s.nbytes > 0 for s in stats)


def _fails_then_joins(failures: list[BaseException], monkeypatch) -> list[dict]:
    """ray.init replaced: raises ``failures`` one per call, then succeeds; returns the calls."""
    calls: list[dict] = []

    def init(**kwargs):
        calls.append(kwargs)
        if failures:
            raise failures.pop(0)

    monkeypatch.setattr(ray_workers.ray, "init", init)
    monkeypatch.setattr(ray_workers.ray, "cluster_resources", lambda: {"CPU": 2.0})
    monkeypatch.setattr(ray_workers, "CLIENT_RETRY_S", 0.01)
    return calls


@pytest.mark.parametrize("answer", [("Starting Ray client server failed. See ray_client_server_23000.err for "
                                     "detailed logs."),
                                    "Proxy failed to Connect to backend! Check `ray_client_server.err`",
                                    ("Traceback (most recent call last): ...\npsutil.ZombieProcess: PID still exists "
                                     "but it's a zombie (pid=26870)")])
def test_client_server_that_did_not_start_is_retried(answer, monkeypatch):
    """The proxy's forked per-client server died before it ran, or before it answered: the
    next ray.init joins."""
    dead = ConnectionAbortedError(f"Initialization failure from server:\nRuntimeError: {answer}")
    calls = _fails_then_joins([dead, dead], monkeypatch)
    ray_workers.connect(RaySpec(address="ray://127.0.0.1:10001"))
    assert len(calls) == 3 and all(c["address"] == "ray://127.0.0.1:10001" for c in calls)


def test_client_failures_that_repeat_are_not_retried(monkeypatch):
    """Other failures (a refused token, a wrong address) surface at once; the retries are bounded."""
    calls = _fails_then_joins([ConnectionAbortedError("Initialization failure from server: bad token")],
                              monkeypatch)
    with pytest.raises(ConnectionAbortedError, match="bad token"):
        ray_workers.connect(RaySpec(address="ray://127.0.0.1:10001"))
    assert len(calls) == 1
    dead = ConnectionAbortedError("Starting Ray client server failed.")
    calls = _fails_then_joins([dead] * ray_workers.CLIENT_ATTEMPTS, monkeypatch)
    with pytest.raises(ConnectionAbortedError, match="client server failed"):
        ray_workers.connect(RaySpec(address="ray://127.0.0.1:10001"))
    assert len(calls) == ray_workers.CLIENT_ATTEMPTS


def test_pool_no_node_can_host_fails_with_a_clear_error():
    ray_workers.connect(SMALL)
    pool = PoolSpec(name="h200", backend="ray", num_cpus=1, num_gpus=1, resources={"gpu_h200": 1})
    drawer = ray_workers.RayDrawer(pool, "avatar2d", {}, SMALL, 0)
    drawer.start_timeout_s = 3.0
    try:
        with pytest.raises(RuntimeError, match="gpu_h200"):
            drawer.warm_up()
    finally:
        drawer.shutdown()


def test_a_cancelled_draw_stops_in_the_actor_and_the_actor_draws_on():
    ray_workers.connect(SMALL)
    drawer = ray_workers.RayDrawer(PoolSpec(name="fast", backend="ray", num_cpus=1), "avatar2d", {}, SMALL, 0)
    try:
        drawer.warm_up()

        def cancel_when_drawing() -> None:
            while drawer._running is None:
                time.sleep(0.005)
            time.sleep(1.0)  # running in the actor by now, not only queued
            drawer.cancel()

        canceller = threading.Thread(target=cancel_when_drawing)
        canceller.start()
        with pytest.raises(DrawCancelled):
            drawer.draw(_job(0, seconds=600))  # drawn whole, it would take minutes
        canceller.join()
        assert ray_workers.ray.get(drawer.actor.cancelled_draws.remote()) == 1, "stopped inside the actor"
        assert len(drawer.draw(_job(1)).frames) == 25, "the same actor draws the next job whole"
        assert drawer.restarts == 0
    finally:
        drawer.shutdown()


def test_lost_node_segment_is_drawn_again_on_another_node():
    """Two worker nodes; the one holding the actor dies; the next segment is drawn on the other."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "object_store_memory": 80 * 2**20, "include_dashboard": False,
        # Notice a dead node in about a second instead of half a minute.
        "_system_config": {"health_check_period_ms": 300, "health_check_failure_threshold": 3},
    })
    try:
        nodes = [cluster.add_node(num_cpus=1, object_store_memory=80 * 2**20) for _ in range(2)]
        spec = RaySpec(address=cluster.address)
        drawer = ray_workers.RayDrawer(PoolSpec(name="fast", backend="ray", num_cpus=1), "avatar2d", {}, spec, 0)
        drawer.warm_up()
        assert len(drawer.draw(_job(0)).frames) == 25
        before = drawer.placement["node_id"]
        node = next(n for n in nodes if n.node_id == before)
        cluster.remove_node(node, allow_graceful=False)
        drawn = drawer.draw(_job(1))
        assert drawn.retries >= 1 and len(drawn.frames) == 25
        assert drawer.placement["node_id"] not in (None, before), "drawn on the surviving node"
        drawer.shutdown()
    finally:
        ray_workers.disconnect()
        cluster.shutdown()


# ---------------------------------------------------------------- the server on a ray deployment
@pytest.mark.models
def test_server_streams_an_episode_through_ray_and_survives_a_killed_actor(tmp_path):
    server = start_server(tmp_path, ["--deploy", str(RAY_DEPLOY)])
    server_pid = server.process.pid
    try:
        server.wait_ready(180)
        actors = _draw_actors(server_pid)
        workers = sum(p.workers for p in load_deployment(RAY_DEPLOY).tasks["video"].pools)
        assert len(actors) == workers, "video drawing runs in Ray actors started by the server, one per worker"
        streamed: dict[str, bytes] = {}
        with httpx.Client(base_url=server.url, timeout=60) as client:
            episode = client.post("/api/episodes", json={"topic": "how tides work", "duration_s": 30}).json()["id"]

            def watch() -> None:  # the fallback stream: sent while the episode is generated
                with httpx.stream("GET", f"{server.url}/api/episodes/{episode}/stream.mp4", timeout=180) as r:
                    streamed["data"] = r.read()

            viewer = threading.Thread(target=watch, daemon=True)
            viewer.start()
            deadline = time.monotonic() + 90
            while client.get(f"/api/episodes/{episode}").json()["progress"]["segments_rendered"] < 2:
                assert time.monotonic() < deadline, server.log_tail()
                time.sleep(0.1)
            for pid in actors:
                os.kill(pid, signal.SIGKILL)  # dies mid-episode, probably mid-segment
            deadline = time.monotonic() + 150
            while (info := client.get(f"/api/episodes/{episode}").json())["status"] == "generating":
                assert time.monotonic() < deadline, server.log_tail()
                time.sleep(0.3)
            assert info["status"] == "finished", (info, server.log_tail())
            spans = client.get(f"/api/episodes/{episode}/timeline").json()["spans"]
            assert any(s["worker"] == "respawn" for s in spans), "the retry is on the timeline"
            rendered = {s["segment"] for s in spans if s["stage"] == "video" and s["segment"] is not None}
            assert rendered == set(range(info["progress"]["segments_total"])), "every segment was drawn"
            assert client.get(f"/api/episodes/{episode}/video.mp4").status_code == 200
            viewer.join(60)
        data = streamed.get("data", b"")
        assert data[4:8] == b"ftyp" and b"moof" in data and len(data) > 50_000, "the episode was streamed"
        new = _draw_actors(server_pid)
        assert len(new) == workers and set(new).isdisjoint(actors), "the dead actors were replaced"
        tree = _descendants(server_pid)
    finally:
        server.stop()
    deadline = time.monotonic() + 30
    while (left := [p for p in tree if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not left, f"the server's Ray processes outlived it: {[_cmdline(p)[:80] for p in left]}"


# ---------------------------------------------------------------- the docker-compose topology, without Docker
def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()  # `ray start --block` drains and stops its node's processes
        try:
            process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.mark.models
def test_server_joins_a_cluster_started_as_docker_compose_does(tmp_path):
    """ray-head and ray-worker started with docker-compose.yml's commands, the server on
    configs/deploy/ray-compose.yaml through Ray Client, all on this machine."""
    from ray.util import get_node_ip_address

    env = os.environ | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                        "RAY_USAGE_STATS_ENABLED": "0"}
    ray_cli = str(Path(sys.executable).parent / "ray")
    gcs, client = free_port(), free_port()  # ephemeral ports: clear of Ray's worker port range
    started: list[subprocess.Popen] = []
    server = None
    try:
        with open(tmp_path / "ray-head.log", "wb") as log:
            started.append(subprocess.Popen(
                [ray_cli, "start", "--head", "--block", f"--port={gcs}", f"--ray-client-server-port={client}",
                 "--num-cpus=0", "--include-dashboard=false", "--disable-usage-stats"],
                env=env, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 60
        while subprocess.run([ray_cli, "health-check", f"--address=127.0.0.1:{gcs}"], check=False, env=env,
                             capture_output=True).returncode != 0:  # compose's healthcheck
            assert started[0].poll() is None and time.monotonic() < deadline, (tmp_path / "ray-head.log").read_text()
            time.sleep(1)
        with open(tmp_path / "ray-worker.log", "wb") as log:
            started.append(subprocess.Popen(
                [ray_cli, "start", f"--address=127.0.0.1:{gcs}", "--block", "--num-cpus=2", "--disable-usage-stats",
                 # Two nodes on one machine (in compose, two containers): the agent needs its own port.
                 f"--dashboard-agent-listen-port={free_port()}"],
                env=env, stdout=log, stderr=subprocess.STDOUT))
        worker = started[1]
        text = COMPOSE_DEPLOY.read_text()
        assert "address: ray://127.0.0.1:10001" in text
        deploy = tmp_path / "ray-compose.yaml"
        deploy.write_text(text.replace("ray://127.0.0.1:10001", f"ray://{get_node_ip_address()}:{client}"))
        server = start_server(tmp_path / "server", ["--deploy", str(deploy)], env=env)
        server.wait_ready(180)
        actors = _draw_actors(worker.pid)
        assert len(actors) == 2, "the pool's two actors run on the worker node (the head offers no CPUs)"
        with httpx.Client(base_url=server.url, timeout=60) as http:
            episode = http.post("/api/episodes", json={"topic": "why the sky is blue", "duration_s": 20}).json()["id"]
            deadline = time.monotonic() + 150
            while (info := http.get(f"/api/episodes/{episode}").json())["status"] == "generating":
                assert time.monotonic() < deadline, server.log_tail()
                time.sleep(0.3)
            assert info["status"] == "finished", (info, server.log_tail())
            spans = http.get(f"/api/episodes/{episode}/timeline").json()["spans"]
            rendered = {s["segment"] for s in spans if s["stage"] == "video" and s["segment"] is not None}
            assert rendered == set(range(info["progress"]["segments_total"]))
            workers = {s["worker"] for s in spans if s["stage"] == "video" and s["segment"] is not None}
            assert workers <= {"sw-video-fast-0", "sw-video-fast-1"}, workers
        server.stop()
        deadline = time.monotonic() + 30
        while _draw_actors(worker.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _draw_actors(worker.pid), "the server's actors went with it"
    finally:
        if server is not None:
            server.stop()
        tree = [p for proc in started for p in [proc.pid, *_descendants(proc.pid)]]
        for proc in reversed(started):
            _stop(proc)
        # `ray start` leaves its address for ray.init(); a later plain ray.init() would try to join.
        current = Path("/tmp/ray/ray_current_cluster")
        if current.is_file() and current.read_text().strip().endswith(f":{gcs}"):
            current.unlink()
    deadline = time.monotonic() + 30
    while (left := [p for p in tree if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not left, f"Ray processes outlived their nodes: {[_cmdline(p)[:80] for p in left]}"


# ---------------------------------------------------------------- the benchmark runs
@pytest.mark.slow
@pytest.mark.models
def test_bench_ray_overhead_smoke(tmp_path):
    """bench/ray_overhead.py end to end, tiny (figures are not checked)."""
    import json

    out = tmp_path / "ray.json"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "ray_overhead.py"), "--runs", "1", "--duration", "10",
         "--replays", "1", "--json", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "| ray |" in proc.stdout and "| process |" in proc.stdout, proc.stdout[-2000:]
    report = json.loads(out.read_text())
    assert report["schema"] == "streamwise.bench.ray_overhead/1"
    assert set(report["episodes"]) == {"process", "ray", "ray (cluster up)"}
    assert "ray/raw" in report["replay"] and report["replay"]["ray/raw"]["transfer_ms_median"] > 0
