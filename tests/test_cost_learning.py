"""Admission's learned costs: the fit recovers what the CPU time says, persists, and reads /proc right."""
import json
import logging
import os

import numpy as np
import pytest

from pipelines.config import AdmissionSpec
from server.admission.cost_learning import CostLearner, Usage, UsageSampler, other_cores
from server.admission.gate import Admission, Load


def windows(generation, viewer, n=30, seed=1):
    """10 s windows of one to three episodes: media generated in bursts, viewers throughout."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        viewers = int(rng.integers(1, 4))
        media = float(rng.uniform(0, 30)) * (rng.random() > 0.3)
        cpu = generation * media + viewer * viewers * 10 + rng.normal(0, 0.05)
        yield cpu, media, viewers * 10.0


def test_recovers_the_costs_the_cpu_time_shows():
    learner = CostLearner(generation=0.24, viewer=0.08)  # the profile's (too low) figures
    for cpu, media, viewer_s in windows(0.37, 0.23):
        learner.observe(cpu, media, viewer_s)
    # the prior (a few seconds' worth) still pulls a little: within 10%, far from 0.24 / 0.08
    assert learner.generation == pytest.approx(0.37, rel=0.1)
    assert learner.viewer == pytest.approx(0.23, rel=0.1)


def test_generation_is_charged_what_is_left_after_the_viewers_learned_cost():
    learner = CostLearner(generation=0.3, viewer=0.1)
    for _ in range(20):  # episodes generated: viewers streaming alone cost 0.25 per viewer-second
        learner.observe(cpu_s=0.25 * 20, media_s=0.0, viewer_s=20.0)
    assert learner.viewer == pytest.approx(0.25, rel=0.05)
    for _ in range(20):  # generating while watched: 30 media seconds and 10 viewer-seconds a window
        learner.observe(cpu_s=0.4 * 30 + 0.25 * 10, media_s=30.0, viewer_s=10.0)
    assert learner.generation == pytest.approx(0.4, rel=0.05)
    assert learner.viewer == pytest.approx(0.25, rel=0.05)  # generation windows never move it


def test_the_profile_holds_until_the_data_speaks():
    learner = CostLearner(generation=0.3, viewer=0.1)
    learner.observe(cpu_s=0.9, media_s=1.0, viewer_s=0.0)  # one short, costly window
    # The prior counts as 10 s seen at 0.3: (10 x 0.3 + 0.9) / (10 + 1).
    assert learner.generation == pytest.approx(3.9 / 11)


def test_idle_windows_change_nothing():
    learner = CostLearner(generation=0.3, viewer=0.1)
    for _ in range(10):
        learner.observe(cpu_s=0.5, media_s=0.0, viewer_s=0.0)
    assert (learner.generation, learner.viewer, learner.samples) == (pytest.approx(0.3), pytest.approx(0.1), 0)


def test_a_restarted_server_starts_from_what_it_learned(tmp_path):
    path = tmp_path / "admission-costs.json"
    learner = CostLearner(generation=0.24, viewer=0.08, path=path)
    for cpu, media, viewer_s in windows(0.37, 0.23):
        learner.observe(cpu, media, viewer_s)
    learner.save()
    again = CostLearner(generation=0.24, viewer=0.08, path=path)
    assert again.generation == pytest.approx(learner.generation)
    assert again.viewer == pytest.approx(learner.viewer)
    assert json.loads(path.read_text())["samples"] == 30


@pytest.mark.parametrize("content", ["{not json", '{"a": [1, 2], "b": [1, 2], "samples": 3}',
                                     '{"sums": {"generation": [NaN, 1], "viewer": [1, 1]}, "samples": 3}',
                                     '{"sums": {"generation": [1], "viewer": [1, 1]}, "samples": 3}'])
def test_an_unreadable_file_means_the_prior_and_is_not_lost(tmp_path, caplog, content):
    path = tmp_path / "admission-costs.json"
    path.write_text(content)
    with caplog.at_level(logging.WARNING):
        learner = CostLearner(generation=0.3, viewer=0.1, path=path)
    assert (learner.generation, learner.viewer) == (pytest.approx(0.3), pytest.approx(0.1))
    assert "starting from the profile" in caplog.text
    learner.save()  # nothing learned yet: the file stays as it was
    assert path.read_text() == content


def _proc(tmp_path, busy_ticks, children):
    """A fake /proc: the machine's counters, and this process with children under two threads."""
    proc = tmp_path / "proc"
    proc.mkdir(exist_ok=True)
    (proc / "stat").write_text(f"cpu  {busy_ticks} 0 0 1000 0 0 0 0 0 0\ncpu0 1 2 3 4\n")
    pid = os.getpid()
    for tid, kids in ((pid, []), (pid + 1, [k for k, _ in children])):
        task = proc / str(pid) / "task" / str(tid)
        task.mkdir(parents=True, exist_ok=True)
        (task / "children").write_text(" ".join(str(k) for k in kids))
    for kid, ticks in children:
        (proc / str(kid)).mkdir(exist_ok=True)
        # comm may hold spaces and parentheses; utime and stime are fields 14 and 15
        (proc / str(kid) / "stat").write_text(f"{kid} (py (worker) x) S 1 2 3 4 5 6 7 8 9 10 {ticks} {ticks} 0 0\n")
    return proc


def test_sampler_counts_children_under_every_thread(tmp_path):
    tick = UsageSampler()._tick
    proc = _proc(tmp_path, busy_ticks=5 * tick, children=[(90001, tick), (90002, 2 * tick)])
    usage = UsageSampler(str(proc)).sample()
    assert usage.children_s == pytest.approx(6.0)
    assert usage.machine_busy_s == pytest.approx(5.0)


def test_other_programs_are_the_machines_busy_time_less_ours():
    before = Usage(at=0.0, own_s=1.0, children_s=2.0, machine_busy_s=10.0)
    after = Usage(at=10.0, own_s=5.0, children_s=4.0, machine_busy_s=20.0)  # ours 6 of 10 s busy
    assert other_cores(before, after) == pytest.approx(0.4)
    assert other_cores(before, Usage(10.0, 5.0, 4.0, None)) is None
    # a child that exited takes its CPU time with it: never negative
    assert other_cores(before, Usage(10.0, 2.0, 0.0, 11.0)) == pytest.approx(0.0)


class Learned:
    generation = 0.40
    viewer = 0.23


def _admission(other=0.0):
    return Admission(AdmissionSpec(cores=2.0, max_load=0.8), {"script": 0.07, "speech": 0.075, "encode": 0.06},
                     {"240p": 0.03}.__getitem__, "240p", 1.0, learned=Learned(), other_load=lambda: other)


def test_admission_plans_with_the_learned_costs():
    a = _admission()
    assert a.demand(Load(True, 1, 100.0)) == pytest.approx(0.40 + 0.03 + 0.23)
    assert a.check([Load(True, 1, 100.0)] * 1).admit          # 2 x 0.66 = 1.32 of 1.6
    refused = a.check([Load(True, 1, 100.0)] * 2)             # 3 x 0.66 = 1.98
    assert not refused.admit and "1.32 of 1.60 cores" in refused.reason


def test_cores_other_programs_use_are_left_to_them_but_an_idle_server_still_starts_one():
    a = _admission(other=1.0)
    assert a.capacity == pytest.approx(0.6)
    assert not a.check([Load(True, 1, 100.0)]).admit
    assert a.check([]).admit  # nothing of ours to wait for: the episode goes ahead
