import pytest

from models.protocols import Quality
from pipelines.planner import CostModel, TierPlanner

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
