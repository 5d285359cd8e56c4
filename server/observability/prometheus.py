"""The Prometheus view of the running totals: metric families computed at scrape time.

Every family is prefixed ``streamwise_`` and documented; labels never carry a whole
episode id (``episode_label``), since whoever knows an id can watch the episode.
"""
from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from models.protocols import CLOCK_RATE
from server.episodes.episode import STATUSES
from server.observability.metrics import (
    UTILISATION_WINDOW_S,
    Observability,
    episode_label,
)


class StreamwiseCollector:
    """A prometheus_client collector: everything is computed from ``Observability`` at scrape time."""

    def __init__(self, obs: Observability) -> None:
        self.obs = obs

    def describe(self) -> list:
        return []  # families are dynamic; nothing is read at registration

    def collect(self) -> Iterator[Metric]:
        self.obs.refresh()
        yield from self._startup()
        yield from self._stages()
        yield from self._episodes()
        yield from self._workers()
        yield from self._playback()
        yield from self._totals()
        yield from self._cost()

    def _startup(self) -> Iterator[Metric]:
        obs = self.obs
        for name, doc, hists in (
            ("streamwise_time_to_first_frame_seconds",
             ("Time to first frame: server = episode created to first segment in its buffer; "
              "viewer = page navigation to first decoded frame, as the browser reports it."), obs.ttff),
            ("streamwise_time_to_first_speech_seconds",
             ("Time to first speech: server = episode created to first spoken segment buffered; "
              "viewer = page navigation to audible speech, as the browser reports it."), obs.first_speech),
        ):
            fam = HistogramMetricFamily(name, doc, labels=["source"])
            for source, hist in hists.items():
                fam.add_metric([source], hist.buckets(), hist.sum)
            yield fam

    def _stages(self) -> Iterator[Metric]:
        obs = self.obs
        for name, doc, hists in (
            ("streamwise_stage_latency_seconds", "Run time of pipeline tasks (span started to finished), by stage and tier.", obs.latency),
            ("streamwise_queue_wait_seconds", "Queue wait of pipeline tasks (span queued to started), by stage and tier.", obs.wait),
        ):
            fam = HistogramMetricFamily(name, doc, labels=["stage", "tier"])
            for (stage, tier), hist in sorted(hists.items()):
                fam.add_metric([stage, tier], hist.buckets(), hist.sum)
            yield fam

    def _episodes(self) -> Iterator[Metric]:
        obs = self.obs
        positions = obs.viewer_positions()
        buffered = GaugeMetricFamily("streamwise_episode_buffered_seconds",
                                     "Seconds of media generated ahead of the episode's furthest-along viewer "
                                     "(all of it when nobody watches), per live episode (label: the id's first 8 characters).",
                                     labels=["episode"])
        generated = GaugeMetricFamily("streamwise_episode_generated_seconds",
                                      "Seconds of media generated so far, per live episode.", labels=["episode"])
        for episode in obs.live_episodes():
            label = episode_label(episode.id)
            buffered.add_metric([label], obs.buffered_s(episode, positions))
            generated.add_metric([label], episode.buffer.end / CLOCK_RATE)
        yield buffered
        yield generated
        mgr = obs.state.manager
        by_status = {s: 0 for s in STATUSES}
        for episode in (mgr.episodes.values() if mgr else ()):
            by_status[episode.status] = by_status.get(episode.status, 0) + 1
        yield GaugeMetricFamily("streamwise_active_episodes", "Episodes being generated now.", value=by_status["generating"])
        fam = GaugeMetricFamily("streamwise_episodes", "Episodes held in memory, by status.", labels=["status"])
        for status, n in by_status.items():
            fam.add_metric([status], n)
        yield fam
        yield GaugeMetricFamily("streamwise_viewers", "Connected WebRTC viewers.", value=len(obs.state.gateway.viewers))

    def _workers(self) -> Iterator[Metric]:
        obs = self.obs
        fam = GaugeMetricFamily("streamwise_worker_utilisation_ratio",
                                f"Busy fraction of each stage worker over the last {UTILISATION_WINDOW_S:.0f} s "
                                "(finished spans).", labels=["worker", "stage"])
        for worker, ratio in sorted(obs.utilisation().items()):
            fam.add_metric([worker, obs.worker_stage.get(worker, "")], ratio)
        yield fam
        fam = CounterMetricFamily("streamwise_worker_busy_seconds", "Seconds each stage worker spent running tasks "
                                  "(sum of span run times; the CPU-seconds estimate).", labels=["worker", "stage"])
        for (worker, stage), seconds in sorted(obs.busy_s.items()):
            fam.add_metric([worker, stage], seconds)
        yield fam

    def _playback(self) -> Iterator[Metric]:
        obs = self.obs
        fam = CounterMetricFamily("streamwise_stalls", "Playback stalls: viewer = video freezes the browsers report; "
                                  "server = times a viewer's playhead ran out of content.", labels=["source"])
        for source, n in obs.stalls.items():
            fam.add_metric([source], n)
        yield fam
        fam = CounterMetricFamily("streamwise_stalled_seconds", "Seconds spent stalled (viewer: frozen video; "
                                  "server: playhead waiting for content).", labels=["source"])
        for source, s in obs.stalled_s.items():
            fam.add_metric([source], s)
        yield fam
        yield CounterMetricFamily("streamwise_quality_changes", "Quality tier changes between consecutive segments of an episode.",
                                  value=obs.quality_changes)
        fam = CounterMetricFamily("streamwise_webrtc_frames_sent", "Frames sent to WebRTC viewers, by track and encoder: "
                                  "shared = encoded once per episode for every viewer, own = the viewer's own encoder "
                                  "(a keyframe request, a replay, or shared encoding off).", labels=["track", "encoder"])
        for (track, encoder), n in sorted(obs.state.gateway.frames_sent.items()):
            fam.add_metric([track, encoder], n)
        yield fam
        lag = obs.loop_lag.hist
        fam = HistogramMetricFamily("streamwise_event_loop_lag_seconds",
                                    "How late the event loop that paces WebRTC woke up when asked to (sampled every "
                                    "20 ms): a late loop sends frames late, a freeze in the browser with content ready.")
        fam.add_metric([], lag.buckets(), lag.sum)
        yield fam

    def _totals(self) -> Iterator[Metric]:
        obs = self.obs
        fam = CounterMetricFamily("streamwise_admission_refusals", "Episode creations refused: quota = a key's rate "
                                  "limit or concurrency cap (429), disk = too little free disk (507).", labels=["reason"])
        for reason, n in obs.refusals.items():
            fam.add_metric([reason], n)
        yield fam
        yield CounterMetricFamily("streamwise_episode_errors", "Episodes that failed.", value=obs.errors)
        yield CounterMetricFamily("streamwise_episodes_started", "Episodes created.", value=obs.episodes_started)
        yield CounterMetricFamily("streamwise_generated_media_seconds", "Seconds of episode media generated.", value=obs.media_s)

    def _cost(self) -> Iterator[Metric]:
        obs = self.obs
        fam = CounterMetricFamily("streamwise_estimated_cost_dollars", "Estimated compute cost: busy seconds of each stage "
                                  "x the configured price of its device (configs/pricing.yaml).", labels=["stage", "device"])
        for (stage, device), dollars in sorted(obs.cost.items()):
            fam.add_metric([stage, device], dollars)
        yield fam
        per_min = obs.cost_per_episode_minute()
        yield GaugeMetricFamily("streamwise_cost_per_episode_minute_dollars",
                                "Estimated cost per minute of generated media, over everything since the server started.",
                                value=per_min if per_min is not None else 0.0)


def make_registry(obs: Observability) -> CollectorRegistry:
    """A registry with the StreamWise families and the process's own CPU and memory."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StreamwiseCollector(obs))
    ProcessCollector(registry=registry)  # process_cpu_seconds_total: the real CPU bill
    return registry
