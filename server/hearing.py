"""Recognising viewers' spoken questions off the event loop: one worker process holding one
``SphinxRecogniser`` (models/hearing/sphinx.py), started on first use and replaced if it dies.

Why a process: pocketsphinx holds the GIL while it decodes, so on a thread it would stall
the event loop that paces every viewer's WebRTC stream for as long as each decode takes.
One process decodes one utterance at a time, in the order they end, with one decoder loaded
once (loading a decoder per utterance would cost about as much as decoding a short one).

Contract: ``await hearing.recognise(pcm)`` (16 kHz mono int16 bytes) returns the words heard,
"" for none; it raises ``HearingFailed`` when the worker could not answer (it died twice on
the utterance, or took longer than ``TIMEOUT_S``). ``shutdown`` stops the worker; a later
``recognise`` starts a new one.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from pipelines.child_process import die_with_parent

if TYPE_CHECKING:
    from models.hearing.sphinx import SphinxRecogniser

log = logging.getLogger(__name__)

#: The longest a recognition may take, start of a fresh worker included.
TIMEOUT_S = 30.0
#: Tries of one utterance when the worker dies under it.
TRIES = 2

#: The worker process's recogniser, loaded by its initializer.
_recogniser: SphinxRecogniser | None = None


class HearingFailed(RuntimeError):
    """The recogniser could not answer; the message says why."""


def _init_worker() -> None:
    global _recogniser
    from models.hearing.sphinx import SphinxRecogniser

    die_with_parent()
    _recogniser = SphinxRecogniser()
    _recogniser.warm_up()


def _recognise_in_process(pcm: bytes) -> str:
    assert _recogniser is not None, "the worker's initializer loads the recogniser"
    return _recogniser.recognise(pcm)


def _ping() -> bool:
    return _recogniser is not None


class Hearing:
    """The worker process and the calls into it; safe to share between viewers."""

    def __init__(self) -> None:
        # spawn, not fork: the parent runs llama.cpp and onnxruntime threads.
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        #: Workers started after one died.
        self.restarts = 0

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=self._ctx, initializer=_init_worker)
            return self._pool

    def _forget(self, pool: ProcessPoolExecutor) -> None:
        """Stop ``pool``'s worker (dead or stuck); the next call starts a new one."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
                self.restarts += 1
        _stop(pool)

    def warm_up(self) -> None:
        """Start the worker and load its decoder now (blocking), so the first question does not wait."""
        self._current().submit(_ping).result(timeout=TIMEOUT_S)

    async def recognise(self, pcm: bytes) -> str:
        """The words in ``pcm`` (see the module's contract)."""
        for attempt in range(1, TRIES + 1):
            pool = self._current()
            try:
                future = pool.submit(_recognise_in_process, pcm)
                return await asyncio.wait_for(asyncio.wrap_future(future), TIMEOUT_S)
            except BrokenProcessPool:
                log.warning("the speech recogniser's process died (try %d of %d); starting a new one", attempt, TRIES)
                self._forget(pool)
            except TimeoutError:
                self._forget(pool)  # a stuck decoder would hold every later question
                raise HearingFailed(f"speech recognition took longer than {TIMEOUT_S:g} s") from None
        raise HearingFailed("the speech recogniser's process died; try again")

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            _stop(pool)


def _stop(pool: ProcessPoolExecutor) -> None:
    processes = list((pool._processes or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:  # the executor's own shutdown waits for a job under way
        process.terminate()
