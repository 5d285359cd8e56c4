"""Rebuild an episode's playout buffer from its MP4 archive, for viewers after a restart.

Segment boundaries come from the stored transcript, so captions and the live
transcript work as they did when the episode was generated.
"""
from __future__ import annotations

from itertools import pairwise
from typing import Any

import av
import numpy as np

from models.protocols import CLOCK_RATE, Quality
from pipelines.playout.frames import FrameList
from pipelines.segments import ReadySegment


def load_archive(path: str, quality: Quality) -> tuple[list[np.ndarray], np.ndarray]:
    """All frames (I420) and the audio (float32 mono, 48 kHz) of an archive."""
    frames: list[np.ndarray] = []
    with av.open(path) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="yuv420p"))
    chunks = []
    with av.open(path) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=CLOCK_RATE)
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
    pcm = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, dtype=np.float32)
    return frames, pcm


def segments_from_archive(path: str, quality: Quality, transcript_segments: list[dict[str, Any]]) -> list[ReadySegment]:
    frames, pcm = load_archive(path, quality)
    spf = quality.samples_per_frame
    total = len(frames) * spf
    pcm = pcm[:total] if len(pcm) >= total else np.pad(pcm, (0, total - len(pcm)))
    starts = [int(s["start"]) for s in transcript_segments]
    bounds = ([0] if not starts or starts[0] > 0 else []) + starts + [total]
    out: list[ReadySegment] = []
    for i, (start, end) in enumerate(pairwise(bounds)):
        if end <= start:
            continue
        meta = next((s for s in transcript_segments if int(s["start"]) == start), None)
        out.append(
            ReadySegment(
                kind="speech" if meta else "intro",
                index=int(meta["index"]) if meta else -1,
                start=start,
                n_samples=end - start,
                pcm=pcm[start:end],
                quality=quality,
                frames=FrameList.compress(frames[start // spf : end // spf]),
                speaker=None,
                speaker_name=meta["speaker"] if meta else "",
                text=meta["text"] if meta else "",
                line_index=meta.get("line") if meta else None,
                speech_samples=(int(meta["end"]) - start) if meta else 0,
            )
        )
    return out
