"""Shared fixtures: the paper's reference profiles and a hand-computable two-stage chain."""
from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from fleet.paper_profiles import Profiles, load_local_profiles, reference_profiles

TinyChain = Callable[[int], tuple[Profiles, dict[str, int]]]


@pytest.fixture(scope="session")
def ref() -> Profiles:
    return reference_profiles()


@pytest.fixture
def tiny_chain(tmp_path: Path) -> TinyChain:
    """``tiny_chain(count)``: voice (1 s per chunk) then render (1 s per media second) on
    ``count`` CPUs at $3.60/hour and 100 W busy, so costs and times are easy to compute by hand."""
    def make(count: int = 2) -> tuple[Profiles, dict[str, int]]:
        p = tmp_path / "p.yaml"
        p.write_text(textwrap.dedent(f"""
            name: tiny
            devices: {{cpu: {{count: {count}, price_per_hour: 3.6, idle_watts: 0, busy_watts: 100}}}}
            stages:
              voice:  {{per: chunk, options: {{cpu: {{seconds_fixed: 1.0, seconds_per_media_second: 0.0}}}}}}
              render: {{per: chunk, options: {{cpu: {{seconds_fixed: 0.0, seconds_per_media_second: 1.0}}}}}}
        """))
        return load_local_profiles(p)
    return make
