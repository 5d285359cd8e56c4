"""Startup and smoothness of live episodes in headless Chromium, against "generate everything, then play".

Measures, over real browser sessions against a real server process:
- TTFF (navigation to the first decoded frame) and time to first speech, over --runs episodes;
- freezes, stall ratio, audio concealment and A/V skew over one long episode watched to the end;
- the baseline the StreamWise paper's own app uses: wait until the whole episode is generated,
  then play the MP4. Its TTFF is measured in the same run and the ratio printed.

Figures, never assertions: the machine is noisy. Usage:
    .venv/bin/python bench/startup.py [--runs 10] [--duration 30] [--long 180] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.harness import CHROMIUM, CHROMIUM_ARGS, start_server  # noqa: E402

TOPICS = [
    "why the sky is blue", "how bread rises", "the history of the bicycle", "how bees make honey",
    "why cats purr", "how volcanoes erupt", "the invention of paper", "how rainbows form",
    "why we yawn", "how tides work", "the first computers", "how plants drink water",
]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def wait_for(page, expression: str, timeout_s: float, poll_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value:
            return value
        time.sleep(poll_s)
    return None


def live_runs(context, base: str, runs: int, duration: float, client: httpx.Client) -> list[dict]:
    results = []
    for i in range(runs):
        topic = TOPICS[i % len(TOPICS)]
        page = context.new_page()
        page.goto(f"{base}/watch?topic={topic.replace(' ', '+')}&duration_s={duration:g}")
        metrics = wait_for(page, "window.streamwiseMetrics && window.streamwiseMetrics.firstSpeechSeconds !== null && window.streamwiseMetrics", 45)
        metrics = metrics or page.evaluate("window.streamwiseMetrics")
        episode = page.evaluate("window.STREAMWISE.episode")
        page.close()
        server = client.get(f"/api/episodes/{episode}").json()
        # Free the CPU for the next run: an episode generating in the background skews it.
        client.delete(f"/api/episodes/{episode}")
        results.append({"topic": topic, "ttff_s": metrics.get("ttffSeconds"), "first_audio_s": metrics.get("firstAudioSeconds"),
                        "first_speech_s": metrics.get("firstSpeechSeconds"), "marks": metrics.get("marks"),
                        "server_first_speech_s": server["startup"]["first_speech_s"]})
        print(f"  run {i + 1}/{runs}: TTFF {results[-1]['ttff_s']} s, first speech {results[-1]['first_speech_s']} s", file=sys.stderr)
        time.sleep(1.0)
    return results


def long_run(context, base: str, duration: float, client: httpx.Client) -> dict:
    page = context.new_page()
    page.goto(f"{base}/watch?topic=the+history+of+the+bicycle&duration_s={duration:g}")
    episode = page.evaluate("window.STREAMWISE.episode")
    skews = []
    started = time.monotonic()
    while time.monotonic() - started < duration + 120:
        time.sleep(1.0)
        state = page.inner_text("#state")
        m = page.evaluate("window.streamwiseMetrics")
        if m.get("avSkewMs") is not None and time.monotonic() - started > 10:
            skews.append(float(m["avSkewMs"]))
        if state == "ended":
            break
    m = page.evaluate("window.streamwiseMetrics")
    page.close()
    info = client.get(f"/api/episodes/{episode}").json()
    played = float(m.get("playedSeconds") or 0.0)
    frozen = float(m.get("totalFreezesDuration") or 0.0)
    return {
        "episode_s": info["progress"]["buffered_s"],
        "played_s": played,
        "frames_decoded": m.get("framesDecoded"),
        "freezes": m.get("freezeCount"),
        "frozen_s": frozen,
        "stall_ratio": frozen / played if played else None,
        "concealed_samples": m.get("concealedSamples"),
        "total_samples": m.get("totalSamplesReceived"),
        "av_skew_ms_median_abs": statistics.median(abs(s) for s in skews) if skews else None,
        "av_skew_ms_p95_abs": pct([abs(s) for s in skews], 0.95) if skews else None,
        "status": info["status"],
    }


def batch_runs(context, base: str, runs: int, duration: float, client: httpx.Client) -> list[dict]:
    """The paper's app: generate the whole episode, then play the MP4."""
    results = []
    for i in range(runs):
        t0 = time.monotonic()
        created = client.post("/api/episodes", json={"topic": TOPICS[-1 - i % len(TOPICS)], "duration_s": duration}).json()
        while client.get(f"/api/episodes/{created['id']}").json()["status"] == "generating":
            time.sleep(0.1)
        generated = time.monotonic() - t0
        page = context.new_page()
        page.set_content(
            f"<video id=v muted autoplay playsinline src='{base}/api/episodes/{created['id']}/video.mp4'></video>"
            "<script>window.first=null;const v=document.getElementById('v');"
            "v.requestVideoFrameCallback(()=>{window.first=performance.now()/1000});</script>"
        )
        t_nav = time.monotonic()
        wait_for(page, "window.first", 30)
        play = time.monotonic() - t_nav
        page.close()
        client.delete(f"/api/episodes/{created['id']}")
        results.append({"generate_s": generated, "first_frame_after_s": play, "ttff_s": generated + play})
        print(f"  baseline {i + 1}/{runs}: TTFF {generated + play:.2f} s", file=sys.stderr)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--duration", type=float, default=30.0, help="episode length for the startup runs")
    parser.add_argument("--long", type=float, default=180.0, help="episode watched to the end for freezes (0 skips)")
    parser.add_argument("--baseline-runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp))
        try:
            server.wait_ready()
            base = server.url
            with httpx.Client(base_url=base, timeout=30) as client, sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                context = browser.new_context(viewport={"width": 1280, "height": 720})
                warm = context.new_page()  # the browser's own first-start cost is not the server's
                warm.goto(f"{base}/")
                warm.close()
                print("live episodes...", file=sys.stderr)
                live = live_runs(context, base, args.runs, args.duration, client)
                print("baseline: generate everything, then play...", file=sys.stderr)
                batch = batch_runs(context, base, args.baseline_runs, args.duration, client)
                long = None
                if args.long > 0:
                    print(f"one {args.long:.0f} s episode watched to the end...", file=sys.stderr)
                    long = long_run(context, base, args.long, client)
                browser.close()
        finally:
            server.stop()

    ttff = [r["ttff_s"] for r in live if r["ttff_s"] is not None]
    speech = [r["first_speech_s"] for r in live if r["first_speech_s"] is not None]
    base_ttff = [r["ttff_s"] for r in batch]
    print(f"\n### Startup ({len(live)} live episodes of {args.duration:g} s, headless Chromium, loopback)\n")
    print("| measure | p50 | p95 | target |")
    print("| --- | --- | --- | --- |")
    print(f"| TTFF (navigation to first decoded frame) | {pct(ttff, .5):.2f} s | {pct(ttff, .95):.2f} s | p50 <= 0.8 s, p95 <= 1.0 s |")
    print(f"| time to first speech | {pct(speech, .5):.2f} s | {pct(speech, .95):.2f} s | p50 <= 1.5 s |")
    print(f"| baseline TTFF: generate everything, then play | {pct(base_ttff, .5):.2f} s | {pct(base_ttff, .95):.2f} s | |")
    if ttff and base_ttff:
        print(f"\nStreaming starts **{pct(base_ttff, .5) / pct(ttff, .5):.1f}x** sooner than the baseline (p50 TTFF ratio).")
    if long:
        print(f"\n### One {args.long:g} s episode watched to the end\n")
        print("| measure | value | target |")
        print("| --- | --- | --- |")
        print(f"| played | {long['played_s']:.1f} s ({long['frames_decoded']} frames) | |")
        print(f"| freezes | {long['freezes']} ({long['frozen_s']:.2f} s) | 0 |")
        ratio = long["stall_ratio"]
        print(f"| stall ratio | {ratio:.4f} | 0 |" if ratio is not None else "| stall ratio | n/a | 0 |")
        print(f"| audio concealed | {long['concealed_samples']} of {long['total_samples']} samples | |")
        skew = long["av_skew_ms_median_abs"]
        print(f"| A/V skew, median / p95 of abs | {skew:.0f} / {long['av_skew_ms_p95_abs']:.0f} ms | <= 45 ms |" if skew is not None else "| A/V skew | n/a | <= 45 ms |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"live": live, "baseline": batch, "long": long}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
