import numpy as np
import pytest

from models.protocols import Quality
from pipelines.playout.buffer import Playhead, PlayoutBuffer
from pipelines.segments import ReadySegment

Q = Quality("t", 240, 25)
SPF = Q.samples_per_frame


def seg(kind: str, start: int, frames: int, value: float) -> ReadySegment:
    n = frames * SPF
    images = [np.full((Q.height * 3 // 2, Q.width), i, dtype=np.uint8) for i in range(frames)]
    return ReadySegment(kind=kind, index=0, start=start, n_samples=n, pcm=np.full(n, value, dtype=np.float32),
                        quality=Q, frames=images, speaker=0, speaker_name="Alex", text="hi", speech_samples=n)


def test_buffer_is_contiguous_and_reads_across_segments():
    buf = PlayoutBuffer()
    buf.append(seg("intro", 0, 2, 0.0))
    buf.append(seg("speech", 2 * SPF, 2, 0.5))
    with pytest.raises(ValueError):
        buf.append(seg("speech", 10 * SPF, 1, 0.5))
    chunk = buf.audio(SPF, 2 * SPF)
    assert chunk[:SPF].max() == 0.0 and chunk[SPF:].min() == 0.5
    assert buf.audio(3 * SPF, 2 * SPF) is None, "not generated yet"
    frame, q = buf.frame_at(2 * SPF + SPF + 5)
    assert q == Q and frame[0, 0] == 1, "the latest frame at or before the position"
    assert buf.caption_at(2 * SPF) == ("Alex", "hi")
    assert buf.caption_at(0) is None


def test_playhead_waits_for_speech_then_skips_the_intro_it_already_showed():
    buf = PlayoutBuffer()
    head = Playhead(buf)
    buf.append(seg("intro", 0, 10, 0.0))
    for _ in range(4):  # 4 frames' worth of title-card filler while speech is generated
        assert not head.next_audio(SPF).any()
    assert not head.started and head.frame() is None
    buf.append(seg("speech", 10 * SPF, 5, 0.5))
    assert head.next_audio(SPF).min() == 0.5, "straight to the first words"
    assert head.started and head.position == 11 * SPF
    assert head.stats.stalls == 0


def test_replay_of_a_finished_episode_plays_the_whole_intro():
    buf = PlayoutBuffer()
    buf.append(seg("intro", 0, 3, 0.0))
    buf.append(seg("speech", 3 * SPF, 2, 0.5))
    buf.finish()
    head = Playhead(buf)
    head.next_audio(SPF)
    assert head.position == SPF


def test_late_content_is_a_stall_and_nothing_is_skipped():
    buf = PlayoutBuffer()
    buf.append(seg("speech", 0, 2, 0.5))
    stalls: list[tuple[int, float]] = []
    head = Playhead(buf, on_stall=lambda at, seconds: stalls.append((at, seconds)))
    assert head.next_audio(2 * SPF).min() == 0.5
    assert not head.next_audio(SPF).any()
    assert not head.next_audio(SPF).any()
    assert head.stats.stalls == 1 and head.stats.stalled_samples == 2 * SPF
    assert head.position == 2 * SPF, "the playhead held still"
    assert not stalls, "told once the stall is over"
    buf.append(seg("speech", 2 * SPF, 1, 0.25))
    assert head.next_audio(SPF).min() == 0.25
    assert head.next_audio(SPF) is not None
    assert len(stalls) == 1 and stalls[0][0] == 2 * SPF and stalls[0][1] >= 0.0, "where it waited, and how long"
    buf.finish()
    assert head.ended


def test_a_stall_is_kept_on_the_episode_timeline_with_where_it_waited():
    from models.protocols import CLOCK_RATE
    from pipelines.spans import Timeline

    buf, timeline = PlayoutBuffer(), Timeline()
    buf.append(seg("speech", 0, 1, 0.5))
    head = Playhead(buf, on_stall=timeline.stalled)
    head.next_audio(SPF), head.next_audio(SPF)
    buf.append(seg("speech", SPF, 1, 0.5))
    head.next_audio(SPF)
    (stall,) = timeline.stalls()
    assert stall.at_s == round(SPF / CLOCK_RATE, 3) and 0 <= stall.began <= stall.ended
    assert not timeline.spans(), "a stall is no task: no metric counts it as work"
