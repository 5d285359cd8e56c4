"""Profile loading: the bundled reference tables and the local YAML schema."""
from __future__ import annotations

import pytest

from fleet.paper_profiles import GPU_TYPES, Job, ProfileError, load_local_profiles


def test_bad_profile_yaml(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("stages: 3\n")
    with pytest.raises(ProfileError):
        load_local_profiles(p)


def test_reference_profiles_cover_every_gpu_type(ref):
    assert ref.gpu_types == GPU_TYPES
    assert [s.name for s in ref.stages] == ["script", "image", "others", "draft", "draft_vae", "lipsync",
                                            "lipsync_vae", "upscale"]
    for s in ref.stages:
        assert {o.gpu for o in s.options} == set(GPU_TYPES), s.name
    with pytest.raises(ProfileError, match="tpu"):
        ref.restrict(["a100", "tpu"])


def test_local_profile_service_time_is_linear(tiny_chain):
    prof, counts = tiny_chain(3)
    assert counts == {"cpu": 3} and prof.gpu_types == ("cpu",) and prof.server_size == {"cpu": 1}
    render = prof.stage("render").options[0]
    assert render.service(Job(2.5, 3)) == 2.5 and prof.stage("voice").options[0].service(Job(2.5, 3)) == 1.0
