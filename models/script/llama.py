"""Script writer that runs a small GGUF model in-process with llama.cpp.

Why the writer, not the model, controls the turns: models of 135-270M parameters
drift out of any format within a few lines. So the prompt is a transcript that
ends with ``"\\nALEX:"`` and each generation stops at the end of the line; the
writer then appends the cleaned line and the other host's label. Alternation and
format are guaranteed, each line can be checked (empty, looped, copied from the
example) and regenerated with another seed, and llama.cpp reuses the KV cache of
the unchanged prompt prefix, so a new turn costs only its own tokens.

The episode goes through the phases of ``models.script.episode.Phase``: an
opening cued with the topic, body turns until ``request.word_budget`` minus an
ending reserve is spent, then a cued wrap-up and a cued sign-off from the other
host (both completed by the model), so an episode always ends properly instead
of stopping mid-thought.

Contract: ``LlamaCppWriter.stream`` yields ``ShowTitle``, ``HostsAnnounced``,
alternating ``DialogueLine``s and exactly one ``ScriptEnd``, whatever the model
writes; a failure of llama.cpp itself ends the script early with a
``ScriptEnd`` whose reason names it.
"""
from __future__ import annotations

import atexit
import contextlib
import logging
import os
import random
import re
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from models.protocols import (
    DialogueLine,
    HostsAnnounced,
    LineStart,
    QuestionDeclined,
    ScriptEnd,
    ScriptEvent,
    ScriptRequest,
    ShowTitle,
    ViewerQuestion,
)
from models.script.episode import NUDGES, EpisodePlan, Phase, turn_problem
from models.script.gguf import model_info, resolve_model
from models.script.llama_contexts import (
    ContextPool,
    Halted,
    Head,
    Heads,
    cached_window,
    count_tokens,
    episode_key,
    fit_prompt,
    shift_window,
)
from models.script.llama_run import Gen, Run, StreamStats, failed_start, finish_stats
from models.script.outline import OUTLINE_CUE, Outline
from models.script.parser import ScriptParser
from models.script.prompts import (
    CANNED_SIGN_OFFS,
    PROMPT_STYLES,
    WRAP_UP_CUE,
    canned_wrap_up,
    example_lines,
    sign_off_cue,
    usable_title,
    welcome_line,
)
from models.script.questions import (
    ANSWER_LINES,
    FIRST_ANSWER_RETRIES,
    answer_cue,
    answer_tokens,
    bridge_cue,
    canned_answer,
    reading_line,
    said_again,
)
from models.script.repetition import ECHO_LIMIT
from models.script.text import (
    intro_topic_phrase,
    sanitize_topic,
    title_from_topic,
)
from models.script.urgent import UrgentGenerations

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger(__name__)

#: The outline is drafted once this many lines are out: the first lines are written from the
#: topic alone, so drafting it never delays the lines that start the show (under load each
#: of them is due a few seconds after the one before, with little written ahead yet).
OUTLINE_AFTER_LINES = 4


class LlamaCppWriter:
    """``ScriptWriter`` backed by llama-cpp-python and a local GGUF model.

    Loads the model once (in ``__init__`` unless ``lazy``); ``stream`` is a
    blocking generator meant to run in a worker thread. One instance can serve
    several episodes: each writing episode gets a llama.cpp context of its own,
    up to ``contexts``; episodes that share a context take turns line by line.

    The default model is SmolLM2-135M-Instruct: on the 2-core target it writes
    faster than Gemma 3 270M, gets its first line out sooner, and its scripts
    stay at least as much on topic. ``model="gemma3-270m"`` switches to Gemma
    with a base-model transcript prompt. ``n_threads=1`` is the better choice
    when the TTS and the renderer run on the same two cores: llama.cpp's
    spinning threads stall as soon as a core is busy, while a single thread
    keeps a steady pace.
    """

    name = "llama_cpp"

    def __init__(
        self,
        model: str | os.PathLike[str] = "smollm2-135m",
        *,
        cache_dir: Path | None = None,
        n_threads: int = 2,
        n_threads_batch: int | None = None,
        n_ctx: int = 4096,
        n_batch: int = 256,
        temperature: float = 0.7,
        top_p: float = 0.9,
        top_k: int = 40,
        min_p: float = 0.05,
        repeat_penalty: float = 1.15,
        seed: int | None = 1234,
        max_line_tokens: int = 64,
        max_retries: int = 3,
        show_name: str = "StreamWise",
        prompt_style: str = "auto",
        generate_title: bool = True,
        context_lines: int = 16,
        contexts: int = 4,
        max_line_words: int = 60,
        min_body_words: int = 4,
        lazy: bool = False,
        verbose: bool = False,
    ) -> None:
        self.model_ref = str(model)
        self.cache_dir = cache_dir
        self.n_threads = n_threads
        # llama-cpp-python defaults n_threads_batch to every core; keep prompt evaluation
        # to the same small count so it does not oversubscribe cores shared with the TTS.
        self.n_threads_batch = n_threads_batch or n_threads
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k
        self.min_p = min_p
        self.repeat_penalty = repeat_penalty
        self.seed = seed
        self.max_line_tokens = max_line_tokens
        self.max_retries = max_retries
        self.show_name = show_name
        self.generate_title = generate_title
        self.max_line_words = max_line_words
        self.context_lines = context_lines
        self.min_body_words = min_body_words
        self.verbose = verbose
        info = model_info(self.model_ref)
        if prompt_style == "auto":
            prompt_style = "chatml" if info is not None and info.instruct else "transcript"
        if prompt_style not in PROMPT_STYLES:
            raise ValueError(f"prompt_style must be one of {sorted(PROMPT_STYLES)} or 'auto'")
        self.style = PROMPT_STYLES[prompt_style]
        self.model_path: Path | None = None
        self._llm: Llama | None = None
        self._load_lock = threading.Lock()
        #: Episodes writing at once each get a llama.cpp context of their own: its KV cache
        #: keeps that episode's transcript, where a shared context would evaluate the whole
        #: transcript again at every switch between episodes (models/script/llama_contexts.py).
        self.contexts = max(1, int(contexts))
        self._pool: ContextPool | None = None
        self._heads = Heads()
        self._gen_locks: dict[int, threading.Lock] = {}
        self._urgent = UrgentGenerations()
        self.last_stats = StreamStats()
        if not lazy:
            self._load()

    # ------------------------------------------------------------------ model
    def _new_llama(self) -> Llama:
        from llama_cpp import Llama  # heavy import, only when a model is used

        seed = self.seed if self.seed is not None else random.randrange(2**31)
        return Llama(model_path=str(self.model_path), n_ctx=self.n_ctx, n_batch=self.n_batch, seed=seed,
                     n_threads=self.n_threads, n_threads_batch=self.n_threads_batch, verbose=self.verbose)

    def _load(self) -> Llama:
        with self._load_lock:
            if self._llm is None:
                self.model_path = resolve_model(self.model_ref, self.cache_dir)
                t0 = time.perf_counter()
                self._llm = self._new_llama()
                log.info("loaded %s in %.2fs", self.model_path.name, time.perf_counter() - t0)
                # Free the model before interpreter teardown: llama.cpp's own finaliser
                # runs too late then and prints a TypeError on every exit.
                atexit.register(self.close)
        return self._llm

    def _acquire(self, episode: str | None = None, halt: threading.Event | None = None) -> Llama:
        """A context for one stream of ``episode`` (ContextPool.acquire)."""
        primary = self._load()
        with self._load_lock:
            if self._pool is None:
                self._pool = ContextPool(primary, self._new_llama, self.contexts)
        return self._pool.acquire(episode, halt)

    def _release(self, llm: Llama, halt: threading.Event | None = None) -> None:
        if self._pool is not None:
            self._pool.release(llm, halt)

    def close(self) -> None:
        with self._load_lock:
            if self._pool is not None:
                self._pool.close()  # its first context is the model's own
            elif self._llm is not None:
                self._llm.close()
            self._llm = self._pool = None

    def warm_up(self) -> None:
        """Load the model and evaluate the static prompt header.

        The header (instructions + example episode) is the same for every episode,
        so evaluating it now puts it in the KV cache and the first episode only
        pays for its topic line.
        """
        primary = self._load()
        header = self.style.header(self.show_name, ("Alex", "Sam"))
        self._generate(header + self.style.episode("why the sky is blue"), max_tokens=2, temperature=0.0, llm=primary)
        # Every other context starts from a copy of that KV cache instead of evaluating it again.
        state = primary.save_state()
        held = [self._acquire() for _ in range(self.contexts)]
        try:
            for llm in held:
                if llm is not primary:
                    llm.load_state(state)
        finally:
            for llm in held:
                self._release(llm)

    def _gen_lock(self, llm: Llama) -> threading.Lock:
        """What keeps generations (and reads of its KV cache) on one context apart."""
        with self._load_lock:
            return self._gen_locks.setdefault(id(llm), threading.Lock())

    def _generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float | None = None,
        seed: int | None = None,
        stop: tuple[str, ...] = ("\n",),
        stats: StreamStats | None = None,
        llm: Llama | None = None,
        halt: threading.Event | None = None,
        urgent: bool = False,
    ) -> Gen:
        """One completion on ``llm``; an ``urgent`` one has the cores: the others pause meanwhile."""
        llm = llm or self._load()
        lock = self._gen_lock(llm)
        text_parts: list[str] = []
        finish, n, paused = "stop", 0, 0.0
        with lock, self._urgent.urgent(llm) if urgent else contextlib.nullcontext():
            if halt is not None and halt.is_set():
                raise Halted  # the stream is no longer wanted: the model is free for the next one
            t0 = time.perf_counter()
            shift_window(llm, llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))
            for chunk in llm.create_completion(
                prompt,
                max_tokens=max_tokens,
                temperature=self.temperature if temperature is None else temperature,
                top_p=self.top_p,
                top_k=self.top_k,
                min_p=self.min_p,
                repeat_penalty=self.repeat_penalty,
                seed=seed,
                stop=list(stop) + list(self.style.stop),
                stream=True,
            ):
                choice = chunk["choices"][0]
                text_parts.append(choice.get("text") or "")
                n += 1
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
                paused += 0.0 if urgent else self._urgent.pause_point(llm, halt)
                if halt is not None and halt.is_set():
                    raise Halted
            dt = time.perf_counter() - t0
        if stats is not None:
            stats.tokens += n
            stats.gen_s += dt - paused
            stats.paused_s += paused
        return Gen("".join(text_parts), finish, n)

    # ------------------------------------------------------------------ episode
    def _seed_for(self, line_no: int, attempt: int) -> int | None:
        """A seed of its own for every line and retry: reproducible episodes, yet a retry differs."""
        if self.seed is None:
            return None
        return (self.seed + 7919 * line_no + 104_729 * attempt) % (2**31)

    def _make_title(self, prompt: str, topic: str, stats: StreamStats, llm: Llama | None = None) -> str:
        """The model's title if it names the topic and is not an example's, else the topic in title case."""
        fallback = title_from_topic(topic)
        if not self.generate_title:
            return fallback
        for attempt in range(2):
            gen = self._generate(
                prompt, max_tokens=20, temperature=0.5 + 0.3 * attempt, seed=self._seed_for(999, attempt), stats=stats,
                llm=llm,
            )
            title = usable_title(gen.text, gen.finish_reason == "stop", topic)
            if title is not None:
                return title
            stats.rejected.append(f"title: {gen.text!r}")
        return fallback

    def stream(self, request: ScriptRequest) -> Iterator[ScriptEvent]:
        """Yield ShowTitle, HostsAnnounced, alternating DialogueLines, then one ScriptEnd.

        Never raises on bad model output; an error of the model runtime itself
        ends the script early with a ``ScriptEnd`` whose reason names it.
        """
        stats = StreamStats(started=time.perf_counter())
        self.last_stats = stats
        hosts = (request.hosts[0], request.hosts[1])
        topic = sanitize_topic(request.topic)
        labels = (hosts[0].upper(), hosts[1].upper())
        show = self.show_name
        parser = ScriptParser(hosts, max_line_words=self.max_line_words, accept_title=False, max_echo=ECHO_LIMIT,
                              seen_lines=[t for t in example_lines(show, extra=True) if not t.startswith("Welcome to")],
                              free_phrases=(*NUDGES, WRAP_UP_CUE, *(sign_off_cue(h) for h in hosts)))
        # A resumed episode is known by its opening line (llama_contexts.episode_key).
        episode = episode_key(topic, request.history[0].text) if request.history else None
        try:
            llm = self._acquire(episode, request.halt)
        except Exception as exc:  # noqa: BLE001 - the runtime itself failed: still honour the contract
            yield from failed_start(request, hosts, exc)
            return
        run = Run(request=request, stats=stats, hosts=hosts, topic=topic, labels=labels, parser=parser,
                  head=self.style.header(show, hosts) + self.style.episode(topic),
                  stop=("\n", f"{labels[0]}:", f"{labels[1]}:"), llm=llm, episode=episode)
        try:
            yield from self._resumed(run) if request.history else self._episode(run)
        except Halted:
            return
        finally:
            self._release(llm, request.halt)

    def _episode(self, run: Run) -> Iterator[ScriptEvent]:
        """The episode's events, written on its own context ``run.llm``."""
        try:
            title = self._make_title(run.head, run.request.topic, run.stats, run.llm)
        except Exception as exc:  # noqa: BLE001 - the runtime itself failed: still honour the contract
            yield from failed_start(run.request, run.hosts, exc)
            return
        run.stats.title_s = time.perf_counter() - run.stats.started
        yield ShowTitle(title=title)
        yield HostsAnnounced(hosts=run.hosts)
        run.head += f" {title}\n"
        yield from self._written(run, EpisodePlan(run.request.word_budget))

    def _written(self, run: Run, plan: EpisodePlan) -> Iterator[ScriptEvent]:
        """The turns from ``plan``'s phase on (a viewer's question first, if the request has
        one, and the lines nobody heard before it), then the ``ScriptEnd``; an error of
        llama.cpp itself ends the script there."""
        try:
            if run.request.question is not None:
                yield from self._answer(run, run.request.question)
                for line in said_again(run.request.unheard, run.hosts[len(run.parser.lines) % 2]):
                    yield self._said(run, run.parser.said(line.text, line.speaker))
            yield from self._turns(run, plan)
        except Exception as exc:  # llama.cpp runtime error mid-episode
            log.exception("llama.cpp failed mid-episode")
            plan.reason = f"error: {type(exc).__name__}: {exc}"
        finish_stats(run, plan.budget)
        yield ScriptEnd(reason=plan.reason)

    def _resumed(self, run: Run) -> Iterator[ScriptEvent]:
        """The rest of an episode from ``request.history`` on, a viewer's question first if
        there is one: no title, line numbers and alternation going on from the history."""
        for line in run.request.history:
            said = run.parser.said(line.text, line.speaker)
            run.transcript.append(f"{run.labels[run.hosts.index(said.speaker)]}: {said.text}\n")
        plan = EpisodePlan(run.request.word_budget)
        plan.phase = Phase.BODY
        run.window_from = None  # found in the KV cache before the first turn (_one_line)
        # The same head as before, so the transcript up to the cut is still in the KV cache.
        head = self._heads.get(run.episode) if run.episode else None
        if head is None:
            run.head += f" {title_from_topic(run.request.topic)}\n"
        else:
            run.head, run.outline, run.before_outline = head.text, head.outline, head.before_outline
            if run.outline is not None:
                run.section = run.outline.section(run.parser.word_count - run.before_outline,
                                                  plan.budget - plan.reserve - run.before_outline)
        yield from self._written(run, plan)

    def _answer(self, run: Run, question: ViewerQuestion) -> Iterator[ScriptEvent]:
        """A host reads the question out (the writer's words, never parsed), the other starts the
        answer at once (``LineStart``) while the model writes the rest, they go on for
        ``ANSWER_LINES``, and a bridge line returns to the topic. An answer the model cannot
        write is replaced by a canned line and the question declined."""
        parser = run.parser
        parser.question = question.id
        cues = (answer_cue(question.name), bridge_cue(run.topic))
        reading = reading_line(question.text, question.name)
        parser.echoes.allow([reading, *cues])  # answers name what was asked, on purpose
        yield self._said(run, parser.said(reading))
        yield LineStart(parser.next_index, parser.next_host, cues[0], question=question.id)
        answered, failure = 0, "the model could not write an answer"
        line_limit, bridge_limit = answer_tokens(self.max_line_tokens)
        try:
            for k in range(ANSWER_LINES):
                label = run.labels[len(parser.lines) % 2]
                # The first is due when the reading ends: fewer retries, and the other episodes wait.
                line = yield from self._one_line(run, label, cues[0] if k == 0 else "", line_limit, Phase.BODY,
                                                 self.min_body_words, FIRST_ANSWER_RETRIES if k == 0 else None,
                                                 urgent=k == 0)
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
            yield self._said(run, parser.said(canned_answer(question.name)))
        label = run.labels[len(parser.lines) % 2]
        bridge = yield from self._one_line(run, label, cues[1], bridge_limit, Phase.BODY, self.min_body_words)
        if bridge is None:
            yield self._said(run, parser.said(cues[1]))
        else:
            run.transcript.append(f"{label}: {bridge.text}\n")
        parser.question = None
        if declined:
            yield QuestionDeclined(question_id=question.id, reason=declined)

    @staticmethod
    def _said(run: Run, line: DialogueLine) -> DialogueLine:
        """A line the writer worded itself, added to the prompt's transcript."""
        run.transcript.append(f"{run.labels[run.hosts.index(line.speaker)]}: {line.text}\n")
        return line

    def _turns(self, run: Run, plan: EpisodePlan) -> Iterator[ScriptEvent]:
        """Write turns phase by phase until the sign-off (the model's, or a canned one) is out."""
        parser = run.parser
        while True:
            plan.budget = run.request.word_budget  # follows the voices' pace as they speak
            phase = plan.phase
            who = len(parser.lines) % 2  # strict alternation, hosts[0] opens
            label = run.labels[who]
            cue, max_new = self._cue(run, plan, who)
            min_words = plan.wrap_up_min_words(parser.word_count) if phase is Phase.WRAP_UP else self.min_body_words
            line = yield from self._one_line(run, label, cue, max_new, phase, min_words)
            if line is not None:
                run.transcript.append(f"{label}: {line.text}\n")
                if run.stats.first_line_s is None:
                    run.stats.first_line_s = time.perf_counter() - run.stats.started
                if run.episode is None:
                    run.episode = episode_key(run.topic, parser.lines[0].text)
                    self._remember(run)
                if plan.accepted(line.text, parser.word_count, len(parser.lines)):
                    return
                if len(parser.lines) == OUTLINE_AFTER_LINES and run.outline is None:
                    run.before_outline = parser.word_count
                    self._draft_outline(run)
                continue
            if phase is Phase.SIGN_OFF:
                # Never end without a goodbye: a canned line beats a cut-off episode.
                for canned in CANNED_SIGN_OFFS:
                    events = parser.feed(f"{label}: {canned}") + parser.finish_line()
                    if events:
                        yield from events
                        break
                return
            if phase is Phase.WRAP_UP:
                # Small models often ask one more question instead: a plain summary, then goodbye.
                canned = canned_wrap_up(intro_topic_phrase(run.topic))
                events = parser.feed(f"{label}: {canned}\n") + parser.finish_line()
                run.transcript += [f"{label}: {e.text}\n" for e in events if isinstance(e, DialogueLine)]
                yield from events
            if phase is Phase.INTRO:
                # The model could not even complete the cued opening: say the opening alone.
                yield from parser.feed(f"{label}: {welcome_line(self.show_name, run.topic)}\n") + parser.finish_line()
            plan.failed(len(parser.lines))

    def _cue(self, run: Run, plan: EpisodePlan, who: int) -> tuple[str, int]:
        """How the next turn starts (the model completes it) and its token limit."""
        if plan.phase is Phase.INTRO:
            # The topic itself is in the cue: it anchors the whole episode on it
            # (a 270M model otherwise drifts to whatever its title said).
            return welcome_line(self.show_name, intro_topic_phrase(run.topic)), self.max_line_tokens
        if plan.phase is Phase.WRAP_UP:
            return WRAP_UP_CUE, plan.wrap_up_tokens(run.parser.word_count)
        if plan.phase is Phase.SIGN_OFF:
            return sign_off_cue(run.hosts[1 - who]), 8
        tokens = plan.body_tokens(run.parser.word_count, self.max_line_tokens)
        if plan.nudge or run.outline is None:
            return plan.nudge, tokens
        said = run.parser.word_count - run.before_outline
        section = run.outline.section(said, plan.budget - plan.reserve - run.before_outline)
        if section <= run.section:
            return "", tokens
        run.section = section
        return run.outline.cue(section), tokens

    def _draft_outline(self, run: Run) -> None:
        """Ask the model for the episode's sub-topics (general angles when its list is unusable)
        and put them in the prompt's head, so every later turn sees where the episode goes."""
        try:
            gen = self._generate(run.head + OUTLINE_CUE, max_tokens=48, temperature=0.3,
                                 seed=self._seed_for(998, 0), stop=("\n\n", *run.stop[1:]),
                                 stats=run.stats, llm=run.llm)
            text = gen.text
        except Exception:  # an outline is a help, not a need
            log.exception("llama.cpp failed drafting the outline")
            text = ""
        run.outline = Outline.from_model(text, run.topic)
        run.stats.outline, run.stats.outline_drafted = run.outline.items, run.outline.drafted
        run.parser.echoes.allow(run.outline.cues())
        run.head += run.outline.header_line()
        self._remember(run)

    def _remember(self, run: Run) -> None:
        """Keep the episode's prompt head for a script that goes on from its middle."""
        if run.episode is not None:
            self._heads.remember(run.episode, Head(run.head, run.outline, run.before_outline))
            if self._pool is not None:
                self._pool.mark(run.llm, run.episode)

    def _one_line(
        self, run: Run, label: str, cue: str, max_new: int, phase: Phase, min_words: int, retries: int | None = None,
        urgent: bool = False,
    ) -> Generator[ScriptEvent, None, DialogueLine | None]:
        """Generate one turn of at least ``min_words`` words (after the cue), retrying unusable
        output (``retries`` times, default ``max_retries``); yields the line, returns it (or None).
        ``urgent``: the other episodes' generations pause meanwhile (``_generate``)."""
        parser = run.parser
        cue_line = f"{label}:" + (f" {cue}" if cue else "")
        if run.window_from is None:  # going on after a splice: start where the context's cache does
            with self._gen_lock(run.llm):
                run.window_from = cached_window(run.llm, run.head, run.transcript, self.context_lines)
        prompt = fit_prompt(run.head, run.transcript, cue_line, budget=self.n_ctx - max_new - 8,
                            window=self.context_lines, count=lambda text: count_tokens(run.llm, text),
                            first=run.window_from)
        line_no = len(parser.lines)
        retries = self.max_retries if retries is None else retries
        for attempt in range(retries + 1):
            last_try = attempt >= retries
            # A summary repeats what was said on purpose, and on a last try a weak line beats a
            # stuck episode; word-for-word repeats are dropped even then.
            parser.max_echo = ECHO_LIMIT if phase is Phase.BODY and not last_try else 1.0
            temp = min(1.2, self.temperature + 0.15 * attempt)
            gen = self._generate(
                prompt, max_tokens=max_new, temperature=temp, seed=self._seed_for(line_no, attempt),
                stop=run.stop, stats=run.stats, llm=run.llm, halt=run.request.halt, urgent=urgent,
            )
            body = gen.text.strip()
            if phase is Phase.SIGN_OFF:
                # "See you next week, Sam!" said by Sam: small models mix up who is talking.
                body = re.sub(rf",?\s*\b{re.escape(label)}\b", "", body, flags=re.IGNORECASE).strip()
            raw = f"{cue} {body}".strip() if cue else body
            problem = turn_problem(
                phase, body, raw, cued=bool(cue), topic=run.topic, recent=[line.text for line in parser.lines[-2:]],
                last_try=last_try, min_words=min_words,
            )
            if problem is None and cue and body and parser.said_before(body):
                problem = f"{raw!r} (said before after the cue)"
            if problem is None:
                events = parser.feed(f"{label}: {raw}") + parser.finish_line(truncated=gen.finish_reason == "length")
                lines = [ev for ev in events if isinstance(ev, DialogueLine)]
                if lines:
                    yield lines[0]
                    return lines[0]
                problem = f"{raw!r} ({parser.dropped[-1][0] if parser.dropped else '?'})"
            run.stats.rejected.append(f"{phase.value}: {problem}")
            run.stats.retries += 1
        return None
