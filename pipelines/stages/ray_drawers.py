"""Video worker slots on Ray actors: the same segment jobs, drawn on any node of a Ray cluster.

Each worker slot of a ``backend: ray`` pool owns one Ray actor that loads the
animator once and keeps it warm; the slot's thread sends it a ``DrawJob`` and
blocks on the result, exactly as with a local process. The scheduler (deadlines,
earliest-deadline-first order, tier choices) does not know the difference: only
where the drawing runs changes. The actor asks Ray for the pool's ``num_cpus``,
``num_gpus`` (fractions allowed) and custom ``resources`` (a GPU type, a node
label), so heterogeneous pools land on the machines that have them.

Frames come back compactly: JPEG-compressed planes (``runtime.frame_jpeg_quality``,
the default), or raw I420 as one contiguous array that Ray's object store hands
over without pickling (copied out once, so the store is not pinned by episodes
that keep their frames for replays). Each draw records its round trip, the time
spent in the actor and the drawing time, so the cost of moving work and frames
is measured (``RayDrawer.stats``, bench/ray_overhead.py).

When an actor, its worker process or its node dies, the slot starts a new actor
(Ray places it wherever the resources are) and draws the job again, at most twice;
``Drawn.retries`` counts the replacements so the episode timeline shows them.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

# Before Ray is imported: no usage statistics sent anywhere.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np
import ray
import ray.exceptions as rex

from pipelines.playout.frames import FrameList
from pipelines.stages.drawing import DrawCancelled, DrawJob, Drawn, draw_with

if TYPE_CHECKING:
    from ray.actor import ActorHandle

    from pipelines.config import PoolSpec, RaySpec

log = logging.getLogger(__name__)

#: Failures after which the job is drawn again on a new actor: the actor, its worker
#: process or its node died, or its result was lost with the node that held it.
RETRYABLE = (rex.RayActorError, rex.WorkerCrashedError, rex.NodeDiedError, rex.ObjectLostError,
             rex.OutOfMemoryError)
#: Replacements per job before its failure is the episode's.
MAX_RETRIES = 2

#: The smallest object store Ray accepts, in MiB.
MIN_OBJECT_STORE_MB = 76
#: Attempts to join a cluster through Ray Client before the server gives up. The
#: cluster's client proxy forks a server per client from a process full of gRPC threads,
#: and that child sometimes dies of SIGSEGV before it runs, more often on a busy machine;
#: the next fork works.
CLIENT_ATTEMPTS = 3
#: Seconds before the second attempt (doubled for each after): long enough for the proxy
#: to notice the dead child and free its port.
CLIENT_RETRY_S = 2.0
#: What the proxy answers when the per-client server it forked died before it ran, or
#: before it answered.
_CLIENT_SERVER_FAILED = ("Starting Ray client server failed", "Proxy failed to Connect to backend",
                         # the proxy found its forked child already dead when it looked it up
                         "ZombieProcess", "NoSuchProcess")

_connect_lock = threading.Lock()
#: True when this process started the local cluster it is connected to.
_started_local = False
#: True when connect() called ray.init (not someone else in this process).
_owned = False
#: Drawers alive in this process: the last one to shut down leaves Ray (see RayDrawer.shutdown).
_live_drawers = 0


def connect(spec: RaySpec) -> None:
    """Connect this process to Ray once: the cluster at ``spec.address``, or a new local one.

    ``spec`` is the deployment's ``RaySpec``. A local cluster gets ``spec.num_cpus``
    CPUs and an object store of ``spec.object_store_mb`` MiB, no dashboard. ``RAY_ADDRESS``
    in the environment stands in for a missing address (as ``ray.init`` does).
    """
    global _started_local, _owned
    with _connect_lock:
        if ray.is_initialized():
            return
        address = spec.address or os.environ.get("RAY_ADDRESS") or None
        kwargs: dict[str, Any] = {"namespace": spec.namespace, "logging_level": logging.WARNING}
        if address is None:
            # Ray gives a new local cluster a token of its own (~/.ray/auth_token) unless
            # RAY_AUTH_MODE says otherwise; its warning about that is noise here.
            logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
            # "local", not None: ray.init(None) would join any cluster `ray start` left on this machine.
            # Ray refuses object stores under 75 MiB.
            store_mb = max(spec.object_store_mb, MIN_OBJECT_STORE_MB)
            kwargs |= {"address": "local", "num_cpus": spec.num_cpus, "object_store_memory": store_mb * 2**20,
                       "include_dashboard": False}
        else:
            kwargs["address"] = address
        # ray.init replaces the SIGTERM handler of the main thread with sys.exit; the
        # server's own handler (uvicorn's graceful shutdown) must keep it.
        main = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGTERM) if main else None
        t0 = time.perf_counter()
        try:
            _init_with_retries(kwargs)
        finally:
            if main and previous is not None:
                signal.signal(signal.SIGTERM, previous)
        _started_local, _owned = address is None, True
        log.info("Ray %s: %s in %.1f s, resources %s", ray.__version__,
                 "started a local cluster" if _started_local else f"joined {address}",
                 time.perf_counter() - t0, ray.cluster_resources())


def _init_with_retries(kwargs: dict[str, Any]) -> None:
    """``ray.init``, again when a Ray Client proxy failed to start this client's server.

    Only that failure is retried: a wrong address, a refused token or a version
    mismatch fails the same way every time and is reported at once.
    """
    delay = CLIENT_RETRY_S
    for attempt in range(1, CLIENT_ATTEMPTS + 1):
        try:
            ray.init(**kwargs)
            return
        except ConnectionAbortedError as e:
            if not any(m in str(e) for m in _CLIENT_SERVER_FAILED) or attempt == CLIENT_ATTEMPTS:
                raise
            log.warning("Ray Client at %s could not start a server for this client (attempt %d of %d); "
                        "trying again in %.0f s", kwargs.get("address"), attempt, CLIENT_ATTEMPTS, delay)
        with suppress(Exception):
            ray.shutdown()  # what the failed attempt set up in this process
        time.sleep(delay)
        delay *= 2


def disconnect() -> None:
    """Leave Ray (and stop the local cluster if this process started it)."""
    global _started_local, _owned
    with _connect_lock:
        if ray.is_initialized():
            ray.shutdown()
        _started_local = _owned = False


@contextmanager
def keep_connected(spec: RaySpec) -> Iterator[None]:
    """Stay on Ray (a local cluster stays up) while pools come and go inside (benchmarks)."""
    connect(spec)
    _drawer_started()
    try:
        yield
    finally:
        _drawer_stopped()


def _drawer_started() -> None:
    global _live_drawers
    with _connect_lock:
        _live_drawers += 1


def _drawer_stopped() -> None:
    """The last drawer leaves Ray if connect() joined it: a local cluster stops with its pools.

    The server cannot leave that to Ray's atexit hook: uvicorn ends by re-raising
    SIGTERM, which skips atexit, and a local cluster's agents would outlive it.
    """
    global _live_drawers
    with _connect_lock:
        _live_drawers = max(0, _live_drawers - 1)
        last = _live_drawers == 0 and _owned
    if last:
        disconnect()


def started_local() -> bool:
    return _started_local


@dataclass(frozen=True)
class DrawStat:
    """One job's timing on a Ray actor."""

    segment: int
    frames: int
    #: Bytes of frames that came back.
    nbytes: int
    #: From the call to the frames in hand, in the slot's thread.
    round_trip_s: float
    #: In the actor's method: drawing, colour conversion, compression.
    actor_s: float
    #: Drawing alone (what the planner's cost model learns from).
    elapsed_s: float

    @property
    def transfer_s(self) -> float:
        """Moving the job there and the frames back, and Ray's own bookkeeping."""
        return max(0.0, self.round_trip_s - self.actor_s)

    @property
    def overhead_s(self) -> float:
        """Everything but drawing: compression plus transfer (comparable across backends)."""
        return max(0.0, self.round_trip_s - self.elapsed_s)


class _Wire:
    """Frames on their way back: JPEG planes as they are, raw frames as one array."""

    __slots__ = ("items", "quality", "shape", "stack")

    def __init__(self, frames: FrameList) -> None:
        self.shape = frames._shape
        self.quality = frames._quality
        if frames.compressed or len(frames) == 0:
            self.items, self.stack = frames._items, None
        else:
            # One contiguous buffer: Ray's object store hands it over without pickling it.
            self.items, self.stack = None, np.stack(list(frames))

    def __getstate__(self) -> tuple:
        return self.items, self.stack, self.shape, self.quality

    def __setstate__(self, state: tuple) -> None:
        self.items, self.stack, self.shape, self.quality = state

    def frames(self) -> FrameList:
        if self.stack is None:
            return FrameList(self.items, self.shape, self.quality)
        # The received array is a read-only view of the object store: copy it out once so
        # frames kept for replays do not pin the store.
        owned = np.array(self.stack, copy=True)
        return FrameList.raw(list(owned))

    def nbytes(self) -> int:
        if self.stack is not None:
            return int(self.stack.nbytes)
        return sum(len(p) for item in self.items or [] for p in item)


class DrawActor:
    """A Ray actor holding one warm animator (what a process worker holds locally)."""

    def __init__(self, adapter: str, params: dict[str, Any], nice: int = 0, qualities: tuple = ()) -> None:
        from models.registry import load_adapter
        from pipelines.stages.drawing import prepare

        if nice:
            os.nice(nice)
        self.animator = load_adapter("video", adapter, params)
        prepare(self.animator, qualities)
        self.slowdown = 0.0
        #: Draws stopped midway because the caller cancelled them.
        self.cancelled = 0

    def ready(self) -> dict[str, Any]:
        ctx = ray.get_runtime_context()
        return {"pid": os.getpid(), "node_id": ctx.get_node_id(), "host": socket.gethostname()}

    def draw(self, job: DrawJob) -> tuple[_Wire, float, float]:
        t0 = time.perf_counter()
        try:
            # RayDrawer.cancel calls ray.cancel: a running task of a regular actor sees only this flag.
            drawn = draw_with(self.animator, job, ray.get_runtime_context().is_canceled)
        except DrawCancelled:
            self.cancelled += 1
            raise
        if self.slowdown:
            pause = self.slowdown * drawn.elapsed_s
            time.sleep(pause)
            drawn.elapsed_s += pause
        wire = _Wire(drawn.frames)
        return wire, drawn.elapsed_s, time.perf_counter() - t0

    def set_slowdown(self, factor: float) -> int:
        self.slowdown = factor
        return os.getpid()

    def cancelled_draws(self) -> int:
        return self.cancelled


_RemoteDrawActor = ray.remote(max_restarts=0, max_task_retries=0)(DrawActor)


class RayDrawer:
    """One Ray actor for one worker slot, replaced (elsewhere if need be) when it dies."""

    #: Seconds a new actor may take to be placed, load its model and warm up.
    start_timeout_s = 100.0

    def __init__(self, pool: PoolSpec, adapter: str, params: dict[str, Any], spec: RaySpec, index: int,
                 qualities: tuple = ()) -> None:
        self.pool = pool
        self.qualities = tuple(qualities)
        self.adapter = adapter
        self.params = params
        self.spec = spec
        self.index = index
        self.restarts = 0
        #: The latest draws' timings (bench/ray_overhead.py reads them).
        self.stats: deque[DrawStat] = deque(maxlen=10_000)
        self.transfer_total_s = 0.0
        self.draws = 0
        #: pid, node_id and host of the current actor once it is up.
        self.placement: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._actor: ActorHandle | None = None
        self._generation = 0
        self._closed = False
        #: The draw last sent to the actor (what cancel stops).
        self._running: ray.ObjectRef | None = None
        self._base_name = f"sw-video-{pool.name}-{index}-{socket.gethostname()}-{os.getpid()}"
        connect(spec)
        _drawer_started()

    # ------------------------------------------------------------ the actor
    @property
    def actor_name(self) -> str:
        return f"{self._base_name}-g{self._generation}"

    def _options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "name": self.actor_name,
            "namespace": self.spec.namespace,
            "num_cpus": self.pool.num_cpus,
            "num_gpus": self.pool.num_gpus,
            # One job at a time, like a process worker: the slot's thread waits for it.
            "max_concurrency": 1,
        }
        if self.pool.resources:
            opts["resources"] = dict(self.pool.resources)
        return opts

    def _current(self) -> ActorHandle:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the Ray drawer {self._base_name} is shut down")
            if self._actor is None:
                self._generation += 1
                self.placement = None
                self._actor = _RemoteDrawActor.options(**self._options()).remote(
                    self.adapter, self.params, self.pool.nice, self.qualities)
            return self._actor

    def _wait_ready(self, actor: ActorHandle) -> None:
        try:
            self.placement = ray.get(actor.ready.remote(), timeout=self.start_timeout_s)
        except rex.GetTimeoutError:
            raise RuntimeError(
                f"video pool {self.pool.name!r}: no Ray node could start worker {self.index} within "
                f"{self.start_timeout_s:.0f} s; it asks for num_cpus={self.pool.num_cpus}, "
                f"num_gpus={self.pool.num_gpus}, resources={dict(self.pool.resources)}; "
                f"the cluster has {ray.cluster_resources()}"
            ) from None
        log.info("video pool %s worker %d: actor %s on %s (pid %s)", self.pool.name, self.index,
                 self.actor_name, self.placement["host"], self.placement["pid"])

    def _check_resources(self) -> None:
        """Warn early when the cluster, as it is now, can never place this pool's actors."""
        have = ray.cluster_resources()
        want = {"CPU": self.pool.num_cpus, "GPU": self.pool.num_gpus, **self.pool.resources}
        short = {k: v for k, v in want.items() if v > 0 and have.get(k, 0.0) < v}
        if short:
            log.warning("video pool %s asks for %s per worker but the Ray cluster has %s; "
                        "its actors wait until nodes with them join", self.pool.name, short,
                        {k: have.get(k, 0.0) for k in short})

    def _replace(self, actor: ActorHandle) -> None:
        with self._lock:
            if self._actor is actor:
                self._actor = None
        with suppress(Exception):  # it is dead already
            ray.kill(actor, no_restart=True)

    @property
    def actor(self) -> ActorHandle | None:
        """The current actor handle (tests kill it to check the retry)."""
        return self._actor

    # ------------------------------------------------------------ Drawer
    def warm_up(self) -> None:
        self._check_resources()
        self._wait_ready(self._current())

    def pid(self) -> int | None:
        return self.placement["pid"] if self.placement else None

    def set_slowdown(self, factor: float) -> int:
        """Make this worker ``1 + factor`` times slower, as ProcessDrawer does (tests); returns its pid."""
        return ray.get(self._current().set_slowdown.remote(factor))

    def draw(self, job: DrawJob) -> Drawn:
        retries = 0
        while True:
            actor = self._current()
            t0 = time.perf_counter()
            self._running = ref = actor.draw.remote(job)
            try:
                wire, elapsed_s, actor_s = ray.get(ref)
            except rex.TaskCancelledError as exc:
                raise DrawCancelled(f"segment {job.visual.index} is no longer needed") from exc
            except RETRYABLE as exc:
                if retries >= MAX_RETRIES or self._closed:
                    raise
                retries += 1
                self.restarts += 1
                log.warning("video pool %s worker %d: Ray actor lost on segment %d (%s); "
                            "drawing it again on a new actor", self.pool.name, self.index,
                            job.visual.index, type(exc).__name__)
                self._replace(actor)
                # Placed and warm before the job goes out again; a cluster with no room left
                # fails this segment with a clear error instead of waiting for ever.
                self._wait_ready(self._current())
                continue
            frames = wire.frames()
            round_trip = time.perf_counter() - t0
            if self.placement is None:
                self.placement = {"pid": None, "node_id": None, "host": None}
                with suppress(Exception):  # only informative
                    self.placement = ray.get(actor.ready.remote(), timeout=5.0)
            stat = DrawStat(job.visual.index, len(frames), wire.nbytes(), round_trip, actor_s, elapsed_s)
            self.stats.append(stat)
            self.transfer_total_s += stat.transfer_s
            self.draws += 1
            return Drawn(frames, elapsed_s, retries)

    def cancel(self) -> None:
        if (ref := self._running) is not None:
            with suppress(Exception):  # finished, or its actor is gone: nothing left to stop
                ray.cancel(ref)

    def shutdown(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            actor, self._actor = self._actor, None
        if actor is not None and ray.is_initialized():
            with suppress(Exception):  # the cluster may be gone already
                ray.kill(actor, no_restart=True)
        _drawer_stopped()
