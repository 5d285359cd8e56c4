"""The writer sizes an episode in media time, moves through an outline, and does not repeat itself.

The llama.cpp writer runs here on a scripted stand-in for the model (test_script_llama's
FakeLlama), so lengths and retries are exact; a voice that speaks at a fixed pace reports
each line's duration two lines late, as the runtime's speech stage does.
"""
from __future__ import annotations

import pytest
from test_script_llama import check_contract, distinct_sentence, fake_writer
from test_script_openai import scripted, transcript, url_of  # noqa: F401 - the fixture

from models.protocols import DialogueLine, ScriptRequest, ScriptWriter
from models.script.openai_chat import OpenAIChatWriter
from models.script.outline import ANGLES, Outline, parse_outline
from models.script.pace import PRIOR_WORDS_PER_SECOND, SpeakingPace
from models.script.parser import ScriptParser
from models.script.repetition import ECHO_LIMIT, Echoes, distinct, repeated_share

PAUSE_S = 0.35  # the pause after each line
FIXED_S = 2.4  # intro and closing cards


def _answers(prompt: str, kw: dict) -> str:
    if prompt.endswith("TITLE:"):
        return " Blue Skies\n"
    return f" {distinct_sentence(len(prompt) + kw['seed'])}\nALEX: extra"


def delivered_s(words_per_second: float, duration_s: float, writer: ScriptWriter | None = None, lag: int = 2) -> float:
    """Media seconds of an episode written for ``duration_s`` and voiced at ``words_per_second``
    (by the llama.cpp writer on the scripted model unless ``writer`` is given)."""
    pace = SpeakingPace(duration_s, fixed_s=FIXED_S)
    writer = writer or fake_writer(_answers)[0]
    pending: list[str] = []
    seconds = lambda text: len(text.split()) / words_per_second + PAUSE_S
    events = []
    for event in writer.stream(ScriptRequest(topic="why the sky is blue", duration_s=duration_s, pace=pace)):
        events.append(event)
        if isinstance(event, DialogueLine):
            pending.append(event.text)
            while len(pending) > lag:
                text = pending.pop(0)
                pace.voiced(len(text.split()), seconds(text))
    check_contract(events)
    return FIXED_S + pace.voiced_s + sum(seconds(t) for t in pending)


@pytest.mark.parametrize("speed", [0.5, 1.0, 2.0])
def test_the_episode_lasts_what_was_asked_whatever_the_voice(speed: float) -> None:
    duration = 180.0
    assert delivered_s(PRIOR_WORDS_PER_SECOND * speed, duration) == pytest.approx(duration, rel=0.05)


@pytest.mark.parametrize("speed", [0.5, 2.0])
def test_the_chat_writer_follows_the_voices_pace_too(scripted, speed: float) -> None:  # noqa: F811
    """The OpenAI-compatible writer reads an endless answer only as far as the time left allows."""
    scripted.answers += ["TITLE: Blue Sky\n" + transcript(400, words=12),
                         "ALEX: So, to wrap up, the sky is blue.\nSAM: Thanks for listening, bye!\n"]
    writer = OpenAIChatWriter(url_of(scripted), "scripted")
    assert delivered_s(PRIOR_WORDS_PER_SECOND * speed, 180.0, writer) == pytest.approx(180.0, rel=0.05)


def test_a_fixed_word_rate_would_miss_with_a_fast_voice() -> None:
    """The control: budgeting words at the prior rate, a voice twice as fast ends far too soon."""
    writer, _ = fake_writer(_answers)
    events = list(writer.stream(ScriptRequest(topic="why the sky is blue", duration_s=180.0)))
    words = sum(len(e.text.split()) for e in events if isinstance(e, DialogueLine))
    lines = sum(isinstance(e, DialogueLine) for e in events)
    assert FIXED_S + words / (2 * PRIOR_WORDS_PER_SECOND) + lines * PAUSE_S < 0.75 * 180


def test_the_pace_starts_from_the_prior_and_learns_the_voice() -> None:
    pace = SpeakingPace(60.0, fixed_s=2.0)
    assert pace.words_per_second == PRIOR_WORDS_PER_SECOND
    assert pace.word_budget() == round(58 * PRIOR_WORDS_PER_SECOND)
    pace.voiced(60, 10.0)  # 6 words a second, trusted after 10 s
    assert pace.words_per_second == pytest.approx(6.0)
    assert pace.word_budget() == 60 + round(48 * 6.0)
    pace.voiced(600, 100.0)  # past the requested length: nothing more to write
    assert pace.word_budget() == 660


def test_echoes_count_phrases_said_before_but_not_the_writers_cues() -> None:
    echoes = Echoes(free=["Let's talk about how it works."])
    echoes.add("The sky looks blue because air scatters blue light more.")
    assert echoes.share("Air scatters blue light more than red light.") == pytest.approx(2 / 5)
    assert echoes.share("Let's talk about how it works. Photons bounce off nitrogen.") == 0.0
    assert echoes.share("Short one.") == 0.0
    # A cue decided mid-episode (the outline's) becomes free when the writer allows it.
    echoes.add("Let's talk about an everyday example of bread.")
    assert echoes.share("Let's talk about an everyday example of yeast.") > 0
    echoes.allow(["Let's talk about an everyday example of bread."])
    assert echoes.share("Let's talk about an everyday example of yeast.") == 0.0


def test_the_parser_drops_a_line_that_mostly_echoes_earlier_ones() -> None:
    parser = ScriptParser(("Alex", "Sam"), max_echo=ECHO_LIMIT)
    parser.feed("ALEX: The sky looks blue because air scatters blue light more.\n")
    parser.feed("SAM: Because air scatters blue light more, the sky looks blue.\n")
    parser.feed("ALEX: Sunsets are red since the light travels through more air.\n")
    parser.close()
    assert [line.text for line in parser.lines] == [
        "The sky looks blue because air scatters blue light more.",
        "Sunsets are red since the light travels through more air.",
    ]
    assert parser.dropped[0][0] == "echo"


def test_the_writer_asks_again_for_a_line_that_echoes() -> None:
    said = "Molecules in the air scatter the short blue waves of sunlight."

    def answer(prompt: str, kw: dict) -> str:
        if prompt.endswith("TITLE:"):
            return " Blue Skies\n"
        if prompt.endswith("See you"):
            return " next time!\n"
        if prompt.endswith("to wrap up,"):  # a summary may repeat on purpose: not what this checks
            return " the air scatters blue light.\n"
        if said in prompt and kw["seed"] % 2 == 0:
            return " Right, molecules in the air scatter the short blue waves.\n"
        if said in prompt:
            return f" {distinct_sentence(kw['seed'])}\n"
        return f" {said}\n"

    writer, _ = fake_writer(answer)
    lines = check_contract(list(writer.stream(ScriptRequest(topic="why the sky is blue", duration_s=30))))
    texts = [line.text for line in lines]
    assert said in texts[1] or said in texts[0]
    assert not any("Right, molecules" in t for t in texts)
    assert any("echo" in r for r in writer.last_stats.rejected)


def test_script_measures() -> None:
    lines = ["one two three four five", "one two three four six", "seven eight nine ten"]
    assert repeated_share(lines) == pytest.approx(1 / 5)
    assert distinct(["a b a b"], n=2) == pytest.approx(2 / 3)


def test_the_outline_keeps_what_a_host_could_name() -> None:
    text = " Sunlight\n2. The Atmosphere (air)\n3. WHY DOES IT BE SO MUCH\n4. Why the sky is blue\n5. Scattering"
    assert parse_outline(text, "why the sky is blue") == ["sunlight", "the Atmosphere", "scattering"]
    junk = " Light is made of many colours and they scatter in the air all day long.\n2. THE SKY"
    outline = Outline.from_model(junk, "why the sky is blue")
    assert outline.items == ANGLES and not outline.drafted
    # Each item opens with other words: the same opening four times is heard as a refrain.
    assert [outline.cue(i) for i in range(3)] == [
        "Let's talk about how it works.", "Now, an everyday example.", "Next up, a common misconception."]


def test_the_body_moves_through_the_outline_cueing_each_item_once() -> None:
    outline = Outline(("sunlight", "the atmosphere", "sunsets"), drafted=True)
    assert [outline.section(w, 90) for w in (0, 29, 30, 60, 200)] == [0, 0, 1, 2, 2]
    writer, fake = fake_writer(_answers)
    list(writer.stream(ScriptRequest(topic="why the sky is blue", duration_s=120)))
    outline = Outline(writer.last_stats.outline, drafted=writer.last_stats.outline_drafted)
    cues = [outline.cue(i) for i in range(len(outline.items))]
    cued = [c for c in cues if any(p.rsplit("\n", 1)[-1].endswith(c) for p in fake.prompts)]
    assert cued == cues
