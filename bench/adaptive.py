"""Quality policies under load: 1..4 concurrent live episodes, each watched in headless Chromium.

For every policy (adaptive, static-high, static, static-low, fifo, batch) and every
concurrency level, a fresh server process is started, N viewers open /watch at
once, and each episode is watched to its end. Per run it reports TTFF p50/p95,
time to first speech, stall ratio (the browser's freeze time / played time), the
share of frames drawn at the top tier and at the highest tier one episode
sustains alone, CPU-seconds per episode-minute (the server's process tree), and
how many episodes admission control queued. A table (markdown) and a plot (PNG).

Figures, never assertions: the machine is noisy. Usage:
    .venv/bin/python bench/adaptive.py [--levels 1,2,3,4] [--duration 180]
        [--policies adaptive,static-high,static,static-low,fifo,batch] [--json out.json] [--png docs/img/adaptive.png]
    .venv/bin/python bench/adaptive.py --from-json a.json b.json --duration 180 --png docs/img/adaptive.png

Each run's server starts from what admission learned in the runs before it (its
learned costs file is carried from one media directory to the next; ``--costs DIR``
keeps it across invocations), as a deployed server does across restarts.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.harness import CHROMIUM, CHROMIUM_ARGS, start_server  # noqa: E402
from bench.startup import TOPICS, pct, wait_for  # noqa: E402
from pipelines.config import load_deployment  # noqa: E402
from server.episodes.admission_loop import LEARNED_COSTS_FILE  # noqa: E402

POLICIES = ["adaptive", "static-high", "static", "static-low", "fifo", "batch"]


def _cpu_s(p: psutil.Process) -> float:
    try:
        t = p.cpu_times()
        return t.user + t.system + t.children_user + t.children_system
    except psutil.NoSuchProcess:
        return 0.0


def _cpu_split(pid: int) -> dict[str, float]:
    """CPU seconds used so far by the server process, its drawing workers and the browser.

    The split says where the two cores go: the server's event loop (script, speech,
    WebRTC, archive), the drawing processes, and Chromium decoding every viewer's stream.
    """
    split = {"server": 0.0, "workers": 0.0, "browser": 0.0}
    try:
        root = psutil.Process(pid)
        split["server"] = _cpu_s(root)
        split["workers"] = sum(_cpu_s(p) for p in root.children(recursive=True))
    except psutil.NoSuchProcess:
        pass
    for p in psutil.process_iter(["name"]):
        if "chrom" in (p.info["name"] or "").lower():
            split["browser"] += _cpu_s(p)
    return split


def _server_stalled_s(client: httpx.Client) -> float:
    """Seconds viewers' playheads waited for content (server side: generation was late)."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('streamwise_stalled_seconds_total{source="server"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _frames_by_tier(timeline: dict, fps_of: dict[str, int]) -> dict[str, int]:
    """Frames drawn per tier, from the episode's video spans (parts of split segments add up)."""
    frames: dict[str, int] = {}
    for span in timeline.get("spans", []):
        if span.get("stage") != "video" or span.get("segment") is None or not span.get("tier"):
            continue
        tier = span["tier"]
        frames[tier] = frames.get(tier, 0) + round(float(span.get("media_s") or 0.0) * fps_of.get(tier, 25))
    return frames


def run_level(browser, base: str, client: httpx.Client, pid: int, policy: str, n: int, duration: float) -> dict:
    context = browser.new_context(viewport={"width": 960, "height": 540})
    pages = []
    split0 = _cpu_split(pid)
    t0 = time.monotonic()
    for i in range(n):
        page = context.new_page()
        topic = TOPICS[(i + n * 3) % len(TOPICS)]
        page.goto(f"{base}/watch?topic={topic.replace(' ', '+')}&duration_s={duration:g}&policy={policy}",
                  wait_until="commit", timeout=60_000)
        pages.append(page)
    episodes = [wait_for(page, "window.STREAMWISE && window.STREAMWISE.episode", 60) for page in pages]
    lost = [i for i, e in enumerate(episodes) if not e]
    if lost:
        print(f"  {len(lost)} page(s) never loaded the player", file=sys.stderr)
    pages = [p for p, e in zip(pages, episodes) if e]
    episodes = [e for e in episodes if e]
    waiting = [client.get(f"/api/episodes/{e}").json()["status"] == "queued" for e in episodes]
    queued = sum(waiting)
    limit = t0 + duration * (3 if policy == "batch" else 1.5) + 120
    def state(page) -> str:
        return page.evaluate("(document.getElementById('state') || {}).textContent || ''")

    while time.monotonic() < limit:
        states = [state(page) for page in pages]
        if all(s == "ended" for s in states):
            break
        time.sleep(1.0)
    metrics = [page.evaluate("window.streamwiseMetrics") or {} for page in pages]
    content_stalled = _server_stalled_s(client)
    ended = sum(state(page) == "ended" for page in pages)
    split1 = _cpu_split(pid)
    wall = time.monotonic() - t0
    context.close()
    # Cores busy on average over the run, per part (2.0 = both cores all the time).
    cores = {k: (split1[k] - split0[k]) / wall for k in split0}
    cpu = (split1["server"] - split0["server"]) + (split1["workers"] - split0["workers"])
    deployment = load_deployment()
    ladder = [t.name for t in deployment.quality.ladder]
    fps_of = {t.name: t.fps for t in deployment.quality.ladder}
    frames: dict[str, int] = {}
    media_s = 0.0
    for e in episodes:
        for tier, count in _frames_by_tier(client.get(f"/api/episodes/{e}/timeline").json(), fps_of).items():
            frames[tier] = frames.get(tier, 0) + count
        media_s += client.get(f"/api/episodes/{e}").json()["progress"]["buffered_s"]
        client.delete(f"/api/episodes/{e}")
    played = sum(float(m.get("playedSeconds") or 0.0) for m in metrics)
    frozen = sum(float(m.get("totalFreezesDuration") or 0.0) for m in metrics)
    return {
        "policy": policy, "episodes": n, "queued": queued, "lost_pages": len(lost),
        "ttff_s": [m.get("ttffSeconds") for m in metrics],
        # The episodes admission let in at once (a queued one's TTFF includes its wait).
        "ttff_admitted_s": [m.get("ttffSeconds") for m, w in zip(metrics, waiting) if not w],
        "ttff_queued_s": [m.get("ttffSeconds") for m, w in zip(metrics, waiting) if w],
        # A queued episode's viewer sees the title card at once; its first words wait for admission.
        "first_speech_queued_s": [m.get("firstSpeechSeconds") for m, w in zip(metrics, waiting) if w],
        "first_speech_s": [m.get("firstSpeechSeconds") for m in metrics],
        "first_speech_admitted_s": [m.get("firstSpeechSeconds") for m, w in zip(metrics, waiting) if not w],
        "freezes": sum(int(m.get("freezeCount") or 0) for m in metrics),
        "played_s": played, "frozen_s": frozen,
        "stall_ratio": frozen / played if played else None,
        # Of the freezes, the part where content was late (not delivery or decoding).
        "content_stalled_s": content_stalled,
        "frames_by_tier": {t: frames.get(t, 0) for t in ladder},
        "cpu_s": cpu, "media_s": media_s,
        "cpu_s_per_episode_min": cpu / (media_s / 60) if media_s else None,
        "ended": ended,
        "cores_busy": cores,
    }


def _carry(src: Path, dst: Path) -> None:
    """Copy admission's learned costs (server/episodes/manager.py LEARNED_COSTS_FILE) from one media dir to another."""
    path = src / LEARNED_COSTS_FILE
    if path.exists():
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dst / LEARNED_COSTS_FILE)


def _share(row: dict, tiers: list[str]) -> float | None:
    total = sum(row["frames_by_tier"].values())
    return sum(row["frames_by_tier"].get(t, 0) for t in tiers) / total if total else None


def sustained_alone(rows: list[dict], ladder: list[str]) -> str:
    """The highest tier a static policy held with one episode, no freeze and no late content."""
    static_tier = {"static-high": ladder[-1], "static-low": ladder[0]}
    best = ladder[0]
    for row in rows:
        tier = static_tier.get(row["policy"])
        stalled = row["freezes"] or row.get("content_stalled_s", 0.0) > 0.5
        if row["episodes"] == 1 and tier and not stalled and ladder.index(tier) > ladder.index(best):
            best = tier
    return best


def _cores(row: dict) -> str:
    cores = row.get("cores_busy")
    return " / ".join(f"{cores[k]:.2f}" for k in ("server", "workers", "browser")) if cores else "n/a"


def report(rows: list[dict], ladder: list[str], duration: float) -> str:
    alone = sustained_alone(rows, ladder)
    at_or_above = ladder[ladder.index(alone):]
    out = [f"\n### Policies under load ({duration:g} s episodes, each watched in headless Chromium)\n",
           f"Highest tier one episode sustains alone here: **{alone}**.\n",
           "| policy | episodes | queued | TTFF p50 / p95 (admitted at once) | first speech p50 (same) | stall ratio (freezes) "
           f"| content late | frames at {ladder[-1]} | frames at >= {alone} | CPU-s per episode-min "
           "| cores busy: server / drawing / browser |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ttff = [v for v in r.get("ttff_admitted_s", r["ttff_s"]) if v is not None]
        waited = [v for v in r.get("first_speech_queued_s", []) if v is not None]
        queued = f"{r['queued']} (first words at {max(waited):.0f} s)" if r["queued"] and waited else str(r["queued"])
        speech = [v for v in r.get("first_speech_admitted_s", r["first_speech_s"]) if v is not None]
        top, good = _share(r, [ladder[-1]]), _share(r, at_or_above)
        ratio, cpu = r["stall_ratio"], r["cpu_s_per_episode_min"]
        out.append(
            f"| {r['policy']} | {r['episodes']} | {queued} | {pct(ttff, .5):.2f} / {pct(ttff, .95):.2f} s "
            f"| {pct(speech, .5):.2f} s | {'n/a' if ratio is None else f'{ratio:.4f}'} ({r['freezes']}) "
            f"| {r.get('content_stalled_s', float('nan')):.1f} s "
            f"| {'n/a' if top is None else f'{top:.0%}'} | {'n/a' if good is None else f'{good:.0%}'} "
            f"| {'n/a' if cpu is None else f'{cpu:.1f}'} | {_cores(r)} |")
    return "\n".join(out)


def plot(rows: list[dict], ladder: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies = list(dict.fromkeys(r["policy"] for r in rows))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for policy in policies:
        rs = sorted((r for r in rows if r["policy"] == policy), key=lambda r: r["episodes"])
        n = [r["episodes"] for r in rs]
        axes[0].plot(n, [pct([v for v in r.get("ttff_admitted_s", r["ttff_s"]) if v is not None], .95) for r in rs], marker="o", label=policy)
        axes[1].plot(n, [(r.get("content_stalled_s") or 0.0) / r["episodes"] for r in rs], marker="o", label=policy)
        axes[2].plot(n, [(_share(r, [ladder[-1]]) or 0.0) * 100 for r in rs], marker="o", label=policy)
    axes[0].set(title="TTFF p95, admitted at once (s)", xlabel="concurrent episodes")
    axes[0].axhline(1.0, color="grey", lw=0.8, ls="--")
    axes[1].set(title="content late per viewer (s)", xlabel="concurrent episodes")
    axes[1].set_yscale("symlog", linthresh=1.0)
    axes[1].set_ylim(0, max(10.0, axes[1].get_ylim()[1]))  # a run without late content stays readable
    axes[2].set(title=f"frames at {ladder[-1]} (%)", xlabel="concurrent episodes")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.set_xticks(sorted({r["episodes"] for r in rows}))
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1,2,3,4", help="concurrent episodes, comma-separated")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds per episode")
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--png", type=Path, default=None)
    parser.add_argument("--costs", type=Path, default=None,
                        help="folder for admission's learned costs, carried across invocations (default: this run only)")
    parser.add_argument("--from-json", type=Path, nargs="+", default=None,
                        help="report (and plot) runs saved with --json, merged, instead of running")
    args = parser.parse_args()
    levels = [int(v) for v in args.levels.split(",")]
    policies = args.policies.split(",")
    ladder = [t.name for t in load_deployment().quality.ladder]
    if args.from_json:
        rows = [row for path in args.from_json for row in json.loads(path.read_text())]
        order = {p: i for i, p in enumerate(POLICIES)}
        rows.sort(key=lambda r: (order.get(r["policy"], len(order)), r["episodes"]))
        print(report(rows, ladder, args.duration))
        if args.png:
            plot(rows, ladder, args.png)
        return 0

    from playwright.sync_api import sync_playwright

    rows = []
    learned = tempfile.TemporaryDirectory()
    costs = Path(learned.name)
    if args.costs:  # start from (and keep) what earlier invocations learned
        costs = args.costs
        costs.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw, learned:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        for policy in policies:
            for n in levels:
                # A fresh server per run (caches and queues start the same for every policy),
                # but what admission learned about this machine's costs carries over, as it
                # does when a deployed server restarts.
                with tempfile.TemporaryDirectory() as tmp:
                    _carry(costs, Path(tmp) / "media")  # start_server's media dir
                    server = start_server(Path(tmp))
                    try:
                        server.wait_ready()
                        with httpx.Client(base_url=server.url, timeout=30) as client:
                            print(f"{policy}, {n} episode(s)...", file=sys.stderr)
                            row = run_level(browser, server.url, client, server.process.pid, policy, n, args.duration)
                    finally:
                        server.stop()
                    _carry(server.media_dir, costs)
                rows.append(row)
                print(report([row], ladder, args.duration).splitlines()[-1], file=sys.stderr)
                if args.json:  # after every run: a long session cut short keeps what it measured
                    args.json.parent.mkdir(parents=True, exist_ok=True)
                    args.json.write_text(json.dumps(rows, indent=2))
        browser.close()
    print(report(rows, ladder, args.duration))
    if args.png:
        plot(rows, ladder, args.png)
        print(f"\nplot: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
