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
    costs = CostModel(PROFILE, alpha=1.0)
    p = TierPlanner(LADDER, "adaptive", "360p", "240p", costs)
    for i in range(4):
        p.choose(i, media_s=3.0, slack_s=10.0)
    assert p.decisions[-1].tier == "720p"
    costs.observe("720p", run_s=9.0, media_s=3.0)  # the worker slowed down 10x
    costs.observe("480p", run_s=6.0, media_s=3.0)
    assert p.choose(4, media_s=3.0, slack_s=4.0).name == "360p"
    assert p.decisions[-1].reason == "deadline at risk: stepping down"


def test_never_below_the_floor():
    p = planner(floor="360p")
    assert p.choose(0, media_s=3.0, slack_s=0.0).name == "360p"
    assert "floor" in p.decisions[-1].reason


def test_static_policy_keeps_the_default_and_the_early_low_rule():
    p = planner(policy="static", startup="240p", startup_segments=1)
    assert [p.choose(i, 3.0, 0.0).name for i in range(3)] == ["240p", "360p", "360p"]
