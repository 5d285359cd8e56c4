"""Who is calling: API keys as named principals with a role, per-key rate limits and caps.

Keys come from ``STREAMWISE_API_KEYS``, comma-separated, each either a bare secret
(a ``client`` named after the key's id, ``key_id``) or ``name:role:secret`` with role
``client`` or ``admin``. A key is sent as ``Authorization: Bearer <key>`` (pages
opened in a browser may pass ``?key=``). What each principal may do with an episode
is decided in server/ownership.py.

With no keys the server runs open, which is only allowed on a loopback address:
there is one principal, ``local``, who may do everything.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

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


Role = Literal["client", "admin"]
ROLES: tuple[Role, ...] = ("client", "admin")
#: Secrets shorter than this are refused: they could be guessed.
MIN_SECRET = 16
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Principal:
    """Whoever a key stands for: episodes belong to a principal's ``name``."""

    name: str
    role: Role = "client"

    @property
    def admin(self) -> bool:
        return self.role == "admin"


#: The one principal of a server running open (no keys, loopback only).
LOCAL = Principal("local", "admin")


@dataclass(frozen=True)
class ApiKey:
    principal: Principal
    secret: str = field(repr=False)


def parse_keys(text: str) -> tuple[ApiKey, ...]:
    """``STREAMWISE_API_KEYS``: ``secret`` or ``name:role:secret`` entries, comma-separated.

    Raises AccessConfigError naming the entry (by position, never the secret) and what is allowed.
    """
    keys: list[ApiKey] = []
    for n, entry in enumerate((e.strip() for e in text.split(",")), start=1):
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) == 1:
            key = ApiKey(Principal(key_id(entry)), entry)
        elif len(parts) == 3:
            name, role, secret = parts
            if not _NAME.match(name):
                raise AccessConfigError(f"STREAMWISE_API_KEYS entry {n}: name {name!r} must be 1-64 letters, digits, '_', '.' or '-'")
            if role not in ROLES:
                raise AccessConfigError(f"STREAMWISE_API_KEYS entry {n} ({name}): role {role!r}; allowed: {', '.join(ROLES)}")
            key = ApiKey(Principal(name, role), secret)  # type: ignore[arg-type]
        else:
            raise AccessConfigError(f"STREAMWISE_API_KEYS entry {n}: expected 'secret' or 'name:role:secret'")
        if len(key.secret) < MIN_SECRET:
            raise AccessConfigError(f"STREAMWISE_API_KEYS: keys must be at least {MIN_SECRET} characters "
                                    f"(entry {n}, {key.principal.name}, is shorter)")
        if any(k.principal.name == key.principal.name for k in keys):
            raise AccessConfigError(f"STREAMWISE_API_KEYS entry {n}: the name {key.principal.name!r} is used twice")
        keys.append(key)
    return tuple(keys)


@dataclass
class AccessPolicy:
    keys: tuple[ApiKey, ...] = ()
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
        keys = parse_keys(env.get("STREAMWISE_API_KEYS", ""))
        if not keys and not is_loopback(host):
            raise AccessConfigError(
                f"refusing to serve on {host} without API keys: set STREAMWISE_API_KEYS=name:admin:secret,"
                "name2:client:secret2 (secrets of at least 16 random characters), or bind to 127.0.0.1 for local use"
            )
        try:
            creates = int(env.get("STREAMWISE_CREATES_PER_MINUTE", "20"))
            concurrent = int(env.get("STREAMWISE_MAX_EPISODES_PER_KEY", "3"))
        except ValueError as exc:
            raise AccessConfigError(f"STREAMWISE_CREATES_PER_MINUTE / STREAMWISE_MAX_EPISODES_PER_KEY must be integers: {exc}") from None
        if creates < 1 or concurrent < 1:
            raise AccessConfigError("STREAMWISE_CREATES_PER_MINUTE and STREAMWISE_MAX_EPISODES_PER_KEY must be at least 1")
        return cls(keys=keys, creates_per_minute=creates, max_concurrent=concurrent)

    def caller(self, request: Request) -> Principal | None:
        """The principal whose key the request carries; None when it carries none (open: ``LOCAL``).

        A key that matches none is a 403, never treated as no key.
        """
        if self.open:
            return LOCAL
        header = request.headers.get("authorization", "")
        supplied = header[7:].strip() if header.lower().startswith("bearer ") else request.query_params.get("key", "")
        if not supplied:
            return None
        for key in self.keys:
            if hmac.compare_digest(supplied.encode(), key.secret.encode()):
                return key.principal
        raise HTTPException(403, "this API key is not valid", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    def identify(self, request: Request) -> Principal:
        """The caller's principal, or 401 without a key and 403 with a wrong one."""
        principal = self.caller(request)
        if principal is None:
            raise HTTPException(401, "this needs an API key: send 'Authorization: Bearer <key>'",
                                headers={"WWW-Authenticate": "Bearer"})
        return principal

    def require_admin(self, request: Request) -> Principal:
        """The caller's principal if it is an admin; 401 without a key, 403 otherwise."""
        principal = self.identify(request)
        if not principal.admin:
            raise HTTPException(403, "this needs an admin key (STREAMWISE_API_KEYS entry 'name:admin:secret')")
        return principal

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
