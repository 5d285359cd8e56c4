"""Share links: signed, expiring, revocable tokens that let anyone holding one watch a private episode.

A token is ``<share id>.<expiry>.<signature>``, the signature an HMAC-SHA256 over the
episode id, share id and expiry with the server's share secret. A token is honoured
only while its signature matches, its expiry is in the future and its share is still
listed, unrevoked, on the episode: any other token is as good as none (the routes
answer 404 and reveal nothing). The secret is ``STREAMWISE_SHARE_SECRET`` or one made
once and kept in the media directory, so links survive restarts.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: How long a share link lasts unless the request says otherwise (``STREAMWISE_SHARE_TTL_S``).
DEFAULT_TTL_S = 24 * 3600
#: The longest a link may be asked to last.
MAX_TTL_S = 30 * 24 * 3600
SECRET_FILE = "share-secret"


@dataclass
class Share:
    """One share link of an episode, as its record keeps it (the token is derived, never stored)."""

    id: str
    created_by: str
    created_at: float
    expires_at: float
    revoked: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Share:
        return cls(id=str(data["id"]), created_by=str(data["created_by"]), created_at=float(data["created_at"]),
                   expires_at=float(data["expires_at"]), revoked=bool(data.get("revoked", False)))


def load_secret(media_dir: Path, env: dict[str, str]) -> bytes:
    """The share secret: from the environment, or made once and kept (mode 0600) in ``media_dir``."""
    if env.get("STREAMWISE_SHARE_SECRET"):
        return env["STREAMWISE_SHARE_SECRET"].encode()
    path = media_dir / SECRET_FILE
    if path.exists():
        return path.read_bytes()
    media_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
    return secret


class ShareSigner:
    """Makes and checks share tokens with one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _signature(self, episode_id: str, share_id: str, expires: int) -> str:
        mac = hmac.new(self._secret, f"{episode_id}.{share_id}.{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def new_share(self, created_by: str, ttl_s: float, now: float | None = None) -> Share:
        now = time.time() if now is None else now
        return Share(id=secrets.token_urlsafe(9), created_by=created_by, created_at=now, expires_at=float(int(now + ttl_s)))

    def token(self, episode_id: str, share: Share) -> str:
        expires = int(share.expires_at)
        return f"{share.id}.{expires}.{self._signature(episode_id, share.id, expires)}"

    def valid(self, episode_id: str, shares: list[Share], token: str | None, now: float | None = None) -> bool:
        """True only for an untampered, unexpired token of a share the episode still lists, unrevoked."""
        if not token:
            return False
        parts = token.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return False
        share_id, expires_text, signature = parts
        expires = int(expires_text)
        expected = self._signature(episode_id, share_id, expires)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            return False
        if expires <= (time.time() if now is None else now):
            return False
        return any(s.id == share_id and not s.revoked and int(s.expires_at) == expires for s in shares)
