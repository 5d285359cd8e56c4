"""Run the real server as a subprocess and drive Debian's Chromium: shared by tests and benchmarks.

Both must measure the product as users run it: a separate ``streamwise serve``
process with real models, and a real browser, never an in-process stand-in.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("STREAMWISE_CHROMIUM", "/usr/bin/chromium")
#: Flags for headless Chromium on a closed network: no background connections,
#: autoplay allowed, and host candidates instead of mDNS names for loopback WebRTC.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


class ServerFailed(RuntimeError):
    """The server exited or did not become ready; the message carries its log tail."""


@dataclass
class ServerProcess:
    url: str
    media_dir: Path
    log_path: Path
    process: subprocess.Popen

    def __str__(self) -> str:  # f"{server}/api/..." reads naturally
        return self.url

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise ServerFailed(f"the server exited with {self.process.returncode} before it was ready:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise ServerFailed(f"the server was not ready within {timeout_s:.0f} s:\n{self.log_tail()}")
            time.sleep(0.25)

    def stop(self, grace_s: float = 15.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workdir: Path, extra_args: list[str] | None = None, env: dict[str, str] | None = None) -> ServerProcess:
    """Start ``streamwise serve`` on a free loopback port; media and log go under ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    media_dir = workdir / "media"
    log_path = workdir / "server.log"
    port = free_port()
    command = [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--media-dir", str(media_dir), *(extra_args or [])]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=os.environ | {"PYTHONUNBUFFERED": "1"} | (env or {}),
            stdout=log, stderr=subprocess.STDOUT,
        )
    return ServerProcess(url=f"http://127.0.0.1:{port}", media_dir=media_dir, log_path=log_path, process=process)
