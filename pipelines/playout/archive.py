"""The MP4 archive: H.264 + AAC through PyAV, timestamps straight from the media clock.

Video and audio pts are both clock samples (time base 1/48000), so whatever
tier or frame rate each segment had, the file's A/V offset is zero. The file is
written under a temporary name and renamed when complete: a half-written MP4 is
never mistaken for a finished one.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from models.protocols import CLOCK_RATE, Quality
from pipelines.config import OutputSpec
from pipelines.playout.pixels import resize_i420
from pipelines.segments import ReadySegment

TIME_BASE = Fraction(1, CLOCK_RATE)


class Mp4Writer:
    """Writes the timeline to an MP4 file, or as fragmented MP4 to any object with ``write``."""

    def __init__(
        self,
        target: str | Path | BinaryIO,
        quality: Quality,
        spec: OutputSpec | None = None,
        fragmented: bool = False,
    ) -> None:
        spec = spec or OutputSpec()
        self.width, self.height = quality.width, quality.height
        options = {"movflags": "frag_keyframe+empty_moov+default_base_moof"} if fragmented else {}
        if isinstance(target, (str, Path)):
            self.path: Path | None = Path(target)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp: Path | None = self.path.with_name(f".{self.path.name}.part")
            self.container = av.open(str(self._tmp), "w", format="mp4", options=options)
        else:
            self.path = self._tmp = None
            self.container = av.open(target, "w", format="mp4", options=options)
        self.video = self.container.add_stream(spec.video_codec, rate=quality.fps)
        self.video.width = self.width
        self.video.height = self.height
        self.video.pix_fmt = "yuv420p"
        self.video.time_base = TIME_BASE
        self.video.codec_context.time_base = TIME_BASE
        self.video.options = {"preset": spec.preset, "crf": str(spec.crf)}
        self.video.codec_context.thread_count = spec.threads
        self.audio = self.container.add_stream("aac", rate=CLOCK_RATE, layout="mono")
        self.audio.bit_rate = spec.audio_bitrate
        self.audio.time_base = TIME_BASE
        self.frames_written = 0
        self.samples_written = 0
        self._closed = False

    def write(self, segment: ReadySegment) -> None:
        if segment.start != self.samples_written:
            raise ValueError(
                f"segment at {segment.start} does not continue the timeline at {self.samples_written}"
            )
        spf = segment.quality.samples_per_frame
        for n, frame in enumerate(segment.frames):
            vf = av.VideoFrame.from_ndarray(resize_i420(frame, self.width, self.height), format="yuv420p")
            vf.pts = segment.start + n * spf
            vf.time_base = TIME_BASE
            for packet in self.video.encode(vf):
                self.container.mux(packet)
            self.frames_written += 1
        af = av.AudioFrame.from_ndarray(segment.pcm.reshape(1, -1).astype(np.float32), format="fltp", layout="mono")
        af.sample_rate = CLOCK_RATE
        af.pts = segment.start
        af.time_base = TIME_BASE
        for packet in self.audio.encode(af):
            self.container.mux(packet)
        self.samples_written = segment.end

    def close(self) -> Path | None:
        """Flush encoders and publish the file under its final name."""
        if self._closed:
            return self.path
        for stream in (self.video, self.audio):
            for packet in stream.encode(None):
                self.container.mux(packet)
        self.container.close()
        if self._tmp is not None and self.path is not None:
            os.replace(self._tmp, self.path)
        self._closed = True
        return self.path

    def abort(self) -> None:
        """Drop a file that will never be complete."""
        if self._closed:
            return
        try:
            self.container.close()
        except Exception:  # noqa: BLE001, S110 - the file is discarded anyway
            pass
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
        self._closed = True
