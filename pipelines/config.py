"""Workflow and deployment files, validated with pydantic.

The workflow (``configs/podcast.yaml``) says *what* is computed: tasks and their
inputs, never models or hardware. The deployment (``configs/deploy/*.yaml``) says
*how*: which adapter runs each task, with which parameters, and the quality ladder.
Keeping them apart is Murakkab's idea: the same workflow runs on a laptop or a fleet.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from models.protocols import CLOCK_RATE, Quality

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "configs"
DEFAULT_WORKFLOW = CONFIG_DIR / "podcast.yaml"
DEFAULT_DEPLOYMENT = CONFIG_DIR / "deploy" / "local.yaml"

#: How an episode picks its tiers (see ``QualitySpec.policy``); requests name one of these.
Policy = Literal["adaptive", "static", "static-high", "static-low", "fifo", "batch"]

#: Task kinds the episode runtime knows how to execute.
TASK_KINDS = ("script", "segment", "speech", "video", "playout")
#: Inputs that come from outside the workflow.
EXTERNAL_INPUTS = ("request",)


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or invalid; the message names file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------ workflow
class TaskSpec(_Strict):
    kind: Literal["script", "segment", "speech", "video", "playout"]
    inputs: list[str] = Field(default_factory=list)
    #: "episode" tasks run once; "segment" tasks run once per segment.
    per: Literal["episode", "segment"] = "episode"
    description: str = ""


class Workflow(_Strict):
    name: str
    description: str = ""
    tasks: dict[str, TaskSpec]

    @model_validator(mode="after")
    def _check_graph(self) -> Workflow:
        known = set(self.tasks) | set(EXTERNAL_INPUTS)
        for name, task in self.tasks.items():
            for dep in task.inputs:
                if dep not in known:
                    raise ValueError(
                        f"tasks.{name}.inputs: unknown input {dep!r}; "
                        f"allowed: {sorted(known)}"
                    )
        # Reject cycles: data flows one way.
        state: dict[str, int] = {}

        def visit(node: str, path: list[str]) -> None:
            if state.get(node) == 2 or node in EXTERNAL_INPUTS:
                return
            if state.get(node) == 1:
                raise ValueError(f"tasks: cycle {' -> '.join(path + [node])}")
            state[node] = 1
            for dep in self.tasks[node].inputs:
                visit(dep, path + [node])
            state[node] = 2

        for name in self.tasks:
            visit(name, [])
        kinds = [t.kind for t in self.tasks.values()]
        for needed in ("script", "speech", "video"):
            if needed not in kinds:
                raise ValueError(f"tasks: the podcast runtime needs a task of kind {needed!r}")
        return self

    def task_of_kind(self, kind: str) -> str:
        for name, task in self.tasks.items():
            if task.kind == kind:
                return name
        raise KeyError(kind)


# ------------------------------------------------------------------ deployment
class PoolSpec(_Strict):
    """A group of identical video workers: how many, how fast, and where they run.

    Pools of different speed classes make a heterogeneous fleet (a fast pool and a
    cheap one on one machine; Ray actors with GPUs across machines): the most urgent
    segments go to the fastest free worker.
    """

    name: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    workers: int = Field(1, ge=1, le=64)
    #: Relative speed class: 1.0 draws as fast as the profile measured, 0.5 half as fast.
    speed: float = Field(1.0, gt=0.0, le=100.0)
    #: process: a process of its own per worker (replaced if it dies); thread: in the
    #: server process; ray: a Ray actor per worker (``ray`` section of the deployment).
    backend: Literal["process", "thread", "ray"] = "process"
    #: OS niceness of process workers: a cheap pool that yields the CPU to the others.
    nice: int = Field(0, ge=0, le=19)
    #: Ray resources per worker (actor): CPUs, GPUs (fractions allowed) and custom
    #: resources such as a GPU type (``{"gpu_h200": 1}``).
    num_cpus: float = Field(1.0, ge=0.0, le=256.0)
    num_gpus: float = Field(0.0, ge=0.0, le=16.0)
    resources: dict[str, float] = Field(default_factory=dict)
    #: Where its workers' animator runs: ``cpu`` or a CUDA device (``cuda``, ``cuda:1``).
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:[0-9]{1,2})?)$")
    #: The ladder tiers its workers draw (none listed: every tier). A GPU pool lists the
    #: neural tiers; the planner picks a segment's tier among those some pool draws.
    tiers: list[str] | None = None

    def draws(self, tier: str) -> bool:
        return self.tiers is None or tier in self.tiers


class AdapterSpec(_Strict):
    adapter: str
    params: dict[str, Any] = Field(default_factory=dict)
    workers: int = Field(1, ge=1, le=64)
    #: Video only: heterogeneous worker pools; without it, one pool of ``workers``
    #: workers of the kind ``runtime.video_workers`` names.
    pools: list[PoolSpec] | None = Field(None, min_length=1)

    @field_validator("pools")
    @classmethod
    def _unique_pools(cls, pools: list[PoolSpec] | None) -> list[PoolSpec] | None:
        names = [p.name for p in pools or []]
        if len(set(names)) != len(names):
            raise ValueError(f"pool names must be unique, got {names}")
        return pools


class HostSpec(_Strict):
    name: str = Field(min_length=1, max_length=24)
    voice: str


class TierSpec(_Strict):
    name: str
    height: Literal[240, 360, 480, 540, 720, 1080]
    fps: Literal[15, 25, 30]
    supersample: Literal[1, 2, 3] = 1
    #: Seconds of drawing per second of media on this machine (bench/render.py measures
    #: it); the adaptive policy starts from it and follows what the workers measure.
    rtf: float = Field(0.1, gt=0.0, le=100.0)

    def quality(self) -> Quality:
        return Quality(name=self.name, height=self.height, fps=self.fps, supersample=self.supersample)


class SegmenterSpec(_Strict):
    #: Words per segment: a few seconds of speech.
    max_words: int = Field(16, ge=3, le=80)
    #: The very first segments are shorter so the first one is ready sooner.
    first_max_words: int = Field(8, ge=2, le=80)
    first_segments: int = Field(1, ge=0, le=10)
    #: Silence after each line, part of the segment that ends the line.
    pause_ms: int = Field(280, ge=0, le=3000)


class AdmissionSpec(_Strict):
    """When the server refuses (503 + Retry-After) or queues a new episode.

    An episode is admitted when the predicted real-time load of every generating
    episode at the floor tier, plus the new one, stays under ``max_load`` of the
    machine's cores (costs from the profile), and the new one's first segment is
    predicted within the startup target under that load.
    """

    enabled: bool = True
    #: Fraction of the CPU cores the generating episodes may need at their floor tier.
    max_load: float = Field(0.8, gt=0.0, le=4.0)
    #: Cores to plan for; null: what this process may use (os.sched_getaffinity).
    cores: float | None = Field(None, gt=0.0, le=1024.0)
    #: Seconds of CPU per second of media for each viewer's WebRTC stream (packets and
    #: encryption of the shared frames; about 0.12 more with ``runtime.shared_encoding`` off,
    #: an encoder per viewer): the starting point when ``learn_costs`` is on.
    viewer_rtf: float = Field(0.02, ge=0.0, le=10.0)
    #: Learn what generating and streaming really cost this server from its own CPU time
    #: (kept in the media directory across restarts), and leave to other programs the
    #: cores they keep busy; off: plan with the profile and ``viewer_rtf`` alone.
    learn_costs: bool = True
    #: Requests that may wait are queued, at most this many at once.
    max_queue: int = Field(8, ge=0, le=1000)


class RuntimeSpec(_Strict):
    #: The script stops writing while this many segments wait to be rendered. On a
    #: small machine the LLM otherwise takes the cores the first segment needs.
    lead_segments: int = Field(3, ge=1, le=100)
    #: Spoken segments ready before viewers start while other episodes generate on the
    #: same workers (alone on them: one). Under contention the second segment often
    #: arrives after the short first one has played: waiting for it moves the first word
    #: later instead of stalling right after it.
    start_segments_shared: int = Field(2, ge=1, le=5)
    #: Frames wait for viewers JPEG-compressed plane by plane, a fraction of their raw
    #: size; null keeps raw I420, which only short episodes can afford.
    frame_jpeg_quality: int | None = Field(90, ge=50, le=100)
    #: Each segment is encoded once (VP8) on the worker that drew it and every WebRTC
    #: viewer is sent those frames; off, every viewer has an encoder of its own.
    shared_encoding: bool = True
    #: Queues run earliest deadline first across all episodes ("fifo" for comparison).
    scheduling: Literal["edf", "fifo"] = "edf"
    #: A segment's deadline is its playout time minus this margin; playout of an
    #: episode's first words is expected this long after the request.
    deadline_margin_s: float = Field(0.5, ge=0.0, le=30.0)
    startup_target_s: float = Field(1.0, ge=0.1, le=60.0)
    #: Video workers draw in their own processes (replaced if one dies) or in threads.
    video_workers: Literal["process", "thread"] = "process"
    #: A free worker also runs a job another worker straggles on (far past its
    #: prediction), and the first result is kept: one slow worker cannot stall an episode.
    backup_runs: bool = True
    admission: AdmissionSpec = AdmissionSpec()


class QuestionsSpec(_Strict):
    """Viewers' questions answered live in the episode (pipelines/questions.py)."""

    #: Off: every question is refused (403) with the reason below.
    enabled: bool = True
    #: Why questions are off, as the viewer is told.
    disabled_reason: str = "this show does not take questions"
    #: Off: questions are typed only; a viewer who asks by voice is told so (403).
    voice: bool = True
    #: The longest question read out, in characters after cleaning.
    max_chars: int = Field(280, ge=20, le=1000)
    #: One viewer (or API key) asks at most once in this many seconds.
    per_viewer_interval_s: float = Field(15.0, ge=0.0, le=3600.0)
    #: Questions waiting for their turn in one episode; more are refused (429).
    max_queued: int = Field(3, ge=1, le=50)
    #: Media time kept between the furthest viewer and the splice: the time to voice and
    #: draw the reading of the question, so nobody stalls at it.
    splice_margin_s: float = Field(1.5, ge=0.2, le=30.0)
    #: While an episode takes questions it generates at most this far ahead of its
    #: furthest viewer: what a question discards, and how long the ending cannot take one.
    max_lead_s: float = Field(20.0, ge=2.0, le=600.0)
    #: A question that finds no splice point in this long (the voices have not got far
    #: enough ahead) is declined; the show goes on.
    answer_timeout_s: float = Field(10.0, ge=1.0, le=120.0)


class RaySpec(_Strict):
    """Where Ray-backed worker pools run."""

    #: A running cluster ("ray://host:10001" or "host:6379"); null starts a local one.
    address: str | None = None
    namespace: str = Field("streamwise", min_length=1)
    #: CPUs of the local cluster started when no address is given (null: all).
    num_cpus: int | None = Field(None, ge=1, le=1024)
    #: Object store of the local cluster, in MiB (Ray's minimum is 76).
    object_store_mb: int = Field(256, ge=76, le=1_000_000)


class TimelineSpec(_Strict):
    #: The title card plays this long before the first words.
    intro_s: float = Field(1.2, ge=0.0, le=10.0)
    #: The closing card after the last words.
    outro_s: float = Field(1.2, ge=0.0, le=10.0)


class CameraSpec(_Strict):
    """How the camera is cut between the two-shot and close-ups (pipelines/plan/shots.py).

    The defaults follow common practice for two-person talk shows.
    """

    #: Off: every segment is drawn in the two-shot.
    cuts: bool = True
    #: No shot is cut shorter than this.
    min_shot_s: float = Field(4.0, ge=1.0, le=60.0)
    #: A close-up held this long goes back to the two-shot at the next line.
    max_close_up_s: float = Field(14.0, ge=2.0, le=600.0)
    #: At a line that may cut: how often the new speaker gets a close-up...
    speaker_close_up: float = Field(0.6, ge=0.0, le=1.0)
    #: ...and how often the listener's reaction is shown instead (the rest: the two-shot).
    listener_close_up: float = Field(0.12, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _shares(self) -> CameraSpec:
        if self.speaker_close_up + self.listener_close_up > 1.0:
            raise ValueError("speaker_close_up + listener_close_up must be at most 1 (the rest is the two-shot)")
        return self


class QualitySpec(_Strict):
    ladder: list[TierSpec] = Field(min_length=1)
    #: Tier used when nothing else decides.
    default: str
    #: Fixed early-low rule: the first N segments use ``startup`` to start faster.
    startup: str | None = None
    startup_segments: int = Field(0, ge=0, le=20)
    #: adaptive: per segment, the highest tier that meets its deadline given the live
    #: buffer and queue (pipelines/plan/tier_planner.py). For comparison: static (the default
    #: tier), static-high / static-low (top / bottom of the ladder), fifo (default
    #: tier, queues in arrival order, no deadlines), batch (generate it all, then play).
    policy: Policy = "adaptive"
    #: The adaptive policy never goes below this tier.
    floor: str | None = None
    #: Seconds of buffer the adaptive policy keeps in reserve: a rung up needs this much
    #: slack beyond the segment's predicted drawing, holding a tier half of it.
    reserve_s: float = Field(2.0, ge=0.0, le=60.0)
    #: The adaptive policy goes above the default tier only while the machine's CPUs are
    #: busy less than this share of the time (drawing shares them with script and speech).
    climb_below_cpu: float = Field(0.85, gt=0.0, le=1.0)
    #: ...unless every generating episode has at least this many seconds of content ready
    #: ahead of its viewers: then busy CPUs are generation running ahead, not a shortage.
    climb_lead_s: float = Field(12.0, ge=0.0, le=3600.0)
    #: A measured profile (``streamwise profile``); its drawing costs replace the ladder's ``rtf``.
    profile: str | None = None

    @model_validator(mode="after")
    def _check_names(self) -> QualitySpec:
        names = [t.name for t in self.ladder]
        if len(set(names)) != len(names):
            raise ValueError(f"ladder: tier names must be unique, got {names}")
        for field in ("default", "startup", "floor"):
            value = getattr(self, field)
            if value is not None and value not in names:
                raise ValueError(f"{field}: unknown tier {value!r}; allowed: {names}")
        heights = [t.height for t in self.ladder]
        if heights != sorted(heights):
            raise ValueError(f"ladder: tiers must be ordered from lowest to highest, got heights {heights}")
        return self

    def tier(self, name: str) -> Quality:
        for t in self.ladder:
            if t.name == name:
                return t.quality()
        raise KeyError(name)

    def qualities(self) -> list[Quality]:
        return [t.quality() for t in self.ladder]

    def stream_tier(self, requested: str | None = None) -> Quality:
        """The size every frame of an episode is delivered at: viewers, archive and fallback.

        One size per episode, so a tier change is never a resolution switch for a
        viewer; tiers above it are drawn at their size (supersampled: sharper) and
        scaled down once, on the worker that drew them.
        """
        return self.tier(requested or self.default)


class OutputSpec(_Strict):
    video_codec: Literal["libx264", "h264"] = "libx264"
    preset: str = "veryfast"
    crf: int = Field(23, ge=0, le=51)
    #: Encoder threads (0: the encoder decides). One costs x264 less CPU per frame than
    #: its own choice, and the archive has slack (figures: docs/configuration.md).
    threads: int = Field(1, ge=0, le=64)
    audio_bitrate: int = Field(96_000, ge=16_000, le=320_000)


class Deployment(_Strict):
    name: str
    clock_rate: Literal[48000] = CLOCK_RATE
    hosts: list[HostSpec] = Field(min_length=2, max_length=2)
    tasks: dict[str, AdapterSpec]
    segmenter: SegmenterSpec = SegmenterSpec()
    timeline: TimelineSpec = TimelineSpec()
    camera: CameraSpec = CameraSpec()
    runtime: RuntimeSpec = RuntimeSpec()
    quality: QualitySpec
    output: OutputSpec = OutputSpec()
    questions: QuestionsSpec = QuestionsSpec()
    #: Only for pools with ``backend: ray``.
    ray: RaySpec = RaySpec()

    @field_validator("hosts")
    @classmethod
    def _distinct_hosts(cls, hosts: list[HostSpec]) -> list[HostSpec]:
        if hosts[0].name.lower() == hosts[1].name.lower():
            raise ValueError("the two hosts need different names")
        return hosts

    @model_validator(mode="after")
    def _pools_draw_the_ladder(self) -> Deployment:
        """Every tier some pool draws, and every tier a pool lists is on the ladder."""
        names = [t.name for t in self.quality.ladder]
        pools = self.video_pools()
        for pool in pools:
            unknown = [t for t in pool.tiers or () if t not in names]
            if unknown:
                raise ValueError(f"tasks.video.pools.{pool.name}.tiers: unknown tier(s) {unknown}; ladder: {names}")
        undrawn = [t for t in names if pools and not any(p.draws(t) for p in pools)]
        if undrawn:
            raise ValueError(f"quality.ladder: no video pool draws {undrawn}; list them in a pool's tiers")
        return self

    def video_pools(self) -> list[PoolSpec]:
        """The video worker pools: declared ones, or one pool of ``workers`` workers."""
        spec = self.tasks.get("video")
        if spec is None:
            return []
        if spec.pools:
            return list(spec.pools)
        return [PoolSpec(name="video", workers=spec.workers, backend=self.runtime.video_workers)]

    def grid_samples(self) -> int:
        """Segments are padded to a multiple of this, so every tier's frames and the audio
        packets tile them exactly."""
        from pipelines.playout.clock import grid_for

        return grid_for([t.fps for t in self.quality.ladder])

    def check_against(self, workflow: Workflow, source: str) -> None:
        missing = [
            name for name, task in workflow.tasks.items()
            if task.kind in ("script", "speech", "video") and name not in self.tasks
        ]
        if missing:
            raise ConfigError(
                f"{source}: tasks: no adapter for workflow task(s) {missing}; "
                f"the workflow {workflow.name!r} declares {sorted(workflow.tasks)}"
            )
        extra = sorted(set(self.tasks) - set(workflow.tasks))
        if extra:
            raise ConfigError(
                f"{source}: tasks: {extra} not in workflow {workflow.name!r}; allowed: {sorted(workflow.tasks)}"
            )


# ------------------------------------------------------------------ loading
def format_validation_error(path: Path, err: ValidationError, what: str = "configuration") -> str:
    """One line per problem: the field's dotted path and what is allowed."""
    lines = [f"{path}: invalid {what}"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "literal_error":
            expected = e.get("ctx", {}).get("expected", "")
            msg = f"got {e.get('input')!r}; allowed: {expected}"
        elif e["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling)"
        elif e["type"] == "missing":
            msg = "required field is missing"
        lines.append(f"  {loc}: {msg}" if loc else f"  {msg}")  # cross-field checks name their fields
    return "\n".join(lines)


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; ConfigError says what is wrong with the file."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


M = TypeVar("M", bound=BaseModel)


def load_model(path: Path, model: type[M], what: str = "configuration") -> M:
    try:
        return model.model_validate(read_yaml(path))
    except ValidationError as err:
        raise ConfigError(format_validation_error(path, err, what)) from None


def load_workflow(path: str | Path = DEFAULT_WORKFLOW) -> Workflow:
    return load_model(Path(path), Workflow)


def load_deployment(path: str | Path = DEFAULT_DEPLOYMENT, workflow: Workflow | None = None) -> Deployment:
    path = Path(path)
    deployment = load_model(path, Deployment)
    if workflow is not None:
        deployment.check_against(workflow, str(path))
    return deployment
