"""What compute costs: prices per core-hour and GPU-hour, and which device each stage is charged at.

Read from ``configs/pricing.yaml`` (or ``$STREAMWISE_PRICING``) at start, validated;
a bad file stops the server with a message naming the file and field.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fleet.prices import GPU_PRICES
from pipelines.config import CONFIG_DIR, load_model

DEFAULT_PRICING = CONFIG_DIR / "pricing.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CpuPrice(_Strict):
    #: $ per core-hour; a span's run time is charged as one core busy.
    core_hour: float = Field(ge=0)


class GpuPrice(_Strict):
    #: $ per GPU-hour.
    spot: float = Field(ge=0)
    reserved: float = Field(ge=0)


class Charge(_Strict):
    #: The device a stage is charged at when ``stages`` does not name it.
    default: str = "cpu"
    #: Per stage: ``cpu`` or ``<GPU type>:<spot|reserved>``, e.g. ``video: "H100:spot"``.
    stages: dict[str, str] = Field(default_factory=dict)


class Pricing(_Strict):
    currency: str = "USD"
    cpu: CpuPrice
    #: Absent: the StreamWise paper's prices (fleet/prices.py).
    gpu: dict[str, GpuPrice] = Field(default_factory=lambda: {
        name: GpuPrice(spot=spot, reserved=reserved) for name, (spot, reserved) in GPU_PRICES.items()})
    charge: Charge = Field(default_factory=Charge)

    @field_validator("gpu")
    @classmethod
    def _gpu_names(cls, value: dict[str, GpuPrice]) -> dict[str, GpuPrice]:
        for name in value:
            if not name or ":" in name or name.lower() == "cpu":
                raise ValueError(f"GPU type {name!r}: must be a plain name such as H100 (not 'cpu', no ':')")
        return value

    @model_validator(mode="after")
    def _devices_exist(self) -> Pricing:
        allowed = self.devices()
        for where, device in [("charge.default", self.charge.default)] + [
            (f"charge.stages.{stage}", dev) for stage, dev in self.charge.stages.items()
        ]:
            if device not in allowed:
                raise ValueError(f"{where}: unknown device {device!r}; allowed: {', '.join(allowed)}")
        return self

    def devices(self) -> list[str]:
        return ["cpu"] + [f"{name}:{kind}" for name in self.gpu for kind in ("spot", "reserved")]

    def device_for(self, stage: str) -> str:
        return self.charge.stages.get(stage, self.charge.default)

    def hourly(self, device: str) -> float:
        if device == "cpu":
            return self.cpu.core_hour
        name, kind = device.split(":", 1)
        return getattr(self.gpu[name], kind)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump() | {"devices": {d: self.hourly(d) for d in self.devices()}}


def load_pricing(path: str | Path | None = None) -> Pricing:
    """``configs/pricing.yaml`` (or ``$STREAMWISE_PRICING``), validated; ConfigError names file and field."""
    return load_model(Path(path or os.environ.get("STREAMWISE_PRICING") or DEFAULT_PRICING), Pricing, "pricing")
