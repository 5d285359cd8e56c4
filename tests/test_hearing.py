"""The speech recogniser for questions asked by voice: pocketsphinx on real speech, and the
worker process that keeps it off the event loop.

The speech is the project's own Piper voice saying a question (real synthesis, nothing
recorded); what is heard must hold most of its words. Silence, a click and quiet noise
must give no words at all, so nothing is asked for them.
"""
from __future__ import annotations

import asyncio
import os
import signal
import time

import numpy as np
import pytest
from conftest import run_async

from models.hearing.sphinx import (
    MIN_VOICED_S,
    SAMPLE_RATE,
    SphinxRecogniser,
    voiced_seconds,
)
from server.hearing import Hearing
from tests.support.speech import MIN_OVERLAP, QUESTIONS, at_16k, overlap, spoken


@pytest.fixture(scope="module")
def recogniser() -> SphinxRecogniser:
    return SphinxRecogniser()


def test_overlap_counts_each_heard_word_once() -> None:
    assert overlap("why is the sky blue", "why is the sky blue") == 1.0
    assert overlap("the cat and the dog", "the cat") == 0.4
    assert overlap("why is the sky blue", "") == 0.0


def test_voiced_seconds_counts_loud_frames_only() -> None:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = (np.sin(2 * np.pi * 200 * t) * 3000).astype(np.int16)
    assert voiced_seconds(tone) == pytest.approx(1.0)
    assert voiced_seconds(np.zeros(SAMPLE_RATE, np.int16)) == 0.0
    assert voiced_seconds((tone * 0.05).astype(np.int16)) == 0.0, "a whisper of a tone is under the level"
    assert voiced_seconds(tone[:100]) == 0.0, "less than a frame"


@pytest.mark.models
@pytest.mark.parametrize("question", QUESTIONS)
def test_a_spoken_question_is_heard(recogniser: SphinxRecogniser, question: str) -> None:
    heard = recogniser.recognise(at_16k(spoken(question)))
    assert overlap(question, heard) >= MIN_OVERLAP, (question, heard)
    assert heard == heard.lower() and "(" not in heard and "<" not in heard, "plain lower-case words"


def test_silence_a_click_and_quiet_noise_are_no_words(recogniser: SphinxRecogniser) -> None:
    rng = np.random.default_rng(7)
    silence = np.zeros(2 * SAMPLE_RATE, np.int16)
    click = silence.copy()
    click[SAMPLE_RATE: SAMPLE_RATE + int(MIN_VOICED_S * SAMPLE_RATE / 2)] = 8000
    room = (rng.standard_normal(2 * SAMPLE_RATE) * 60).astype(np.int16)
    for name, pcm in (("silence", silence), ("click", click), ("room noise", room), ("nothing", np.zeros(0, np.int16))):
        assert recogniser.recognise(pcm.tobytes()) == "", name


@pytest.mark.models
@pytest.mark.timeout(120)
def test_the_worker_process_hears_without_stalling_the_event_loop() -> None:
    """pocketsphinx holds the GIL while it decodes: only a process of its own keeps the event
    loop (which paces every viewer's stream) ticking meanwhile. A worker that dies is replaced."""
    question = QUESTIONS[0]
    pcm = at_16k(spoken(question))
    long = at_16k(np.concatenate([spoken(question) for _ in range(4)]))

    async def main() -> tuple[str, str, float, str, int]:
        hearing = Hearing()
        try:
            await asyncio.to_thread(hearing.warm_up)
            gaps: list[float] = []
            done = asyncio.Event()

            async def tick() -> None:
                last = time.perf_counter()
                while not done.is_set():
                    await asyncio.sleep(0.005)
                    now = time.perf_counter()
                    gaps.append(now - last)
                    last = now

            ticking = asyncio.create_task(tick())
            heard_long = await hearing.recognise(long)
            done.set()
            await ticking
            heard = await hearing.recognise(pcm)
            pid = next(iter(hearing._pool._processes.values())).pid  # type: ignore[union-attr]
            os.kill(pid, signal.SIGKILL)
            again = await hearing.recognise(pcm)
            return heard, heard_long, max(gaps), again, hearing.restarts
        finally:
            hearing.shutdown()

    heard, heard_long, worst_gap, again, restarts = run_async(main())
    assert overlap(question, heard) >= MIN_OVERLAP, heard
    assert overlap(" ".join([question] * 4), heard_long) >= MIN_OVERLAP, heard_long
    # Decoding that much speech holds the GIL for over a second: in a thread, the loop would stop.
    assert worst_gap < 0.3, f"the event loop stalled {worst_gap:.2f} s while a question was recognised"
    assert overlap(question, again) >= MIN_OVERLAP and restarts == 1, (again, restarts)
