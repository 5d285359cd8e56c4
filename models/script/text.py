"""Text helpers shared by the script writers and the transcript parser.

Contract: every function here is pure and total. It takes any string a model
or a user produced and returns a string (or a flag) without raising, so a
writer can run it on raw model output. What it guarantees:

- ``clean_text`` / ``finish_sentence`` / ``cap_words``: speakable text for the
  TTS (no URLs, emoji, markdown, stage directions or loops; ends like a
  sentence; bounded length), '' when nothing speakable is left.
- ``sanitize_topic``: a user topic that is safe to embed in a prompt as data.
- ``clean_title`` / ``title_from_topic`` / ``title_matches_topic``: a short,
  clean show title, with a fallback derived from the topic.
- ``is_sign_off`` / ``is_ending_line``: whether a turn says goodbye or sounds
  like the end of the show.
"""
from __future__ import annotations

import difflib
import re
import unicodedata

# --------------------------------------------------------------------------- cleaning

_URL_RE = re.compile(r"(?:\bhttps?://|\bwww\.)\S+", re.IGNORECASE)
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
_WORD_LOOP_RES = [re.compile(r"\b(\w+" + r"\s+\w+" * n + r")(?:[\s,]+\1\b){2,}", re.IGNORECASE) for n in range(3)]
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
        if key and any(key == k or (len(key) > 12 and similarity(key, k) >= 0.85) for k in seen):
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


def similarity(a: str, b: str) -> float:
    """How alike two compare keys are (0..1); 0.0 as soon as a cheap upper bound rules out 0.8.

    The bounds skip the quadratic ratio for the many pairs that are clearly different.
    """
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if sm.real_quick_ratio() < 0.8 or sm.quick_ratio() < 0.8:
        return 0.0
    return sm.ratio()


def word_count(text: str) -> int:
    """Words as the budget counts them: whitespace-separated tokens."""
    return len(text.split())


def clean_title(text: str, max_words: int = 12, max_chars: int = 80) -> str:
    """Clean a title: no quotes, markdown, 'Episode 42:' prefix or trailing full stop."""
    # A model that runs on into the next field ("Bikes / TITLE: ..."): keep the first part.
    text = re.split(r"\s+/\s+|\b(?:TITLE|TOPIC|EPISODE)\s*:", text)[0] if text.strip() else text
    text = clean_text(text)
    text = re.sub(r"^(?:episode|ep\.?)\s*\d*\s*[:.\-]\s*", "", text, flags=re.IGNORECASE)
    text = re.sub(r"^(?:title)\s*[:\-]\s*", "", text, flags=re.IGNORECASE)
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


# --------------------------------------------------------------------------- endings

_ENDING_RE = re.compile(
    r"\b(?:to wrap (?:it )?up|wrapping up|to sum (?:it )?up|in conclusion|thanks? (?:you )?(?:all )?for "
    r"(?:listening|joining|tuning)|see you next time|until next time|that's all for today|"
    r"that's it for today|good ?bye|bye for now)\b",
    re.IGNORECASE,
)


_SIGN_OFF_RE = re.compile(
    r"\b(?:thanks?(?: you)?(?: all| everyone| so much)?,? for (?:listening|joining us|tuning in|watching)|"
    r"see you (?:next time|soon|then)|until next time|good ?bye|bye(?: for now|-bye)?|take care|"
    r"catch you (?:next time|later)|that's (?:all|it) for (?:today|now|this episode))\b",
    re.IGNORECASE,
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
