"""One episode's request and its lightweight headless WebRTC viewers, in a process of their own
(for bench/load.py).

Each viewer is a real aiortc peer connection (ICE, DTLS, SRTP) to the server's offer
endpoint, but it never decodes video: it times each frame's arrival from its RTP packets
(a frame is complete at its marker bit) and decodes audio only until it hears the first
speech. So one process can hold many viewers without taking the cores the server is
measured on.

    python bench/load_receiver.py URL --topic T --duration 20 --viewers 2 --at WALLTIME --out result.json

At ``--at`` (a ``time.time()`` instant, so the process has started and imported by then)
it requests the episode, as the player page does, and connects its viewers at once. Per
viewer: first frame (the waiting card counts, as the browser's TTFF does), first content
frame (the first at the stream's rate), first speech, and freezes. A frame is shown as a
browser shows it: at its timestamp plus a jitter buffer's delay (``PLAYOUT_DELAY_S``
after the earliest transit seen), or when it arrives if that is later; a freeze is a gap
between shown content frames longer than WebRTC's rule (3 frame times, or 150 ms more
than one). Audio is timed the same way, every 20 ms packet from the first one on (silence
included): a packet that arrives after its turn to play holds the audio back, and 150 ms
of that in a row is an audio gap, which a listener hears even while the picture moves on. Times are seconds after
the request.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av
import httpx
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription

#: Audio this loud (RMS of 16-bit samples) is speech, not the silence of a waiting viewer.
SPEECH_RMS = 300.0
#: A viewer is done when no video arrived for this long after its content started.
QUIET_S = 4.0
#: Audio held back this long by late packets in a row is a gap a listener hears.
AUDIO_GAP_S = 0.15
#: The jitter buffer's delay: a frame is shown this long after its timestamp (on the
#: earliest transit seen), or when it arrives if later. Browsers adapt theirs to the
#: jitter they see; this is a fixed, modest one.
PLAYOUT_DELAY_S = 0.2


@dataclass
class AudioClock:
    """When each audio packet plays, as a jitter buffer plays them: at its timestamp plus
    ``PLAYOUT_DELAY_S`` after the earliest transit seen, pushed back by all lateness so far
    (while it waits, the listener hears concealment: silence or stretched sound)."""

    last_ts: int | None = None
    media_s: float = 0.0
    transit: float | None = None
    #: Seconds of concealment so far, in all, and in the current run of late packets.
    late_s: float = 0.0
    run_s: float = 0.0

    def arrived(self, timestamp: int, now: float, rate: int = 48_000) -> bool:
        """Time a packet; True when the run of late packets it belongs to has just added up to
        an audible gap (``AUDIO_GAP_S``): one late burst, or a sender slower than real time
        (every packet a little late, gap after gap)."""
        if self.last_ts is not None:
            self.media_s += ((timestamp - self.last_ts) % (1 << 32)) / rate
        self.last_ts = timestamp
        self.transit = min(self.transit, now - self.media_s) if self.transit is not None else now - self.media_s
        late = max(0.0, now - (self.media_s + self.transit + PLAYOUT_DELAY_S + self.late_s))
        self.late_s += late
        self.run_s = self.run_s + late if late > 0 else 0.0
        if self.run_s > AUDIO_GAP_S:
            self.run_s = 0.0
            return True
        return False


@dataclass
class ViewerResult:
    #: When the server answered the viewer's offer (its share of the first frame's wait).
    answered_s: float | None = None
    first_frame_s: float | None = None
    first_content_s: float | None = None
    first_speech_s: float | None = None
    frames: int = 0
    freezes: int = 0
    frozen_s: float = 0.0
    #: When each freeze ended, seconds after the request.
    freeze_at_s: list[float] = field(default_factory=list)
    audio_gaps: int = 0
    audio_late_s: float = 0.0
    error: str | None = None
    _last_ts: int | None = field(default=None, repr=False)
    _last_s: float | None = field(default=None, repr=False)
    _media_s: float = field(default=0.0, repr=False)  # the frame's timestamp, unwrapped, in seconds
    _transit: float | None = field(default=None, repr=False)  # earliest arrival less timestamp
    _shown: float | None = field(default=None, repr=False)  # when the last content frame was shown
    _audio: AudioClock = field(default_factory=AudioClock, repr=False)


class Viewer:
    """One peer connection whose receivers time packets instead of decoding them."""

    def __init__(self, fps: int, requested_at: float) -> None:
        self.fps = fps
        self.requested_at = requested_at
        self.result = ViewerResult()
        self.pc = RTCPeerConnection()
        self.last_video = time.monotonic()
        self._opus = av.CodecContext.create("libopus", "r")

    def _since(self) -> float:
        return time.time() - self.requested_at

    async def video_packet(self, packet, arrival_time_ms: int) -> None:
        if not packet.marker:
            return
        r, now = self.result, time.monotonic()
        self.last_video = now
        r.frames += 1
        if r.first_frame_s is None:
            r.first_frame_s = self._since()
        step = (packet.timestamp - r._last_ts) % (1 << 32) if r._last_ts is not None else 0
        r._media_s += step / 90_000
        r._transit = min(r._transit, now - r._media_s) if r._transit is not None else now - r._media_s
        shown = max(now, r._media_s + r._transit + PLAYOUT_DELAY_S, r._shown or 0.0)
        if r.first_content_s is None and 0 < step <= 90_000 * 1.5 / self.fps:
            r.first_content_s = r._last_s  # the frame before this one began the stream's rate
        elif r.first_content_s is not None and r._shown is not None:
            gap, frame = shown - r._shown, 1 / self.fps
            if gap > max(3 * frame, frame + 0.15):
                r.freezes += 1
                r.frozen_s += gap
                r.freeze_at_s.append(round(self._since(), 3))
        if r.first_content_s is not None:
            r._shown = shown
        r._last_ts, r._last_s = packet.timestamp, self._since()

    async def audio_packet(self, packet, arrival_time_ms: int) -> None:
        r = self.result
        r.audio_gaps += r._audio.arrived(packet.timestamp, time.monotonic())
        r.audio_late_s = round(r._audio.late_s, 3)
        if r.first_speech_s is not None or not packet.payload:
            return
        try:
            frames = self._opus.decode(av.Packet(packet.payload))
        except av.error.FFmpegError:
            return
        for frame in frames:
            samples = frame.to_ndarray()
            scale = 32767.0 if samples.dtype.kind == "f" else 1.0
            if samples.size and float(np.sqrt(np.mean(samples.astype(np.float32) ** 2))) * scale > SPEECH_RMS:
                self.result.first_speech_s = self._since()

    async def connect(self, client: httpx.AsyncClient, episode: str) -> None:
        for kind in ("audio", "video"):
            self.pc.addTransceiver(kind, direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        reply = await client.post(f"/api/episodes/{episode}/offer",
                                  json={"sdp": self.pc.localDescription.sdp, "type": "offer"})
        reply.raise_for_status()
        self.result.answered_s = self._since()
        answer = reply.json()
        for transceiver in self.pc.getTransceivers():
            # Timing, not decoding: the packets never reach aiortc's jitter buffer or decoder.
            handler = self.video_packet if transceiver.kind == "video" else self.audio_packet
            transceiver.receiver._handle_rtp_packet = handler
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))


async def watch(url: str, episode: str, viewers: int, fps: int, requested_at: float, limit_s: float) -> list[dict]:
    """Connect ``viewers`` viewers at once and keep them until the episode's video stops."""
    group = [Viewer(fps, requested_at) for _ in range(viewers)]
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        results = await asyncio.gather(*(v.connect(client, episode) for v in group), return_exceptions=True)
        for viewer, outcome in zip(group, results, strict=True):
            if isinstance(outcome, BaseException):
                viewer.result.error = f"{type(outcome).__name__}: {outcome}"
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            live = [v for v in group if v.result.error is None]
            if all(v.result.first_content_s is not None and time.monotonic() - v.last_video > QUIET_S for v in live):
                break
    for viewer in group:
        await viewer.pc.close()
    return [{k: v for k, v in asdict(viewer.result).items() if not k.startswith("_")} for viewer in group]


async def request_and_watch(args: argparse.Namespace) -> dict:
    """Request the episode at ``args.at``, then watch it: the create answer and every viewer's figures."""
    from server.transport.webrtc import allow_loopback_candidates

    allow_loopback_candidates()
    body = {"topic": args.topic, "duration_s": args.duration, "wait": True, **({"policy": args.policy} if args.policy else {})}
    await asyncio.sleep(max(0.0, args.at - time.time()))
    requested_at = time.time()
    if args.episode:  # watch an episode that exists
        viewers = await watch(args.url, args.episode, args.viewers, args.fps, requested_at, args.limit)
        return {"requested_at": requested_at, "status_code": 200, "episode": args.episode, "viewers": viewers}
    async with httpx.AsyncClient(base_url=args.url, timeout=30.0) as client:
        reply = await client.post("/api/episodes", json=body)
    out: dict = {"requested_at": requested_at, "status_code": reply.status_code, "viewers": [],
                 "created_s": time.time() - requested_at}
    if reply.status_code not in (201, 202):
        out["error"] = reply.text[:300]
        return out
    out["episode"] = reply.json()["id"]
    out["queued"] = reply.status_code == 202
    out["viewers"] = await watch(args.url, out["episode"], args.viewers, args.fps, requested_at, args.limit)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--policy", default=None)
    parser.add_argument("--viewers", type=int, default=1)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--at", type=float, default=0.0, help="time.time() instant to request the episode")
    parser.add_argument("--episode", default=None, help="watch this episode instead of requesting one")
    parser.add_argument("--limit", type=float, default=300.0, help="give up watching after this many seconds")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    Path(args.out).write_text(json.dumps(asyncio.run(request_and_watch(args))))
    return 0


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
