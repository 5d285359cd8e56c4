"""Stage latency/power profiles: the StreamWise reference CSVs per GPU type, or a local YAML.

Everything downstream (simulator, calibration, planner) sees one shape, :class:`Profiles`:
a list of stages in DAG order, each with *options* (a GPU type and a device count) whose
service time for one job is a function of the job's media seconds/frames and quality
scale. That is what lets one code path plan a laptop (YAML from ``streamwise profile``)
and a fleet (the paper's profiles).

The reference CSVs are bundled in ``fleet/reference`` (MIT, see LICENSE there)
so that planning works without the shared checkout; ``STREAMWISE_REFERENCE`` overrides.
"""
from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fleet.prices import GPU_PRICES

GPU_TYPES: tuple[str, ...] = ("a100", "h100", "h200", "gb200")
SPOT_PRICE: dict[str, float] = {name.lower(): spot for name, (spot, _) in GPU_PRICES.items()}
RESERVED_PRICE: dict[str, float] = {name.lower(): reserved for name, (_, reserved) in GPU_PRICES.items()}
IDLE_WATTS: dict[str, float] = {"a100": 65.0, "h100": 80.0, "h200": 80.0, "gb200": 170.0}
SERVER_GPUS = 8  # the paper bills whole 8-GPU servers (GB200 too: "nothing fits" in 4)

# The paper's podcast workload at 10 minutes; scaled linearly for other lengths.
FPS_DRAFT = 30  # HunyuanFramePack
FPS_LIPSYNC = 23  # FantasyTalking
SCENES_PER_10MIN = 43
SUBSCENES_PER_10MIN = 172
STEPS = {"image": 25, "draft": 10, "lipsync": 10}
CLIP_FRAMES = {"draft": 324, "lipsync": 77}  # frames of the profiled clip
DEVICE_OPTIONS = {
    "script": (1, 2, 4, 8),
    "image": (1, 2, 4, 8, 16),
    "others": (1,),
    "draft": (1, 2, 4, 8, 10, 16, 20, 24, 32, 40),
    "draft_vae": (1,),
    "lipsync": (1, 2, 4, 8, 10, 16, 20, 24, 32, 40),
    "lipsync_vae": (1,),
    "upscale": (1, 2, 4, 8),
}
# Quality tiers: latency scale relative to the profiled 640x400 ("medium"), and whether the
# 2x upscaler runs after lip-sync. "high" = generate at medium, upscale (the paper's choice);
# "high_native" = generate at 1280x800 (x4 pixels), no upscaler (the naive baseline).
TIERS: dict[str, tuple[float, bool]] = {
    "low": (0.25, False),
    "medium": (1.0, False),
    "high": (1.0, True),
    "high_native": (4.0, False),
}


class ProfileError(ValueError):
    """Bad profile input (unknown GPU, malformed YAML); the CLI turns it into exit code 2."""


@dataclass(frozen=True)
class Job:
    """What a stage is asked to do once: ``frames`` of output covering ``media_s`` seconds."""

    media_s: float
    frames: int  # lip-sync frames (23 fps) for the paper's workload
    scale: float = 1.0  # pixel ratio vs the profiled resolution
    first: bool = False  # first job of a per-scene stage (the LLM's prefill)


ServiceFn = Callable[[Job], float]


@dataclass(frozen=True)
class Option:
    """One way to run a stage: ``devices`` GPUs of ``gpu`` in one replica."""

    gpu: str
    devices: int
    service: ServiceFn = field(compare=False, repr=False)
    busy_watts: float = 0.0  # whole replica while working


@dataclass(frozen=True)
class Stage:
    """A DAG node. ``per`` is ``once`` (one job per episode), ``scene`` or ``chunk``."""

    name: str
    per: str
    deps: tuple[str, ...]
    options: tuple[Option, ...]
    tiered: bool = False  # latency scales with the chunk's quality tier
    optional: bool = False  # only runs for tiers that need it (the upscaler)


@dataclass(frozen=True)
class Workload:
    """An episode: how much video, split into scenes and lip-sync-sized subscenes."""

    video_s: float = 600.0
    scenes: int = SCENES_PER_10MIN
    subscenes: int = SUBSCENES_PER_10MIN
    fps: int = FPS_LIPSYNC

    @classmethod
    def minutes(cls, minutes: float) -> Workload:
        """Scale the paper's 10-minute podcast (43 scenes, 172 subscenes)."""
        if not minutes > 0:
            raise ProfileError(f"--video-minutes must be positive, got {minutes}")
        f = minutes / 10.0
        return cls(video_s=60.0 * minutes, scenes=max(1, round(SCENES_PER_10MIN * f)),
                   subscenes=max(2, round(SUBSCENES_PER_10MIN * f)))

    @property
    def frames(self) -> int:
        return math.ceil(self.video_s * self.fps)

    @property
    def subscene_frames(self) -> int:
        return math.ceil(self.frames / self.subscenes)


@dataclass(frozen=True)
class Profiles:
    """Stages in topological order plus the price/idle tables of the devices they use."""

    name: str
    stages: tuple[Stage, ...]
    spot: dict[str, float]
    reserved: dict[str, float]
    idle_watts: dict[str, float]
    server_size: dict[str, int]
    gpu_types: tuple[str, ...]

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def restrict(self, gpus: list[str]) -> Profiles:
        """Keep only options on ``gpus``; every stage must keep at least one."""
        unknown = [g for g in gpus if g not in self.gpu_types]
        if unknown:
            raise ProfileError(f"unknown GPU type(s) {unknown}; allowed: {list(self.gpu_types)}")
        stages = []
        for s in self.stages:
            opts = tuple(o for o in s.options if o.gpu in gpus)
            if not opts:
                raise ProfileError(f"stage {s.name!r} has no profile on {gpus}")
            stages.append(Stage(s.name, s.per, s.deps, opts, s.tiered, s.optional))
        return Profiles(self.name, tuple(stages), self.spot, self.reserved, self.idle_watts,
                        self.server_size, tuple(g for g in self.gpu_types if g in gpus))


# --------------------------------------------------------------------------- reference CSVs

def reference_dir() -> Path:
    """Where the StreamWise simulator CSVs live: env override, else the bundled copy."""
    env = os.environ.get("STREAMWISE_REFERENCE")
    if env:
        p = Path(env)
        return p / "simulator" if (p / "simulator").is_dir() else p
    return Path(__file__).with_name("reference")


def _rows(path: Path) -> list[dict[str, float]]:
    """Numeric rows of a CSV, skipping the '#' comment lines the paper's files carry."""
    with path.open() as fh:
        lines = [ln for ln in fh if ln.strip() and not ln.startswith("#")]
    return [{k: float(v) for k, v in r.items() if k and v not in (None, "")} for r in csv.DictReader(lines)]


def _table(path: Path, key: str, *cols: str) -> dict[int, tuple[float, ...]]:
    return {int(r[key]): tuple(r[c] for c in cols) for r in _rows(path)}


def _power(ref: Path, name: str, gpu: str) -> dict[int, float]:
    path = ref / f"power_{name}_{gpu}.csv"
    return {k: v[0] for k, v in _table(path, "world_size", "power_watts").items()} if path.exists() else {}


def reference_profiles(ref: Path | None = None) -> Profiles:
    """Build the podcast DAG from the paper's per-GPU latency and power tables.

    Units are restated from the paper's model: FLUX is s/step (25 steps); FramePack and
    FantasyTalking are s/step for a 324- or 77-frame clip (10 steps) plus a per-clip VAE
    on one GPU, scaled linearly by frames and by pixel ratio; the upscaler is s/frame.
    """
    ref = ref or reference_dir()
    if not (ref / "latency_gemma_a100.csv").exists():
        raise ProfileError(f"reference profiles not found in {ref}")
    opts: dict[str, list[Option]] = {k: [] for k in DEVICE_OPTIONS}
    for g in GPU_TYPES:
        gemma = _table(ref / f"latency_gemma_{g}.csv", "tp", "first_scene_time", "per_scene_time")
        p_first, p_per = _power(ref, "gemma_first_scene", g), _power(ref, "gemma_per_scene", g)
        for tp, (first, per) in gemma.items():
            def svc(job: Job, first=first, per=per) -> float:
                return first if job.first else per
            opts["script"].append(Option(g, tp, svc, (p_first.get(tp, 0) + p_per.get(tp, 0)) / 2))
        flux, p = _table(ref / f"latency_flux_mapping_{g}.csv", "world_size", "avg_steps_time"), _power(ref, "flux_mapping", g)
        for d, (step,) in flux.items():
            opts["image"].append(Option(g, d, lambda job, s=step: s * STEPS["image"], p.get(d, 0)))
        (others,) = _table(ref / f"latency_others_{g}.csv", "world_size", "time")[1]
        opts["others"].append(Option(g, 1, lambda job, t=others: t, IDLE_WATTS[g]))
        for stage, fname, fps in (("draft", "hf_mapping", FPS_DRAFT), ("lipsync", "ft_mapping", FPS_LIPSYNC)):
            tab = _table(ref / f"latency_{fname}_{g}.csv", "world_size", "avg_steps_time", "vae_time")
            p = _power(ref, fname, g)
            vae_key = "hf_vae" if stage == "draft" else "ft_vae_mapping"
            pv = _power(ref, vae_key, g)
            clip = CLIP_FRAMES[stage]
            for d, (step, vae) in tab.items():
                opts[stage].append(Option(
                    g, d, lambda job, s=step, c=clip, f=fps, st=STEPS[stage]: _frames(job, f) / c * s * st * job.scale,
                    p.get(d, 0)))
            vae = tab[1][1]
            opts[stage + "_vae"].append(Option(
                g, 1, lambda job, v=vae, c=clip, f=fps: _frames(job, f) / c * v * job.scale, pv.get(1, 0)))
        up, p = _table(ref / f"latency_upscaler_{g}.csv", "world_size", "avg_steps_time"), _power(ref, "upscaler", g)
        for d, (per_frame,) in up.items():
            opts["upscale"].append(Option(g, d, lambda job, t=per_frame: job.frames * t, p.get(d, 0)))
    stages = (
        Stage("script", "scene", (), tuple(opts["script"])),
        Stage("image", "once", ("script",), tuple(opts["image"])),
        Stage("others", "scene", ("script", "image"), tuple(opts["others"])),
        Stage("draft", "chunk", ("others", "image"), tuple(opts["draft"]), tiered=True),
        Stage("draft_vae", "chunk", ("draft",), tuple(opts["draft_vae"]), tiered=True),
        Stage("lipsync", "chunk", ("draft_vae", "others"), tuple(opts["lipsync"]), tiered=True),
        Stage("lipsync_vae", "chunk", ("lipsync",), tuple(opts["lipsync_vae"]), tiered=True),
        Stage("upscale", "chunk", ("lipsync_vae",), tuple(opts["upscale"]), optional=True),
    )
    return Profiles("streamwise-reference", stages, dict(SPOT_PRICE), dict(RESERVED_PRICE), dict(IDLE_WATTS),
                    {g: SERVER_GPUS for g in GPU_TYPES}, GPU_TYPES)


def _frames(job: Job, fps: int) -> float:
    """Frames a stage generates for a job; the paper rounds per-subscene frames up."""
    return math.ceil(job.media_s * fps - 1e-9) if fps != FPS_LIPSYNC else job.frames


# --------------------------------------------------------------------------- local YAML

LOCAL_SCHEMA = """\
name: laptop                       # free text
devices:                           # what can run stages; count = how many you have
  cpu:  {count: 1, price_per_hour: 0.0, idle_watts: 10, busy_watts: 40}
stages:                            # in DAG order; each depends on the previous one
  script: {per: scene, options: {cpu: {seconds_fixed: 1.5, seconds_per_media_second: 0.02}}}
  voice:  {per: chunk, options: {cpu: {seconds_fixed: 0.1, seconds_per_media_second: 0.15}}}
  render: {per: chunk, options: {cpu: {seconds_fixed: 0.05, seconds_per_media_second: 0.4}}}
"""


def load_local_profiles(path: str | Path) -> tuple[Profiles, dict[str, int]]:
    """Read a profiler YAML (schema in ``LOCAL_SCHEMA``); returns profiles and device counts.

    A job's service time is ``seconds_fixed + seconds_per_media_second * media seconds``,
    which is what a single-machine profiler can measure by timing two chunk lengths.
    """
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"--profile {path}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("devices"), dict) or not isinstance(doc.get("stages"), dict):
        raise ProfileError(f"--profile {path}: needs 'devices' and 'stages' mappings; schema:\n{LOCAL_SCHEMA}")
    devices = doc["devices"]
    counts, price, idle = {}, {}, {}
    busy: dict[str, float] = {}
    for name, d in devices.items():
        d = d or {}
        counts[str(name)] = int(d.get("count", 1))
        price[str(name)] = float(d.get("price_per_hour", 0.0))
        idle[str(name)] = float(d.get("idle_watts", 0.0))
        busy[str(name)] = float(d.get("busy_watts", idle[str(name)]))
    stages: list[Stage] = []
    prev: tuple[str, ...] = ()
    for sname, spec in doc["stages"].items():
        spec = spec or {}
        per = spec.get("per", "chunk")
        if per not in ("once", "scene", "chunk"):
            raise ProfileError(f"--profile {path}: stage {sname}: per must be once, scene or chunk")
        options = []
        for dev, o in (spec.get("options") or {}).items():
            if dev not in counts:
                raise ProfileError(f"--profile {path}: stage {sname}: unknown device {dev!r}")
            fixed, rate = float(o.get("seconds_fixed", 0.0)), float(o.get("seconds_per_media_second", 0.0))
            if fixed < 0 or rate < 0:
                raise ProfileError(f"--profile {path}: stage {sname}: negative latency")
            options.append(Option(dev, 1, lambda job, a=fixed, b=rate: a + b * job.media_s, busy[dev]))
        if not options:
            raise ProfileError(f"--profile {path}: stage {sname} has no options")
        stages.append(Stage(str(sname), per, prev, tuple(options)))
        prev = (str(sname),)
    names = tuple(counts)
    prof = Profiles(str(doc.get("name", Path(path).stem)), tuple(stages), price, price, idle, {n: 1 for n in names}, names)
    return prof, counts


def fold_vae(profiles: Profiles, main: str) -> Profiles:
    """Run ``<main>_vae`` on the same replica as ``main`` (the paper's "no disaggregation").

    The merged stage's service time is main + VAE on the same GPU type; later stages that
    depend on the VAE depend on the merged stage instead.
    """
    vae_name = main + "_vae"
    try:
        vae = profiles.stage(vae_name)
    except KeyError:
        return profiles
    vae_by_gpu = {o.gpu: o for o in vae.options}
    stages = []
    for s in profiles.stages:
        if s.name == vae_name:
            continue
        if s.name == main:
            opts = tuple(Option(o.gpu, o.devices,
                                lambda job, a=o.service, b=vae_by_gpu[o.gpu].service: a(job) + b(job), o.busy_watts)
                         for o in s.options if o.gpu in vae_by_gpu)
            s = Stage(s.name, s.per, s.deps, opts, s.tiered, s.optional)
        deps = tuple(main if d == vae_name else d for d in s.deps)
        stages.append(Stage(s.name, s.per, deps, s.options, s.tiered, s.optional))
    return Profiles(profiles.name, tuple(stages), profiles.spot, profiles.reserved, profiles.idle_watts,
                    profiles.server_size, profiles.gpu_types)
