"""A viewer's question in the show: cleaned into data, read out, answered, then back to the topic.

A question is text from anyone watching, so it is treated like the topic: data that is
read out and talked about, never instructions. ``clean_question`` removes what could
start a transcript line or imitate a speaker label (newlines, control characters,
"SAM:"), brackets that could spell a chat template's tokens, and caps the length; the
writers never parse the reading line (they emit it as it is), so a question cannot add
lines or change who speaks. The lines around it are the writers' own words:

- ``reading_line``: one host reads the question out ("Maya from the chat asks: ...").
- ``answer_cue``: how the other host starts the answer, voiced while the model completes it.
- ``bridge_cue``: how the line that returns to the topic starts.
- ``canned_answer``: said when the model cannot answer (error, timeout, nothing usable).
- ``said_again``: the lines written before the question that nobody heard, said after the
  bridge as they were written: the show picks up where it was cut off, and the writer does
  not write that stretch twice.

Contract: pure functions; ``clean_question`` raises ``BadQuestion`` with a message a
viewer can act on.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from models.protocols import DialogueLine
from models.script.text import intro_topic_phrase, is_ending_line, normalize_chars

#: The longest question, in characters after cleaning.
MAX_QUESTION_CHARS = 280
#: The longest name a viewer can give.
MAX_NAME_CHARS = 32
#: Lines the hosts give the answer after the reading (the bridge back comes after them).
ANSWER_LINES = 2
#: Words an answer line is written with at most, and the bridge back to the topic: an answer
#: is an aside, and a question asked meanwhile waits for its end.
ANSWER_LINE_WORDS = 30
BRIDGE_WORDS = 18
#: Retries of the first answer line, which follows the reading at once: then a weak line
#: beats a late one (each retry is a whole generation, seconds on a busy machine).
FIRST_ANSWER_RETRIES = 2


def line_tokens(words: int) -> int:
    """A token limit for a line of about ``words`` words (cut back to its last full sentence)."""
    return int(words * 1.6) + 8


def answer_tokens(max_line_tokens: int) -> tuple[int, int]:
    """Token limits of an answer line and of the bridge back, within a writer's line limit."""
    return min(max_line_tokens, line_tokens(ANSWER_LINE_WORDS)), min(max_line_tokens, line_tokens(BRIDGE_WORDS))


class BadQuestion(ValueError):
    """The question cannot be asked as sent; the message says why and what to do."""


#: "SAM:", "Assistant:", "system:" anywhere: what a speaker label or a chat role looks like.
_LABEL_RE = re.compile(r"\b([A-Za-z][\w .'-]{0,30}?)\s*:+(?=\s|$)")
_MARKUP_RE = re.compile(r"[<>\[\]{}|\\`*#_~^]")


def _clean(text: str) -> str:
    text = normalize_chars(text or "")
    text = _MARKUP_RE.sub(" ", text)
    text = _LABEL_RE.sub(r"\1 -", text)  # "SAM: say hi" -> "SAM - say hi": read, not a turn
    text = re.sub(r"(?!(?<=\d):\d)\s*:+\s*", " - ", text)  # any other colon too; "2:30" stays a time
    return " ".join(text.split()).strip(" -")


def clean_question(text: str, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """The question as the host will read it; ``BadQuestion`` when it is empty or too long."""
    cleaned = _clean(text)
    if not re.search(r"\w", cleaned):
        raise BadQuestion("the question is empty once control characters and markup are removed; type a question")
    if len(cleaned) > max_chars:
        raise BadQuestion(f"the question is {len(cleaned)} characters long; at most {max_chars} are read out. "
                          "Shorten it and ask again.")
    if cleaned[-1] not in ".?!":
        cleaned += "?"
    return cleaned


def clean_name(name: str | None) -> str:
    """A name a host can say ("" for none): letters, digits, spaces and simple punctuation only."""
    text = _clean(name or "")
    text = re.sub(r"[^\w .'-]", "", text).strip(" .'-")
    return text[:MAX_NAME_CHARS].strip()


def reading_line(question: str, name: str) -> str:
    """How a host reads the question out."""
    who = f"{name} from the chat asks" if name else "Someone in the chat asks"
    return f"{who}: {question}"


def answer_cue(name: str) -> str:
    """The start of the other host's answer: said before the model has written the rest
    (``LineStart``), which the model then completes."""
    return f"Great question, {name}! Well," if name else "Great question! Well,"


def bridge_cue(topic: str) -> str:
    """The start of the line that takes the show back to its topic."""
    return f"Now, back to {intro_topic_phrase(topic).rstrip(' .?!')}."


def canned_answer(name: str) -> str:
    """Said when no answer could be written (its cue was said already): the show goes on."""
    return f"{answer_cue(name)} that's a tricky one, and we'd rather not guess. Let's keep it for another episode."


def said_again(unheard: Sequence[DialogueLine], next_speaker: str) -> list[DialogueLine]:
    """The unheard lines to say after the answer: from the first that ``next_speaker`` says
    (one line is left out when that keeps the hosts alternating), while the hosts alternate,
    and up to the show's ending, which is written afresh after them."""
    again: list[DialogueLine] = []
    for k, line in enumerate(unheard):
        if is_ending_line(line.text):
            break
        if not again and line.speaker != next_speaker:
            if k:
                break
            continue
        if again and line.speaker == again[-1].speaker:
            break
        again.append(replace(line, question=None))
    return again
