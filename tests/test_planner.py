import pytest

from models.protocols import Quality
from pipelines.plan.tier_planner import CostModel, TierPlanner

LADDER = [Quality("240p", 240, 25), Quality("360p", 360, 25), Quality("480p", 480, 25, 2), Quality("720p", 720, 25, 2)]
# Seconds of drawing per media second, as bench/render.py measured them on this machine.
PROFILE = {"240p": 0.03, "360p": 0.04, "480p": 0.15, "720p": 0.28}


def planner(policy="adaptive", floor="240p", **kw):
    return TierPlanner(LADDER, policy, "360p", floor, CostModel(PROFILE), **kw)


def test_first_segment_with_little_slack_starts_low_then_climbs_one_rung_at_a_time():
    p = planner()
    assert p.choose(0, media_s=3.0, slack_s=0.15).name == "240p"  # 360p needs 0.04 x 3 s x 1.5 = 0.18 s
    tiers = [p.choose(i, media_s=3.0, slack_s=10.0).name for i in range(1, 5)]
    assert tiers == ["360p", "480p", "720p", "720p"], "a full buffer lets it climb, one rung per segment"
    assert p.decisions[1].reason == "slack allows one rung up"


def test_a_slow_worker_makes_it_step_down():
    p = planner()
    for i in range(4):
        p.choose(i, media_s=3.0, slack_s=10.0)
    assert p.decisions[-1].tier == "720p"
    # The workers now measure a seventh of their profiled speed.
    assert p.choose(4, media_s=3.0, slack_s=4.0, fastest=1 / 7, capacity=2 / 7).name == "360p"
    assert p.decisions[-1].reason == "deadline at risk: stepping down"


def test_the_first_segment_after_a_question_is_drawn_at_the_floor_then_climbs_again():
    p = planner()
    for i in range(4):
        p.choose(i, media_s=3.0, slack_s=10.0)
    assert p.decisions[-1].tier == "720p"
    assert p.choose(4, media_s=1.5, slack_s=10.0, urgent=True).name == "240p", "whatever the slack"
    assert "question" in p.decisions[-1].reason
    assert p.choose(5, media_s=3.0, slack_s=10.0).name == "360p"


def test_never_below_the_floor():
    p = planner(floor="360p")
    assert p.choose(0, media_s=3.0, slack_s=0.0).name == "360p"
    assert "floor" in p.decisions[-1].reason


def test_static_policy_keeps_the_default_and_the_early_low_rule():
    p = planner(policy="static", startup="240p", startup_segments=1)
    assert [p.choose(i, 3.0, 0.0).name for i in range(3)] == ["240p", "360p", "360p"]


def test_work_queued_ahead_makes_it_step_down():
    """Other episodes' segments due earlier share the workers: the same slack buys a lower tier."""
    alone = planner().plan(0, media_s=3.0, slack_s=2.0)
    busy = planner().plan(0, media_s=3.0, slack_s=2.0, backlog_s=1.0, capacity=1.0)
    assert alone.tier == "720p"  # 0.28 x 3 x 1.5 = 1.26 s fits in 2 s
    assert busy.tier == "360p"  # (1.0 + 0.04 x 3) x 1.5 = 1.68 s; 480p would need 2.18 s
    assert busy.backlog_s == 1.0


def test_a_split_is_planned_at_the_speed_up_the_profile_measured():
    """Two workers sharing two busy cores are not twice as fast: a split that only an ideal
    speed-up would fit in the slack is not planned; the floor tier is split instead."""
    measured = CostModel(PROFILE, speedup={"360p": {1: 1.0, 2: 1.2}, "240p": {1: 1.0, 2: 1.9}})
    ideal = TierPlanner(LADDER, "adaptive", "360p", "240p", CostModel(PROFILE)).plan(0, media_s=3.0, slack_s=0.1,
                                                                                    max_parts=2)
    assert (ideal.tier, ideal.parts) == ("360p", 2)  # 0.04 x 3 / 2 x 1.5 = 0.09 s
    real = TierPlanner(LADDER, "adaptive", "360p", "240p", measured).plan(0, media_s=3.0, slack_s=0.1, max_parts=2)
    assert (real.tier, real.parts) == ("240p", 2)  # 360p: 0.04 x 3 / 1.2 x 1.5 = 0.15 s; 240p: 0.071 s
    assert real.predicted_s == pytest.approx(0.03 * 3 / 1.9 * 1.5, abs=1e-3)


def test_split_speed_up_unmeasured_counts_extrapolate_and_default_to_ideal():
    costs = CostModel(PROFILE, speedup={"720p": {1: 1.0, 2: 1.6}})
    assert costs.speedup("720p", 1) == 1.0 and costs.speedup("720p", 2) == 1.6
    assert costs.speedup("720p", 4) == pytest.approx(3.2), "the per-worker efficiency measured at the largest count"
    assert costs.speedup("240p", 2) == 2.0, "a tier not measured: ideal, as before profiles had it"
    assert costs.cost("720p", 3.0, parts=2) == pytest.approx(0.28 * 3 / 1.6)
    assert costs.cost("720p", 3.0) == pytest.approx(0.28 * 3)


def test_a_tight_first_segment_is_split_across_workers():
    p = planner()
    d = p.plan(0, media_s=3.0, slack_s=0.07, max_parts=2)  # 240p alone: 0.135 s; on two workers 0.0675 s
    assert (d.tier, d.parts) == ("240p", 2)
    assert "split over 2 workers" in d.reason
    roomy = p.plan(1, media_s=3.0, slack_s=10.0, max_parts=2)
    assert roomy.parts == 1, "no split when one worker meets the deadline"


def test_faster_workers_allow_a_higher_tier():
    assert planner().plan(0, media_s=3.0, slack_s=1.0).tier == "480p"
    assert planner().plan(0, media_s=3.0, slack_s=1.0, fastest=2.0).tier == "720p"


@pytest.mark.parametrize("policy, tiers", [
    ("static-high", ["720p", "720p"]),
    ("static-low", ["240p", "240p"]),
    ("fifo", ["360p", "360p"]),
    ("batch", ["360p", "360p"]),
])
def test_comparison_policies_ignore_slack(policy, tiers):
    p = planner(policy=policy)
    assert [p.choose(i, 3.0, slack).name for i, slack in enumerate((0.0, 100.0))] == tiers


def test_a_thin_buffer_is_rebuilt_before_climbing():
    """With a reserve, the next rung must leave buffer to spare, and holding needs half of it."""
    p = planner(reserve_s=2.0)
    assert p.choose(0, media_s=3.0, slack_s=10.0).name == "720p"
    # 720p needs 1.26 s: it fits a 2.5 s slack, but not with 1 s (half the reserve) to spare.
    assert p.choose(1, media_s=3.0, slack_s=2.0).name == "480p"
    assert p.decisions[-1].reason == "deadline at risk: stepping down"
    # One rung up (720p) needs 1.26 + 2 s; 2.8 s of slack only holds 480p (0.675 + 1 s).
    assert p.choose(2, media_s=3.0, slack_s=2.8).name == "480p"
    assert p.choose(3, media_s=3.0, slack_s=3.3).name == "720p"


class FixedCpu:
    def __init__(self, busy: float) -> None:
        self.value = busy

    def busy(self) -> float:
        return self.value


def test_busy_cores_keep_it_at_the_default_tier():
    cpu = FixedCpu(0.95)
    p = planner(cpu=cpu, climb_below_cpu=0.85)
    tiers = [p.choose(i, media_s=3.0, slack_s=20.0).name for i in range(3)]
    assert tiers == ["360p", "360p", "360p"], "above the default only with CPU to spare"
    cpu.value = 0.5
    assert [p.choose(i, media_s=3.0, slack_s=20.0).name for i in range(3, 5)] == ["480p", "720p"]
    cpu.value = 0.95
    assert p.choose(5, media_s=3.0, slack_s=20.0).name == "720p", "holds what it has"


def test_busy_cores_with_deep_buffers_everywhere_still_climb():
    """An episode generating ahead keeps the CPUs busy too: that is no reason to hold back."""
    leads = {"value": 30.0}
    p = planner(cpu=FixedCpu(1.0), climb_below_cpu=0.85, min_lead=lambda: leads["value"], climb_lead_s=12.0)
    assert [p.choose(i, media_s=3.0, slack_s=20.0).name for i in range(4)] == ["720p", "720p", "720p", "720p"]
    # Another episode's buffer is getting thin: hold what this one has...
    leads["value"] = 8.0
    assert p.choose(4, media_s=3.0, slack_s=20.0).name == "720p"
    assert "thinnest buffer 8.0 s" in p.decisions[-1].reason
    # ...and with less than half the lead, give the cores back down to the default tier.
    leads["value"] = 4.0
    assert p.choose(5, media_s=3.0, slack_s=20.0).name == "360p"
    assert "at most 360p" in p.decisions[-1].reason
    leads["value"] = 20.0
    assert p.choose(6, media_s=3.0, slack_s=20.0).name == "480p", "deep buffers again: one rung up"


def test_min_lead_is_the_thinnest_buffer_of_the_generating_episodes():
    from pipelines.stages.pools import StagePools

    class Episode:
        def __init__(self, lead: float) -> None:
            self.lead = lead

        def lead_s(self) -> float:
            return self.lead

    pools = StagePools()
    try:
        assert pools.min_lead_s() == float("inf")
        a, b = Episode(30.0), Episode(6.0)
        pools.generating.update((a, b))
        assert pools.min_lead_s() == 6.0
        pools.generating.discard(b)
        assert pools.min_lead_s() == 30.0
    finally:
        pools.shutdown()


def test_cpu_meter_reads_proc_stat(tmp_path):
    from pipelines.plan.cpu import CpuMeter

    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 100 800 0 0 0 0 0 0\n")
    meter = CpuMeter(str(stat), min_interval_s=0.0, alpha=1.0)
    assert meter.busy() == 0.0  # first reading: no interval yet
    stat.write_text("cpu  250 0 150 900 0 0 0 0 0 0\n")  # +200 busy, +100 idle
    assert abs(meter.busy() - 2 / 3) < 1e-9
