"""Two tenants and an admin against a real server: each sees and manages only its own episodes.

One server process with three keys: alice and bob (clients) and ops (admin). Another
principal's episode answers 404, never 403; private episodes play only with the
owner's key or a share link; ownership survives a restart.
"""
from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from bench.harness import ServerProcess, start_server

pytestmark = pytest.mark.models

ALICE, BOB, OPS = "a" * 24, "b" * 24, "o" * 24
KEYS = f"alice:client:{ALICE},bob:client:{BOB},ops:admin:{OPS}"


def auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("owners"), env={"STREAMWISE_API_KEYS": KEYS})
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def episodes(client: httpx.Client) -> dict[str, str]:
    """alice: a private and an unlisted episode; bob: a public one (queued when the server is full)."""
    made = {}
    for name, key, visibility in (("private", ALICE, "private"), ("unlisted", ALICE, "unlisted"), ("public", BOB, "public")):
        r = client.post("/api/episodes", headers=auth(key),
                        json={"topic": f"owls {name}", "duration_s": 10, "visibility": visibility, "wait": True})
        assert r.status_code in (201, 202), r.text
        assert r.json()["visibility"] == visibility
        made[name] = r.json()["id"]
    return made


def listed(client: httpx.Client, key: str | None) -> set[str]:
    r = client.get("/api/episodes", headers=auth(key))
    assert r.status_code == 200, r.text
    return {e["id"] for e in r.json()["episodes"]}


def test_lists(client: httpx.Client, episodes: dict[str, str]) -> None:
    assert listed(client, None) == {episodes["public"]}, "without a key: public episodes only"
    assert listed(client, ALICE) == {episodes["private"], episodes["unlisted"]}
    assert listed(client, BOB) == {episodes["public"]}
    assert listed(client, OPS) == set(episodes.values())


def test_reads_follow_visibility(client: httpx.Client, episodes: dict[str, str]) -> None:
    private, unlisted = episodes["private"], episodes["unlisted"]
    for path in ("", "/transcript", "/captions.vtt", "/video.mp4", "/stream.mp4"):
        for key in (None, BOB):
            r = client.get(f"/api/episodes/{private}{path}", headers=auth(key))
            ghost = client.get(f"/api/episodes/{'x' * 16}{path}", headers=auth(key))
            # Told exactly what an id that does not exist is told.
            assert r.status_code == ghost.status_code == 404, (path, key, r.text)
            assert r.text.replace(private, "x" * 16) == ghost.text
    assert client.get(f"/api/episodes/{private}", headers=auth(ALICE)).json()["owner"] == "alice"
    assert client.get(f"/api/episodes/{private}", headers=auth(OPS)).status_code == 200
    r = client.get(f"/api/episodes/{unlisted}")  # unlisted: plays for anyone with the link
    assert r.status_code == 200 and "owner" not in r.json()
    assert client.get(f"/api/episodes/{unlisted}/transcript", headers=auth(BOB)).status_code == 200
    assert client.get(f"/watch/{private}").status_code == 404
    wrong = auth("w" * 24)  # a wrong key learns nothing either: the same 403 for any id
    assert client.get(f"/api/episodes/{private}", headers=wrong).status_code == 403
    assert client.get(f"/api/episodes/{'x' * 16}", headers=wrong).status_code == 403
    assert client.post(f"/api/episodes/{private}/offer", json={"sdp": "v=0", "type": "offer"}).status_code == 404


def test_only_owners_and_admins_manage(client: httpx.Client, episodes: dict[str, str]) -> None:
    unlisted = episodes["unlisted"]
    assert client.delete(f"/api/episodes/{unlisted}").status_code == 401
    for method, path in (("DELETE", ""), ("POST", "/rerun"), ("GET", "/timeline"), ("GET", "/shares"), ("POST", "/shares")):
        r = client.request(method, f"/api/episodes/{unlisted}{path}", headers=auth(BOB), json={} if method == "POST" else None)
        assert r.status_code == 404, (method, path, r.text)
    assert client.get(f"/api/episodes/{unlisted}/timeline", headers=auth(ALICE)).status_code == 200
    assert client.get(f"/api/episodes/{unlisted}/timeline", headers=auth(OPS)).status_code == 200
    r = client.post(f"/api/episodes/{unlisted}/rerun", headers=auth(ALICE))
    assert r.status_code == 409, "not another principal's 404: a generating episode cannot be re-run"


def test_share_links(client: httpx.Client, episodes: dict[str, str]) -> None:
    private = episodes["private"]
    r = client.post(f"/api/episodes/{private}/shares", headers=auth(ALICE), json={})
    assert r.status_code == 201, r.text
    share = r.json()
    assert share["url"] == f"/watch/{private}?share={share['token']}"
    assert 23 * 3600 < share["expires_at"] - time.time() <= 24 * 3600, "a day by default"
    token = share["token"]
    assert client.get(f"/api/episodes/{private}", params={"share": token}).status_code == 200
    assert client.get(f"/watch/{private}", params={"share": token}).status_code == 200
    share_id, expires, signature = token.split(".")
    for bad in (f"{share_id}.{int(expires) + 60}.{signature}", f"{share_id}.{expires}.{signature[:-2]}xx"):
        r = client.get(f"/api/episodes/{private}", params={"share": bad})
        assert r.status_code == 404 and "owls" not in r.text, bad
    short = client.post(f"/api/episodes/{private}/shares", headers=auth(ALICE), json={"ttl_s": 1}).json()
    time.sleep(2.1)
    assert client.get(f"/api/episodes/{private}", params={"share": short["token"]}).status_code == 404, "expired"
    assert client.delete(f"/api/episodes/{private}/shares/{share['id']}", headers=auth(BOB)).status_code == 404
    assert client.delete(f"/api/episodes/{private}/shares/{share['id']}", headers=auth(ALICE)).status_code == 204
    assert client.get(f"/api/episodes/{private}", params={"share": token}).status_code == 404, "revoked"
    shares = client.get(f"/api/episodes/{private}/shares", headers=auth(ALICE)).json()["shares"]
    assert [s["revoked"] for s in shares if s["id"] == share["id"]] == [True]


def test_viewer_reports_need_the_episode_and_are_rate_limited(client: httpx.Client, episodes: dict[str, str]) -> None:
    private, unlisted = episodes["private"], episodes["unlisted"]
    assert client.post(f"/api/episodes/{private}/viewer-stats", json={"viewer": "v1"}).status_code == 404
    codes = [client.post(f"/api/episodes/{unlisted}/viewer-stats", json={"viewer": "v2", "framesDecoded": n}).status_code
             for n in range(12)]
    assert codes[0] == 204 and 429 in codes, codes


def test_operations_need_an_admin(client: httpx.Client) -> None:
    for path in ("/metrics", "/api/admission"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=auth(ALICE)).status_code == 403
        assert client.get(path, headers=auth(OPS)).status_code == 200
    with client.stream("GET", "/api/dashboard/stream", headers=auth(ALICE)) as stream:
        assert stream.status_code == 403, "every episode's title and id: admins only"
    assert client.get("/dashboard").status_code == 200, "the page itself holds no data"


def test_audit_names_principals_and_deletes_are_theirs(client: httpx.Client, episodes: dict[str, str]) -> None:
    public = episodes["public"]
    audit = client.get(f"/api/episodes/{episodes['private']}", headers=auth(ALICE)).json()["audit"]
    assert [(a["principal"], a["action"]) for a in audit][:2] == [("alice", "create"), ("alice", "share")]
    assert ALICE not in str(audit), "never a key's secret"
    assert client.delete(f"/api/episodes/{public}", headers=auth(ALICE)).status_code == 404
    assert client.delete(f"/api/episodes/{public}", headers=auth(BOB)).status_code == 204
    assert client.get(f"/api/episodes/{public}").status_code == 404


def test_ownership_survives_a_restart(server: ServerProcess, client: httpx.Client, episodes: dict[str, str]) -> None:
    server.stop()
    again = start_server(server.media_dir.parent, env={"STREAMWISE_API_KEYS": KEYS})
    try:
        again.wait_ready()
        with httpx.Client(base_url=again.url, timeout=30) as c:
            assert listed(c, ALICE) == {episodes["private"], episodes["unlisted"]}
            assert listed(c, BOB) == set()
            assert c.get(f"/api/episodes/{episodes['private']}", headers=auth(BOB)).status_code == 404
            assert c.get(f"/api/episodes/{episodes['private']}", headers=auth(ALICE)).json()["visibility"] == "private"
    finally:
        again.stop()
