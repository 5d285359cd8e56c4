"""End to end: a 15-second episode rendered with the real models, checked as media."""
from __future__ import annotations

import json
from itertools import pairwise

import av
import numpy as np
import parselmouth
import pytest
from conftest import run_async
from parselmouth.praat import call

from models.protocols import Shot
from models.video.avatar2d.camera import shot_mouth_box
from pipelines.config import load_deployment, load_workflow
from pipelines.offline_render import render_episode
from pipelines.segments import EpisodeRequest
from pipelines.stages.models_loaded import load_models
from tests.support.lipsync_check import mouth_correlations, rms

pytestmark = pytest.mark.models
RATE = 48_000


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    workflow = load_workflow()
    deployment = load_deployment(workflow=workflow)
    models = load_models(deployment, workflow)
    out = tmp_path_factory.mktemp("render") / "episode.mp4"
    result = run_async(
        render_episode(models, deployment, EpisodeRequest(topic="why the sky is blue", duration_s=15), out)
    )
    quality = deployment.quality.tier(deployment.quality.default)
    with av.open(str(result.video)) as container:
        streams = {s.type: s.codec_context.name for s in container.streams}
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(str(result.video)) as container:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]).astype(np.float32)
    transcript = json.loads(result.transcript.read_text())
    return {
        "result": result,
        "streams": streams,
        "frames": np.stack(frames),
        "audio": audio,
        "transcript": transcript,
        "quality": quality,
        "fps": quality.fps,
    }


def test_both_streams_present(episode):
    assert episode["streams"] == {"video": "h264", "audio": "aac"}


def test_durations_equal_within_one_frame(episode):
    video_s = len(episode["frames"]) / episode["fps"]
    audio_s = len(episode["audio"]) / RATE
    assert abs(video_s - audio_s) <= 1 / episode["fps"] + 1e-6, (video_s, audio_s)
    assert 8 <= audio_s <= 40, "the length follows the requested 15 s"


def test_speech_is_not_silent_and_intro_is(episode):
    audio = episode["audio"]
    first = episode["transcript"]["lines"][0]
    assert rms(audio[int(first["start"]) : int(first["end"])]) > 0.02
    assert rms(audio[: int(first["start"]) - 2400]) < 0.003, "the title card plays in silence"


def test_both_voices_appear_and_differ(episode):
    lines = episode["transcript"]["lines"]
    speakers = [line["speaker"] for line in lines]
    assert set(speakers) == {"Alex", "Sam"}
    assert all(a != b for a, b in pairwise(speakers)), "speakers alternate"
    pitch = {}
    for name in ("Alex", "Sam"):
        pcm = np.concatenate([episode["audio"][int(l["start"]) : int(l["end"])] for l in lines if l["speaker"] == name])
        snd = parselmouth.Sound(pcm.astype(np.float64), sampling_frequency=RATE)
        pitch[name] = call(snd.to_pitch(), "Get quantile", 0, 0, 0.5, "Hertz")
    print("median pitch (Hz):", pitch)
    assert pitch["Sam"] / pitch["Alex"] > 1.4, pitch


def test_transcript_times_match_the_audio(episode):
    audio = episode["audio"]
    lines = episode["transcript"]["lines"]
    for line, nxt in pairwise(lines):
        assert nxt["start"] >= line["end"]
        spoken = rms(audio[int(line["start"]) : int(line["end"])])
        # The pause after a line (minus a margin for the AAC frame edges) is near silence.
        gap = audio[int(line["end"]) + 960 : int(nxt["start"]) - 960]
        if gap.size > 960:
            assert rms(gap) < 0.25 * spoken, (line["text"], rms(gap), spoken)


def test_speaking_mouth_follows_the_audio(episode):
    quality = episode["quality"]
    host_of = {"Alex": 0, "Sam": 1}

    def mouth_of(line: dict) -> tuple[int, int, int, int] | None:
        """Where the speaker's mouth is in the line's shot (None: a reaction, the speaker off frame)."""
        host, shot = host_of[line["speaker"]], Shot(**line["shot"])
        return None if shot.kind == "close_up" and shot.host != host else shot_mouth_box(quality, host, shot)

    correlations = mouth_correlations(episode["frames"], episode["audio"], episode["transcript"]["lines"],
                                      episode["fps"], mouth_of)
    assert correlations, "no line was long enough to measure"
    print("mouth-envelope correlation per line:", np.round(correlations, 2))
    assert np.median(correlations) > 0.3, correlations
