"""Spans as a Chrome trace (Trace Event Format), for Perfetto or chrome://tracing."""
from __future__ import annotations

from typing import Any

from pipelines.spans import Span


def chrome_trace(episode_id: str, title: str, spans: list[Span]) -> dict[str, Any]:
    """One track per worker, a complete event per task; queue waits on a track per stage."""
    threads: dict[str, int] = {}
    events: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": 1, "tid": 0, "args": {"name": f"episode {episode_id}: {title}"}}
    ]
    for span in sorted(spans, key=lambda s: s.started):
        tid = threads.setdefault(span.worker, len(threads) + 1)
        label = span.stage if span.segment is None else f"{span.stage} #{span.segment}"
        args = {"segment": span.segment, "tier": span.tier, "media_s": round(span.media_s, 3), "note": span.note}
        if span.wait_s > 0.0005:
            # Waits overlap the work of the task before, so they get a track of their own.
            qtid = threads.setdefault(f"{span.stage} queue", len(threads) + 1)
            events.append({"ph": "X", "name": f"queued: {label}", "cat": "queue", "pid": 1, "tid": qtid,
                           "ts": round(span.queued * 1e6), "dur": round(span.wait_s * 1e6), "args": args})
        events.append({"ph": "X", "name": label, "cat": span.stage, "pid": 1, "tid": tid,
                       "ts": round(span.started * 1e6), "dur": max(1, round(span.run_s * 1e6)), "args": args})
    for worker, tid in threads.items():
        events.append({"ph": "M", "name": "thread_name", "pid": 1, "tid": tid, "args": {"name": worker}})
    return {"traceEvents": events, "displayTimeUnit": "ms"}
