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
"""
from __future__ import annotations

import difflib
import logging
import re
import unicodedata
from dataclasses import dataclass, field

from models.protocols import DialogueLine, ScriptEvent, ShowTitle

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- text cleaning

_URL_RE = re.compile(r"(?:\bhttps?://|\bwww\.)\S+", re.I)
_EMAIL_RE = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
#: File names and machine junk ("alex-sanjay-1086573", "smash.png") that small models emit.
_JUNK_TOKEN_RE = re.compile(
    r"[^\s.]+\.(?:png|jpe?g|gif|webp|mp3|wav|mp4|pdf|html?|php|exe|zip|txt|csv|json)(?![a-z])"
    r"|\b(?=[\w-]*[A-Za-z])(?=[\w-]*\d{4,})[\w-]{8,}\b",
)
_TAG_RE = re.compile(r"</?[A-Za-z][^<>]{0,40}>")
_EMOJI_SHORTCODE_RE = re.compile(r"(?<!\w):[a-z0-9_+-]{2,30}:(?!\w)")
_BRACKETS_RE = re.compile(r"\[[^\[\]]*\]|\{[^{}]*\}")
_PARENS_RE = re.compile(r"\(([^()]*)\)")
_SINGLE_STAR_RE = re.compile(r"(?<![*\w])\*(?!\*)([^*\n]+?)(?<!\*)\*(?![*\w])")
_SINGLE_UNDERSCORE_RE = re.compile(r"(?<![_\w])_(?!_)([^_\n]+?)(?<!_)_(?![_\w])")
_BOLD_RE = re.compile(r"(\*\*|__)(.+?)\1")
_BACKTICK_RE = re.compile(r"`+([^`]*)`+")
_MARKDOWN_CHARS_RE = re.compile(r"[*_#`~|<>\\{}\[\]^]")
_SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+([,.!?;:%])")
_REPEAT_PUNCT_RE = re.compile(r"([!?,;:])[!?,;:]*\1+|([!?])\1+")
_DOTS_RE = re.compile(r"\.{4,}|…")
_WS_RE = re.compile(r"\s+")
#: A phrase of n words said three or more times in a row ("very very very very").
_WORD_LOOP_RES = [re.compile(r"\b(\w+" + r"\s+\w+" * n + r")(?:[\s,]+\1\b){2,}", re.I) for n in range(3)]
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_LEADING_JUNK_RE = re.compile(r"^[\s,.;:!?\-–—=+~)]+")
_TERMINAL_RE = re.compile(r"[.!?][\"')]*$")

#: Words that, alone in parentheses/asterisks, are stage directions rather than speech.
_STAGE_WORDS = {
    "laughs", "laughing", "laugh", "chuckles", "chuckling", "smiles", "smiling", "sighs",
    "pause", "pauses", "music", "applause", "beat", "giggles", "grins", "nods", "clears",
    "throat", "intro", "outro", "sfx", "sound", "fades", "jingle", "theme", "excited",
    "excitedly", "enthusiastically", "laughter", "both", "silence", "cheering", "gasps",
}
#: Parenthesised asides with at most this many words are dropped as stage directions;
#: longer ones are kept as speech (e.g. "(that's about 93 million miles)").
_MAX_STAGE_WORDS = 4

_ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"}
_QUOTE_MAP = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "‚": "'", "´": "'"})


def _strip_unspeakable(text: str) -> str:
    """Drop control chars, emoji/symbols, private-use and zero-width chars.

    Letters of any script, digits, punctuation, spaces and math symbols stay
    (names like "Bölla" and "2 + 2 = 4" are speakable).
    """
    out: list[str] = []
    for ch in text:
        if ch in _ZERO_WIDTH or "\ufe00" <= ch <= "\ufe0f":
            continue
        cat = unicodedata.category(ch)
        if cat in ("Zs", "Zl", "Zp", "Cc"):
            out.append(" ")  # whitespace and control characters separate words
        elif cat[0] == "C" or cat in ("So", "Sk"):
            continue
        else:
            out.append(ch)
    return "".join(out)


def normalize_chars(text: str) -> str:
    """Unicode-normalise and remove unspeakable characters (used on raw lines and topics)."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTE_MAP)
    return _strip_unspeakable(text)


def _drop_paren(m: re.Match[str]) -> str:
    inner = m.group(1).strip()
    words = inner.split()
    if not words or len(words) <= _MAX_STAGE_WORDS or words[0].lower().strip(".,") in _STAGE_WORDS:
        return " "
    return f", {inner}, "


def _drop_star(m: re.Match[str]) -> str:
    inner = m.group(1).strip()
    words = inner.split()
    if len(words) <= 6 or (words and words[0].lower() in _STAGE_WORDS):
        return " "
    return f" {inner} "


def _dedupe_sentences(text: str) -> str:
    """Drop sentences that repeat an earlier sentence of the same turn (model loops)."""
    sentences = [s for s in _SENTENCE_SPLIT_RE.split(text) if s.strip()]
    if len(sentences) < 2:
        return text
    kept: list[str] = []
    seen: list[str] = []
    for s in sentences:
        key = normalize_for_compare(s)
        if key and any(key == k or (len(key) > 12 and _similar(key, k) >= 0.85) for k in seen):
            continue
        seen.append(key)
        kept.append(s.strip())
    return " ".join(kept)


def clean_text(text: str) -> str:
    """Turn one turn's raw text into clean speakable text ('' if nothing speakable is left).

    Why each step: URLs, emoji and markdown are read out literally by TTS;
    stage directions ((laughs), [music], *smiles*) are not meant to be spoken;
    loops ("very very very very") are a known failure of small models.
    """
    text = normalize_chars(text)
    text = _URL_RE.sub(" ", text)
    text = _EMAIL_RE.sub(" ", text)
    text = _JUNK_TOKEN_RE.sub(" ", text)
    text = _TAG_RE.sub(" ", text)
    text = _EMOJI_SHORTCODE_RE.sub(" ", text)
    text = _BRACKETS_RE.sub(" ", text)
    # Unbalanced bracket at the end: a truncated stage direction.
    text = re.sub(r"[\[(][^\[\]()]*$", " ", text)
    for _ in range(2):  # nested parentheses
        text = _PARENS_RE.sub(_drop_paren, text)
    text = _BOLD_RE.sub(r"\2", text)
    text = _SINGLE_STAR_RE.sub(_drop_star, text)
    text = _SINGLE_UNDERSCORE_RE.sub(r"\1", text)
    text = _BACKTICK_RE.sub(r"\1", text)
    text = text.replace("(", " ").replace(")", " ")
    text = _MARKDOWN_CHARS_RE.sub(" ", text)
    text = re.sub(r"\s+[-–—]{1,3}\s+", ", ", text)  # spoken dash -> comma pause
    text = re.sub(r"[–—]", "-", text)
    text = _WS_RE.sub(" ", text).strip()
    # Surrounding quotes: 'ALEX: "Welcome back!"'
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    elif text.startswith('"') and text.count('"') == 1:
        text = text[1:]
    elif text.endswith('"') and text.count('"') == 1:
        text = text[:-1]
    text = _DOTS_RE.sub("...", text)
    text = _REPEAT_PUNCT_RE.sub(lambda m: m.group(1) or m.group(2), text)
    text = _SPACE_BEFORE_PUNCT_RE.sub(r"\1", text)
    text = re.sub(r",\s*([.!?])", r"\1", text)
    text = re.sub(r"([,;:])(?=[^\s\d])", r"\1 ", text)
    for loop_re in _WORD_LOOP_RES:
        text = loop_re.sub(r"\1", text)
    text = _LEADING_JUNK_RE.sub("", text)
    text = _WS_RE.sub(" ", text).strip()
    if not any(ch.isalnum() for ch in text):
        return ""
    return _dedupe_sentences(text)


def finish_sentence(text: str, truncated: bool = False, min_words: int = 3) -> str:
    """Make a turn end like a sentence.

    A line cut off by the end of the stream (``truncated``) loses its dangling
    fragment when an earlier sentence is complete; a lone fragment shorter than
    ``min_words`` is dropped ('' returned). Otherwise a missing full stop is added
    so the TTS gets the falling intonation of a finished sentence.
    """
    text = text.strip().rstrip(",;:-").strip()
    if not text:
        return ""
    if _TERMINAL_RE.search(text):
        return text
    if truncated:
        cut = _last_sentence_end(text)
        if cut > 0:
            return text[:cut].strip()
        if len(text.split()) < min_words:
            return ""
    if text.endswith("..."):
        return text
    return text + "."


def _last_sentence_end(text: str, limit: int | None = None) -> int:
    """Index just past the last sentence terminator in ``text[:limit]`` (0 if none)."""
    end = 0
    for m in re.finditer(r"[.!?][\"')]*(?=\s|$)", text[:limit] if limit else text):
        end = m.end()
    return end


def cap_words(text: str, max_words: int) -> str:
    """Cut an absurdly long turn at a sentence boundary (else a clause, else hard)."""
    words = text.split()
    if len(words) <= max_words:
        return text
    head = " ".join(words[:max_words])
    cut = _last_sentence_end(head)
    if cut >= len(head) * 0.4:
        return head[:cut].strip()
    comma = max(head.rfind(","), head.rfind(";"))
    if comma >= len(head) * 0.5:
        return head[:comma].strip() + "."
    return head.rstrip(",;:-") + "."


def normalize_for_compare(text: str) -> str:
    """Lowercase alphanumerics only: the key used to detect repeated lines."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _similar(a: str, b: str) -> float:
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if sm.real_quick_ratio() < 0.8 or sm.quick_ratio() < 0.8:
        return 0.0
    return sm.ratio()


def word_count(text: str) -> int:
    return len(text.split())


def clean_title(text: str, max_words: int = 12, max_chars: int = 80) -> str:
    """Clean a title: no quotes, markdown, 'Episode 42:' prefix or trailing full stop."""
    # A model that runs on into the next field ("Bikes / TITLE: ..."): keep the first part.
    text = re.split(r"\s+/\s+|\b(?:TITLE|TOPIC|EPISODE)\s*:", text)[0] if text.strip() else text
    text = clean_text(text)
    text = re.sub(r"^(?:episode|ep\.?)\s*\d*\s*[:.\-]\s*", "", text, flags=re.I)
    text = re.sub(r"^(?:title)\s*[:\-]\s*", "", text, flags=re.I)
    text = text.strip(" \"'.,;:-")
    words = text.split()[:max_words]
    text = " ".join(words)
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0]
    return text.strip(" \"'.,;:-")


# --------------------------------------------------------------------------- topics and titles

#: Longest topic (characters) that reaches the prompt; the rest is cut at a word boundary.
MAX_TOPIC_CHARS = 120

_SMALL_WORDS = {"a", "an", "and", "as", "at", "but", "by", "for", "in", "of", "on", "or", "the", "to", "vs", "with"}


def sanitize_topic(topic: str, max_chars: int = MAX_TOPIC_CHARS) -> str:
    """Make a user topic safe to embed in a prompt as *data*.

    Newlines and control characters would let a topic start a new transcript line
    ("...\\nSAM: hacked"); colons would let it imitate a speaker label; angle and
    square brackets could spell a chat template's special tokens. All are removed,
    and the length is capped so a long paste cannot crowd out the prompt.
    """
    text = normalize_chars(topic or "")
    text = re.sub(r"[<>\[\]{}|\\`*#_~^]", " ", text)
    text = re.sub(r"\s*:+\s*", " - ", text)
    text = " ".join(text.split()).strip(" -\"'.,;")
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0].rstrip(" -,;")
    return text or "something interesting"


def title_from_topic(topic: str) -> str:
    """Fallback title: the sanitized topic in title case ("why the sky is blue" -> "Why the Sky Is Blue")."""
    words = sanitize_topic(topic, 80).split()
    out = []
    for i, w in enumerate(words):
        if w.isupper() and len(w) > 1:
            out.append(w)
        elif i > 0 and w.lower() in _SMALL_WORDS:
            out.append(w.lower())
        else:
            out.append(w[:1].upper() + w[1:])
    return clean_title(" ".join(out)) or "Something Interesting"


def content_words(text: str) -> set[str]:
    """Lower-case words of 3+ letters minus function words, with a crude plural strip."""
    words = re.findall(r"[a-z]{3,}", text.lower())
    return {_stem(w) for w in words if w not in _STOP_WORDS}


def _stem(word: str) -> str:
    """Crude plural/verb stripping, enough to match "skies"/"sky" and "rises"/"rise"."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    return word.rstrip("s")


def title_matches_topic(title: str, topic: str) -> bool:
    """Whether a generated title names the topic (at least 2/3 of its content words).

    Small models write titles that drift ("The Sky's Red" for why the sky is
    blue); the title is the first thing viewers see, so a drifting one is replaced
    by the topic itself.
    """
    need = content_words(topic)
    if not need:
        return True
    have = content_words(title)
    return len(need & have) >= max(1, -(-2 * len(need) // 3))


_STOP_WORDS = _SMALL_WORDS | {
    "how", "why", "what", "when", "where", "who", "which", "does", "do", "is", "are", "was", "were",
    "this", "that", "these", "those", "its", "it's", "from", "into", "about", "your", "our", "their",
    "history", "story", "science", "guide", "everything", "things", "thing",
}


def intro_topic_phrase(topic: str) -> str:
    """The topic as it reads inside "Today we're talking about ...".

    A leading question word or article is lower-cased ("How bread rises" ->
    "how bread rises"); other capitals may be names and are kept.
    """
    first, _, rest = topic.partition(" ")
    if first.lower() in _STOP_WORDS | {"a", "an", "the"} and not first.isupper():
        first = first.lower()
    return f"{first} {rest}".strip()


_ENDING_RE = re.compile(
    r"\b(?:to wrap (?:it )?up|wrapping up|to sum (?:it )?up|in conclusion|thanks? (?:you )?(?:all )?for "
    r"(?:listening|joining|tuning)|see you next time|until next time|that's all for today|"
    r"that's it for today|good ?bye|bye for now)\b",
    re.I,
)


_SIGN_OFF_RE = re.compile(
    r"\b(?:thanks?(?: you)?(?: all| everyone| so much)?,? for (?:listening|joining us|tuning in|watching)|"
    r"see you (?:next time|soon|then)|until next time|good ?bye|bye(?: for now|-bye)?|take care|"
    r"catch you (?:next time|later)|that's (?:all|it) for (?:today|now|this episode))\b",
    re.I,
)


def is_sign_off(text: str) -> bool:
    """Whether a turn says goodbye to the listeners (what the last line of an episode must do)."""
    return bool(_SIGN_OFF_RE.search(text))


def is_ending_line(text: str) -> bool:
    """Whether a turn sounds like the end of the show (wrap-up, thanks for listening, goodbye).

    Writers use it to keep a model from saying goodbye long before the word budget
    is spent, and to check that an episode does end with a sign-off.
    """
    return bool(_ENDING_RE.search(text))


# --------------------------------------------------------------------------- labels

_BULLET = r"(?:(?:[-*•>+]|\d{1,3}[.)])\s+)*"
_COLON_LABEL_RE = re.compile(
    r"^\s*" + _BULLET
    + r"[*_\[]*\s*(?P<label>[^\W\d_][\w.'& -]{0,30}?)\s*[*_\]]*\s*"
    r"(?:\([^()]{0,40}\)|\[[^\[\]]{0,40}\])?\s*[*_\]]*\s*"
    r":(?![/\d])[*_]*\s*(?P<rest>.*)$",
    re.S,
)
_DASH_LABEL_RE = re.compile(
    r"^\s*" + _BULLET + r"[*_]*(?P<label>[^\W\d_][\w.' ]{0,30}?)[*_]*\s*[-–—]{1,2}\s+(?P<rest>.+)$", re.S
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


@dataclass
class _Label:
    kind: str  # "speaker" | "title" | "skip" | "text"
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
        self._title: str | None = None
        self._title_open = accept_title
        self._closed = False
        self._index = first_index
        self.lines: list[DialogueLine] = []
        self.dropped: list[tuple[str, str]] = []  # (reason, text), for diagnostics and tests
        host_alt = "|".join(re.escape(h) for h in self.hosts)
        # "...sentence. SAM: reply" on one line -> two turns. Only after a sentence
        # end, so "I asked Sam: why?" stays one turn.
        self._inline_split_re = re.compile(
            r"(?<=[.!?\"')\]])\s+(?=[*_]{0,2}(?:" + host_alt + r")[*_]{0,2}\s*(?:\([^()]{0,30}\))?\s*:)",
            re.I,
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
            return _Label("title", key=key)
        if key in _NON_SPEECH_LABELS:
            return _Label("skip", key=key)
        if key in _NOT_SPEAKER_LABELS:
            return None
        names = [h.lower() for h in self.hosts]
        words = key.split()
        hits = {i for i, n in enumerate(names) if n == key or n in words or key.startswith(n + " ")}
        if len(hits) == 1:
            return _Label("speaker", host=hits.pop(), key=key)
        if len(hits) == 2 or key in _GROUP_LABELS:
            return _Label("speaker", host=self._next_host_index(), key=key)
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
        return _Label("speaker", host=host, key=key)

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
            if lab is not None and lab.kind == "speaker" and lab.key not in self._label_memory:
                names = [h.lower() for h in self.hosts]
                if any(n in lab.key.split() for n in names):
                    lab.rest = m.group("rest")
                    return lab
        m = _HEADING_RE.match(segment)
        if m:
            return _Label("title" if self._title_open else "skip", rest=m.group("rest"))
        return _Label("text", rest=segment)

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
        if lab is not None and lab.kind == "speaker" and lab.host != self._pending.host:
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
        if lab.kind == "title":
            if self._title_open and self._title is None:
                title = clean_title(lab.rest)
                if title:
                    self._title = title
                    self._title_open = False
                    return [ShowTitle(title=title)]
            self.dropped.append(("title-late", segment))
            return []
        if lab.kind == "skip":
            self.dropped.append(("non-speech", segment))
            return []
        text = clean_text(lab.rest)
        if lab.kind == "text":
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
            # Short replies ("Exactly.") recur naturally; only an immediate echo is a loop.
            h = self._history
            if key in self._seen or (h and key == h[-1]):
                return "echo"
            if len(h) >= 3 and key == h[-2] and h[-1] == h[-3]:
                return "loop"  # A B A B
            return None
        for old in self._seen + self._history:
            if key == old:
                return "repeat"
            if self.similarity < 1.0 and _similar(key, old) >= self.similarity:
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
        reason = self._repeat_reason(key)
        if reason:
            self.dropped.append((reason, text))
            log.debug("dropping %s line: %r", reason, text)
            return []
        host = pending.host
        if host == self._last_host:
            # The turn in between was dropped (empty or a repeat), so this one could
            # not be merged any more; keep the content and keep the alternation.
            host = 1 - host
        self._history.append(key)
        self._last_host = host
        self._title_open = False
        line = DialogueLine(index=self._index, speaker=self.hosts[host], text=text)
        self._index += 1
        self.lines.append(line)
        return [line]


def parse_script(text: str, hosts: tuple[str, str], **kwargs: object) -> list[ScriptEvent]:
    """Parse a whole transcript at once (convenience for tests and non-streaming callers)."""
    parser = ScriptParser(hosts, **kwargs)  # type: ignore[arg-type]
    return parser.feed(text) + parser.close()
