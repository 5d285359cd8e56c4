from models.protocols import DialogueLine, LineStart
from pipelines.stages.segmenter import Segmenter, split_text


def words(s: str) -> int:
    return len(s.split())


def test_short_text_is_one_chunk():
    assert split_text("Hello there, friend.", 10) == ["Hello there, friend."]


def test_cuts_on_sentences_first():
    text = "The sky is blue. It scatters light. Short waves scatter more than long ones do."
    chunks = split_text(text, 8)
    assert chunks[0] == "The sky is blue. It scatters light."
    assert all(words(c) <= 8 for c in chunks)
    assert " ".join(chunks) == text


def test_long_sentence_cut_at_clauses_then_evenly():
    text = "one two three four five, six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
    chunks = split_text(text, 5)
    assert all(words(c) <= 5 for c in chunks)
    assert " ".join(chunks).split() == text.split()
    assert chunks[0] == "one two three four five,"


def test_empty_text_gives_nothing():
    assert split_text("   ", 5) == []


def test_segments_number_in_order_and_keep_speaker():
    seg = Segmenter(("Alex", "Sam"), max_words=6, first_max_words=3, first_segments=1)
    welcome = "Welcome to the show everyone. Today we talk about the sky."
    a = seg.add_line(DialogueLine(0, "Alex", welcome))
    b = seg.add_line(DialogueLine(1, "Sam", "Thanks Alex."))
    assert [s.index for s in a + b] == list(range(len(a) + len(b)))
    assert words(a[0].text) <= 3, "the first segment is short for a fast start"
    assert all(s.speaker == 0 and s.speaker_name == "Alex" for s in a)
    assert b[0].speaker == 1
    assert [s.ends_line for s in a] == [False] * (len(a) - 1) + [True]
    assert " ".join(s.text for s in a).split() == welcome.split()


def test_unknown_speaker_falls_back_to_alternation():
    seg = Segmenter(("Alex", "Sam"), max_words=10, first_max_words=10, first_segments=0)
    assert seg.add_line(DialogueLine(3, "Narrator", "Hi."))[0].speaker == 1


def test_a_started_line_goes_on_after_its_first_words_with_a_short_segment():
    seg = Segmenter(("Alex", "Sam"), max_words=16, first_max_words=5, first_segments=1, first_index=10)
    reading = seg.add_line(DialogueLine(3, "Alex", "Maya from the chat asks: why is the sea salty?", question="q"))
    assert [s.text for s in reading] == ["Maya from the chat asks:", "why is the sea salty?"]
    start = seg.start_line(LineStart(4, "Sam", "Great question, Maya! Well,", question="q"))
    assert [(s.index, s.line_index, s.speaker, s.text, s.ends_line, s.question) for s in start] == [
        (12, 4, 1, "Great question, Maya! Well,", False, "q")]
    said = "rivers carry salt from rocks into the sea. The water leaves it behind when it evaporates."
    rest = seg.add_line(DialogueLine(4, "Sam", f"Great question, Maya! Well, {said}", question="q"))
    # The viewer already hears the line: its next words come in a short segment, then as usual.
    assert [s.text for s in rest] == ["rivers carry salt from", "rocks into the sea. The water leaves it behind when it evaporates."]
    assert [s.index for s in rest] == [13, 14] and [s.ends_line for s in rest] == [False, True]
    assert {s.line_index for s in rest} == {4}
    after = seg.add_line(DialogueLine(5, "Alex", "Wow, I never knew that about the sea at all."))
    assert [s.text for s in after] == ["Wow, I never knew that about the sea at all."], "a line not started is cut as usual"
