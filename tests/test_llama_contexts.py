"""The writer's llama.cpp contexts go back to the episode that wrote on them, and the
prompt keeps the same prefix while the transcript grows (models/script/llama_contexts.py)."""
from __future__ import annotations

import threading

from models.script.llama_contexts import ContextPool, Head, Heads, fit_prompt


class Context:
    """Stands in for a llama.cpp context: the pool only hands it out and closes it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    def close(self) -> None:
        self.closed = True


def pool(size: int) -> ContextPool:
    made = iter(range(1, 100))
    return ContextPool(Context("c0"), lambda: Context(f"c{next(made)}"), size)  # type: ignore[arg-type]


def test_an_episode_gets_back_the_context_it_wrote_on() -> None:
    p = pool(3)
    a = p.acquire("a", None)
    b = p.acquire("b", None)
    p.release(a, None)
    p.release(b, None)
    assert p.acquire("a", None) is a and p.acquire("b", None) is b


def test_a_new_episode_takes_the_context_least_recently_used_then_a_new_one() -> None:
    p = pool(3)
    a, b = p.acquire("a", None), p.acquire("b", None)
    p.release(b, None)
    p.release(a, None)
    assert p.acquire(None, None) is b, "a's transcript, released last, stays in its cache"
    assert p.acquire(None, None) is a
    c = p.acquire(None, None)
    assert c.name == "c2" and len(p.contexts) == 3
    assert p.acquire(None, None) in (a, b, c) and len(p.contexts) == 3, "never more than size"


def test_a_context_whose_holders_were_halted_counts_as_free() -> None:
    p = pool(2)
    halt = threading.Event()
    old = p.acquire("a", halt)
    other = p.acquire("b", None)
    halt.set()  # a splice: the old stream ends at its next generation, not at once
    assert p.acquire("a", None) is old
    assert p.holders(old) == 2
    p.release(old, halt)
    assert p.holders(old) == 1 and p.holders(other) == 1


def test_a_new_episode_marks_its_context_once_its_opening_line_is_out() -> None:
    p = pool(2)
    a, b = p.acquire(None, None), p.acquire(None, None)
    p.mark(b, "a")  # the new episode's key is known from its first line on
    p.release(a, None)
    p.release(b, None)
    assert p.acquire("a", None) is b


def test_close_closes_every_context() -> None:
    p = pool(2)
    made = [p.acquire(None, None), p.acquire(None, None)]
    p.close()
    assert all(c.closed for c in made)


def test_heads_are_kept_for_the_latest_episodes() -> None:
    heads = Heads(size=2)
    for key in ("a", "b", "c"):
        heads.remember(key, Head(f"head {key}\n"))
    assert heads.get("a") is None and heads.get("c") == Head("head c\n")


def test_the_prompt_keeps_its_prefix_until_a_block_of_lines_is_dropped() -> None:
    lines = [f"L{i}: words\n" for i in range(40)]

    def prompt(n: int) -> str:
        return fit_prompt("HEAD\n", lines[:n], "L:", budget=10_000, window=8, count=len)

    assert prompt(8).startswith("HEAD\nL0:")
    assert prompt(9).startswith("HEAD\nL4:") and prompt(11).startswith("HEAD\nL4:")
    assert prompt(12).startswith("HEAD\nL8:")
    short = fit_prompt("HEAD\n", lines[:8], "L:", budget=40, window=8, count=len)
    assert len(short) <= 40 and short.endswith("L7: words\nL:"), "the recent lines fit the budget"


def test_a_window_starts_no_earlier_than_its_first_line() -> None:
    """A script going on after a splice starts its window where its context's cache does."""
    lines = [f"L{i}: words\n" for i in range(40)]
    prompt = fit_prompt("HEAD\n", lines[:11], "L:", budget=10_000, window=8, count=len, first=6)
    assert prompt.startswith("HEAD\nL6:"), "its own window would start at line 4"
    later = fit_prompt("HEAD\n", lines[:14], "L:", budget=10_000, window=8, count=len, first=6)
    assert later.startswith("HEAD\nL8:"), "the window moves on from there as before"
    assert fit_prompt("HEAD\n", lines[:3], "L:", budget=10_000, window=8, count=len, first=6) == "HEAD\nL:"
