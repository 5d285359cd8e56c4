"""Episodes brought back from the store after a restart.

A restored episode has its record (status, transcript, spans, viewers' reports and
questions) but an empty buffer: replays rebuild it from the MP4 archive on demand. One
that was generating or queued when the server stopped is marked interrupted, ready to
re-run. A restored episode takes no more questions: it is over.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, get_args

from pipelines.questions import Question, Status
from pipelines.segments import EpisodeRequest
from pipelines.spans import Span
from server.episodes.episode import VISIBILITIES, Episode
from server.shares import Share

log = logging.getLogger(__name__)


def episode_from_record(rec: dict[str, Any], media_dir: Path, hosts: tuple[str, ...]) -> Episode:
    """The episode a stored record describes; KeyError, TypeError or ValueError if it cannot be read."""
    req = rec["request"]
    episode = Episode(
        id=rec["id"],
        request=EpisodeRequest(topic=req["topic"], duration_s=req["duration_s"], style=req["style"],
                               quality=req.get("quality"), policy=req.get("policy")),
        directory=media_dir / rec["id"],
        created_wall=rec["created_at"],
        status=rec["status"],
        error=rec.get("error"),
        title=rec.get("title") or "",
        first_content_s=rec.get("first_content_s"),
        first_speech_s=rec.get("first_speech_s"),
        finished_s=rec.get("finished_s"),
        viewer_stats=rec.get("viewer_stats") or [],
        restored=True,
        # Records from before owners were kept have none: they are the admins' alone.
        owner=rec.get("owner"),
        visibility=rec.get("visibility") if rec.get("visibility") in VISIBILITIES else "unlisted",
        shares=[Share.from_dict(s) for s in rec.get("shares") or []],
    )
    episode._restored_buffered_s = float(rec.get("buffered_s") or 0.0)
    tr = rec.get("transcript") or {}
    episode.transcript.title = tr.get("title", "")
    episode.transcript.hosts = tuple(tr.get("hosts") or hosts)
    episode.transcript.segments = list(tr.get("segments") or [])
    for span in rec.get("spans") or []:
        episode.timeline.add(Span(**span))
    episode.questions.questions = _questions(rec.get("questions") or [], episode.id)
    return episode


def _questions(stored: list[Any], episode_id: str) -> list[Question]:
    """The stored questions that can be read; one that cannot is left out (it never loses the episode)."""
    questions = []
    for data in stored:
        try:
            question = Question.from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError):
            log.warning("episode %s: leaving out a stored question that cannot be read", episode_id)
            continue
        if question.status not in get_args(Status):
            question.status = "declined"
        questions.append(question)
    return questions


def settle(episode: Episode) -> bool:
    """Give a restored episode the status it has now; True if its record changed."""
    changed = False
    if episode.status in ("generating", "queued"):
        episode.status = "interrupted"
        episode.error = ("the server stopped while this episode was being generated; "
                         f"re-run it with POST /api/episodes/{episode.id}/rerun")
        changed = True
    if episode.status == "finished" and not episode.video_path.exists():
        episode.status = "failed"
        episode.error = "the archive file is missing from the media directory"
        changed = True
    if episode.status != "finished":
        episode.buffer.finish(episode.error)
    # Questions still waiting (the server stopped first) are declined, with why.
    if any(q.status in ("queued", "answering") for q in episode.questions.questions):
        changed = True
    episode.close_questions()
    return changed
