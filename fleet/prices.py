"""GPU prices per hour, spot and reserved, in US dollars: the StreamWise paper's figures.

The one place they are written: the fleet planner plans with them, and the server's
cost estimate (server/observability/pricing.py) charges GPU stages at them unless
``configs/pricing.yaml`` lists prices of its own.
"""
from __future__ import annotations

#: GPU type -> (spot, reserved) $ per GPU-hour.
GPU_PRICES: dict[str, tuple[float, float]] = {
    "A100": (1.07, 3.40),
    "H100": (4.03, 5.39),
    "H200": (4.22, 5.64),
    "GB200": (10.76, 14.42),
}
