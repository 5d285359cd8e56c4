"""An episode's media over plain HTTP: the finished MP4 archive, and a fragmented MP4 as it is made."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, StreamingResponse

from server.routes.deps import StateDep, manager_of, watchable
from server.transport.fmp4 import fragmented_mp4

router = APIRouter(prefix="/api/episodes", tags=["episodes"])


@router.get("/{episode_id}/video.mp4")
async def video(state: StateDep, episode_id: str, request: Request) -> FileResponse:
    episode = watchable(state, request, episode_id)
    if episode.status != "finished" or not episode.video_path.exists():
        raise HTTPException(409, f"the archive is written when the episode finishes; status is {episode.status!r}. "
                                 f"Watch it live at /watch/{episode.id} or stream /api/episodes/{episode.id}/stream.mp4")
    return FileResponse(episode.video_path, media_type="video/mp4", filename=f"{episode.id}.mp4")


@router.get("/{episode_id}/stream.mp4")
async def stream(state: StateDep, episode_id: str, request: Request) -> StreamingResponse:
    episode = watchable(state, request, episode_id)
    mgr = manager_of(state)
    await mgr.ensure_playable(episode)
    quality = mgr.deployment.quality.stream_tier(episode.request.quality)
    return StreamingResponse(fragmented_mp4(episode.buffer, quality), media_type="video/mp4")
