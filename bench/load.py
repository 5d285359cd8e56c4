"""Open-loop load: episodes arrive as a Poisson process; goodput and latency against arrival rate.

After the serving benchmarks LLM servers use: requests arrive at a given rate whatever the
server's state (open loop), and what counts is goodput, the share of requested episodes
that met the service-level objective: started within 1 s (first frame at every viewer)
and never stalled. Each episode is requested by a process of its own at its arrival
instant and watched by ``--viewers`` lightweight headless WebRTC receivers in it
(bench/load_receiver.py: real peer connections that time packets instead of decoding).
Per episode it records the create answer (admitted, queued or refused), each viewer's
first frame, first content frame, first speech and freezes; per run the content that was
late on the server (its playheads' stalls), the server's CPU (process tree) and each
stage's utilisation from /metrics. A fresh server runs each (policy, rate); only loopback.

    .venv/bin/python bench/load.py --rates 0.02,0.05,0.1 --time 120 --viewers 2 --policies adaptive,static
    .venv/bin/python bench/load.py --burst 3 --viewers 2          # three episodes at once
    .venv/bin/python bench/load.py --sweep 1,5,10,20              # server CPU per added viewer

``--sweep`` watches one generated episode with 1, 5, 10 and 20 receivers, with the
frames encoded once for every viewer and with an encoder per viewer
(``runtime.shared_encoding: false``), and fits the server's cores against viewers.
Figures, never assertions: the machine is noisy. JSON (``--json``), a table, a plot (``--png``).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.harness import REPO_ROOT, start_server
from bench.startup import TOPICS, pct
from pipelines.config import DEFAULT_DEPLOYMENT

RECEIVER = REPO_ROOT / "bench" / "load_receiver.py"
#: The service-level objective: every viewer's first frame within this many seconds.
SLO_START_S = 1.0
#: A receiver process is started this long before its arrival (Python and aiortc import).
SPAWN_AHEAD_S = 2.5
#: The benchmark stands for many users: the per-key quotas (an open server's one local key)
#: are lifted, so what turns requests away is admission control.
MANY_USERS = {"STREAMWISE_MAX_EPISODES_PER_KEY": "1000", "STREAMWISE_CREATES_PER_MINUTE": "100000"}


def arrivals(rate: float, time_s: float, seed: int) -> list[float]:
    """Poisson arrival instants (seconds from the start) at ``rate`` per second within ``time_s``."""
    rng = np.random.default_rng(seed)
    out, t = [], 0.0
    while True:
        t += float(rng.exponential(1.0 / rate))
        if t >= time_s:
            return out
        out.append(t)


def cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by a process and its children (the server and its workers)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def scrape(client: httpx.Client) -> dict:
    """From /metrics: busy seconds per stage (and its workers), server stalls, frames sent by encoder."""
    busy: dict[str, float] = {}
    workers: dict[str, set] = {}
    out = {"busy_s": busy, "workers": workers, "stalled_s": 0.0, "stalls": 0.0, "frames": {}}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("streamwise_worker_busy_seconds_total{"):
            labels, value = line.rsplit(" ", 1)
            worker = labels.split('worker="')[1].split('"')[0]
            stage = labels.split('stage="')[1].split('"')[0]
            busy[stage] = busy.get(stage, 0.0) + float(value)
            workers.setdefault(stage, set()).add(worker)
        elif line.startswith('streamwise_stalled_seconds_total{source="server"}'):
            out["stalled_s"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith('streamwise_stalls_total{source="server"}'):
            out["stalls"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("streamwise_webrtc_frames_sent_total{"):
            labels, value = line.rsplit(" ", 1)
            key = labels.split('track="')[1].split('"')[0] + "/" + labels.split('encoder="')[1].split('"')[0]
            out["frames"][key] = float(value)
    return out


def spawn(url: str, at: float, index: int, args: argparse.Namespace, out: Path, episode: str | None = None,
          viewers: int | None = None, limit_s: float | None = None) -> subprocess.Popen:
    """A receiver process that requests (or, with ``episode``, only watches) an episode at wall time ``at``."""
    limit = limit_s if limit_s is not None else args.duration * 4 + 60
    command = [sys.executable, str(RECEIVER), url, "--topic", TOPICS[index % len(TOPICS)], "--duration",
               f"{args.duration:g}", "--viewers", str(viewers or args.viewers), "--at", f"{at:.3f}", "--out", str(out),
               "--limit", f"{limit:g}"]
    if getattr(args, "policy_now", None):
        command += ["--policy", args.policy_now]
    if episode:
        command += ["--episode", episode]
    return subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def good(episode: dict) -> bool:
    """Met the objective: admitted, and every viewer saw its first frame in time and never froze
    (no video freeze, no audio gap)."""
    viewers = episode.get("viewers") or []
    return episode.get("status_code") in (201, 202) and bool(viewers) and all(
        v.get("error") is None and v.get("first_frame_s") is not None and v["first_frame_s"] <= SLO_START_S
        and v.get("freezes", 0) == 0 and v.get("audio_gaps", 0) == 0 for v in viewers)


def run_once(server, instants: list[float], args: argparse.Namespace, workdir: Path) -> dict:
    """Drive one server with arrivals at ``instants`` (seconds from now); the run's record."""
    client = httpx.Client(base_url=server.url, timeout=30)
    before, cpu0, t0 = scrape(client), cpu_seconds(server.process.pid), time.time() + SPAWN_AHEAD_S
    procs, outputs = [], []
    for i, offset in enumerate(instants):
        while time.time() < t0 + offset - SPAWN_AHEAD_S:
            time.sleep(0.05)
        outputs.append(workdir / f"episode-{i}.json")
        procs.append(spawn(server.url, t0 + offset, i, args, outputs[-1]))
    for proc in procs:
        try:
            proc.wait(timeout=args.duration * 4 + 120)
        except subprocess.TimeoutExpired:
            proc.kill()
    wall = max(1e-6, time.time() - t0)
    after, cpu = scrape(client), cpu_seconds(server.process.pid) - cpu0
    client.close()
    episodes = [json.loads(p.read_text()) if p.exists() else {"error": "receiver wrote nothing"} for p in outputs]
    return summarise(episodes, before, after, wall, cpu)


def summarise(episodes: list[dict], before: dict, after: dict, wall: float, cpu: float) -> dict:
    viewers = [v for e in episodes for v in e.get("viewers") or []]
    first = [v["first_frame_s"] for v in viewers if v.get("first_frame_s") is not None]
    speech = [v["first_speech_s"] for v in viewers if v.get("first_speech_s") is not None]
    content = [v["first_content_s"] for v in viewers if v.get("first_content_s") is not None]
    utilisation = {stage: round((after["busy_s"][stage] - before["busy_s"].get(stage, 0.0))
                                / (wall * max(1, len(after["workers"][stage]))), 3) for stage in after["busy_s"]}
    return {
        "requested": len(episodes),
        "admitted": sum(e.get("status_code") in (201, 202) for e in episodes),
        "queued": sum(bool(e.get("queued")) for e in episodes),
        "refused": sum(e.get("status_code") not in (201, 202) for e in episodes),
        "good": sum(good(e) for e in episodes),
        "goodput": sum(good(e) for e in episodes) / max(1, len(episodes)),
        "first_frame_s": _percentiles(first), "first_content_s": _percentiles(content),
        "first_speech_s": _percentiles(speech),
        "viewer_freezes": sum(v.get("freezes", 0) for v in viewers),
        "viewer_audio_gaps": sum(v.get("audio_gaps", 0) for v in viewers),
        "viewer_frozen_s": round(sum(v.get("frozen_s", 0.0) for v in viewers), 3),
        "content_late_s": round(after["stalled_s"] - before["stalled_s"], 3),
        "content_late_stalls": after["stalls"] - before["stalls"],
        "server_cores": round(cpu / wall, 3), "utilisation": utilisation,
        "frames_sent": {k: v - before["frames"].get(k, 0.0) for k, v in after["frames"].items()},
        "episodes": episodes,
    }


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "max": None, "n": 0}
    return {"p50": pct(values, 0.5), "p95": pct(values, 0.95), "max": max(values), "n": len(values)}


def deployment_file(workdir: Path, shared: bool) -> Path:
    """The default deployment (the server's embedded one) with ``runtime.shared_encoding`` set."""
    base = yaml.safe_load(DEFAULT_DEPLOYMENT.read_text())
    base.setdefault("runtime", {})["shared_encoding"] = shared
    path = workdir / f"deploy-{'shared' if shared else 'own'}.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


def sweep(args: argparse.Namespace, counts: list[int]) -> list[dict]:
    """Server cores while one generated episode plays to 0, 1, 5... receivers; shared and own encoding."""
    rows = []
    for shared in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            server = start_server(Path(tmp), ["--deploy", str(deployment_file(Path(tmp), shared))])
            try:
                server.wait_ready()
                episode = generated_episode(server.url, args.sweep_length)
                for n in [0, *counts]:
                    cores = viewers_cost(server, episode, n, args, Path(tmp) / f"sweep-{n}.json")
                    rows.append({"shared": shared, "viewers": n, "cores": cores})
                    print(f"  {'shared' if shared else 'own'} encoding, {n} viewers: {cores:.3f} cores", file=sys.stderr)
            finally:
                server.stop()
    return rows


def generated_episode(url: str, length_s: float) -> str:
    """An episode generated to its end, so only streaming costs while it is watched."""
    with httpx.Client(base_url=url, timeout=30) as client:
        episode = client.post("/api/episodes", json={"topic": TOPICS[0], "duration_s": length_s}).json()["id"]
        deadline = time.monotonic() + length_s * 6 + 120
        while client.get(f"/api/episodes/{episode}").json()["status"] != "finished":
            if time.monotonic() > deadline:
                raise RuntimeError(f"episode {episode} was not generated in time")
            time.sleep(1.0)
    return episode


def viewers_cost(server, episode: str, n: int, args: argparse.Namespace, out: Path) -> float:
    """Server cores over ``--window`` seconds while ``n`` receivers play ``episode`` (settled first)."""
    settle = 4.0
    if n == 0:
        cpu0 = cpu_seconds(server.process.pid)
        time.sleep(args.window)
        return (cpu_seconds(server.process.pid) - cpu0) / args.window
    at = time.time() + SPAWN_AHEAD_S
    # The receivers leave by themselves (closing their connections) after settling and the window.
    proc = spawn(server.url, at, 0, args, out, episode=episode, viewers=n, limit_s=settle + args.window + 1)
    while time.time() < at + settle:
        time.sleep(0.05)
    cpu0, t0 = cpu_seconds(server.process.pid), time.monotonic()
    time.sleep(args.window)
    cores = (cpu_seconds(server.process.pid) - cpu0) / (time.monotonic() - t0)
    proc.wait(timeout=60)
    time.sleep(3.0)  # the server closes the peer connections
    return cores


#: The sweep's fit stops at this many receivers: beyond it, an encoder per viewer fills the
#: cores of a small machine and its cost stops growing with the viewers.
FIT_MAX_VIEWERS = 10


def slopes(rows: list[dict]) -> dict[str, float]:
    """Cores per added viewer (least squares over 1..FIT_MAX_VIEWERS receivers), per encoding."""
    out = {}
    for shared in (True, False):
        points = [(r["viewers"], r["cores"]) for r in rows
                  if r["shared"] == shared and 1 <= r["viewers"] <= FIT_MAX_VIEWERS]
        if len(points) >= 2:
            out["shared" if shared else "own"] = float(np.polyfit(*zip(*points, strict=True), 1)[0])
    return out


def report(rows: list[dict], sweep_rows: list[dict]) -> str:
    lines = []
    if rows:
        lines += [("| policy | rate /s | requested | admitted | queued | refused | goodput | first frame p50/p95 s "
                   "| first speech p50/p95 s | video freezes | audio gaps | content late s | server cores |"),
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |"]
        for r in rows:
            ff, fs = r["first_frame_s"], r["first_speech_s"]
            lines.append(f"| {r['policy']} | {r['rate']} | {r['requested']} | {r['admitted']} | {r['queued']} | "
                         f"{r['refused']} | {r['goodput']:.0%} | {_f(ff['p50'])} / {_f(ff['p95'])} | "
                         f"{_f(fs['p50'])} / {_f(fs['p95'])} | {r['viewer_freezes']} | "
                         f"{r.get('viewer_audio_gaps', '-')} | {r['content_late_s']:.2f} | "
                         f"{r['server_cores']:.2f} |")
        for policy in dict.fromkeys(r["policy"] for r in rows):
            ok = [r["rate"] for r in rows if r["policy"] == policy and r["goodput"] >= 0.95 and r["rate"] != "burst"]
            lines.append(f"\n{policy}: highest arrival rate with goodput >= 95%: {max(ok) if ok else 'none measured'}")
    if sweep_rows:
        lines += ["", "| encoding | viewers | server cores |", "| --- | ---: | ---: |"]
        lines += [f"| {'shared' if r['shared'] else 'own'} | {r['viewers']} | {r['cores']:.3f} |" for r in sweep_rows]
        fit = slopes(sweep_rows)
        lines += [f"\ncores per added viewer (fit over 1-{FIT_MAX_VIEWERS}): "
                  + ", ".join(f"{k} {v:.4f}" for k, v in fit.items())]
        if "shared" in fit and "own" in fit and fit["shared"] > 0:
            lines.append(f"own / shared: {fit['own'] / fit['shared']:.1f}x")
    return "\n".join(lines)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for policy in dict.fromkeys(r["policy"] for r in rows):
        mine = sorted((r for r in rows if r["policy"] == policy and r["rate"] != "burst"), key=lambda r: r["rate"])
        rates = [r["rate"] for r in mine]
        (line,) = left.plot(rates, [r["goodput"] * 100 for r in mine], marker="o", label=policy)
        for key, style in (("p50", "-"), ("p95", "--")):
            right.plot(rates, [r["first_speech_s"][key] for r in mine], style, marker="o", color=line.get_color(),
                       label=f"{policy} {key}")
    left.set(xlabel="episodes per second", ylabel="goodput %", ylim=(0, 105),
             title=f"started within {SLO_START_S:g} s, never stalled")
    right.set(xlabel="episodes per second", ylabel="seconds", title="first speech at the viewers")
    left.legend()
    right.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def load_runs(args: argparse.Namespace) -> list[dict]:
    rows = []
    encodings = {"shared": [True], "own": [False], "both": [True, False]}[args.encoding]
    for policy, shared in ((p, s) for p in args.policies.split(",") for s in encodings):
        for rate in (["burst"] if args.burst else [float(r) for r in args.rates.split(",")]):
            instants = [0.0] * args.burst if rate == "burst" else arrivals(rate, args.time, args.seed)
            args.policy_now = policy
            name = policy if len(encodings) == 1 and shared else f"{policy} ({'shared' if shared else 'own'})"
            print(f"{name}, {rate}: {len(instants)} episode(s)...", file=sys.stderr)
            with tempfile.TemporaryDirectory() as tmp:
                server = start_server(Path(tmp), ["--deploy", str(deployment_file(Path(tmp), shared))], env=MANY_USERS)
                try:
                    server.wait_ready()
                    row = {"policy": name, "rate": rate, **run_once(server, instants, args, Path(tmp))}
                finally:
                    server.stop()
            rows.append(row)
            print(report([row], []).splitlines()[2], file=sys.stderr)
            if args.json:  # after every run: a long session cut short keeps what it measured
                args.json.write_text(json.dumps({"runs": rows}, indent=1))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="0.02,0.05,0.1", help="arrival rates, episodes per second")
    parser.add_argument("--time", type=float, default=120.0, help="seconds of arrivals per rate")
    parser.add_argument("--burst", type=int, default=0, help="instead of rates: this many episodes at once")
    parser.add_argument("--viewers", type=int, default=2, help="receivers per episode")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per episode")
    parser.add_argument("--policies", default="adaptive,static")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--encoding", choices=["shared", "own", "both"], default="shared",
                        help="frames encoded once for every viewer, an encoder per viewer, or both in turn")
    parser.add_argument("--sweep", default="", help="receiver counts for the CPU-per-viewer sweep, e.g. 1,5,10,20")
    parser.add_argument("--sweep-length", type=float, default=60.0, help="seconds of the episode the sweep watches")
    parser.add_argument("--window", type=float, default=10.0, help="seconds each sweep point is measured")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--png", type=Path, default=None)
    parser.add_argument("--from-json", type=Path, nargs="+", default=None,
                        help="report (and plot) runs saved with --json, merged, instead of running")
    args = parser.parse_args()
    args.policy_now = None
    if args.from_json:
        saved = [json.loads(path.read_text()) for path in args.from_json]
        rows = sorted((r for d in saved for r in d.get("runs", [])), key=lambda r: (r["policy"], str(r["rate"])))
        print(report(rows, [r for d in saved for r in d.get("sweep", [])]))
        if args.png and rows:
            plot(rows, args.png)
        return 0
    if args.sweep:
        sweep_rows = sweep(args, [int(n) for n in args.sweep.split(",")])
        rows = []
    else:
        rows, sweep_rows = load_runs(args), []
    if args.json:
        args.json.write_text(json.dumps({"runs": rows, "sweep": sweep_rows, "slopes": slopes(sweep_rows)}, indent=1))
    print(report(rows, sweep_rows))
    if args.png and rows:
        plot(rows, args.png)
        print(f"\nplot: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
