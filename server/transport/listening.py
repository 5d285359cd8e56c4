"""A viewer's spoken questions: its microphone on the same WebRTC connection, heard between two
data-channel messages, recognised, then asked as if typed.

The page offers one audio transceiver it sends on (``sendonly``) next to the ones it receives
the show on, and puts its microphone on it only while the viewer talks
(``RTCRtpSender.replaceTrack``: no renegotiation). Over the data channel it marks the utterance
with ``{"type": "voice_start"}`` and ``{"type": "voice_end", "name": "..." | null}``, or drops
it with ``{"type": "voice_cancel"}``. Audio that arrives between start and end, and for
``TAIL_S`` after end (frames already on their way), is resampled to 16 kHz mono (PyAV's
``AudioResampler``) and kept, at most ``MAX_UTTERANCE_S`` of it: reaching that ends the
utterance, as does an end that never comes. It is then recognised off the event loop
(``QuestionDesk.hear``: server/hearing.py) and the words are asked through
``QuestionChannel.take``, like a typed question: same cleaning, limits and answers.

The page is told ``{"type": "voice", "state": ...}``:

- ``listening`` once the start is taken (``max_s``: the longest it listens);
- ``recognising`` once the utterance has ended (``capped``: true when it hit the limit);
- ``heard`` with ``text`` (the words), just before the question or its refusal;
- ``missed`` with ``detail`` when no words were heard: nothing is asked;
- ``refused`` with ``status`` and ``detail``: 403 this show takes typed questions only,
  409 this connection sends no microphone, or the viewer's last question is still being
  recognised, 503 the recogniser failed.

A question that would be refused whatever its words (questions off, closed, a limit) is
refused at the start, before the viewer talks, as ``question_error`` (asking.py).

Contract: nothing a viewer sends, or fails to send, can break its connection or the
episode; frames outside an utterance are read and dropped, so the track never piles up.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from server.transport.asking import MAX_MESSAGE_CHARS, QuestionChannel

log = logging.getLogger(__name__)

#: The recogniser's sample rate (models/hearing/sphinx.py).
HEARING_RATE = 16_000
#: The longest utterance kept; a question is a sentence or two.
MAX_UTTERANCE_S = 15.0
#: Audio still kept after the end message: what the viewer said just before letting go is
#: still on its way (the jitter buffer, the network).
TAIL_S = 0.3
#: An utterance whose end never comes (the page went away) ends this long after its limit.
END_GRACE_S = 2.0

MISSED = "We didn't catch that — try again or type your question"
VOICE_OFF = "this show takes typed questions only; type your question"
NO_MICROPHONE = "this connection sends no microphone; reload the page to ask by voice"
BUSY = "your last question is still being recognised; wait a moment"
FAILED = "the server could not recognise speech just now; type your question or try again"

_VOICE_MESSAGES = {"voice_start": "start", "voice_end": "end", "voice_cancel": "cancel"}


def parse_voice(message: Any) -> tuple[str, str | None] | None:
    """``("start" | "end" | "cancel", name)`` of a voice message; None for anything else (ignored)."""
    if isinstance(message, bytes) or not isinstance(message, str) or len(message) > MAX_MESSAGE_CHARS:
        return None
    try:
        data = json.loads(message)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("type") not in _VOICE_MESSAGES:
        return None
    name = data.get("name")
    return _VOICE_MESSAGES[data["type"]], name if isinstance(name, str) else None


def as_question(words: str) -> str:
    """The recogniser's words written as a sentence: a capital first letter and "I"."""
    text = re.sub(r"\bi\b", "I", words.strip())
    return text[:1].upper() + text[1:]


class VoiceListener:
    """One viewer's microphone track and its utterances. ``attach`` the viewer's
    ``QuestionChannel`` once the data channel opens; ``close`` when the viewer leaves."""

    def __init__(self, track: MediaStreamTrack | None, hear: Callable[[bytes], Awaitable[str]] | None) -> None:
        #: The viewer's microphone (None: its offer had no audio it sends).
        self.track = track
        #: ``QuestionDesk.hear`` (None: typed questions only).
        self.hear = hear
        self.asking: QuestionChannel | None = None
        self._pcm: bytearray | None = None  # the utterance being heard; None between utterances
        self._resampler: av.AudioResampler | None = None
        self._name: str | None = None
        self._ending: asyncio.TimerHandle | None = None  # the end of the utterance, once scheduled
        self._recognising: asyncio.Task | None = None
        self._closed = False
        self._reader = asyncio.ensure_future(self._read()) if track is not None else None

    @property
    def listening(self) -> bool:
        return self._pcm is not None

    def attach(self, asking: QuestionChannel) -> None:
        self.asking = asking

    def on_message(self, message: Any) -> None:
        parsed = parse_voice(message)
        if parsed is None or self.asking is None or self._closed:
            return
        kind, name = parsed
        if kind == "start":
            self._start()
        elif kind == "end" and self.listening:
            self._name = name
            self._schedule_end(TAIL_S)
        elif kind == "cancel":
            self._drop()

    def close(self) -> None:
        self._closed = True
        self._drop()
        for task in (self._reader, self._recognising):
            if task is not None:
                task.cancel()

    # ------------------------------------------------------------ one utterance
    def _start(self) -> None:
        assert self.asking is not None
        if self._recognising is not None:
            self._refuse(409, BUSY)
            return
        if not self.asking.check():
            return
        if self.hear is None:
            self._refuse(403, VOICE_OFF)
            return
        if self.track is None:
            self._refuse(409, NO_MICROPHONE)
            return
        self._drop()  # a start while listening starts over
        self._pcm, self._name = bytearray(), None
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=HEARING_RATE)
        self._schedule_end(MAX_UTTERANCE_S + END_GRACE_S)
        self._tell({"state": "listening", "max_s": MAX_UTTERANCE_S})

    def _schedule_end(self, delay_s: float) -> None:
        if self._ending is not None:
            self._ending.cancel()
        self._ending = asyncio.get_running_loop().call_later(delay_s, self._finish, False)

    def _keep(self, frame: av.AudioFrame) -> None:
        assert self._pcm is not None and self._resampler is not None
        for out in self._resampler.resample(frame):
            self._pcm += out.to_ndarray().tobytes()
        if len(self._pcm) >= MAX_UTTERANCE_S * HEARING_RATE * 2:
            self._finish(capped=True)

    def _finish(self, capped: bool) -> None:
        """The utterance is over: recognise it, off the event loop."""
        if self._pcm is None or self._resampler is None:
            return
        pcm = self._pcm
        try:
            for out in self._resampler.resample(None):
                pcm += out.to_ndarray().tobytes()
        except (av.FFmpegError, ValueError):  # a resampler that failed on a frame: its last samples are lost
            log.debug("could not flush the microphone's resampler")
        name = self._name
        self._drop()
        self._tell({"state": "recognising", "capped": capped})
        kept = bytes(pcm[: int(MAX_UTTERANCE_S * HEARING_RATE) * 2])
        self._recognising = asyncio.ensure_future(self._recognise(kept, name))

    async def _recognise(self, pcm: bytes, name: str | None) -> None:
        assert self.hear is not None
        try:
            words = await self.hear(pcm)
        except asyncio.CancelledError:
            raise
        except Exception:  # the viewer is told; the connection and the episode go on
            log.exception("could not recognise a spoken question")
            self._recognising = None
            self._refuse(503, FAILED)
            return
        self._recognising = None
        if self._closed or self.asking is None:
            return
        if not words.strip():
            self._tell({"state": "missed", "detail": MISSED})
            return
        text = as_question(words)
        self._tell({"state": "heard", "text": text})
        self.asking.take(text, name)

    def _drop(self) -> None:
        """Forget the utterance under way, if any."""
        if self._ending is not None:
            self._ending.cancel()
            self._ending = None
        self._pcm = self._resampler = None

    async def _read(self) -> None:
        """Read every frame the viewer sends, keeping those of an utterance."""
        assert self.track is not None
        while True:
            try:
                frame = await self.track.recv()
            except MediaStreamError:
                return
            if self._pcm is not None and isinstance(frame, av.AudioFrame):
                try:
                    self._keep(frame)
                except Exception:  # a frame the resampler refuses: the utterance ends with what it has
                    log.exception("could not resample the viewer's microphone")
                    self._finish(capped=False)

    def _refuse(self, status: int, detail: str) -> None:
        self._tell({"state": "refused", "status": status, "detail": detail})

    def _tell(self, message: dict[str, Any]) -> None:
        if self.asking is not None:
            self.asking.send({"type": "voice", **message})
