"""The llama.cpp contexts one writer shares between episodes, and each episode's prompt head.

llama.cpp keeps a context's last prompt in its KV cache and evaluates only what a new
prompt adds after their longest common prefix. Episodes writing at once each get a context
of their own. A script that goes on from the middle of an episode (after a viewer's
question) costs only its new tokens when it runs on the context its episode wrote on and
its prompt starts with the same head (title and outline) as before: ``ContextPool`` hands
the context back to the same episode, ``Heads`` keeps the head, and ``fit_prompt`` gives
the same transcript the same prompt; a script going on after a splice starts its transcript
window where the cache holds it (``cached_window``).

An episode is known by ``episode_key``: its topic and opening line, which a resumed
request carries as the first line of its history.

Contract: both classes are thread-safe, ``fit_prompt`` is pure; ``ContextPool.acquire`` never waits. A context
whose every holder was halted counts as free: the halted streams raise ``Halted`` before
their next generation, and the per-context generation lock orders the rest (``shift_window``
and ``cached_window`` run under it too).
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from models.script.outline import Outline

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger("models.script.llama")

#: Episodes whose prompt head is kept: more than ever write at once on one writer.
KEPT_HEADS = 64
#: Tokens of a prompt's transcript that must match the cached transcript to find where the
#: moved window starts there, and the fewest kept tokens that make a shift worth it.
ANCHOR_TOKENS = 12
MIN_SHIFTED_TOKENS = 32


class Halted(BaseException):
    """Raised inside a writer's stream whose request was halted: the stream ends at once and
    gives its context back. A ``BaseException``, like ``GeneratorExit``, so that no
    ``except Exception`` of the writer takes it for a model error and writes on."""


def count_tokens(llm: Llama, text: str) -> int:
    """Tokens ``text`` takes as a prompt of ``llm`` (with its BOS)."""
    return len(llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))


def fit_prompt(head: str, lines: Sequence[str], cue_line: str, *, budget: int, window: int,
               count: Callable[[str], int], first: int = 0) -> str:
    """The prompt of the next turn: ``head``, the recent transcript from line ``first`` on at
    the earliest, ``cue_line``; at most ``budget`` tokens by ``count``.

    Small models loop on a long transcript (they copy their own earlier lines), so at most
    ``window`` lines are kept, dropped in blocks of half that: the prompt's prefix changes
    (one evaluation of the whole prompt) only every few turns, and the same transcript
    always gives the same prompt.
    """
    window = max(2, window)
    start = 0
    if len(lines) > window:
        step = window // 2
        start = ((len(lines) - window) // step + 1) * step
    start = max(start, min(first, len(lines)))
    while True:
        prompt = head + "".join(lines[start:]) + cue_line
        n = count(prompt)
        if n <= budget or start >= len(lines):
            if n > budget:
                log.warning("prompt of %d tokens does not fit in %d", n, budget)
            return prompt
        start += max(1, (len(lines) - start) // 4)


def shift_window(llm: Llama, tokens: Sequence[int]) -> int:
    """When the transcript window moved on (its first lines left the prompt), remove their
    tokens from ``llm``'s KV cache and move the tokens after them back, as llama.cpp's own
    context shift does, so that the lines kept are not evaluated again. ``tokens``: the next
    prompt. Returns the cached tokens kept that way (0: nothing to shift, or a cache that
    cannot shift)."""
    import llama_cpp  # loaded with the model already

    n = int(llm.n_tokens)
    if not n:
        return 0
    common = llama_cpp.Llama.longest_token_prefix
    cached = llm.input_ids[:n].tolist()
    p = common(cached, tokens)
    anchor = list(tokens[p:p + ANCHOR_TOKENS])
    if p >= n or len(anchor) < ANCHOR_TOKENS:
        return 0
    q = _find(cached, anchor, p + 1)
    kept = common(cached[q:], tokens[p:]) if q > 0 else 0
    ctx = llm._ctx
    if kept < MIN_SHIFTED_TOKENS or ctx.memory is None or not llama_cpp.llama_memory_can_shift(ctx.memory):
        return 0
    if not ctx.kv_cache_seq_rm(0, p, q):
        return 0
    ctx.kv_cache_seq_shift(0, q, -1, p - q)
    ids = cached[:p] + cached[q:]
    llm.input_ids[:len(ids)] = ids
    llm.n_tokens = len(ids)
    return kept


def cached_window(llm: Llama, head: str, lines: Sequence[str], window: int) -> int:
    """The line of ``lines`` that ``llm``'s KV cache holds first after ``head`` (0: none);
    a cached prompt held at most ``window`` lines, so only the last lines are tried.

    A script going on after a splice has a shorter transcript than the one written ahead
    on its context, so its own window would start at an earlier line than the cached one
    and the whole transcript would be evaluated again, seconds on a busy core, while the
    answer is due. Started at the cached line instead (``fit_prompt``'s ``first``), the
    prompt matches the cache up to the cut.
    """
    import llama_cpp  # loaded with the model already

    n = int(llm.n_tokens)
    if not n or not lines:
        return 0
    cached = llm.input_ids[:n].tolist()

    def shared(text: str) -> int:
        return llama_cpp.Llama.longest_token_prefix(cached, llm.tokenize(text.encode("utf-8"), add_bos=True,
                                                                         special=True))

    best, most = 0, shared(head) + ANCHOR_TOKENS
    for start in range(max(0, len(lines) - window - 1), len(lines)):
        if (p := shared(head + "".join(lines[start:]))) > most:
            best, most = start, p
    return best


def _find(seq: list[int], part: list[int], start: int) -> int:
    """Where ``part`` first occurs in ``seq`` at or after ``start`` (-1: nowhere)."""
    for i in range(start, len(seq) - len(part) + 1):
        if seq[i] == part[0] and seq[i:i + len(part)] == part:
            return i
    return -1


def episode_key(topic: str, opening: str) -> str:
    """What identifies an episode to its writer: its topic and its opening line."""
    return f"{topic}\n{opening}"


@dataclass
class _Slot:
    llm: Llama
    #: The halt event of each stream holding it (None: a stream that cannot be halted).
    holders: list[threading.Event | None] = field(default_factory=list)
    #: The episode that last wrote on it; its transcript is in the KV cache.
    episode: str | None = None
    #: Order of the last release, to give a new episode the context least recently used.
    released: int = 0

    def busy(self) -> bool:
        return any(h is None or not h.is_set() for h in self.holders)


class ContextPool:
    """Up to ``size`` llama.cpp contexts: the first is given, the rest made when needed."""

    def __init__(self, first: Llama, make: Callable[[], Llama], size: int) -> None:
        self._make = make
        self.size = max(1, size)
        self._slots = [_Slot(first)]
        self._lock = threading.Lock()
        self._releases = 0

    @property
    def contexts(self) -> list[Llama]:
        with self._lock:
            return [s.llm for s in self._slots]

    def holders(self, llm: Llama) -> int:
        """Streams holding ``llm`` now, halted ones included."""
        with self._lock:
            return next((len(s.holders) for s in self._slots if s.llm is llm), 0)

    def acquire(self, episode: str | None, halt: threading.Event | None) -> Llama:
        """A context for one stream of ``episode`` (None: a new episode): the free one that
        episode last wrote on, else the free one least recently used, else a new one (up to
        ``size``), else the least shared."""
        with self._lock:
            free = [s for s in self._slots if not s.busy()]
            mine = [s for s in free if episode is not None and s.episode == episode]
            if mine:
                slot = mine[0]
            elif free:
                slot = min(free, key=lambda s: s.released)
            elif len(self._slots) < self.size:
                slot = _Slot(self._make())
                self._slots.append(slot)
            else:
                slot = min(self._slots, key=lambda s: len(s.holders))
            slot.holders.append(halt)
            slot.episode = episode if episode is not None else slot.episode
            return slot.llm

    def mark(self, llm: Llama, episode: str) -> None:
        """``episode`` writes on ``llm`` (known once a new episode's opening line is out)."""
        with self._lock:
            for slot in self._slots:
                if slot.llm is llm:
                    slot.episode = episode

    def release(self, llm: Llama, halt: threading.Event | None) -> None:
        """The stream that acquired ``llm`` with ``halt`` is done."""
        with self._lock:
            for slot in self._slots:
                if slot.llm is llm and halt in slot.holders:
                    slot.holders.remove(halt)
                    self._releases += 1
                    slot.released = self._releases
                    return

    def close(self) -> None:
        with self._lock:
            for slot in self._slots:
                slot.llm.close()
            self._slots.clear()


@dataclass(frozen=True)
class Head:
    """The prompt before an episode's transcript, and the outline it holds."""

    text: str
    outline: Outline | None = None
    #: Words said before the outline was drafted (its sections share out the rest).
    before_outline: int = 0


class Heads:
    """The prompt head of each episode written lately, by ``episode_key``."""

    def __init__(self, size: int = KEPT_HEADS) -> None:
        self.size = size
        self._heads: OrderedDict[str, Head] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, episode: str, head: Head) -> None:
        with self._lock:
            self._heads[episode] = head
            self._heads.move_to_end(episode)
            while len(self._heads) > self.size:
                self._heads.popitem(last=False)

    def get(self, episode: str) -> Head | None:
        with self._lock:
            return self._heads.get(episode)
