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

from models.video.avatar2d import mouth_box
from pipelines.config import load_deployment, load_workflow
from pipelines.offline_render import render_episode
from pipelines.segments import EpisodeRequest
from pipelines.stages.models_loaded import load_models

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


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if x.size else 0.0


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
    assert _rms(audio[int(first["start"]) : int(first["end"])]) > 0.02
    assert _rms(audio[: int(first["start"]) - 2400]) < 0.003, "the title card plays in silence"


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
        spoken = _rms(audio[int(line["start"]) : int(line["end"])])
        # The pause after a line (minus a margin for the AAC frame edges) is near silence.
        gap = audio[int(line["end"]) + 960 : int(nxt["start"]) - 960]
        if gap.size > 960:
            assert _rms(gap) < 0.25 * spoken, (line["text"], _rms(gap), spoken)


def test_speaking_mouth_follows_the_audio(episode):
    frames, fps, quality = episode["frames"], episode["fps"], episode["quality"]
    spf = RATE // fps
    audio = episode["audio"]
    host_of = {"Alex": 0, "Sam": 1}
    correlations = []
    for line in episode["transcript"]["lines"]:
        host = host_of[line["speaker"]]
        x0, y0, x1, y1 = mouth_box(quality, host)
        first, last = int(line["start"]) // spf, min(int(line["end"]) // spf, len(frames))
        if last - first < 20:
            continue
        env = np.array([_rms(audio[n * spf : (n + 1) * spf]) for n in range(first, last)])
        mouths = frames[first:last, y0:y1, x0:x1].astype(np.float32)
        reference = mouths[int(np.argmin(env))]  # the quietest moment: mouth nearly closed
        activity = np.abs(mouths - reference).mean(axis=(1, 2, 3))
        correlations.append(np.corrcoef(activity, env)[0, 1])
    assert correlations, "no line was long enough to measure"
    print("mouth-envelope correlation per line:", np.round(correlations, 2))
    assert np.median(correlations) > 0.3, correlations
