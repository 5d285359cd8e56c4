"""Measured profiles: what each stage costs on this machine, per tier.

``streamwise profile`` runs ``bench/render.py`` (the real models on a real
episode) and keeps, per stage and tier, the fitted line time = fixed + per_media_s
x seconds of media, with the real-time factor, and per tier the speed-up of a
segment split over the deployment's video workers. Deployments point at a profile
(``quality.profile``) and the planner starts from its figures instead of
hand-tuned numbers.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

from pipelines.config import CONFIG_DIR, REPO_ROOT, load_model

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
    machine: dict[str, Any] = Field(default_factory=dict)
    script: Fit
    speech: Fit
    video: dict[str, Fit]
    encode: dict[str, Fit] = Field(default_factory=dict)
    #: Per tier, how much faster one segment is drawn split over k workers than on one
    #: (k -> speed-up); the planner plans splits with it. Empty in older profiles: ideal.
    parallel: dict[str, dict[int, PositiveFloat]] = Field(default_factory=dict)

    def video_rtf(self) -> dict[str, float]:
        return {tier: fit.rtf for tier, fit in self.video.items()}


def _fit(stage: dict[str, Any]) -> Fit:
    fit = stage.get("fit") or {}
    return Fit(fixed_s=round(float(fit.get("fixed_s", 0.0)), 4),
               per_media_s=round(max(0.0, float(fit.get("per_media_s", stage["rtf"]))), 4),
               rtf=round(float(stage["rtf"]), 4))


def profile_from_bench(name: str, bench: dict[str, Any]) -> Profile:
    """Turn bench/render.py's JSON into a profile."""
    stages = bench["stages"]
    return Profile(
        name=name,
        created=bench.get("created") or time.strftime("%Y-%m-%dT%H:%M:%S"),
        machine=bench.get("machine") or {},
        script=_fit(stages["script"]),
        speech=_fit(stages["speech"]),
        video={tier: _fit(v) for tier, v in stages["video"].items()},
        encode={tier: _fit(v) for tier, v in (stages.get("encode") or {}).items()},
        parallel={tier: {int(k): float(x) for k, x in by_k.items()} for tier, by_k in (stages.get("parallel") or {}).items()},
    )


def load_profile(path: str | Path) -> Profile:
    return load_model(Path(path), Profile, "profile")


def measure(name: str, duration_s: float, deploy: str | None, out_dir: Path = PROFILE_DIR) -> Path:
    """Run the render benchmark (its progress shows on stderr) and write ``<out_dir>/<name>.yaml``."""
    with tempfile.TemporaryDirectory() as tmp:
        result_path = Path(tmp) / "bench.json"
        command = [sys.executable, str(REPO_ROOT / "bench" / "render.py"), "--duration", f"{duration_s:g}",
                   "--json", str(result_path)]
        if deploy:
            command += ["--deploy", deploy]
        subprocess.run(command, cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)
        bench = json.loads(result_path.read_text())
    profile = profile_from_bench(name, bench)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.yaml"
    tmp_path = path.with_name(f".{path.name}.part")
    tmp_path.write_text("# Written by `streamwise profile`: seconds of compute per second of media on this machine.\n"
                        + yaml.safe_dump(profile.model_dump(), sort_keys=False))
    tmp_path.replace(path)
    return path
