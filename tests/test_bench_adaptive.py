"""bench/adaptive.py's report from saved runs: the table, the tier one episode sustains, the plot."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.adaptive import report, sustained_alone

LADDER = ["240p", "360p", "480p", "720p"]


def _row(policy: str, n: int, freezes: int = 0, late: float = 0.0, top: int = 0) -> dict:
    return {
        "policy": policy, "episodes": n, "queued": 0, "lost_pages": 0,
        "ttff_s": [0.7] * n, "first_speech_s": [1.5] * n, "freezes": freezes,
        "played_s": 180.0 * n, "frozen_s": 0.0, "stall_ratio": 0.0, "content_stalled_s": late,
        "frames_by_tier": {"240p": 0, "360p": 100 - top, "480p": 0, "720p": top},
        "cpu_s": 90.0, "media_s": 180.0 * n, "cpu_s_per_episode_min": 30.0, "ended": n,
        "cores_busy": {"server": 0.61, "workers": 0.39, "browser": 0.26},
    }


def test_late_content_disqualifies_a_tier_as_sustained_alone():
    assert sustained_alone([_row("static-high", 1, top=100)], LADDER) == "720p"
    assert sustained_alone([_row("static-high", 1, late=12.0, top=100)], LADDER) == "240p"
    assert sustained_alone([_row("static-high", 1, freezes=2, top=100)], LADDER) == "240p"


def test_report_lists_where_the_cores_went():
    table = report([_row("static-high", 1, top=100), _row("adaptive", 3, late=8.7)], LADDER, 180)
    assert "cores busy: server / drawing / browser" in table
    assert "| adaptive | 3 | 0 |" in table and "| 8.7 s |" in table and "0.61 / 0.39 / 0.26" in table


def test_a_queued_episode_is_reported_apart_from_those_admitted_at_once():
    row = _row("adaptive", 3) | {
        "queued": 1, "ttff_s": [0.7, 0.9, 1.1], "first_speech_s": [1.5, 1.9, 96.0],
        "ttff_admitted_s": [0.7, 0.9], "first_speech_admitted_s": [1.5, 1.9],
        "ttff_queued_s": [1.1], "first_speech_queued_s": [96.0]}
    table = report([row], LADDER, 180)
    assert "| adaptive | 3 | 1 (first words at 96 s) | 0.80 / 0.89 s | 1.70 s |" in table


def test_saved_runs_merge_into_one_table_and_plot(tmp_path: Path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps([_row("adaptive", 1, top=79)]))
    second.write_text(json.dumps([_row("static-high", 1, top=100), _row("static-high", 2, late=240.0, top=100)]))
    png = tmp_path / "plot.png"
    out = subprocess.run([sys.executable, "bench/adaptive.py", "--from-json", str(first), str(second),
                          "--duration", "180", "--png", str(png)],
                         cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith(("| adaptive", "| static"))]
    assert [line.split("|")[1].strip() for line in lines] == ["adaptive", "static-high", "static-high"]
    assert "sustains alone here: **720p**" in out.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
