"""Who may do what: API keys, per-key rate limits and concurrent-episode caps.

Creating and deleting episodes, the dashboard and the metrics need a key
(``Authorization: Bearer <key>``; pages opened in a browser may pass ``?key=``).
Keys come from ``STREAMWISE_API_KEYS`` (comma-separated). With no keys the server
runs open, which is only allowed on a loopback address: bound to anything else it
refuses to start. Watching needs no key: episode ids are 96-bit random tokens.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from collections import deque
from dataclasses import dataclass, field

from fastapi import HTTPException, Request


class AccessConfigError(ValueError):
    """The server cannot start with this access setup; the message says what to set."""


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def key_id(key: str) -> str:
    """A short, stable, non-secret name for a key, for logs and per-key accounting."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:10]


@dataclass
class AccessPolicy:
    keys: tuple[str, ...] = ()
    #: Episodes a key may create per minute.
    creates_per_minute: int = 20
    #: Episodes a key may have generating at once.
    max_concurrent: int = 3
    _recent: dict[str, deque] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        return not self.keys

    @classmethod
    def from_env(cls, env: dict[str, str], host: str) -> AccessPolicy:
        keys = tuple(k.strip() for k in env.get("STREAMWISE_API_KEYS", "").split(",") if k.strip())
        short = [key_id(k) for k in keys if len(k) < 16]
        if short:
            raise AccessConfigError(f"STREAMWISE_API_KEYS: keys must be at least 16 characters ({', '.join(short)} are shorter)")
        if not keys and not is_loopback(host):
            raise AccessConfigError(
                f"refusing to serve on {host} without API keys: set STREAMWISE_API_KEYS=key1,key2 "
                "(at least 16 random characters each), or bind to 127.0.0.1 for local use"
            )
        try:
            creates = int(env.get("STREAMWISE_CREATES_PER_MINUTE", "20"))
            concurrent = int(env.get("STREAMWISE_MAX_EPISODES_PER_KEY", "3"))
        except ValueError as exc:
            raise AccessConfigError(f"STREAMWISE_CREATES_PER_MINUTE / STREAMWISE_MAX_EPISODES_PER_KEY must be integers: {exc}") from None
        if creates < 1 or concurrent < 1:
            raise AccessConfigError("STREAMWISE_CREATES_PER_MINUTE and STREAMWISE_MAX_EPISODES_PER_KEY must be at least 1")
        return cls(keys=keys, creates_per_minute=creates, max_concurrent=concurrent)

    def identify(self, request: Request) -> str:
        """The caller's key id, or 401/403. With no keys configured everyone is "local"."""
        if self.open:
            return "local"
        header = request.headers.get("authorization", "")
        supplied = header[7:].strip() if header.lower().startswith("bearer ") else request.query_params.get("key", "")
        if not supplied:
            raise HTTPException(401, "this needs an API key: send 'Authorization: Bearer <key>'",
                                headers={"WWW-Authenticate": "Bearer"})
        for key in self.keys:
            if hmac.compare_digest(supplied.encode(), key.encode()):
                return key_id(key)
        raise HTTPException(403, "this API key is not valid", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    def admit_create(self, who: str, generating: int) -> None:
        """Rate limit and concurrency cap for creating an episode; 429 with Retry-After when over."""
        now = time.monotonic()
        recent = self._recent.setdefault(who, deque())
        while recent and now - recent[0] > 60:
            recent.popleft()
        if len(recent) >= self.creates_per_minute:
            retry = max(1, int(60 - (now - recent[0])) + 1)
            raise HTTPException(429, f"rate limit: at most {self.creates_per_minute} new episodes a minute per key; retry in {retry} s",
                                headers={"Retry-After": str(retry)})
        if generating >= self.max_concurrent:
            raise HTTPException(429, f"at most {self.max_concurrent} episodes may generate at once per key; "
                                     "wait for one to finish or delete one", headers={"Retry-After": "10"})
        recent.append(now)
