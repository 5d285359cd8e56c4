"""How the llama.cpp writer answers a viewer's question: the reading, the answer, the bridge.

The answer's first line is due when the question's reading and the answer's cue have been
heard, a few seconds after the splice. A whole line is 30-50 tokens, and on a busy machine
writing it can take longer than the reading and the cue play. So that line is written in
two steps: first its opening sentence alone (a generation that stops at the first
sentence end), which goes out at once as a second ``LineStart`` and is voiced while the
model writes the rest of the line after it. If the rest cannot be used, the line is the
cue and the opening.

Contract: ``answer`` yields what ``ScriptWriter.stream`` does for an answer: the reading,
``LineStart``s each followed by the ``DialogueLine`` with the same index starting with
their words, the answer and bridge lines, and ``QuestionDeclined`` when the model could not
answer at all. It uses the writer's own line machinery (``_one_line``, ``_generate``).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Generator, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from models.protocols import (
    DialogueLine,
    LineStart,
    QuestionDeclined,
    ScriptEvent,
    ViewerQuestion,
)
from models.script.episode import Phase, turn_problem
from models.script.llama_contexts import count_tokens, fit_prompt
from models.script.questions import (
    ANSWER_LINES,
    FIRST_ANSWER_RETRIES,
    answer_cue,
    answer_tokens,
    bridge_cue,
    canned_answer,
    reading_line,
)
from models.script.text import clean_text

if TYPE_CHECKING:
    from models.script.llama_run import Gen, Run

log = logging.getLogger(__name__)


class LlamaCppWriter(Protocol):
    """What an answer needs of the llama.cpp writer (models/script/llama.py): its line machinery."""

    temperature: float
    n_ctx: int
    context_lines: int
    max_line_tokens: int
    min_body_words: int

    def _one_line(self, run: Run, label: str, cue: str, max_new: int, phase: Phase, min_words: int,
                  retries: int | None = None, urgent: bool = False) -> Generator[ScriptEvent, None, DialogueLine | None]:
        ...

    def _generate(self, prompt: str, max_tokens: int, **kw: Any) -> Gen: ...

    def _seed_for(self, line_no: int, attempt: int) -> int | None: ...

    def _said(self, run: Run, line: DialogueLine) -> DialogueLine: ...

#: Room for the opening sentence of the answer's first line.
OPENING_TOKENS = 32
#: The fewest words the opening sentence may have.
OPENING_MIN_WORDS = 3
#: The first sentence of a text: at least ``OPENING_MIN_WORDS`` words, then ., ! or ?, then a
#: space (the end of the text counts once the text is whole: "3." may go on as "3.5").
_FIRST_SENTENCE = re.compile(rf"^\s*((?:\S+\s+){{{OPENING_MIN_WORDS - 1},}}?\S*?[.!?])(?=\s)")


def first_sentence(text: str, whole: bool = True) -> str | None:
    """The first sentence of ``text`` (None before one is complete); ``whole``: nothing
    more will be added to ``text``."""
    found = _FIRST_SENTENCE.match(f"{text} " if whole else text)
    return found.group(1).strip() if found else None


def answer(writer: LlamaCppWriter, run: Run, question: ViewerQuestion) -> Iterator[ScriptEvent]:
    """A host reads the question out (the writer's words, never parsed), the other starts the
    answer at once (``LineStart``) while the model writes the rest, they go on for
    ``ANSWER_LINES``, and a bridge line returns to the topic. An answer the model cannot
    write is replaced by a canned line and the question declined."""
    parser = run.parser
    parser.question = question.id
    cues = (answer_cue(question.name), bridge_cue(run.topic))
    reading = reading_line(question.text, question.name)
    parser.echoes.allow([reading, *cues])  # answers name what was asked, on purpose
    yield writer._said(run, parser.said(reading))
    yield LineStart(parser.next_index, parser.next_host, cues[0], question=question.id)
    answered, failure = 0, "the model could not write an answer"
    line_limit, bridge_limit = answer_tokens(writer.max_line_tokens)
    try:
        for k in range(ANSWER_LINES):
            label = run.labels[len(parser.lines) % 2]
            if k == 0:
                line = yield from first_line(writer, run, label, cues[0], line_limit)
            else:
                line = yield from writer._one_line(run, label, "", line_limit, Phase.BODY, writer.min_body_words)
            if line is None:
                break
            answered += 1
            run.transcript.append(f"{label}: {line.text}\n")
    except Exception as exc:
        log.exception("llama.cpp failed answering a question")
        failure = f"the model failed: {type(exc).__name__}"
    # Half an answer stands (the bridge follows); none at all is declined, and the line
    # the cue started is the canned answer.
    declined = "" if answered else failure
    if declined:
        yield writer._said(run, parser.said(canned_answer(question.name)))
    label = run.labels[len(parser.lines) % 2]
    bridge = yield from writer._one_line(run, label, cues[1], bridge_limit, Phase.BODY, writer.min_body_words)
    if bridge is None:
        yield writer._said(run, parser.said(cues[1]))
    else:
        run.transcript.append(f"{label}: {bridge.text}\n")
    parser.question = None
    if declined:
        yield QuestionDeclined(question_id=question.id, reason=declined)


def first_line(writer: LlamaCppWriter, run: Run, label: str, cue: str,
               max_new: int) -> Generator[ScriptEvent, None, DialogueLine | None]:
    """The answer's first line after ``cue``: its opening sentence as soon as it is written
    (a ``LineStart``), then the whole line; None when the model wrote no usable opening."""
    parser = run.parser
    opening = opening_sentence(writer, run, label, cue)
    if opening is None:
        return None
    started = f"{cue} {opening}"
    yield LineStart(parser.next_index, parser.next_host, started, question=parser.question)
    rest = max(8, max_new - count_tokens(run.llm, opening))
    line = _value(writer._one_line(run, label, started, rest, Phase.BODY, 0, 1, urgent=True))
    if line is None:
        line = parser.said(started)
    elif line.text.split()[:len(started.split())] != started.split():
        # Not seen with openings the parser keeps as they are; the LineStart's contract comes first.
        log.warning("answer line %r does not start with its opening %r", line.text, started)
        line = replace(line, text=started)
    yield line
    return line


def _value(lines: Generator[ScriptEvent, None, DialogueLine | None]) -> DialogueLine | None:
    """What a ``_one_line`` generator returns, without passing on the line it yields."""
    while True:
        try:
            next(lines)
        except StopIteration as done:
            return done.value


def opening_sentence(writer: LlamaCppWriter, run: Run, label: str, cue: str) -> str | None:
    """The first sentence the model writes after ``cue``, usable as it stands (the parser would
    keep it word for word), or None after ``FIRST_ANSWER_RETRIES`` retries."""
    parser = run.parser
    prompt = fit_prompt(run.head, run.transcript, f"{label}: {cue}", budget=writer.n_ctx - OPENING_TOKENS - 8,
                        window=writer.context_lines, count=lambda text: count_tokens(run.llm, text))
    for attempt in range(FIRST_ANSWER_RETRIES + 1):
        gen = writer._generate(
            prompt, max_tokens=OPENING_TOKENS, temperature=min(1.2, writer.temperature + 0.15 * attempt),
            seed=writer._seed_for(parser.next_index, attempt), stop=run.stop, stats=run.stats, llm=run.llm,
            halt=run.request.halt, urgent=True, until=lambda text: first_sentence(text, whole=False) is not None,
        )
        # A whole line without a full stop is a sentence too.
        opening = first_sentence(gen.text) or (gen.text.strip() if gen.finish_reason == "stop" else None)
        problem = _opening_problem(run, cue, opening, last_try=attempt == FIRST_ANSWER_RETRIES)
        if problem is None:
            return opening
        run.stats.rejected.append(f"answer opening: {problem}")
        run.stats.retries += 1
    return None


def _opening_problem(run: Run, cue: str, opening: str | None, last_try: bool) -> str | None:
    """Why ``opening`` cannot open the answer; None when it can."""
    if opening is None:
        return "no whole sentence"
    if ":" in opening or clean_text(opening) != opening:
        return f"{opening!r} (the parser would change it)"
    if run.parser.said_before(opening):
        return f"{opening!r} (said before)"
    recent = [line.text for line in run.parser.lines[-2:]]
    return turn_problem(Phase.BODY, opening, f"{cue} {opening}", cued=True, topic=run.topic, recent=recent,
                        last_try=last_try, min_words=OPENING_MIN_WORDS)
