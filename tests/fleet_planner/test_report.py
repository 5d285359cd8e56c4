"""``streamwise plan``: exit codes, the JSON shape and values, and the text report."""
from __future__ import annotations

import argparse
import json

from fleet.paper_profiles import Workload
from fleet.planner import plan
from fleet.report import add_plan_arguments, run_plan
from server.cli import main


def test_cli_errors_exit_2(capsys):
    assert main(["plan", "--gpus", "a100,tpu"]) == 2
    assert "unknown GPU" in capsys.readouterr().err
    assert main(["plan", "--video-minutes", "-1"]) == 2
    assert main(["plan", "--profile", "/nonexistent.yaml"]) == 2


def test_cli_rejects_bad_quality_share(capsys):
    assert main(["plan", "--min-high-quality", "1.5"]) == 2
    assert "min-high-quality" in capsys.readouterr().err


def test_cli_json_shape(capsys, ref):
    assert main(["plan", "--video-minutes", "1", "--ttff", "30", "--gpus", "a100,h200", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"calibration", "plans"} and out["calibration"] == []
    row = out["plans"][0]
    assert set(row) == {"objective", "provision", "ttff_s", "tbf_s", "total_time_s", "cost", "energy_kwh", "pipelined"}
    assert list(row["provision"]) == ["a100", "h100", "h200", "gb200"]
    assert row["provision"]["h100"] == 0 and row["provision"]["gb200"] == 0  # not in --gpus
    assert row["objective"] == "cost" and row["ttff_s"] <= 30 and row["pipelined"] is True
    # the same search through the library gives the same plan (default --min-high-quality 0.9)
    p = plan(ref.restrict(["a100", "h200"]), Workload.minutes(1), 30.0, "cost", "heuristic", min_high=0.9)
    assert row == p.to_json()


def test_run_plan_prints_the_plan(capsys):
    parser = argparse.ArgumentParser()
    add_plan_arguments(parser)
    args = parser.parse_args(["--video-minutes", "1", "--ttff", "30", "--gpus", "a100,h200"])
    assert run_plan(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("plan (cost, ")
    for stage in ("script", "image", "others", "draft", "lipsync", "upscale"):
        assert stage in out
    assert "TTFF " in out and "(no stall)" in out


def test_run_plan_without_a_plan_says_why(capsys):
    parser = argparse.ArgumentParser()
    add_plan_arguments(parser)
    assert run_plan(parser.parse_args(["--video-minutes", "2", "--ttff", "1", "--gpus", "a100"])) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "no plan meets TTFF <= 1 s on a100" in out and "fastest possible first chunk takes 3.68 s" in out
