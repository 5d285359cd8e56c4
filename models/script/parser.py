"""Incremental parser that turns a streamed LLM transcript into clean script events.

Small local models (and sometimes big remote ones) produce transcripts that are
*almost* right: markdown around speaker names, stage directions, emoji, loops,
the same host twice in a row, a preamble ("Sure! Here's a script:"), a last line
cut off mid-sentence. The TTS and the animator need the opposite: short, clean,
speakable turns whose speakers strictly alternate between the two hosts. This
module is the single place that repairs (or drops) such output, so every script
writer gets the same guarantees. It never raises on model output.

Input format (one turn per line)::

    TITLE: Why the Sky Is Blue
    ALEX: Welcome back...
    SAM: Thanks...

Streaming behaviour: text is buffered until a newline completes a line. A
completed turn is held back only until the *start* of the next line shows who
speaks next (a few tokens later), because a following line by the same speaker
(or a line with no speaker) is merged into it. ``finish_line()`` lets a writer
that controls the turns itself flush a turn at once.

Cleaning the text of a turn is ``models.script.text``'s job; this module deals
with lines, speaker labels and turns.
"""
from __future__ import annotations

import enum
import logging
import re
from dataclasses import dataclass, field

from models.protocols import DialogueLine, ScriptEvent, ShowTitle
from models.script.repetition import Echoes
from models.script.text import (
    cap_words,
    clean_text,
    clean_title,
    finish_sentence,
    normalize_chars,
    normalize_for_compare,
    similarity,
    word_count,
)

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- labels

_BULLET = r"(?:(?:[-*•>+]|\d{1,3}[.)])\s+)*"
_COLON_LABEL_RE = re.compile(
    r"^\s*" + _BULLET
    + r"[*_\[]*\s*(?P<label>[^\W\d_][\w.'& -]{0,30}?)\s*[*_\]]*\s*"
    r"(?:\([^()]{0,40}\)|\[[^\[\]]{0,40}\])?\s*[*_\]]*\s*"
    r":(?![/\d])[*_]*\s*(?P<rest>.*)$",
    re.DOTALL,
)
_DASH_LABEL_RE = re.compile(
    r"^\s*" + _BULLET + r"[*_]*(?P<label>[^\W\d_][\w.' ]{0,30}?)[*_]*\s*[-–—]{1,2}\s+(?P<rest>.+)$", re.DOTALL
)
_HEADING_RE = re.compile(r"^\s*#{1,6}\s*(?P<rest>.*)$")

_TITLE_LABELS = re.compile(r"^(?:(?:episode|podcast|show)\s*)?(?:title|name)$|^episode(?:\s*\d+)?$|^ep\s*\d+$")
#: Labels of lines that are not speech at all (skipped).
_NON_SPEECH_LABELS = {
    "music", "sfx", "sound", "sound effect", "sound effects", "scene", "note", "notes",
    "narrator", "cue", "transition", "setting", "stage", "stage direction", "intro music",
    "outro music", "theme music", "fade in", "fade out", "cut to", "background",
    "duration", "length", "topic", "format", "hosts", "characters", "cast", "summary",
    "word count", "runtime", "audio", "video",
}
#: Labels that introduce content rather than a speaker: the line is kept as plain text.
_NOT_SPEAKER_LABELS = {
    "fun fact", "fact", "question", "answer", "example", "tip", "key point", "remember",
    "why", "how", "what", "so", "and", "but", "well", "ok", "okay", "yes", "no", "wait",
    "today", "first", "second", "third", "finally", "result", "bonus", "quick fact",
}
_GROUP_LABELS = {"both", "all", "together", "everyone", "hosts", "both hosts", "everybody"}


class LabelKind(enum.Enum):
    """What the start of a transcript line turned out to be."""

    SPEAKER = "speaker"  # a host's turn starts here
    TITLE = "title"  # the show's title line
    SKIP = "skip"  # not speech at all (music cues, notes): dropped
    TEXT = "text"  # no label: speech that continues the current turn


@dataclass
class _Label:
    kind: LabelKind
    host: int | None = None
    rest: str = ""
    key: str = ""


@dataclass
class _Pending:
    host: int
    parts: list[str] = field(default_factory=list)
    truncated: bool = False


# --------------------------------------------------------------------------- parser


class ScriptParser:
    """Streaming transcript parser for a two-host show.

    ``feed`` accepts text in arbitrary pieces and returns the events completed so
    far; ``close`` flushes what is left. Emits ``ShowTitle`` (at most once, only
    before the first dialogue line) and ``DialogueLine`` events whose speakers
    strictly alternate, with clean text and indices counting from 0. The caller
    adds ``HostsAnnounced`` and ``ScriptEnd`` (it knows why the script ended).

    ``seen_lines`` pre-loads the repeat detector (e.g. with a few-shot example,
    so a model that copies the example instead of writing its own is caught).
    ``max_echo`` drops a line that mostly repeats phrases said before (see
    ``repetition.Echoes``); ``free_phrases`` (the writer's cues) never count as repeats.
    """

    def __init__(
        self,
        hosts: tuple[str, str],
        *,
        max_line_words: int = 60,
        min_line_words: int = 1,
        similarity: float = 0.85,
        accept_title: bool = True,
        seen_lines: tuple[str, ...] | list[str] = (),
        first_index: int = 0,
        last_speaker: str | None = None,
        max_echo: float = 1.0,
        free_phrases: tuple[str, ...] = (),
    ) -> None:
        if len(hosts) != 2 or not all(h.strip() for h in hosts):
            raise ValueError(f"exactly two non-empty host names are needed, got {hosts!r}")
        self.hosts: tuple[str, str] = (hosts[0].strip(), hosts[1].strip())
        self.max_line_words = max(5, max_line_words)
        self.min_line_words = max(1, min_line_words)
        self.similarity = similarity
        self._buf = ""
        self._pending: _Pending | None = None
        self._last_host: int | None = None
        if last_speaker is not None:
            # Continue an earlier part of the script (e.g. a follow-up request):
            # alternation carries on from whoever spoke last.
            names = [h.lower() for h in self.hosts]
            if last_speaker.strip().lower() in names:
                self._last_host = names.index(last_speaker.strip().lower())
        self._label_memory: dict[str, int] = {}
        self._history: list[str] = []
        self._seen = [k for k in (normalize_for_compare(clean_text(s)) for s in seen_lines) if k]
        #: A line more than this share of whose 4-grams were said before is dropped as an echo
        #: (1.0: never); the writer may change it between turns (looser on a last try).
        self.max_echo = max_echo
        self.echoes = Echoes(free=free_phrases)
        for line in seen_lines:
            self.echoes.add(line)
        self._title: str | None = None
        self._title_open = accept_title
        self._closed = False
        self._index = first_index
        #: Stamped on the lines emitted while it is set: the viewer's question they answer.
        self.question: str | None = None
        self.lines: list[DialogueLine] = []
        self.dropped: list[tuple[str, str]] = []  # (reason, text), for diagnostics and tests
        host_alt = "|".join(re.escape(h) for h in self.hosts)
        # "...sentence. SAM: reply" on one line -> two turns. Only after a sentence
        # end, so "I asked Sam: why?" stays one turn.
        self._inline_split_re = re.compile(
            r"(?<=[.!?\"')\]])\s+(?=[*_]{0,2}(?:" + host_alt + r")[*_]{0,2}\s*(?:\([^()]{0,30}\))?\s*:)",
            re.IGNORECASE,
        )

    # ------------------------------------------------------------------ public API
    @property
    def title(self) -> str | None:
        return self._title

    @property
    def word_count(self) -> int:
        """Words in the emitted lines (what the TTS will speak)."""
        return sum(word_count(line.text) for line in self.lines)

    @property
    def next_index(self) -> int:
        """The index the next line will have."""
        return self._index

    @property
    def next_host(self) -> str:
        """The host who should speak next to keep strict alternation."""
        return self.hosts[self._next_host_index()]

    @property
    def has_pending(self) -> bool:
        return self._pending is not None

    def feed(self, text_chunk: str) -> list[ScriptEvent]:
        """Consume a piece of streamed text; return the events it completed."""
        if self._closed or not text_chunk:
            return []
        events: list[ScriptEvent] = []
        self._buf += text_chunk.replace("\r", "\n")
        while "\n" in self._buf:
            line, _, self._buf = self._buf.partition("\n")
            events += self._on_line(line, truncated=False)
        events += self._peek_partial()
        return events

    def finish_line(self, truncated: bool = False) -> list[ScriptEvent]:
        """The current line is complete and nothing will be merged into it: emit it now.

        For writers that control the turns (they know the next line is the other
        host's), so the TTS gets each turn without waiting for the next label.
        ``truncated`` says the text was cut off (e.g. token limit), so a dangling
        half sentence is trimmed.
        """
        if self._closed:
            return []
        events: list[ScriptEvent] = []
        if self._buf.strip():
            line, self._buf = self._buf, ""
            events += self._on_line(line, truncated=truncated)
        self._buf = ""
        events += self._emit_pending()
        return events

    def close(self, keep_partial: bool = True) -> list[ScriptEvent]:
        """End of stream: flush the final (possibly unterminated, truncated) line.

        ``keep_partial=False`` discards an unterminated last line instead: for a
        caller that stops reading mid-stream (budget met), where that line is
        just the first words of a turn nobody asked for.
        """
        if self._closed:
            return []
        events: list[ScriptEvent] = []
        if not keep_partial:
            if self._buf.strip():
                self.dropped.append(("partial", self._buf))
            self._buf = ""
        if self._buf.strip():
            line, self._buf = self._buf, ""
            events += self._on_line(line, truncated=True)
        events += self._emit_pending()
        self._closed = True
        return events

    def is_repeat(self, text: str) -> bool:
        """Whether ``text`` would be dropped as a repeat of what was already said."""
        return self._repeat_reason(normalize_for_compare(text)) is not None

    # ------------------------------------------------------------------ internals
    def _next_host_index(self) -> int:
        if self._pending is not None:
            return 1 - self._pending.host
        if self._last_host is not None:
            return 1 - self._last_host
        return 0

    def _resolve_label(self, raw_label: str, remember: bool) -> _Label | None:
        """Classify a label; None means "not a label" (the line is plain text)."""
        label = " ".join(raw_label.replace("_", " ").replace("*", " ").split()).strip(" .'-&")
        key = label.lower()
        if not key:
            return None
        if _TITLE_LABELS.match(key):
            return _Label(LabelKind.TITLE, key=key)
        if key in _NON_SPEECH_LABELS:
            return _Label(LabelKind.SKIP, key=key)
        if key in _NOT_SPEAKER_LABELS:
            return None
        names = [h.lower() for h in self.hosts]
        words = key.split()
        hits = {i for i, n in enumerate(names) if n == key or n in words or key.startswith(n + " ")}
        if len(hits) == 1:
            return _Label(LabelKind.SPEAKER, host=hits.pop(), key=key)
        if len(hits) == 2 or key in _GROUP_LABELS:
            return _Label(LabelKind.SPEAKER, host=self._next_host_index(), key=key)
        # Unknown speaker name ("Host 1", "Bob", "SPEAKER B"): looks like a name?
        raw_words = label.split()
        if len(raw_words) > 4 or len(label) > 30:
            return None
        if not all(w[0].isupper() or w[0].isdigit() for w in raw_words):
            return None
        host = self._label_memory.get(key)
        if host is None:
            host = self._next_host_index()
            if remember:
                self._label_memory[key] = host
        return _Label(LabelKind.SPEAKER, host=host, key=key)

    def _classify(self, segment: str, remember: bool = True) -> _Label:
        m = _COLON_LABEL_RE.match(segment)
        if m:
            lab = self._resolve_label(m.group("label"), remember)
            if lab is not None:
                lab.rest = m.group("rest")
                return lab
        m = _DASH_LABEL_RE.match(segment)
        if m:
            lab = self._resolve_label(m.group("label"), remember=False)
            # Dashes are common inside speech, so only known host names count here.
            if lab is not None and lab.kind is LabelKind.SPEAKER and lab.key not in self._label_memory:
                names = [h.lower() for h in self.hosts]
                if any(n in lab.key.split() for n in names):
                    lab.rest = m.group("rest")
                    return lab
        m = _HEADING_RE.match(segment)
        if m:
            return _Label(LabelKind.TITLE if self._title_open else LabelKind.SKIP, rest=m.group("rest"))
        return _Label(LabelKind.TEXT, rest=segment)

    def _peek_partial(self) -> list[ScriptEvent]:
        """Emit the held turn as soon as the next line's label names the other host.

        Only a colon label is trusted on a partial line; the same rule is applied
        to complete lines in ``_on_line``, so the events never depend on how the
        text was chunked.
        """
        if self._pending is None:
            return []
        colon = self._buf.find(":")
        if colon < 0 or colon == len(self._buf) - 1:
            return []  # wait for a character after the colon ("Time:30" is no label)
        return self._early_emit(normalize_chars(self._buf))

    def _early_emit(self, segment: str) -> list[ScriptEvent]:
        if self._pending is None:
            return []
        m = _COLON_LABEL_RE.match(segment)
        if not m:
            return []
        lab = self._resolve_label(m.group("label"), remember=False)
        if lab is not None and lab.kind is LabelKind.SPEAKER and lab.host != self._pending.host:
            return self._emit_pending()
        return []

    def _on_line(self, line: str, truncated: bool) -> list[ScriptEvent]:
        line = normalize_chars(line).strip()
        if not line:
            return []
        events: list[ScriptEvent] = self._early_emit(line)
        segments = [s for s in self._inline_split_re.split(line) if s.strip()]
        for i, seg in enumerate(segments):
            events += self._on_segment(seg, truncated and i == len(segments) - 1)
        return events

    def _on_segment(self, segment: str, truncated: bool) -> list[ScriptEvent]:
        lab = self._classify(segment)
        if lab.kind is LabelKind.TITLE:
            if self._title_open and self._title is None:
                title = clean_title(lab.rest)
                if title:
                    self._title = title
                    self._title_open = False
                    return [ShowTitle(title=title)]
            self.dropped.append(("title-late", segment))
            return []
        if lab.kind is LabelKind.SKIP:
            self.dropped.append(("non-speech", segment))
            return []
        text = clean_text(lab.rest)
        if lab.kind is LabelKind.TEXT:
            if self._pending is None:
                # Preamble ("Sure! Here's the script:") or a stray line: nobody to attach it to.
                self.dropped.append(("no-speaker", segment))
                return []
            self._append(self._pending, text, truncated)
            return []
        assert lab.host is not None
        events: list[ScriptEvent] = []
        host = lab.host
        if self._pending is not None and self._pending.host == host:
            self._append(self._pending, text, truncated)  # same speaker twice: merge
            return events
        events += self._emit_pending()
        self._title_open = False
        self._pending = _Pending(host)
        self._append(self._pending, text, truncated)
        return events

    def _append(self, pending: _Pending, text: str, truncated: bool) -> None:
        if not text:
            return
        key = normalize_for_compare(text)
        if any(key == normalize_for_compare(p) for p in pending.parts):
            self.dropped.append(("repeat-in-turn", text))
            return
        reason = self._repeat_reason(key)
        if reason:
            # Checked per part so a looped line cannot hide inside a merged turn.
            self.dropped.append((reason, text))
            return
        pending.parts.append(text)
        pending.truncated = truncated

    def _repeat_reason(self, key: str) -> str | None:
        if not key:
            return "empty"
        n_words = len(key.split())
        if n_words <= 3:
            # Short replies ("Exactly.") are not compared for similarity, but one said before
            # word for word is a repeat a listener hears: the same reply over and over.
            h = self._history
            if key in self._seen or key in h:
                return "echo"
            return None
        for old in self._seen + self._history:
            if key == old:
                return "repeat"
            if self.similarity < 1.0 and similarity(key, old) >= self.similarity:
                return "near-repeat"
            if len(key) >= 24 and len(old) >= len(key) and key in old:
                return "contained"
        return None

    def _emit_pending(self) -> list[ScriptEvent]:
        pending, self._pending = self._pending, None
        if pending is None or not pending.parts:
            return []  # nothing left (parts were dropped and recorded already)
        text = clean_text(" ".join(pending.parts))
        text = cap_words(text, self.max_line_words)
        text = finish_sentence(text, truncated=pending.truncated)
        if not text:
            self.dropped.append(("empty", ""))
            return []
        if word_count(text) < self.min_line_words:
            self.dropped.append(("too-short", text))
            return []
        key = normalize_for_compare(text)
        echoes = self.max_echo < 1.0 and self.echoes.share(text) > self.max_echo
        reason = self._repeat_reason(key) or ("echo" if echoes else None)
        if reason:
            self.dropped.append((reason, text))
            log.debug("dropping %s line: %r", reason, text)
            return []
        self.echoes.add(text)
        host = pending.host
        if host == self._last_host:
            # The turn in between was dropped (empty or a repeat), so this one could
            # not be merged any more; keep the content and keep the alternation.
            host = 1 - host
        self._history.append(key)
        return [self._new_line(host, text)]

    def _new_line(self, host: int, text: str) -> DialogueLine:
        self._last_host = host
        self._title_open = False
        line = DialogueLine(index=self._index, speaker=self.hosts[host], text=text, question=self.question)
        self._index += 1
        self.lines.append(line)
        return line

    def said_before(self, text: str) -> bool:
        """Whether ``text`` was said before word for word, alone or as part of a line (a cued
        turn whose model part repeats an earlier line differs from it only by the cue)."""
        key = normalize_for_compare(clean_text(text))
        return bool(key) and any(key == old or (len(key) >= 24 and key in old) for old in self._seen + self._history)

    def said(self, text: str, speaker: str | None = None) -> DialogueLine:
        """Record a line as said without parsing it, and return it.

        For lines the writer words itself (a viewer's question read out, which must never
        be split into turns or change who speaks) and for the history of a script that goes
        on from the middle of an episode (``speaker`` as it was). They count like any line
        for numbering, alternation, the word count and repeats.
        """
        names = [h.lower() for h in self.hosts]
        if speaker is not None and speaker.strip().lower() in names:
            host = names.index(speaker.strip().lower())
        else:
            host = self._next_host_index()
        self.echoes.add(text)
        self._history.append(normalize_for_compare(text))
        return self._new_line(host, text)


def parse_script(text: str, hosts: tuple[str, str], **kwargs: object) -> list[ScriptEvent]:
    """Parse a whole transcript at once (convenience for tests and non-streaming callers)."""
    parser = ScriptParser(hosts, **kwargs)  # type: ignore[arg-type]
    return parser.feed(text) + parser.close()
