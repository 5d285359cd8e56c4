"""Request and response bodies of the REST API, validated by pydantic: a bad field is a 422 naming it."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipelines.config import Policy
from server.episodes.episode import Visibility
from server.questions import MAX_RAW_NAME_CHARS, MAX_RAW_TEXT_CHARS
from server.shares import MAX_TTL_S


class EpisodeCreate(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    topic: str = Field(min_length=1, max_length=200, description="What the hosts talk about")
    duration_s: float = Field(60, ge=10, le=1800, description="Target length in seconds")
    style: Literal["conversational", "explainer", "debate", "interview"] = "conversational"
    quality: str | None = Field(None, description="A tier name from the quality ladder, e.g. 360p")
    policy: Policy | None = Field(
        None, description="Quality policy for this episode (default: the deployment's), for comparisons")
    wait: bool = Field(False, description="When the server is at capacity, queue the episode instead of a 503")
    visibility: Visibility = Field(
        "unlisted", description="public: listed for everyone; unlisted: plays for anyone with the link; "
                                "private: only its owner, admins and share links")

    @field_validator("topic")
    @classmethod
    def _clean_topic(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("topic must contain words")
        return value


class SessionDescription(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    sdp: str = Field(max_length=100_000)
    type: str = Field(max_length=16)


class ViewerStats(BaseModel):
    """What a player reports of its WebRTC session (names as the browser's stats call them)."""

    model_config = ConfigDict(allow_inf_nan=False)

    viewer: str | None = Field(None, max_length=64)
    framesDecoded: int | None = Field(None, ge=0)
    freezeCount: int | None = Field(None, ge=0)
    totalFreezesDuration: float | None = Field(None, ge=0)
    concealedSamples: int | None = Field(None, ge=0)
    totalSamplesReceived: int | None = Field(None, ge=0)
    ttffSeconds: float | None = Field(None, ge=0)
    firstAudioSeconds: float | None = Field(None, ge=0)
    firstSpeechSeconds: float | None = Field(None, ge=0)
    playedSeconds: float | None = Field(None, ge=0)
    avSkewMs: float | None = None
    framesPerSecond: float | None = Field(None, ge=0)


class ShareCreate(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    ttl_s: float | None = Field(None, ge=1, le=MAX_TTL_S,
                                description="Seconds the link stays valid (default: the server's, STREAMWISE_SHARE_TTL_S)")


class QuestionCreate(BaseModel):
    """A viewer's question to an episode's hosts."""

    model_config = ConfigDict(allow_inf_nan=False)

    text: str = Field(max_length=MAX_RAW_TEXT_CHARS,
                      description="The question; at most 280 characters once control characters and markup "
                                  "are removed (the deployment's questions.max_chars)")
    name: str | None = Field(None, max_length=MAX_RAW_NAME_CHARS,
                             description="How the host names the asker (\"Maya from the chat asks\"); optional")


class QuestionOut(BaseModel):
    """A question and where it stands."""

    id: str
    text: str = Field(description="The question as the host reads it (cleaned)")
    name: str | None
    status: Literal["queued", "answering", "answered", "declined"] = Field(
        description="queued: waiting for its turn; answering: spliced into the show at media_s; "
                    "answered: the hosts answered it; declined: not answered, see reason")
    asked_at: float = Field(description="Unix time it was asked")
    media_s: float | None = Field(description="Where in the episode the host reads it out (media seconds)")
    reason: str | None = Field(description="Why it was declined")


class QuestionList(BaseModel):
    questions: list[QuestionOut]
