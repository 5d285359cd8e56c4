"""Who may list, watch and manage an episode, share links, and the per-connection report limit (no server)."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.segments import EpisodeRequest
from server.access import LOCAL, Principal
from server.episodes.episode import Episode
from server.limits import RateLimiter
from server.ownership import can_manage, can_watch, listed
from server.shares import ShareSigner, load_secret

ALICE, BOB, ADMIN = Principal("alice"), Principal("bob"), Principal("ops", "admin")


def episode(owner: str | None, visibility: str) -> Episode:
    return Episode(id=f"{owner}-{visibility}", request=EpisodeRequest("owls", 10), directory=Path("/nonexistent"),
                   owner=owner, visibility=visibility)  # type: ignore[arg-type]


@pytest.mark.parametrize("visibility, anyone_watches, anonymous_lists", [
    ("public", True, True), ("unlisted", True, False), ("private", False, False)])
def test_visibility(visibility: str, anyone_watches: bool, anonymous_lists: bool) -> None:
    ep = episode("alice", visibility)
    assert can_watch(None, ep) is anyone_watches and can_watch(BOB, ep) is anyone_watches
    assert can_watch(ALICE, ep) and can_watch(ADMIN, ep) and can_watch(None, ep, shared=True)
    assert listed(None, ep) is anonymous_lists
    assert listed(ALICE, ep) and listed(ADMIN, ep) and not listed(BOB, ep)  # with a key: what it may manage


def test_only_the_owner_and_admins_manage() -> None:
    ep = episode("alice", "public")
    assert [can_manage(p, ep) for p in (ALICE, BOB, ADMIN, None, LOCAL)] == [True, False, True, False, True]
    legacy = episode(None, "unlisted")  # a record from before owners: admins only
    assert [can_manage(p, legacy) for p in (ALICE, Principal("None"), ADMIN)] == [False, False, True]


def test_share_tokens(tmp_path: Path) -> None:
    signer = ShareSigner(load_secret(tmp_path, {}))
    share = signer.new_share("alice", 60, now=1000.0)
    token = signer.token("ep1", share)
    assert signer.valid("ep1", [share], token, now=1001.0)
    assert not signer.valid("ep2", [share], token, now=1001.0), "a token is for one episode"
    assert not signer.valid("ep1", [share], token, now=1060.0), "expired"
    share_id, expires, signature = token.split(".")
    for tampered in (f"{share_id}.{int(expires) + 3600}.{signature}", f"{share_id}.{expires}.{signature[:-1]}A",
                     f"x{share_id}.{expires}.{signature}", "", "a.b", "a.b.c"):
        assert not signer.valid("ep1", [share], tampered, now=1001.0), tampered
    share.revoked = True
    assert not signer.valid("ep1", [share], token, now=1001.0), "revoked"
    assert not signer.valid("ep1", [], None)


def test_the_share_secret_survives_a_restart(tmp_path: Path) -> None:
    first = load_secret(tmp_path, {})
    assert load_secret(tmp_path, {}) == first and len(first) >= 32
    assert (tmp_path / "share-secret").stat().st_mode & 0o077 == 0, "readable by its owner only"
    assert load_secret(tmp_path, {"STREAMWISE_SHARE_SECRET": "from-env"}) == b"from-env"


def test_reports_are_limited_per_connection() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=3)
    assert [limiter.take("a", now=0.0) for _ in range(3)] == [None, None, None]
    assert limiter.take("a", now=0.0) == 1
    assert limiter.take("b", now=0.0) is None, "another connection has its own bucket"
    assert limiter.take("a", now=1.0) is None
    assert limiter.take("a", now=1.0) == 1
