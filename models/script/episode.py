"""The shape of an episode: its phases, when to move between them, and what a turn must be.

Contract: pure bookkeeping, no model calls, never raises on model output.

- ``Phase``: the stages an episode goes through.
- ``ending_reserve``: words kept back from the body for the ending; both
  writers use it, the chat writer to decide when to stop reading.
- ``EpisodePlan``: the state of one episode written turn by turn (the
  llama.cpp writer). After each turn the writer reports whether the model
  produced a usable line; the plan moves to the next phase and records why the
  episode ended (``ScriptEnd.reason``).
- ``turn_problem``: why a generated turn cannot be used in its phase (None
  when it can), so a writer can ask again with another seed.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from models.script.prompts import WRAP_UP_CUE, leaks_example
from models.script.text import is_ending_line, is_sign_off


class Phase(enum.Enum):
    """The stages of an episode, in this order; ``BODY`` repeats until the budget is met."""

    #: The opening line, cued with the topic so the whole episode is anchored on it.
    INTRO = "intro"
    #: Content turns, the hosts alternating, until the word budget minus the ending reserve is spent.
    BODY = "body"
    #: One host sums up; skipped for budgets too short to afford it.
    WRAP_UP = "wrap_up"
    #: The other host says goodbye; the episode ends after it.
    SIGN_OFF = "sign_off"


#: Budgets of at least this many words get a wrap-up before the sign-off.
WRAP_UP_MIN_BUDGET = 70
#: Fewer words than this left before the ending: end now rather than squeeze in a turn.
MIN_LAST_TURN_WORDS = 6

#: Openings given to a body turn the model failed to write on its own (loops, fillers).
NUDGES: tuple[str, ...] = (
    "Here's something most people don't know:",
    "Another interesting thing is that",
    "What surprised me most is that",
    "A common misconception is that",
    "Here's a simple example:",
    "If you think about everyday life,",
    "Historically,",
    "The part I find fascinating is",
)


def has_wrap_up(budget: int) -> bool:
    """Whether an episode of ``budget`` words ends with a wrap-up and a sign-off (else the sign-off alone).

    A short episode spends its few words on one more content turn instead.
    """
    return budget >= WRAP_UP_MIN_BUDGET


#: Words the cued sign-off ("Thanks, Sam! And thanks for listening, everyone. See you ...")
#: lasts as, at a typical pace: its exclamations make it slower than a body line.
SIGN_OFF_WORDS = 13
#: Words of a typical cued wrap-up ("So, to wrap up, ..." and one sentence).
WRAP_UP_WORDS = 14


def ending_reserve(budget: int) -> int:
    """Words the body leaves for the ending: a typical wrap-up and sign-off, or the sign-off.

    Sized to what the ending usually says, not its most: the body stops a few words short
    of the reserve on average (its last turn is trimmed to a full sentence), so a larger
    reserve makes every episode end early.
    """
    return WRAP_UP_WORDS + SIGN_OFF_WORDS if has_wrap_up(budget) else SIGN_OFF_WORDS


@dataclass
class EpisodePlan:
    """Which phase the next turn belongs to, and why the episode ended.

    ``reason`` starts as "budget" and becomes "model_degenerate" (the model
    could not write a usable turn even when nudged) or "max_lines" (too many
    short turns); the writer overwrites it with "error: ..." when the model
    runtime fails.
    """

    budget: int
    phase: Phase = Phase.INTRO
    reason: str = "budget"
    #: A cue that starts the next body turn after the model got stuck ("" for none).
    nudge: str = ""
    #: Nudges in a row without an accepted line.
    stuck: int = 0
    with_wrap_up: bool = field(init=False)
    reserve: int = field(init=False)
    max_lines: int = field(init=False)
    #: Nudges left for the whole episode: a model that needs more is not going to recover.
    nudges_left: int = field(init=False)
    #: Nudges said so far: each opening is used once before any is used again (a listener
    #: hears the same opening twice as the show repeating itself).
    nudges_used: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.with_wrap_up = has_wrap_up(self.budget)
        self.reserve = ending_reserve(self.budget)
        self.max_lines = max(4, self.budget // 4 + 6)
        self.nudges_left = max(len(NUDGES), self.budget // 30)

    @property
    def ending(self) -> Phase:
        """The first phase of the ending."""
        return Phase.WRAP_UP if self.with_wrap_up else Phase.SIGN_OFF

    def body_tokens(self, words_said: int, max_line_tokens: int) -> int:
        """Token limit of the next body turn.

        Near the end of the budget a turn gets fewer tokens; a turn cut by the
        limit is trimmed back to its last full sentence by the parser.
        """
        remaining = self.budget - words_said - self.reserve
        return max(16, min(max_line_tokens, int(remaining * 1.6) + 8))

    def wrap_up_tokens(self, words_said: int) -> int:
        """Token limit of the wrap-up: what is left before the sign-off, within a sentence's bounds.

        A body that ran over gets a short summary, one that stopped early room for a longer one.
        """
        return max(12, min(48, int(self._wrap_up_words(words_said) * 1.3) + 2))

    def wrap_up_min_words(self, words_said: int) -> int:
        """Fewest words the model's part of the wrap-up may have: half of what is left for it.

        The ending is the last chance to fit the requested length; a summary of three
        words after a body that stopped early leaves a short episode shorter.
        """
        return max(4, self._wrap_up_words(words_said) // 2)

    def _wrap_up_words(self, words_said: int) -> int:
        """Words left for the model to write after the wrap-up's cue, before the sign-off."""
        return self.budget - words_said - SIGN_OFF_WORDS - len(WRAP_UP_CUE.split())

    def accepted(self, text: str, words_said: int, lines_said: int) -> bool:
        """Move on after a turn was accepted; True when it completed the episode.

        ``words_said`` and ``lines_said`` count the whole episode, this turn included.
        """
        self.nudge = ""
        self.stuck = 0
        if self.phase is Phase.SIGN_OFF:
            return True
        if self.phase is Phase.WRAP_UP:
            self.phase = Phase.SIGN_OFF
            return False
        # One more body turn, or the ending now? One more while it fits: its tokens are capped to
        # the words left (body_tokens), so the ending lands within a short turn of the budget.
        end_now = self.budget - words_said - self.reserve < MIN_LAST_TURN_WORDS
        if (
            end_now
            and text.endswith("?")
            and self.phase is Phase.BODY
            and words_said + self.reserve < self.budget * 1.2
        ):
            end_now = False  # answer the open question before saying goodbye
        if end_now:
            self.phase = self.ending
        elif lines_said >= self.max_lines:
            self.reason = "max_lines"
            self.phase = self.ending
        else:
            self.phase = Phase.BODY
        return False

    def failed(self, lines_said: int) -> None:
        """Move on after the model could not write a usable turn for the current phase.

        The writer itself makes up for a failed opening (it says the cue alone)
        and a failed sign-off (a canned goodbye, after which the episode is over).
        """
        if self.phase is Phase.SIGN_OFF:
            return
        if self.phase is Phase.WRAP_UP:
            self.phase = Phase.SIGN_OFF
            return
        if self.phase is Phase.INTRO:
            # Even the cued opening failed: the model is unusable right now.
            self.reason = "model_degenerate"
            self.phase = Phase.SIGN_OFF
            return
        if self.stuck < 2 and self.nudges_left > 0:
            # A stuck model often recovers when the turn is started for it.
            recent = self.nudges_used[-len(NUDGES) + 1:]
            first = (lines_said + self.stuck) % len(NUDGES)
            order = [NUDGES[(first + k) % len(NUDGES)] for k in range(len(NUDGES))]
            self.nudge = next(n for n in order if n not in recent)
            self.nudges_used.append(self.nudge)
            self.stuck += 1
            self.nudges_left -= 1
            return
        self.reason = "model_degenerate"
        self.phase = self.ending


def _first_word(text: str) -> str:
    return re.sub(r"\W", "", text.split(" ", 1)[0].lower()) if text else ""


def turn_problem(
    phase: Phase,
    body: str,
    raw: str,
    *,
    cued: bool,
    topic: str,
    recent: list[str],
    last_try: bool,
    min_words: int,
) -> str | None:
    """Why a generated turn cannot be used in ``phase``; None when it can.

    ``body`` is what the model wrote, ``raw`` the turn as spoken (the cue, if
    any, followed by ``body``); ``recent`` holds the texts of the last two
    accepted lines; ``min_words`` the fewest words the model's part of a body turn or
    wrap-up may have. On the ``last_try`` fillers, short summaries and monotonous openings
    are let through: a weak line beats no line.
    """
    # A cue that is a whole sentence ("Let's talk about yeast.") is a line on its own: the
    # other host takes it from there. An opening and a goodbye always are.
    cue_alone = cued and not body and (phase in (Phase.SIGN_OFF, Phase.INTRO) or raw.endswith("."))
    if not body and not cue_alone:
        return "empty"
    if phase is Phase.BODY and is_ending_line(raw):
        return f"{raw!r} (ends the show early)"
    if phase is Phase.BODY and not cue_alone and len(body.split()) < min_words and not last_try:
        # "Yes." / "Right." fillers: fine once in a while, but small models
        # fall into long runs of them.
        return f"{raw!r} (filler)"
    if phase is not Phase.SIGN_OFF and leaks_example(body, topic):
        return f"{raw!r} (borrowed from the example)"
    if (
        phase is Phase.BODY
        and len(recent) == 2
        and not last_try
        and _first_word(body) == _first_word(recent[0]) == _first_word(recent[1])
    ):
        # "So ... / So ... / So ...": ask again for a less monotonous turn.
        return f"{raw!r} (same opening word again)"
    if phase is Phase.WRAP_UP and (
        len(body.split()) < 4 or body.rstrip(" .!\"'").endswith("?") or is_sign_off(body)
    ):
        return f"{raw!r} (no summary)"
    if phase is Phase.WRAP_UP and len(body.split()) < min_words and not last_try:
        return f"{raw!r} (summary too short for the time left)"
    return None
