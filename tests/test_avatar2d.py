"""The 2D podcast-studio animator (the models/video/avatar2d package)."""
from __future__ import annotations

import itertools
import math
import time

import cv2
import numpy as np
import pytest

import models.video.avatar2d as avmod
import models.video.avatar2d.text as textmod
from models.protocols import (
    CLOCK_RATE,
    Quality,
    SceneInfo,
    TimedPhoneme,
    VisualSegment,
)
from models.registry import load_adapter
from models.video.avatar2d import Avatar2D, mouth_box
from pipelines.config import load_deployment

SCENE = SceneInfo(title="Why Octopuses Are Basically Aliens", hosts=("Alex", "Sam"))
LONG = ("So here's the thing about octopuses: they have three hearts, blue blood, and neurons in their arms "
        "that can taste what they touch. Honestly, the more you read about them the stranger they get.")


@pytest.fixture(scope="module")
def av() -> Avatar2D:
    return Avatar2D()


def make_seg(index=1, start=10 * CLOCK_RATE, n=CLOCK_RATE, speaker=0, caption="Hello there!", loud=True,
             phonemes=None) -> VisualSegment:
    t = np.arange(n) / CLOCK_RATE
    pcm = (0.2 * np.sin(2 * np.pi * 180 * t)).astype(np.float32) if loud else np.zeros(n, np.float32)
    if phonemes is None:
        step = 2400
        phonemes = tuple(TimedPhoneme("haloʊmi"[i % 7], i * step, (i + 1) * step) for i in range(n // step))
    return VisualSegment(index, start, n, speaker, caption, pcm, phonemes)


def test_the_configured_adapter_loads_and_draws_every_kind_of_frame():
    """The deployment's video adapter name reaches this class through the registry, and it draws."""
    video = load_deployment().tasks["video"]
    animator = load_adapter("video", video.adapter, {**video.params, "studio_cache": ""})
    assert type(animator) is Avatar2D and animator.name == video.adapter
    animator.warm_up()
    q = Quality("t", 240, 25)
    drawn = [animator.title_card(SCENE, q, 0.0), animator.idle_frame(SCENE, q, 0),
             *animator.render(SCENE, make_seg(n=2 * q.samples_per_frame), q)]
    assert [(f.shape, f.dtype) for f in drawn] == [((240, 426, 3), np.uint8)] * 4
    assert all(f.std() > 10 for f in drawn)  # pictures, not blank frames


@pytest.mark.parametrize("height,fps,ss", [(240, 15, 1), (360, 25, 2), (480, 30, 1), (720, 25, 1)])
def test_frame_count_shape_dtype(av, height, fps, ss):
    q = Quality("t", height, fps, ss)
    n = q.samples_per_frame * 3 + 17  # not a multiple of the frame length
    frames = list(av.render(SCENE, make_seg(n=n), q))
    assert len(frames) == math.ceil(n / q.samples_per_frame) == 4
    for f in frames:
        assert f.shape == (q.height, q.width, 3) and f.dtype == np.uint8 and f.flags.c_contiguous
    # frames are independent arrays (a consumer may keep them)
    assert not np.shares_memory(frames[0], frames[1])
    for img in (av.title_card(SCENE, q, 0.5), av.idle_frame(SCENE, q, 12345)):
        assert img.shape == (q.height, q.width, 3) and img.dtype == np.uint8 and img.flags.c_contiguous


def test_empty_segment_yields_nothing(av):
    assert list(av.render(SCENE, make_seg(n=0), Quality("t", 240, 25))) == []


def test_deterministic(av):
    q = Quality("t", 240, 25, 1)
    seg = make_seg(n=CLOCK_RATE // 2, caption=LONG)
    a = list(av.render(SCENE, seg, q))
    b = list(Avatar2D().render(SCENE, seg, q))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert np.array_equal(av.idle_frame(SCENE, q, 99999), Avatar2D().idle_frame(SCENE, q, 99999))
    assert np.array_equal(av.title_card(SCENE, q, 1.25), Avatar2D().title_card(SCENE, q, 1.25))
    # a different seed gives different (but still valid) motion
    c = list(Avatar2D(seed=8).render(SCENE, seg, q))
    assert any(not np.array_equal(x, y) for x, y in zip(a, c))


@pytest.mark.parametrize("ss", [1, 2])
def test_frame_ranges_tile_the_whole_render(av, ss):
    """Model parallelism: workers drawing parts of a segment produce exactly the whole render."""
    q = Quality("t", 240, 25, ss)
    seg = make_seg(n=CLOCK_RATE, caption=LONG)
    whole = list(av.render(SCENE, seg, q))
    parts = [f for a, b in ((0, 7), (7, 18), (18, 99)) for f in Avatar2D().render(SCENE, seg, q, frames=(a, b))]
    assert len(parts) == len(whole) == 25
    assert all(np.array_equal(x, y) for x, y in zip(whole, parts))
    assert list(av.render(SCENE, seg, q, frames=(30, 40))) == []


def test_supersampled_canvas_reuse_matches_full_redraw():
    q = Quality("t", 240, 25, 2)
    seg = make_seg(n=CLOCK_RATE, caption=LONG)
    fast = Avatar2D()
    slow = Avatar2D()
    slow._reuse_canvas = False
    for x, y in zip(fast.render(SCENE, seg, q), slow.render(SCENE, seg, q)):
        assert np.array_equal(x, y)


def test_idle_motion_is_smooth_function_of_global_clock(av):
    q = Quality("t", 360, 25, 1)
    spf = q.samples_per_frame
    c = 37 * CLOCK_RATE
    f0, f1 = av.idle_frame(SCENE, q, c), av.idle_frame(SCENE, q, c + spf)
    far = av.idle_frame(SCENE, q, c + 2 * CLOCK_RATE + 7 * spf)
    near = np.abs(f0.astype(int) - f1).mean()
    assert near < 1.5
    assert np.abs(f0.astype(int) - far).mean() > near
    # render: frame n depends on the global clock seg.start + n * spf
    a = list(av.render(SCENE, make_seg(start=0, n=spf * 2, loud=False, phonemes=()), q))
    b = list(av.render(SCENE, make_seg(start=3 * CLOCK_RATE, n=spf * 2, loud=False, phonemes=()), q))
    assert not np.array_equal(a[1], b[1])


def test_same_picture_at_every_tier(av):
    """Layout is normalised: a 720p frame scaled to 360p looks like the 360p frame."""
    seg = make_seg(n=CLOCK_RATE // 5, caption="Short caption.")
    f720 = list(av.render(SCENE, seg, Quality("hi", 720, 25, 1)))[2]
    f360 = list(av.render(SCENE, seg, Quality("lo", 360, 25, 2)))[2]
    small = cv2.resize(f720, (640, 360), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - f360).mean() < 6.0
    t720 = cv2.resize(av.title_card(SCENE, Quality("hi", 720, 25), 0.0), (426, 240), interpolation=cv2.INTER_AREA)
    t240 = av.title_card(SCENE, Quality("lo", 240, 25), 0.0)
    assert np.abs(t720.astype(int) - t240).mean() < 8.0


def _alternating_segment(n_periods=5, period_s=0.8, speaker=0):
    n = int(n_periods * period_s * CLOCK_RATE)
    t = np.arange(n) / CLOCK_RATE
    loud = ((t % period_s) < period_s / 2)
    pcm = (loud * 0.25 * np.sin(2 * np.pi * 170 * t)).astype(np.float32)
    ph, step, vowels = [], 3600, "aoæəɑ"
    for i in range(n // step):
        s = i * step
        ph.append(TimedPhoneme(vowels[i % len(vowels)] if loud[s + step // 2] else " ", s, s + step))
    return VisualSegment(2, 5 * CLOCK_RATE, n, speaker, "Ah oh aa", pcm, tuple(ph))


@pytest.mark.parametrize("speaker", [0, 1])
def test_mouth_follows_audio_envelope(av, speaker):
    q = Quality("t", 360, 25, 1)
    seg = _alternating_segment(speaker=speaker)
    frames = list(av.render(SCENE, seg, q))
    spf = q.samples_per_frame
    env = np.array([np.sqrt(np.mean(seg.pcm[max(0, n * spf - 960):n * spf + 960] ** 2)) for n in range(len(frames))])
    listener = 1 - speaker

    def box(f, h):
        x0, y0, x1, y1 = mouth_box(q, h)
        return f[y0:y1, x0:x1].astype(np.float32)

    # reference: the closed mouth in a silent frame (frame 0 is loud, pick the quietest)
    ref_i = int(np.argmin(env[10:])) + 10
    change = np.array([np.abs(box(f, speaker) - box(frames[ref_i], speaker)).mean() for f in frames])
    r = np.corrcoef(change, env)[0, 1]
    assert r > 0.5, r
    # the open mouth's dark interior appears only while speaking
    def dark(f, h):  # the mouth interior is a deep red
        b = box(f, h)
        return float(((b[..., 1] < 45) & (b[..., 0] > b[..., 1] + 30)).mean())
    spk_dark = np.array([dark(f, speaker) for f in frames])
    assert np.corrcoef(spk_dark, env)[0, 1] > 0.5
    assert spk_dark[env > 0.1].mean() > 0.03
    # the listener's mouth stays closed
    lis_dark = np.array([dark(f, listener) for f in frames])
    assert lis_dark.max() < 0.01
    # ...and moves much less than the speaker's (only gentle head motion)
    def motion(h):
        return np.mean([np.abs(box(a, h) - box(b, h)).mean() for a, b in itertools.pairwise(frames)])
    assert motion(listener) < 0.35 * motion(speaker)


def test_envelope_only_when_no_phoneme_timings(av):
    q = Quality("t", 240, 25, 1)
    seg = _alternating_segment()
    seg = VisualSegment(seg.index, seg.start, seg.n_samples, 0, "x", seg.pcm, ())
    frames = list(av.render(SCENE, seg, q))
    x0, y0, x1, y1 = mouth_box(q, 0)
    spf = q.samples_per_frame
    env = np.array([np.abs(seg.pcm[n * spf:n * spf + 100]).max() for n in range(len(frames))])
    d = [np.abs(f[y0:y1, x0:x1].astype(int) - frames[12][y0:y1, x0:x1]).mean() for f in frames]
    assert np.corrcoef(d, env)[0, 1] > 0.5


def test_pcm_variants_do_not_break(av):
    q = Quality("t", 240, 15, 1)
    n = CLOCK_RATE // 3
    for pcm in (np.zeros(0, np.float32), (np.ones(n) * 3000).astype(np.int16), np.zeros((n, 2), np.float32),
                np.ones(n // 4, np.float64) * 0.1):
        seg = VisualSegment(0, 0, n, 1, "", pcm, ())
        assert len(list(av.render(SCENE, seg, q))) == math.ceil(n / q.samples_per_frame)


def test_long_captions_are_chunked_and_progress(av):
    chunks = av.captioner.chunks(SCENE, 0, LONG)
    assert len(chunks) >= 2
    for lines, _ in chunks:
        assert lines[0] == "ALEX"
        assert 1 <= len(lines) - 1 <= 2  # at most two lines per chunk
    assert " ".join(" ".join(c[0][1:]) for c in chunks).split() == LONG.split()
    assert av.captioner.chunks(SCENE, 1, "Three hearts! Okay.") == [(("SAM", "Three hearts! Okay."), 20)]
    q = Quality("t", 240, 25, 1)
    seg = make_seg(n=CLOCK_RATE * 3, caption=LONG)
    frames = list(av.render(SCENE, seg, q))
    y0 = int(avmod.CAP_Y0 * q.height) + 2
    y1 = int(avmod.CAP_Y1 * q.height) - 2
    x0, x1 = int(avmod.CAP_X0 * q.width) + 2, int(avmod.CAP_X1 * q.width) - 2
    cap = [f[y0:y1, x0:x1].astype(int) for f in frames]
    changes = sum(np.abs(a - b).mean() > 1.0 for a, b in itertools.pairwise(cap))
    assert changes == len(chunks) - 1  # the text changes exactly at chunk boundaries
    assert np.abs(cap[0] - cap[-1]).mean() > 1.0
    # the caption box has readable contrast: bright text on a dark box
    assert (cap[0] > 200).all(axis=2).mean() > 0.02


def test_speaker_emphasis(av):
    q = Quality("t", 240, 25, 1)
    f0 = list(av.render(SCENE, make_seg(index=3, speaker=0, n=CLOCK_RATE), q))[-1]
    f1 = list(av.render(SCENE, make_seg(index=4, speaker=1, n=CLOCK_RATE), q))[-1]
    H, W = q.height, q.width

    def spot(f, h):  # backdrop above the host's head
        cx = int(avmod.HOST_X[h] * W)
        return f[int(0.12 * H):int(0.22 * H), cx - int(0.2 * H):cx + int(0.2 * H)].astype(float).mean()
    assert spot(f0, 0) > spot(f1, 0) + 3
    assert spot(f1, 1) > spot(f0, 1) + 3


def test_blink_schedule():
    av = Avatar2D(seed=3)
    for h in (0, 1):
        times = av.motion.event_times(h, "blink", 2.0, 6.0, 120.0)
        gaps = np.diff(times)
        assert gaps.min() >= 2.0 and gaps.max() <= 6.0
        assert 15 <= sum(t < 120 for t in times) <= 60
    q = Quality("t", 240, 25)
    opens = [av.motion.pose(q, 0, i / 100, "idle", 0.0).eye_open for i in range(2000)]
    closed = np.array(opens) < 0.5
    assert closed.any() and 0.005 < closed.mean() < 0.08
    # the blink shows: the eye region of the frame changes
    i = int(np.argmin(opens))
    a = av.idle_frame(SCENE, q, int(i / 100 * CLOCK_RATE))
    b = av.idle_frame(SCENE, q, int((i / 100 - 0.3) * CLOCK_RATE))
    x0, _, x1, _ = mouth_box(q, 0)
    cy = int(avmod.HEAD_Y * q.height)
    assert np.abs(a[cy - 8:cy + 5, x0:x1].astype(int) - b[cy - 8:cy + 5, x0:x1]).mean() > 3


def test_listener_looks_at_speaker(av):
    q = Quality("t", 240, 25)
    p = av.motion.pose(q, 1, 12.0, "listener", 0.0, ramp=1.0)
    assert p.gaze_x < 0 and p.turn < 0  # host 1 (right) looks left, towards host 0
    p = av.motion.pose(q, 0, 12.0, "listener", 0.0, ramp=1.0)
    assert p.gaze_x > 0 and p.turn > 0


def test_odd_scene_inputs(av):
    q = Quality("t", 240, 25)
    for scene in (SceneInfo(title="", hosts=("", "")),
                  SceneInfo(title="A " * 80 + "very long title indeed", hosts=("Dr. Maximiliana Featherstonehaugh", "B")),
                  SceneInfo(title="Ünïcødé — “quotes” & emoji-free", hosts=("Zoë", "José"))):
        assert av.title_card(scene, q, 3.0).shape == (240, 426, 3)
        seg = make_seg(n=CLOCK_RATE // 5, caption="x" * 300 + " " + LONG)
        assert len(list(av.render(scene, seg, q))) == 5


def test_works_without_pillow(monkeypatch):
    monkeypatch.setattr(textmod, "_HAVE_PIL", False)
    av = Avatar2D()
    assert not av.text.pil  # OpenCV's Hershey font draws the text
    q = Quality("t", 240, 25)
    assert av.title_card(SCENE, q, 0.0).shape == (240, 426, 3)
    assert len(list(av.render(SCENE, make_seg(n=CLOCK_RATE // 5, caption=LONG), q))) == 5


def test_without_system_fonts_uses_pillow_default(monkeypatch):
    pytest.importorskip("PIL")
    monkeypatch.setattr(textmod, "_FONT_CANDIDATES", {False: [], True: []})
    av = Avatar2D()
    assert av.text.paths == {False: None, True: None}
    q = Quality("t", 240, 25)
    assert av.title_card(SCENE, q, 0.0).std() > 10


def test_mouth_box_inside_frame_and_scaled():
    for h in (0, 1):
        boxes = [mouth_box(Quality("t", H, 25), h) for H in (240, 360, 480, 720)]
        for (x0, y0, x1, y1), H in zip(boxes, (240, 360, 480, 720)):
            W = Quality("t", H, 25).width
            assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
            assert (x0 < W / 2) == (h == 0)
        # same place in normalised coordinates
        assert abs(boxes[0][0] / 426 - boxes[3][0] / 1280) < 0.01


def test_speed_is_sane(av):
    q = Quality("t", 360, 25, 1)
    seg = make_seg(n=CLOCK_RATE * 2, caption=LONG)
    list(av.render(SCENE, seg, q))  # warm the caches
    t0 = time.perf_counter()
    n = sum(1 for _ in av.render(SCENE, seg, q))
    ms = (time.perf_counter() - t0) / n * 1000
    assert ms < 20, ms  # generous for a shared CI machine: only a drawing path gone badly slow fails


def test_thread_safe_shared_instance():
    import threading

    q = Quality("t", 240, 25)
    scenes = [SceneInfo(title=f"Episode {i}", hosts=("Alex", "Sam")) for i in range(3)]
    seg = make_seg(n=CLOCK_RATE // 2, caption=LONG)
    expected = [list(Avatar2D().render(s, seg, q)) for s in scenes]
    shared = Avatar2D(cache_mb=1)  # tiny cache: constant eviction while rendering
    got: dict = {}

    def work(i):
        got[i] = list(shared.render(scenes[i], seg, q))
    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(3):
        assert all(np.array_equal(a, b) for a, b in zip(expected[i], got[i]))
