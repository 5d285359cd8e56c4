"""Measured profiles: what each stage costs on this machine, per tier.

Contract: ``measure`` runs the real models on a real episode in this process
(``pipelines.plan.profiling``) and writes ``<out_dir>/<name>.yaml``, keeping per stage
and tier the fitted line time = fixed + per_media_s x seconds of media, with the
real-time factor, and per tier the speed-up of a segment split over the deployment's
video workers. Deployments point at a profile (``quality.profile``) and the planner
starts from its figures instead of hand-tuned numbers. ``profile_from_bench`` reads the
same figures from ``bench/render.py``'s JSON, so a benchmark run can become a profile.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

from pipelines.config import (
    CONFIG_DIR,
    DEFAULT_DEPLOYMENT,
    DEFAULT_WORKFLOW,
    load_deployment,
    load_model,
    load_workflow,
)
from pipelines.plan.stage_figures import Measurement

PROFILE_DIR = CONFIG_DIR / "profiles"


class Fit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fixed_s: float = 0.0
    per_media_s: float = Field(ge=0.0)
    rtf: float = Field(ge=0.0)


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    created: str
    #: Where the figures were measured (``profiling.machine_info``), kept free-form so
    #: that a profile from another version of the measuring code still loads.
    machine: dict[str, Any] = Field(default_factory=dict)
    #: None in a profile of the neural tiers alone (bench/gpu.py).
    script: Fit | None = None
    speech: Fit | None = None
    video: dict[str, Fit]
    encode: dict[str, Fit] = Field(default_factory=dict)
    #: Per tier, how much faster one segment is drawn split over k workers than on one
    #: (k -> speed-up); the planner plans splits with it. Empty where it was not
    #: measured (a single worker): splits are then planned as ideal.
    parallel: dict[str, dict[int, PositiveFloat]] = Field(default_factory=dict)

    def video_rtf(self) -> dict[str, float]:
        return {tier: fit.rtf for tier, fit in self.video.items()}


def _fit(stage: Mapping[str, Any]) -> Fit:
    """Without a fitted line (too few segments), the real-time factor is the slope."""
    fit = stage.get("fit") or {}
    return Fit(fixed_s=round(float(fit.get("fixed_s", 0.0)), 4),
               per_media_s=round(max(0.0, float(fit.get("per_media_s", stage["rtf"]))), 4),
               rtf=round(float(stage["rtf"]), 4))


def profile_from_bench(name: str, bench: Mapping[str, Any]) -> Profile:
    """Turn a measurement (``bench/render.py``'s JSON, or ``measure``'s figures in memory) into a profile.

    Reads only ``created``, ``machine`` and ``stages``; a stage needs ``rtf`` and may
    carry ``fit``. Typed loosely on purpose: it also reads JSON written by other versions.
    """
    stages = bench["stages"]
    return Profile(
        name=name,
        created=bench.get("created") or datetime.now().isoformat(timespec="seconds"),
        machine=bench.get("machine") or {},
        script=_fit(stages["script"]),
        speech=_fit(stages["speech"]),
        video={tier: _fit(v) for tier, v in stages["video"].items()},
        encode={tier: _fit(v) for tier, v in (stages.get("encode") or {}).items()},
        parallel={tier: {int(k): float(x) for k, x in by_k.items()} for tier, by_k in (stages.get("parallel") or {}).items()},
    )


def load_profile(path: str | Path) -> Profile:
    return load_model(Path(path), Profile, "profile")


def _measure_figures(duration_s: float, deploy: str | None) -> Measurement:
    """Load the deployment's models and time every stage and tier; progress on stderr."""
    # Imported here: measuring loads the models' and the encoder's modules, and the
    # server, which only reads profiles (pipelines.stages.pools), must not pay for them.
    from pipelines.plan.profiling import (
        PROFILE_TOPIC,
        load_and_warm,
        machine_info,
        measure_stages,
        progress_bar,
        record_load_at_end,
    )

    workflow = load_workflow(DEFAULT_WORKFLOW)
    deployment = load_deployment(deploy or os.environ.get("STREAMWISE_DEPLOY", str(DEFAULT_DEPLOYMENT)), workflow)
    tiers = [t.name for t in deployment.quality.ladder]
    created = datetime.now(UTC).isoformat(timespec="seconds")
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="streamwise-profile-") as tmp, progress_bar() as bar:
        models, _load = load_and_warm(deployment, workflow, bar)
        stages = measure_stages(models, deployment, PROFILE_TOPIC, duration_s, tiers, Path(tmp), bar)
    record_load_at_end(machine)
    return {"created": created, "machine": machine, "stages": stages}


def measure(name: str, duration_s: float, deploy: str | None, out_dir: Path = PROFILE_DIR) -> Path:
    """Measure this machine on a ``duration_s`` episode and write ``<out_dir>/<name>.yaml`` atomically."""
    profile = profile_from_bench(name, _measure_figures(duration_s, deploy))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.yaml"
    tmp_path = path.with_name(f".{path.name}.part")
    tmp_path.write_text("# Written by `streamwise profile`: seconds of compute per second of media on this machine.\n"
                        + yaml.safe_dump(profile.model_dump(), sort_keys=False))
    tmp_path.replace(path)
    return path
