import numpy as np

from models.protocols import Quality
from pipelines.playout.frames import FrameList


def _frames(q: Quality, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    base = np.zeros((q.height * 3 // 2, q.width), dtype=np.uint8)
    base[: q.height] = np.linspace(16, 235, q.width, dtype=np.uint8)  # a smooth luma ramp
    base[q.height :] = 128
    return [np.clip(base.astype(int) + rng.integers(-2, 3, base.shape), 0, 255).astype(np.uint8) + 0 * i for i in range(n)]


def test_compressed_frames_decode_close_to_the_original_and_much_smaller():
    q = Quality("360p", 360, 25)
    frames = _frames(q, 5)
    stored = FrameList.compress(frames, jpeg_quality=90)
    assert len(stored) == 5 and stored.compressed
    back = stored[3]
    assert back.shape == frames[3].shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - frames[3].astype(int)).mean() < 3
    # Each plane decodes into its own place: chroma stays neutral grey.
    assert abs(float(back[q.height :].mean()) - 128) < 2
    assert stored.nbytes() * 5 < sum(f.nbytes for f in frames)
    assert len(stored[1:3]) == 2 and np.array_equal(stored[1:3][0], stored[1])


def test_raw_frames_pass_through():
    frames = _frames(Quality("240p", 240, 25), 2)
    stored = FrameList.raw(frames)
    assert not stored.compressed and stored[1] is frames[1] and next(iter(stored)) is frames[0]
