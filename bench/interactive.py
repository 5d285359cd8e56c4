"""Viewers' questions answered live: how soon a question typed in the player is heard, and what it costs the show.

A real server process (bench/harness.py) and viewers in headless Chromium, one browser
context (a viewer of its own) per episode. Each viewer opens ``/watch`` on a topic; once
the hosts speak (the page's first caption), questions are typed into *Ask the hosts*
(``#ask-name``, ``#ask-text``, then a click on ``#ask-send``) at random moments of the
episode (seeded; at least 16 s apart, over the server's one-question-per-15-s limit), or
every ``--every`` seconds. Each question is short and distinct and carries a name of its own.

Measured per question, all on the asker's page clock (``performance.now()``; instrumented
in the page, so the timings do not depend on how often this script looks):

- **latency**: from the click on *Ask* to the first audible words of its reading. The
  moment the caption ``<name> from the chat asks: ...`` appears in that page (the server
  sends each caption when that viewer's audio playhead, which is paced in real time,
  reaches its segment; so the caption arrives with the first audio packets of the
  reading, up to one 0.1 s caption tick later), plus the audio's playout delay at that
  moment as WebRTC stats give it: the mean time samples spent in the jitter buffer over
  the last 0.25 s (delta ``jitterBufferDelay`` / delta ``jitterBufferEmittedCount`` of the
  audio ``inbound-rtp``) and, where Chromium reports ``media-playout`` stats, the mean
  delay from the jitter buffer to the (headless, fake) audio device. ``caption_s`` is the
  same without the playout delay;
- **status** from ``GET /api/episodes/{id}/questions`` once the episode has ended
  (``answered``, ``declined`` with the reason, ``media_s`` where the reading starts), or
  ``refused`` with what the page showed when the server did not take it (429, 409...);
  ``unheard``: taken, but its reading never appeared in the asker's captions.

Per episode, in a window around each splice (``--before`` s before the reading is heard to
``--after`` s after it, the answer and the bridge back to the topic):

- **stalls**: the browser's video freezes (``freezeCount`` of ``window.streamwiseMetrics``,
  sampled every second) and the server's playhead stalls (a viewer's playhead ran out of
  content: ``streamwise_stalls_total{source="server"}`` from /metrics, scraped every
  second; the counter is the server's, all episodes together: an episode's figure counts
  any viewer's stall in its windows, the run's counts each stall once, in any window);
  also both over the whole run, and when each happened (seconds after the first words);
  each episode's own playhead stalls are listed too, at their place on its media clock
  (the episode's timeline), so a stall can be traced to the segment it waited for;
- **A/V skew**: ``window.streamwiseMetrics.avSkewMs`` (video minus audio estimated playout
  timestamps, updated by the player every second) sampled in the windows, and elsewhere
  for comparison; both leave out the first 10 s of playback, while the player's A/V sync
  settles (bench/startup.py measures that).

Printed: p50 and p95 of the latency, the counts, the stalls and the skew against the targets
(p50 <= 2.5 s, p95 <= 4 s, 0 stalls, |skew| <= 45 ms). Figures, never assertions: the
machine is noisy.

    .venv/bin/python bench/interactive.py --duration 180 --questions 6 --json interactive.json
    .venv/bin/python bench/interactive.py --episodes 2 --every 20 --json interactive2.json
"""
from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.harness import CHROMIUM, CHROMIUM_ARGS, start_server
from bench.load import MANY_USERS, scrape
from bench.startup import TOPICS, pct

#: Several viewers play at once, each in a window of its own: none may be throttled as hidden.
BROWSER_ARGS = [*CHROMIUM_ARGS, "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows"]
QUESTIONS = [
    "What surprised you most about this?", "Is there a common myth about it?", "How did people first find this out?",
    "Could a kid try this at home?", "What would change if it stopped?", "Who studies this for a living?",
    "Is it the same in other countries?", "What is the biggest open question here?", "How fast does it happen?",
    "Does the weather change it?", "What do most people get wrong?", "Why does it matter day to day?",
    "Is there a famous story about it?", "How has it changed over time?", "What tools do scientists use for it?",
    "Would it work on the Moon?", "What is your favourite fact about it?", "Can animals sense it?",
    "How big can it get?", "Is it getting more common?", "What happens at night?", "What would you read next?",
    "Was anyone famous involved?", "Is there a simple experiment to show it?",
]
NAMES = ["Maya", "Omar", "Lena", "Tariq", "Ines", "Kofi", "Hana", "Pavel", "Ruth", "Diego", "Yuki", "Amara",
         "Felix", "Noor", "Bruno", "Zara", "Ivan", "Leila", "Tomas", "Wen", "Sofia", "Arjun", "Eva", "Malik"]
#: One question per viewer every 15 s (questions.per_viewer_interval_s); a little more apart.
GAP_S = 16.0
TARGETS = {"p50_s": 2.5, "p95_s": 4.0, "stalls": 0, "skew_ms": 45.0}

#: Installed in each page: every caption and ask-status change, every click on Ask (page
#: clock, ms), the audio's playout delay (every 0.25 s) and the player's metrics (every 1 s).
INSTRUMENT_JS = """() => {
  if (window.__bench) return performance.now();
  const b = window.__bench = {captions: [], clicks: [], status: [], samples: [], jbMs: null, playoutMs: null};
  const cap = document.getElementById('caption'), st = document.getElementById('ask-status');
  new MutationObserver(() => {
    const text = cap.textContent, last = b.captions[b.captions.length - 1];
    if (text && (!last || last.text !== text)) b.captions.push({t: performance.now(), text, jb: b.jbMs, po: b.playoutMs});
  }).observe(cap, {childList: true, subtree: true, characterData: true});
  new MutationObserver(() => b.status.push({t: performance.now(), text: st.textContent,
                                             error: st.classList.contains('error')}))
    .observe(st, {childList: true, subtree: true, characterData: true, attributes: true});
  document.getElementById('ask-send').addEventListener('click', () => b.clicks.push({t: performance.now(),
    name: document.getElementById('ask-name').value, text: document.getElementById('ask-text').value}), true);
  let prev = null, lastSample = 0;
  const poll = async () => {
    const pc = window.streamwisePc;
    try {
      if (pc && pc.connectionState !== 'closed') {
        let a = null, po = null;
        (await pc.getStats()).forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === 'audio') a = s;
          if (s.type === 'media-playout') po = s;
        });
        if (a) {
          const cur = {jb: a.jitterBufferDelay || 0, n: a.jitterBufferEmittedCount || 0,
                       pd: po ? po.totalPlayoutDelay : null, pn: po ? po.totalSamplesCount : null};
          if (prev && cur.n > prev.n) b.jbMs = 1000 * (cur.jb - prev.jb) / (cur.n - prev.n);
          if (prev && cur.pd != null && prev.pd != null && cur.pn > prev.pn)
            b.playoutMs = 1000 * (cur.pd - prev.pd) / (cur.pn - prev.pn);
          prev = cur;
        }
      }
    } catch (e) { /* stats are best effort */ }
    const now = performance.now(), m = window.streamwiseMetrics || {};
    if (now - lastSample >= 1000) {
      lastSample = now;
      b.samples.push({t: now, skew: m.avSkewMs ?? null, freezes: m.freezeCount ?? 0,
                      frozen: m.totalFreezesDuration ?? 0, played: m.playedSeconds ?? 0});
    }
    setTimeout(poll, 250);
  };
  poll();
  return performance.now();
}"""
#: What the loop reads of each page on every look: when the hosts first spoke, and the state line.
LOOK_JS = "() => [window.__bench && window.__bench.captions.length ? window.__bench.captions[0].t : null, " \
          "document.getElementById('state').textContent]"


@dataclass
class Planned:
    at_s: float  # seconds after the hosts first spoke
    name: str
    text: str
    error: str | None = None  # why the page did not take the typing or the click


@dataclass
class Viewer:
    context: object
    page: object
    episode: str
    topic: str
    plan: list[Planned]
    offset_s: float  # time.monotonic() - performance.now() / 1000 in this page
    origin: float | None = None  # time.monotonic() of the first caption
    asked: int = 0
    state: str = ""
    opened: float = field(default_factory=time.monotonic)

    def mono(self, page_ms: float) -> float:
        return page_ms / 1000 + self.offset_s


def random_moments(rng: random.Random, n: int, start: float, end: float, gap: float = GAP_S) -> list[float]:
    """``n`` moments in [start, end], uniformly at random but at least ``gap`` apart, sorted."""
    span = end - start - (n - 1) * gap
    if n and span < 0:
        raise SystemExit(f"{n} questions {gap:g} s apart do not fit between {start:g} s and {end:g} s; "
                         "ask fewer or make the episode longer")
    points = sorted(rng.uniform(0, span) for _ in range(n))
    return [round(start + p + i * gap, 2) for i, p in enumerate(points)]


def regular_moments(rng: random.Random, every: float, start: float, end: float) -> list[float]:
    """Every ``every`` seconds from a random start within the first 2 s of ``start``, up to ``end``."""
    t, out = start + rng.uniform(0, 2), []
    while t <= end:
        out.append(round(t, 2))
        t += every
    return out


def plan_questions(rng: random.Random, args: argparse.Namespace) -> list[Planned]:
    end = args.duration - args.quiet_end
    moments = (regular_moments(rng, args.every, args.ask_from, end) if args.every
               else random_moments(rng, args.questions, args.ask_from, end))
    if len(moments) > len(QUESTIONS):
        raise SystemExit(f"at most {len(QUESTIONS)} questions per episode")
    return [Planned(at, name, text) for at, name, text in
            zip(moments, rng.sample(NAMES, len(moments)), rng.sample(QUESTIONS, len(moments)))]


def clock_offset(page) -> float:
    """time.monotonic() minus the page's performance.now() in seconds (the midpoint of one call)."""
    before = time.monotonic()
    page_ms = page.evaluate(INSTRUMENT_JS)
    return (before + time.monotonic()) / 2 - page_ms / 1000


def open_viewer(browser, base: str, topic: str, rng: random.Random, args: argparse.Namespace) -> Viewer:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.goto(f"{base}/watch?topic={topic.replace(' ', '+')}&duration_s={args.duration:g}",
              wait_until="domcontentloaded")
    episode = page.evaluate("window.STREAMWISE.episode")
    return Viewer(context, page, episode, topic, plan_questions(rng, args), clock_offset(page))


def ask(viewer: Viewer, question: Planned) -> None:
    """Type the question and its name into the page and click Ask, as a viewer would."""
    from playwright.sync_api import Error as PlaywrightError

    page = viewer.page
    try:
        page.fill("#ask-name", question.name, timeout=2000)
        page.fill("#ask-text", question.text, timeout=2000)
        page.click("#ask-send", timeout=2000)
    except PlaywrightError as exc:
        question.error = f"the page did not take it: {str(exc).splitlines()[0]}"
    print(f"  {viewer.episode}: {question.name} asks at {question.at_s:.1f} s: {question.text!r}"
          + (f" ({question.error})" if question.error else ""), file=sys.stderr)


def step(viewer: Viewer, now: float) -> None:
    """One look at a viewer: note when the hosts first spoke, ask the question that is due."""
    first_ms, viewer.state = viewer.page.evaluate(LOOK_JS)
    if viewer.origin is None:
        if first_ms is None:
            return
        viewer.origin = viewer.mono(first_ms)
    if viewer.asked < len(viewer.plan) and now >= viewer.origin + viewer.plan[viewer.asked].at_s:
        ask(viewer, viewer.plan[viewer.asked])
        viewer.asked += 1


def server_sample(client: httpx.Client) -> dict:
    figures = scrape(client)
    return {"t": time.monotonic(), "stalls": figures["stalls"], "stalled_s": figures["stalled_s"]}


def watch(viewers: list[Viewer], client: httpx.Client, limit_s: float) -> list[dict]:
    """Drive every viewer until all have ended (or ``limit_s``); the server's stall counter over time."""
    server, deadline, last = [server_sample(client)], time.monotonic() + limit_s, 0.0
    while time.monotonic() < deadline and not all(v.state == "ended" for v in viewers):
        now = time.monotonic()
        for viewer in viewers:
            step(viewer, now)
        if now - last >= 1.0:
            server.append(server_sample(client))
            last = now
        time.sleep(0.1)
    server.append(server_sample(client))
    return server


def in_any(t: float, windows: list[tuple[float, float]]) -> bool:
    return any(lo <= t <= hi for lo, hi in windows)


def increments(samples: list[dict], key: str, windows: list[tuple[float, float]]) -> float:
    """How much a counter grew between consecutive samples whose later one lies in a window."""
    return sum(max(0.0, b[key] - a[key]) for a, b in itertools.pairwise(samples) if in_any(b["t"], windows))


def caption_body(text: str) -> str:
    """A caption's words without the speaker ("Sam: Maya from the chat asks: ..." -> "Maya from ...")."""
    return text.split(": ", 1)[1] if ": " in text else text


def heard(data: dict, name: str, after_ms: float) -> dict | None:
    """The first caption after ``after_ms`` that starts the reading of ``name``'s question."""
    prefix = f"{name} from the chat asks"
    return next((c for c in data["captions"] if c["t"] >= after_ms and caption_body(c["text"]).startswith(prefix)), None)


def refusal(data: dict, after_ms: float) -> str | None:
    """What the page said when the server did not take a question (its first error after the click)."""
    return next((s["text"] for s in data["status"] if s["t"] >= after_ms and s["error"]), None)


def timing(caption: dict, click_ms: float) -> dict:
    caption_s = (caption["t"] - click_ms) / 1000
    parts = [x for x in (caption.get("jb"), caption.get("po")) if x is not None]
    delay_ms = sum(parts) if parts else None
    return {"caption_s": round(caption_s, 3), "jitter_buffer_ms": caption.get("jb"), "playout_ms": caption.get("po"),
            "latency_s": round(caption_s + (delay_ms or 0) / 1000, 3)}


def question_row(viewer: Viewer, q: Planned, data: dict, by_name: dict[str, dict]) -> dict:
    row = {"name": q.name, "text": q.text, "at_s": q.at_s, "status": "not asked", "media_s": None,
           "reason": q.error or "not reached: the episode ended (or the run's time limit) first",
           "latency_s": None, "caption_s": None, "jitter_buffer_ms": None, "playout_ms": None, "heard_ms": None}
    click = next((c for c in data["clicks"] if c["name"] == q.name), None)
    if click is None:
        return row
    row["clicked_ms"] = click["t"]
    listed = by_name.get(q.name)
    if listed is None:
        row.update(status="refused", reason=refusal(data, click["t"]) or q.error or "not listed by the server")
        return row
    row.update(status=listed["status"], media_s=listed["media_s"], reason=listed["reason"], id=listed["id"])
    caption = heard(data, q.name, click["t"])
    if caption is None:
        row["unheard"] = True
        return row
    row.update(timing(caption, click["t"]), heard_ms=caption["t"])
    return row


def around(viewer: Viewer, row: dict, data: dict, server: list[dict], args: argparse.Namespace) -> None:
    """The stalls and skew in the window around one question's reading (page clock and server clock)."""
    lo, hi = row["heard_ms"] - args.before * 1000, row["heard_ms"] + args.after * 1000
    skews = [abs(s["skew"]) for s in data["samples"] if s["skew"] is not None and lo <= s["t"] <= hi]
    row["window"] = {
        "freezes": increments(data["samples"], "freezes", [(lo, hi)]),
        "server_stalls": increments(server, "stalls", [(viewer.mono(lo), viewer.mono(hi))]),
        "skew_ms_max_abs": round(max(skews), 1) if skews else None,
    }


def grew_at(samples: list[dict], key: str) -> list[float]:
    """When a counter grew: the time of each sample that is above the one before."""
    return [b["t"] for a, b in itertools.pairwise(samples) if b[key] > a[key]]


def splice_figures(viewer: Viewer, rows: list[dict], data: dict, server: list[dict], args: argparse.Namespace) -> dict:
    """Stalls and skew in the windows around the splices (and elsewhere, for comparison); when each stall was."""
    windows = [(r["heard_ms"] - args.before * 1000, r["heard_ms"] + args.after * 1000)
               for r in rows if r["heard_ms"] is not None]
    mono_windows = [(viewer.mono(lo), viewer.mono(hi)) for lo, hi in windows]
    origin = viewer.origin or viewer.opened
    skewed = [s for s in data["samples"] if s["skew"] is not None]
    settled_ms = (origin - viewer.offset_s + 10) * 1000  # the first 10 s of playback settle the sync

    def since(mono: float) -> float:  # seconds after the first words
        return round(mono - origin, 1)

    return {
        "freezes_at_splices": increments(data["samples"], "freezes", windows),
        "server_stalls_at_splices": increments(server, "stalls", mono_windows),
        "mono_windows": mono_windows,  # run_once takes it out: the union over the run's episodes
        "skew_ms_at_splices": [s["skew"] for s in skewed if in_any(s["t"], windows) and s["t"] > settled_ms],
        "skew_ms_elsewhere": [s["skew"] for s in skewed if not in_any(s["t"], windows) and s["t"] > settled_ms],
        "freezes_at_s": [since(viewer.mono(t)) for t in grew_at(data["samples"], "freezes")],
        "server_stalls_at_s": [since(t) for t in grew_at(server, "stalls")],
    }


def finish(viewer: Viewer, client: httpx.Client, server: list[dict], args: argparse.Namespace) -> dict:
    """Everything measured about one episode; its page closed and the episode deleted."""
    data = viewer.page.evaluate("window.__bench")
    metrics = viewer.page.evaluate("window.streamwiseMetrics") or {}
    listed = client.get(f"/api/episodes/{viewer.episode}/questions").json()["questions"]
    info = client.get(f"/api/episodes/{viewer.episode}").json()
    timeline = client.get(f"/api/episodes/{viewer.episode}/timeline").json()
    viewer.context.close()
    client.delete(f"/api/episodes/{viewer.episode}")
    by_name = {q["name"]: q for q in listed}
    rows = [question_row(viewer, q, data, by_name) for q in viewer.plan]
    for row in rows:
        if row["heard_ms"] is not None:
            around(viewer, row, data, server, args)
            row["heard_at_s"] = round(viewer.mono(row["heard_ms"]) - (viewer.origin or viewer.opened), 1)
    return {
        "episode": viewer.episode, "topic": viewer.topic, "status": info.get("status"),
        "error": info.get("error"), "page_state": viewer.state,
        "media_s": info.get("progress", {}).get("buffered_s"),
        "first_words_s": None if viewer.origin is None else round(viewer.origin - viewer.opened, 3),
        "questions": rows,
        "freezes": metrics.get("freezeCount"), "frozen_s": metrics.get("totalFreezesDuration"),
        "played_s": metrics.get("playedSeconds"),
        **splice_figures(viewer, rows, data, server, args),
        "unmatched_clicks": len(data["clicks"]) - sum(1 for r in rows if "clicked_ms" in r),
        # Where each segment's time went (stage spans, the tier planner's decisions): the JSON only.
        "timeline": {"spans": timeline.get("spans", []), "decisions": timeline.get("decisions", [])},
        # This episode's own playhead stalls: where on its media clock, and how long.
        "stalls": [{"at_s": st["at_s"], "waited_s": round(st["ended"] - st["began"], 2)}
                   for st in timeline.get("stalls", [])],
    }


def run_once(browser, base: str, client: httpx.Client, rng: random.Random, args: argparse.Namespace,
             run: int) -> dict:
    """One scenario: ``--episodes`` episodes at once, each watched and asked by a viewer of its own."""
    topics = [TOPICS[(run * args.episodes + i) % len(TOPICS)] for i in range(args.episodes)]
    viewers = [open_viewer(browser, base, topic, rng, args) for topic in topics]
    most = max(len(v.plan) for v in viewers)
    server = watch(viewers, client, limit_s=args.duration + 30 * most + 120)
    episodes = [finish(v, client, server, args) for v in viewers]
    # The server's counter is for all episodes: count each stall once, in any episode's window.
    windows = [w for e in episodes for w in e.pop("mono_windows")]
    return {"run": run + 1, "episodes": episodes, "server_stalls": server[-1]["stalls"] - server[0]["stalls"],
            "server_stalls_at_splices": increments(server, "stalls", windows),
            "server_stalled_s": round(server[-1]["stalled_s"] - server[0]["stalled_s"], 3)}


def abs_figures(values: list[float]) -> dict:
    a = [abs(v) for v in values]
    return {"n": len(a), "p50": round(pct(a, .5), 1) if a else None, "p95": round(pct(a, .95), 1) if a else None,
            "max": round(max(a), 1) if a else None}


def summarize(runs: list[dict]) -> dict:
    episodes = [e for r in runs for e in r["episodes"]]
    rows = [q for e in episodes for q in e["questions"]]
    latency = [q["latency_s"] for q in rows if q["latency_s"] is not None]
    caption = [q["caption_s"] for q in rows if q["caption_s"] is not None]
    counts = {k: sum(q["status"] == k for q in rows) for k in ("answered", "declined", "refused", "not asked",
                                                               "queued", "answering")}
    return {
        "episodes": len(episodes), "episodes_finished": sum(e["status"] == "finished" for e in episodes),
        "questions": len(rows), **counts, "heard": len(latency), "unheard": sum(bool(q.get("unheard")) for q in rows),
        "latency_p50_s": round(pct(latency, .5), 3) if latency else None,
        "latency_p95_s": round(pct(latency, .95), 3) if latency else None,
        "caption_p50_s": round(pct(caption, .5), 3) if caption else None,
        "caption_p95_s": round(pct(caption, .95), 3) if caption else None,
        "playout_delay_ms_median": (round(statistics.median(q["latency_s"] - q["caption_s"] for q in rows
                                                            if q["latency_s"] is not None) * 1000, 1)
                                    if latency else None),
        "freezes_at_splices": sum(e["freezes_at_splices"] for e in episodes),
        "server_stalls_at_splices": sum(r["server_stalls_at_splices"] for r in runs),
        "freezes": sum(e["freezes"] or 0 for e in episodes),
        "server_stalls": sum(r["server_stalls"] for r in runs),
        "server_stalled_s": round(sum(r["server_stalled_s"] for r in runs), 3),
        "skew_ms_at_splices": abs_figures([s for e in episodes for s in e["skew_ms_at_splices"]]),
        "skew_ms_elsewhere": abs_figures([s for e in episodes for s in e["skew_ms_elsewhere"]]),
        "declines": [q["reason"] for q in rows if q["status"] in ("declined", "refused", "not asked")],
        "targets": TARGETS,
    }


def _f(value, unit: str = "", digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def _meets(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "no")


def report(summary: dict, args: argparse.Namespace) -> str:
    s, skew = summary, summary["skew_ms_at_splices"]
    how = f"a question every {args.every:g} s" if args.every else f"{args.questions} at random moments (seed {args.seed})"
    out = [(f"### Questions answered live: {args.episodes} episode(s) of {args.duration:g} s at once, "
            f"x{args.runs} run(s), {how} each; headless Chromium, loopback\n"),
           "| measure | value | target | meets |", "| --- | --- | --- | --- |"]
    p50, p95 = s["latency_p50_s"], s["latency_p95_s"]
    out.append(f"| send -> first audible words of the reading, p50 / p95 (n={s['heard']}) | {_f(p50)} / {_f(p95)} s "
               f"| p50 <= {TARGETS['p50_s']:g} s, p95 <= {TARGETS['p95_s']:g} s "
               f"| {_meets(None if p50 is None else p50 <= TARGETS['p50_s'] and p95 <= TARGETS['p95_s'])} |")
    out.append(f"| same, to the caption (no playout delay), p50 / p95 | {_f(s['caption_p50_s'])} / "
               f"{_f(s['caption_p95_s'])} s | | |")
    out.append(f"| audio playout delay added, median | {_f(s['playout_delay_ms_median'], ' ms', 0)} | | |")
    out.append(f"| episodes finished | {s['episodes_finished']} of {s['episodes']} | all | "
               f"{_meets(s['episodes_finished'] == s['episodes'])} |")
    out.append(f"| questions: asked / answered / declined / refused / not asked / never heard | {s['questions']} / "
               f"{s['answered']} / {s['declined']} / {s['refused']} / {s['not asked']} / {s['unheard']} | | |")
    at = s["freezes_at_splices"] + s["server_stalls_at_splices"]
    out.append(f"| stalls at the splices: browser freezes / server playhead stalls | {s['freezes_at_splices']:g} / "
               f"{s['server_stalls_at_splices']:g} | 0 | {_meets(at == 0)} |")
    out.append(f"| stalls over the whole run: browser freezes / server playhead stalls ({s['server_stalled_s']:.2f} s) "
               f"| {s['freezes']:g} / {s['server_stalls']:g} | 0 | {_meets(s['freezes'] + s['server_stalls'] == 0)} |")
    out.append(f"| A/V skew around the splices (after the first 10 s), abs p50 / p95 / max (n={skew['n']}) | {_f(skew['p50'], '', 0)} / "
               f"{_f(skew['p95'], '', 0)} / {_f(skew['max'], ' ms', 0)} | <= {TARGETS['skew_ms']:g} ms "
               f"| {_meets(None if skew['max'] is None else skew['max'] <= TARGETS['skew_ms'])} |")
    other = s["skew_ms_elsewhere"]
    out.append(f"| A/V skew elsewhere, abs p50 / p95 / max (n={other['n']}) | "
               f"{_f(other['p50'], '', 0)} / {_f(other['p95'], '', 0)} / {_f(other['max'], ' ms', 0)} | | |")
    if s["declines"]:
        out.append("\nNot answered: " + "; ".join(str(r) for r in s["declines"]))
    return "\n".join(out)


def question_table(runs: list[dict]) -> str:
    out = [("\n| run | episode | name | asked at | heard at | status | reading at (media) | latency | caption | "
            "playout delay | freezes / server stalls in window | max abs skew in window |"),
           "| --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: |"]
    for r in runs:
        for e in r["episodes"]:
            for q in e["questions"]:
                w = q.get("window") or {}
                delay = None if q["latency_s"] is None else (q["latency_s"] - q["caption_s"]) * 1000
                stalls = f"{w['freezes']:g} / {w['server_stalls']:g}" if w else "n/a"
                out.append(f"| {r['run']} | {e['episode']} | {q['name']} | {q['at_s']:.1f} s | "
                           f"{_f(q.get('heard_at_s'), ' s', 1)} | {q['status']} | "
                           f"{_f(q['media_s'], ' s', 1)} | {_f(q['latency_s'], ' s')} | {_f(q['caption_s'], ' s')} | "
                           f"{_f(delay, ' ms', 0)} | {stalls} | "
                           f"{_f(w.get('skew_ms_max_abs'), ' ms', 0)} |")
    out.append("\nTimes are seconds after the hosts' first words at the viewer.")
    for r in runs:
        for e in r["episodes"]:
            if e["freezes_at_s"] or e["server_stalls_at_s"]:
                out.append(f"Run {r['run']}, {e['episode']}: browser freezes at {e['freezes_at_s']} s, "
                           f"server playhead stalls (any episode) at {e['server_stalls_at_s']} s.")
            if e.get("stalls"):
                where = ", ".join(f"{st['at_s']:.1f} s ({st['waited_s']:.2f} s)" for st in e["stalls"])
                out.append(f"Run {r['run']}, {e['episode']}: its playhead waited at media {where}.")
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=180.0, help="requested episode length, seconds")
    parser.add_argument("--episodes", type=int, default=1, help="episodes at once, each with a viewer of its own")
    parser.add_argument("--questions", type=int, default=6, help="questions per episode at random moments")
    parser.add_argument("--every", type=float, default=0.0, help="instead: a question every this many seconds")
    parser.add_argument("--runs", type=int, default=1, help="repeat the scenario (a fresh server each time) for more samples")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ask-from", type=float, default=5.0, help="first question no sooner (s after first words)")
    parser.add_argument("--quiet-end", type=float, default=30.0,
                        help="no question in the episode's last this many seconds (it takes none near its end)")
    parser.add_argument("--before", type=float, default=5.0, help="splice window: seconds before the reading")
    parser.add_argument("--after", type=float, default=25.0, help="splice window: seconds after the reading starts")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.every and args.every < GAP_S - 1:
        parser.error(f"--every below {GAP_S - 1:g} s runs into the one-question-per-15-s limit")
    return args


def run_all(args: argparse.Namespace) -> tuple[list[dict], str]:
    """Every run on a fresh server of its own: admission learns what episodes cost on a
    server, and after a heavy run it would queue the next run's second episode. Also the
    last server log's tail (kept when an episode failed)."""
    from playwright.sync_api import sync_playwright

    rng, runs, log = random.Random(args.seed), [], ""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS, headless=True)
        for run in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                server = start_server(Path(tmp), env=MANY_USERS)
                try:
                    server.wait_ready()
                    with httpx.Client(base_url=server.url, timeout=30) as client:
                        if run == 0:
                            warm = browser.new_page()  # the browser's own first start is not the server's
                            warm.goto(f"{server.url}/")
                            warm.close()
                        print(f"run {run + 1}/{args.runs}: {args.episodes} episode(s) of {args.duration:g} s...",
                              file=sys.stderr)
                        runs.append(run_once(browser, server.url, client, rng, args, run))
                finally:
                    server.stop()
                    log = server.log_tail(8000)
        browser.close()
    return runs, log


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs, log = run_all(args)
    summary = summarize(runs)
    print(report(summary, args))
    print(question_table(runs))
    failed = [e for r in runs for e in r["episodes"] if e["status"] not in ("finished", None)]
    for e in failed:
        print(f"\nEpisode {e['episode']} ended {e['status']}: {e['error']}", file=sys.stderr)
    if failed:
        print(f"server log (tail):\n{log}", file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        args.json.write_text(json.dumps({"config": config, "summary": summary, "runs": runs,
                                         "server_log_tail": log if failed else None}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
