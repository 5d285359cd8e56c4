"""The state of one episode being written by the llama.cpp writer, and its timing figures.

Contract: plain data; ``failed_start`` gives the contract's events when llama.cpp fails
before the first line; ``finish_stats`` fills in and logs an episode's totals.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from models.protocols import (
    HostsAnnounced,
    ScriptEnd,
    ScriptEvent,
    ScriptRequest,
    ShowTitle,
)
from models.script.outline import Outline
from models.script.parser import ScriptParser
from models.script.text import title_from_topic

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger("models.script.llama")


@dataclass
class StreamStats:
    """Timing of the last episode, for benchmarks and logs."""

    started: float = 0.0
    title_s: float | None = None
    first_line_s: float | None = None
    total_s: float = 0.0
    tokens: int = 0
    gen_s: float = 0.0
    #: Seconds its generations waited for another episode's urgent one (models/script/urgent.py).
    paused_s: float = 0.0
    lines: int = 0
    words: int = 0
    retries: int = 0
    rejected: list[str] = field(default_factory=list)
    #: The sub-topics the episode moved through, and whether the model drafted them.
    outline: tuple[str, ...] = ()
    outline_drafted: bool = False

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.gen_s if self.gen_s > 0 else 0.0


@dataclass
class Gen:
    """One completion: its text, why it stopped ("stop" or "length") and its token count."""

    text: str
    finish_reason: str
    tokens: int


def failed_start(request: ScriptRequest, hosts: tuple[str, str], exc: Exception) -> Iterator[ScriptEvent]:
    """The contract's events when llama.cpp fails before the first line: title, hosts, and why it ended."""
    log.exception("llama.cpp failed before the first line")
    yield ShowTitle(title=title_from_topic(request.topic))
    yield HostsAnnounced(hosts=hosts)
    yield ScriptEnd(reason=f"error: {type(exc).__name__}: {exc}")


@dataclass
class Run:
    """One episode being written: what each of its turns needs."""

    request: ScriptRequest
    stats: StreamStats
    hosts: tuple[str, str]
    #: The sanitized topic (safe inside the prompt).
    topic: str
    #: The hosts' names as transcript labels ("ALEX").
    labels: tuple[str, str]
    #: The prompt before the transcript: header, topic and (once written) the title.
    head: str
    parser: ScriptParser
    #: Where a generation stops: the end of the line or the next speaker's label.
    stop: tuple[str, ...]
    #: This episode's llama.cpp context (its KV cache holds this episode's transcript).
    llm: Llama
    #: The episode's key once its opening line is known (llama_contexts.episode_key).
    episode: str | None = None
    #: "ALEX: text\n" lines already accepted.
    transcript: list[str] = field(default_factory=list)
    #: The sub-topics, drafted once the first lines are out (None before).
    outline: Outline | None = None
    #: The outline item the last cued turn opened (-1: none yet), and the words said before it.
    section: int = -1
    before_outline: int = 0
    #: The first transcript line a prompt may hold (``fit_prompt``'s ``first``); None: not
    #: known yet, to be found in the context's KV cache (a script going on after a splice).
    window_from: int | None = 0


def finish_stats(run: Run, budget: int) -> None:
    """Fill in the episode's totals and log them."""
    stats = run.stats
    stats.total_s = time.perf_counter() - stats.started
    stats.lines = len(run.parser.lines)
    stats.words = run.parser.word_count
    log.info(
        "episode done: %d lines, %d/%d words, %.1f tok/s, first line %.2fs, %d retries",
        stats.lines, stats.words, budget, stats.tokens_per_s, stats.first_line_s or -1, stats.retries,
    )
