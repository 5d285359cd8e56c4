"""A voiced segment cut between two words for a viewer's question: which gaps are known,
what the cut keeps, and how the buffer, the transcript and a viewer's feeds follow it."""
from __future__ import annotations

import numpy as np
import pytest

from models.protocols import Quality, TimedPhoneme
from pipelines.playout import clock
from pipelines.playout.buffer import Playhead, PlayoutBuffer
from pipelines.playout.encoding import encode_vp8, is_keyframe
from pipelines.playout.frames import FrameList
from pipelines.playout.transcript import TranscriptBuilder
from pipelines.segments import ReadySegment, SegmentText, VoicedSegment
from pipelines.stages.splice import splice_point
from pipelines.words import word_gaps
from server.transport.live_transcript import TranscriptFeed
from server.transport.shared_video import SharedCursor

Q = Quality("t", 180, 25)
SPF = Q.samples_per_frame
GRID = clock.grid_for([25])
WORD, GAP, MARK = clock.to_samples(0.3), clock.to_samples(0.06), clock.to_samples(0.1)
TEXT = "So the thing about bread, is that it rises slowly."


def spoken(words: list[str]) -> tuple[tuple[TimedPhoneme, ...], list[int]]:
    """Phonemes as the speech engine times them (one sound a word, a mark after punctuation,
    a space between words), and where each word's sound ends."""
    out, ends, at = [TimedPhoneme("^", 0, GAP)], [], GAP
    for k, word in enumerate(words):
        out.append(TimedPhoneme("a", at, at + WORD))
        at += WORD
        ends.append(at)
        if word[-1] in ",.?":
            out.append(TimedPhoneme(word[-1], at, at + MARK))
            at += MARK
        out.append(TimedPhoneme(" " if k < len(words) - 1 else "$", at, at + GAP))
        at += GAP
    return tuple(out), ends


def voiced(text: str = TEXT, start: int = 0) -> VoicedSegment:
    phonemes, _ = spoken(text.split())
    n = clock.pad_to_grid(phonemes[-1].end, GRID)
    seg = SegmentText(index=3, line_index=1, speaker=0, speaker_name="Alex", text=text, ends_line=False)
    return VoicedSegment(seg=seg, start=start, n_samples=n, speech_samples=phonemes[-1].end,
                         pcm=np.ones(n, np.float32), phonemes=phonemes)


def ready(v: VoicedSegment) -> ReadySegment:
    n_frames = clock.frame_count(v.n_samples, Q.fps)
    frames = [np.full((270, 320), (7 * k) % 256, np.uint8) for k in range(n_frames)]
    return v.ready(Q, FrameList.raw(frames).encoded(encode_vp8(frames, Q.fps)))


def test_plain_words_are_matched_one_to_one() -> None:
    words = TEXT.split()
    phonemes, ends = spoken(words)
    gaps = word_gaps(TEXT, phonemes)
    assert [g.words for g in gaps] == list(range(1, len(words)))
    assert [g.at for g in gaps] == ends[:-1], "a word ends with its last sound, before its comma's pause"


def test_a_clause_read_as_other_words_keeps_only_its_end() -> None:
    # "1990" is read as two words: its clause's inner gaps are unknown, its end is not.
    phonemes, _ = spoken(["In", "nineteen", "ninety,", "the", "bread", "rose."])
    assert [g.words for g in word_gaps("In 1990, the bread rose.", phonemes)] == [2, 3, 4]
    # Clauses that cannot be matched: no gap is trusted.
    phonemes, _ = spoken(["In", "nineteen,", "ninety,", "the", "bread", "rose."])
    assert word_gaps("In 1990, the bread rose.", phonemes) == []


def test_the_splice_falls_between_words_unless_a_segment_end_is_close() -> None:
    first = voiced()
    second = voiced("And then it bakes.", start=first.end)
    points = first.gaps(GRID)
    assert points and all(p % GRID == 0 and first.start < p < first.end for p in points)
    earliest = first.start + clock.to_samples(0.9)
    assert splice_point([first, second], earliest, GRID) == min(p for p in points if p >= earliest)
    near_end = first.end - clock.to_samples(0.2)
    assert splice_point([first, second], near_end, GRID) == first.end


def test_a_cut_keeps_the_words_before_it_and_silence_up_to_it() -> None:
    v = voiced()
    _, ends = spoken(TEXT.split())
    at = v.gaps(GRID)[3]  # after "about"
    cut = v.cut(at)
    assert cut.seg.text == "So the thing about" and cut.seg.ends_line
    assert cut.n_samples == at - v.start and cut.speech_samples == ends[3]
    assert np.all(cut.pcm[ends[3]:] == 0) and np.all(cut.pcm[: ends[3] - 480] == 1)
    assert all(p.end <= ends[3] for p in cut.phonemes)


def test_a_drawn_segment_cut_keeps_its_encoded_frames_up_to_the_cut() -> None:
    seg = ready(voiced())
    at = voiced().gaps(GRID)[4]
    cut = seg.cut(at)
    n = (at - seg.start) // SPF
    assert len(cut.frames) == n and cut.frames.packets == seg.frames.packets[:n]
    assert is_keyframe(cut.frames.packets[0])
    assert cut.text == "So the thing about bread," and cut.end == at


def test_the_buffer_and_transcript_keep_the_part_before_a_cut() -> None:
    first = voiced()
    buffer, transcript = PlayoutBuffer(), TranscriptBuilder()
    for segment in (ready(first), ready(voiced("And then it bakes.", start=first.end))):
        buffer.append(segment)
        transcript.add(segment)
    at = first.gaps(GRID)[2]
    cut = buffer.truncate(at)
    transcript.truncate(at, cut)
    assert cut is not None and buffer.end == at and buffer.segments == [cut]
    assert [s["text"] for s in transcript.segments] == ["So the thing"]
    assert buffer.truncate(at) is None, "nothing left past the cut"


@pytest.fixture
def watched() -> tuple[PlayoutBuffer, Playhead]:
    buffer = PlayoutBuffer()
    buffer.append(ready(voiced()))
    head = Playhead(buffer)
    head.next_audio(960)  # starts playing
    return buffer, head


def test_a_viewer_inside_a_segment_cut_short_goes_on_where_it_was(watched: tuple[PlayoutBuffer, Playhead]) -> None:
    buffer, head = watched
    cursor = SharedCursor(head)
    head.position = 3 * SPF
    sent = [cursor.next(False) for _ in range(4)]
    buffer.truncate(voiced().gaps(GRID)[5])
    pick = cursor.next(False)
    assert pick.position == 4 * SPF and not is_keyframe(pick.data), "frames 0-3 are not sent again"
    assert [p.position for p in sent] == [k * SPF for k in range(4)]


def test_the_live_transcript_amends_a_line_cut_after_it_was_sent(watched: tuple[PlayoutBuffer, Playhead]) -> None:
    buffer, head = watched
    feed = TranscriptFeed()
    assert [m["text"] for m in feed.messages(buffer, head.position)] == [TEXT]
    buffer.truncate(voiced().gaps(GRID)[1])
    amended = feed.messages(buffer, head.position)
    assert amended == [{**amended[0], "text": "So the", "amend": True}] and amended[0]["index"] == 3
    assert feed.messages(buffer, head.position) == []
