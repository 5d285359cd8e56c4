"""Request bodies of the REST API, validated by pydantic: a bad field is a 422 naming it."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipelines.config import Policy
from server.episodes.episode import Visibility
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
