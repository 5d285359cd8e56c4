"""Admission control on recorded profiles: what fits is admitted, what would make others stall is not."""
import pytest

from pipelines.config import AdmissionSpec
from server.admission.gate import Admission, Load

# Seconds of compute per media second, as `streamwise profile` measured them here.
STAGES = {"script": 0.07, "speech": 0.075, "encode": 0.06}
VIDEO = {"240p": 0.03, "720p": 0.35}


def admission(cores=2.0, **spec):
    return Admission(AdmissionSpec(cores=cores, **spec), STAGES, VIDEO.__getitem__, "240p", startup_target_s=1.0)


def generating(n, viewers=1, at_risk=False, remaining=120.0):
    return [Load(True, viewers, remaining, at_risk) for _ in range(n)]


def test_an_idle_server_admits_with_a_startup_prediction():
    verdict = admission().check([])
    assert verdict.admit
    # 3 s of first segment x (0.07 + 0.075 + 0.06 + 0.03) cores = 0.7 s
    assert verdict.predicted_startup_s == pytest.approx(0.705)


def test_admits_until_the_cores_are_spoken_for_then_refuses_with_retry_after():
    a = admission(cores=2.0, max_load=0.8, viewer_rtf=0.08)  # 0.315 cores per episode, 1.6 available
    admitted = 0
    while a.check(generating(admitted)).admit:
        admitted += 1
    assert admitted == 5  # 5 x 0.315 = 1.575 <= 1.6; a sixth would need 1.89
    refused = a.check(generating(admitted, remaining=30.0))
    assert "cores" in refused.reason
    # The soonest episode has 30 s of media left, generated at 1.575 / 2 s of wall time per second: 23.6 s.
    assert refused.retry_after_s == 24


def test_viewers_of_finished_episodes_count_too():
    a = admission(cores=1.0, max_load=1.0, viewer_rtf=0.1)
    assert a.check([Load(False, 3, 0.0)]).admit  # 0.3 + 0.335
    assert not a.check([Load(False, 7, 0.0)]).admit  # 0.7 + 0.335


def test_an_episode_behind_its_deadlines_closes_the_door():
    a = admission(cores=64.0)
    verdict = a.check(generating(1, at_risk=True))
    assert not verdict.admit
    assert "behind their deadlines" in verdict.reason


def test_a_startup_that_cannot_meet_its_target_is_refused():
    # One slow core: the first segment alone needs 0.7 s, and the load stretches it past 1 s.
    a = admission(cores=0.4, max_load=4.0, viewer_rtf=0.08)
    verdict = a.check(generating(1))
    assert not verdict.admit
    assert "startup target" in verdict.reason
    assert verdict.predicted_startup_s > 1.0


def test_disabled_admits_everything():
    assert admission(cores=0.1, enabled=False).check(generating(50, at_risk=True)).admit


def test_a_generating_episode_is_planned_with_its_viewer_before_the_stream_is_up(tmp_path):
    """A burst of requests arrives before any viewer has connected: each must count as watched."""
    from types import SimpleNamespace

    from pipelines.segments import EpisodeRequest
    from server.episodes.admission_loop import AdmissionLoop
    from server.episodes.episode import Episode

    def episode(status, viewers):
        e = Episode(id=status, request=EpisodeRequest("tides", 60.0), directory=tmp_path, status=status)
        e.viewers = viewers
        return e

    manager = SimpleNamespace(streaming=lambda e: e.viewers,
                              episodes={"a": episode("generating", 0), "b": episode("finished", 0),
                                        "c": episode("finished", 2), "d": episode("generating", 3)})
    loads = AdmissionLoop.loads(manager)
    assert [(load.generating, load.viewers) for load in loads] == [(True, 1), (False, 2), (True, 3)]
