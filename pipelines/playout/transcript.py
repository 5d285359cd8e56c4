"""Transcript (JSON) and captions (WebVTT), timed on the media clock."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.protocols import CLOCK_RATE
from pipelines.segments import ReadySegment


def _ts(samples: int) -> str:
    ms = round(samples * 1000 / CLOCK_RATE)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


@dataclass
class TranscriptBuilder:
    """Collects speech segments as they play and groups them back into lines."""

    title: str = ""
    hosts: tuple[str, ...] = ()
    segments: list[dict[str, Any]] = field(default_factory=list)

    def add(self, seg: ReadySegment) -> None:
        if seg.kind != "speech":
            return
        self.segments.append(
            {
                "index": seg.index,
                "line": seg.line_index,
                "speaker": seg.speaker_name,
                "text": seg.text,
                "start": seg.start,
                "end": seg.start + seg.speech_samples,
                "tier": seg.quality.name,
                # A viewer's question read out or answered: its id.
                **({"question": seg.question} if seg.question else {}),
                # The camera while it played: a close-up names its host.
                "shot": {"kind": seg.shot.kind, "host": seg.shot.host} if seg.shot.kind == "close_up" else {"kind": seg.shot.kind},
            }
        )

    def truncate(self, at: int, cut: ReadySegment | None = None) -> None:
        """Forget the segments from clock sample ``at`` on: they were replaced before anyone
        heard them; ``cut``, the part kept of the one ``at`` fell inside, replaces it."""
        self.segments = [s for s in self.segments if s["start"] < at and (cut is None or s["index"] != cut.index)]
        if cut is not None:
            self.add(cut)

    def lines(self) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        for seg in self.segments:
            if lines and lines[-1]["index"] == seg["line"]:
                lines[-1]["text"] += " " + seg["text"]
                lines[-1]["end"] = seg["end"]
                continue
            # Shots change only where a line starts: its first segment's is the line's.
            lines.append({"index": seg["line"], "speaker": seg["speaker"], "text": seg["text"], "start": seg["start"],
                          "end": seg["end"], "shot": seg.get("shot", {"kind": "two_shot"}),
                          **({"question": seg["question"]} if seg.get("question") else {})})
        for line in lines:
            line["start_s"] = round(line["start"] / CLOCK_RATE, 3)
            line["end_s"] = round(line["end"] / CLOCK_RATE, 3)
        return lines

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "hosts": list(self.hosts), "clock_rate": CLOCK_RATE, "lines": self.lines(), "segments": self.segments}

    def to_webvtt(self) -> str:
        out = ["WEBVTT", ""]
        for i, seg in enumerate(self.segments, 1):
            # WebVTT cue text is markup: escape it so captions stay text.
            text = seg["text"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            out += [str(i), f"{_ts(seg['start'])} --> {_ts(seg['end'])}", f"<v {seg['speaker']}>{text}", ""]
        return "\n".join(out)

    def write(self, json_path: Path, vtt_path: Path) -> None:
        for path, text in ((json_path, json.dumps(self.to_json(), indent=2)), (vtt_path, self.to_webvtt())):
            tmp = path.with_name(f".{path.name}.part")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
