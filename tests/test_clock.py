import numpy as np
import pytest

from pipelines.playout import clock


def test_samples_per_frame_is_exact():
    assert clock.samples_per_frame(25) == 1920
    assert clock.samples_per_frame(30) == 1600
    assert clock.samples_per_frame(15) == 3200
    with pytest.raises(ValueError):
        clock.samples_per_frame(24 * 1001)


def test_grid_holds_whole_frames_at_every_rate():
    grid = clock.grid_for([15, 25, 30])
    assert grid == 9600
    for fps in (15, 25, 30):
        assert grid % clock.samples_per_frame(fps) == 0


def test_pad_and_frame_count():
    assert clock.pad_to_grid(1, 1920) == 1920
    assert clock.pad_to_grid(1920, 1920) == 1920
    assert clock.pad_to_grid(1921, 1920) == 3840
    assert clock.frame_count(3840, 25) == 2
    assert clock.frame_count(3841, 25) == 3


def test_frame_pts_on_the_audio_clock():
    # Frame 50 of a segment that starts 2 s in, at 25 fps, sits at 4 s.
    assert clock.frame_pts(96_000, 50, 25) == 192_000
    assert clock.seconds(clock.to_samples(1.25)) == 1.25


def test_fit_audio_pads_and_cuts():
    pcm = np.ones(10, dtype=np.float32)
    assert clock.fit_audio(pcm, 15).tolist() == [1.0] * 10 + [0.0] * 5
    assert clock.fit_audio(pcm, 4).tolist() == [1.0] * 4
