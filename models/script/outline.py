"""An episode's outline: the sub-topics it moves through, so a long episode goes somewhere.

Left to itself a small model circles one idea for minutes. So, once the show has started
(its first lines come from the topic alone), the writer asks the model for a short list of
sub-topics; this module keeps the
items a host could say ("sunlight", "how the dough is made") and drops the rest
(sentences, shouting, the topic again, the example episodes' subjects). When fewer than
``MIN_ITEMS`` survive, general angles that suit any topic take their place (not naming
the topic in each: a cue that repeats the topic is heard as the show repeating itself).
The body is
split evenly between the items by words, and the turn that opens an item is cued with
it, so the transcript itself carries the current sub-topic into the next lines.

Contract: pure functions of the model's text and the topic; never raises on model output.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from models.script.prompts import leaks_example
from models.script.text import normalize_for_compare

#: What the writer appends to the prompt to have the model list sub-topics.
OUTLINE_CUE = "OUTLINE (four parts):\n1."
MIN_ITEMS = 3
MAX_ITEMS = 4
MAX_ITEM_WORDS = 6
#: Angles on any topic, used when the model's list is not usable.
ANGLES: tuple[str, ...] = ("how it works", "an everyday example", "a common misconception", "why it matters")

#: How the turns opening the items start, in turn.
CUES: tuple[str, ...] = ("Let's talk about {item}.", "Now, {item}.", "Next up, {item}.", "Finally, {item}.")

_NUMBERING = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")
_WORD = re.compile(r"^[A-Za-z][A-Za-z'-]*$")


def _item(raw: str, topic: str) -> str | None:
    """One line of the model's list as a sub-topic a host can name, or None."""
    text = _NUMBERING.sub("", raw).strip().rstrip(".:;,")
    text = re.sub(r"\s*\([^)]*\)", "", text)  # "Sky (blue)" -> "Sky"
    words = text.split()
    if not 1 <= len(words) <= MAX_ITEM_WORDS or not all(_WORD.match(w) for w in words):
        return None
    if sum(len(w) > 3 and w.isupper() for w in words):
        return None  # shouting: small models write headings like this when they ramble
    key, topic_key = normalize_for_compare(text), normalize_for_compare(topic)
    if key in topic_key or key in ("introduction", "conclusion", "definition") or leaks_example(text, topic):
        return None  # the topic itself is no sub-topic
    return text[0].lower() + text[1:] if not text[:2].isupper() else text


def parse_outline(text: str, topic: str) -> list[str]:
    """The usable sub-topics in the model's numbered list (after ``OUTLINE_CUE``), in order."""
    items: list[str] = []
    for raw in text.splitlines():
        item = _item(raw, topic)
        if item and normalize_for_compare(item) not in {normalize_for_compare(i) for i in items}:
            items.append(item)
    return items[:MAX_ITEMS]


@dataclass(frozen=True)
class Outline:
    """The sub-topics of one episode, in order."""

    items: tuple[str, ...]
    #: Whether the items came from the model (else the general angles).
    drafted: bool

    @classmethod
    def from_model(cls, text: str, topic: str) -> Outline:
        items = parse_outline(text, topic)
        if len(items) >= MIN_ITEMS:
            return cls(tuple(items), drafted=True)
        return cls(ANGLES, drafted=False)

    def section(self, body_words: int, body_budget: int) -> int:
        """Which item a body that has said ``body_words`` of ``body_budget`` words is on."""
        share = max(1, body_budget) / len(self.items)
        return min(len(self.items) - 1, int(max(0, body_words) // share))

    def cue(self, index: int) -> str:
        """How the turn that opens item ``index`` starts (the model completes it): each item
        opened with other words, so the openings are not heard as a refrain."""
        return CUES[index % len(CUES)].format(item=self.items[index])

    def cues(self) -> tuple[str, ...]:
        """Every item's cue: the writer's own words, which never count as the model repeating itself."""
        return tuple(self.cue(i) for i in range(len(self.items)))

    def header_line(self) -> str:
        """The outline as one prompt line, so every later turn sees where the episode goes."""
        return "OUTLINE: " + "; ".join(self.items) + "\n"

