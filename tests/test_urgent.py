"""Urgent generations: while an answer's first line is written, the other episodes' lines pause."""
from __future__ import annotations

import threading
import time
from typing import Any

from test_script_llama import HOSTS, FakeLlama, distinct_sentence, fake_writer

from models.protocols import DialogueLine, LineStart, ScriptRequest, ViewerQuestion
from models.script.questions import answer_cue
from models.script.urgent import UrgentGenerations


def test_a_generation_waits_while_one_on_another_context_is_urgent() -> None:
    urgent, mine, other = UrgentGenerations(max_wait_s=5.0), object(), object()
    assert urgent.pause_point(mine) == 0.0, "nothing urgent: no wait"
    released = threading.Event()

    def answer() -> None:
        with urgent.urgent(other):
            released.wait(5)

    thread = threading.Thread(target=answer)
    thread.start()
    while not urgent._urgent:
        time.sleep(0.001)
    assert urgent.pause_point(other) < 0.05, "the urgent context's own generations never wait"
    threading.Timer(0.2, released.set).start()
    waited = urgent.pause_point(mine)
    thread.join()
    assert 0.15 <= waited < 4.0, "waited until the urgent generation ended, not the whole cap"
    assert not urgent._urgent


def test_a_pause_ends_at_its_cap_or_when_its_stream_is_halted() -> None:
    urgent, halt = UrgentGenerations(max_wait_s=0.2), threading.Event()
    with urgent.urgent("answer"):
        assert 0.15 <= urgent.pause_point("other") < 2.0, "no pause lasts past max_wait_s"
        urgent.max_wait_s = 10.0
        threading.Timer(0.1, halt.set).start()
        assert urgent.pause_point("other", halt) < 5.0, "a halted stream stops waiting"


class TimedFake(FakeLlama):
    """A fake model that takes a little time per token and notes when each one comes out."""

    def __init__(self, answer: Any) -> None:
        super().__init__(answer)
        self.ticks: list[float] = []

    def create_completion(self, prompt: str, **kw: Any):
        for chunk in super().create_completion(prompt, **kw):
            time.sleep(0.002)
            self.ticks.append(time.monotonic())
            yield chunk


def test_other_episodes_pause_while_the_first_answer_line_is_written(monkeypatch) -> None:
    cue, window = answer_cue("Maya"), []

    def answer(prompt: str, kw: dict[str, Any]) -> str:
        if prompt.endswith(cue):  # the answer's first line: slow to come
            t0 = time.monotonic()
            time.sleep(0.4)
            window.append((t0, time.monotonic()))
        return distinct_sentence(len(prompt))

    writer, _ = fake_writer(answer, contexts=2)
    writer._llm = TimedFake(answer)
    contexts = [writer._llm]
    monkeypatch.setattr(writer, "_new_llama", lambda: contexts.append(TimedFake(answer)) or contexts[-1])
    other = writer.stream(ScriptRequest(topic="bread", duration_s=900))
    lines, stop = [], threading.Event()

    def write_other() -> None:
        for event in other:
            if isinstance(event, DialogueLine):
                lines.append(event)
            if stop.is_set():
                break

    thread = threading.Thread(target=write_other)
    thread.start()
    while len(lines) < 3:
        time.sleep(0.01)
    history = tuple(DialogueLine(k, HOSTS[k % 2], distinct_sentence(1000 + k)) for k in range(5))
    resumed = writer.stream(ScriptRequest(topic="tides", duration_s=120, history=history,
                                          question=ViewerQuestion(id="q1", text="Why tides?", name="Maya")))
    events = [next(resumed) for _ in range(3)]  # the reading, the cue, the first answer line
    stop.set()
    thread.join()
    other.close()
    resumed.close()
    assert isinstance(events[1], LineStart) and events[2].text.startswith(cue)
    (t0, t1), = window
    answering = next(c for c in contexts if any(p.endswith(cue) for p in c.prompts))
    others = [t for c in contexts if c is not answering for t in c.ticks]
    assert len(others) > 50, "the other episode wrote on before and after"
    during = [t for t in others if t0 + 0.05 < t < t1]
    assert not during, f"{len(during)} tokens of another episode while the answer's first line was written"
