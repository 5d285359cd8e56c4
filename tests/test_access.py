"""API keys, rate limits and the refusal to run open on a public address."""
from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from fastapi import HTTPException
from starlette.requests import Request

from bench.harness import REPO_ROOT, start_server
from server.access import (
    LOCAL,
    AccessConfigError,
    AccessPolicy,
    ApiKey,
    Principal,
    is_loopback,
    key_id,
    parse_keys,
)

KEY = "k" * 24


def _request(headers: dict[str, str] | None = None, query: str = "") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw, "query_string": query.encode()})


def test_open_only_on_loopback():
    assert AccessPolicy.from_env({}, "127.0.0.1").open
    assert AccessPolicy.from_env({}, "::1").open
    assert is_loopback("localhost") and not is_loopback("0.0.0.0")
    with pytest.raises(AccessConfigError, match="STREAMWISE_API_KEYS"):
        AccessPolicy.from_env({}, "0.0.0.0")
    with pytest.raises(AccessConfigError, match="at least 16"):
        AccessPolicy.from_env({"STREAMWISE_API_KEYS": "short"}, "127.0.0.1")
    assert AccessPolicy.from_env({"STREAMWISE_API_KEYS": KEY}, "0.0.0.0").keys == (ApiKey(Principal(key_id(KEY)), KEY),)


def test_identify_needs_a_valid_key():
    policy = AccessPolicy(keys=parse_keys(KEY))
    with pytest.raises(HTTPException) as err:
        policy.identify(_request())
    assert err.value.status_code == 401
    with pytest.raises(HTTPException) as err:
        policy.identify(_request({"Authorization": "Bearer " + "x" * 24}))
    assert err.value.status_code == 403
    assert policy.identify(_request({"Authorization": f"Bearer {KEY}"})) == Principal(key_id(KEY), "client")
    assert policy.identify(_request(query=f"key={KEY}")) == Principal(key_id(KEY), "client")


def test_named_keys_with_roles():
    keys = parse_keys(f"alice:client:{'a' * 20}, ops:admin:{'o' * 20},{KEY}")
    assert [k.principal for k in keys] == [Principal("alice", "client"), Principal("ops", "admin"), Principal(key_id(KEY))]
    policy = AccessPolicy(keys=keys)
    assert policy.caller(_request()) is None
    assert policy.caller(_request({"Authorization": f"Bearer {'o' * 20}"})).admin
    with pytest.raises(HTTPException) as err:
        policy.require_admin(_request({"Authorization": f"Bearer {'a' * 20}"}))
    assert err.value.status_code == 403 and "admin" in err.value.detail
    assert AccessPolicy().caller(_request()) == LOCAL and LOCAL.admin  # open mode: one principal, all rights


@pytest.mark.parametrize("text, message", [
    (f"alice:owner:{'a' * 20}", "role 'owner'; allowed: client, admin"),
    (f"al ice:client:{'a' * 20}", "name 'al ice'"),
    (f"alice:client:{'a' * 20},alice:admin:{'b' * 20}", "'alice' is used twice"),
    ("alice:client:short", "entry 1, alice, is shorter"),
    (f"alice:{'a' * 20}", "expected 'secret' or 'name:role:secret'"),
])
def test_bad_key_entries_are_named_without_their_secret(text: str, message: str):
    with pytest.raises(AccessConfigError) as err:
        parse_keys(text)
    assert message in str(err.value)
    assert "a" * 20 not in str(err.value) and "b" * 20 not in str(err.value)


def test_rate_limit_and_concurrency_cap():
    policy = AccessPolicy(keys=parse_keys(KEY), creates_per_minute=2, max_concurrent=1)
    policy.admit_create("a", generating=0)
    with pytest.raises(HTTPException) as err:
        policy.admit_create("a", generating=1)
    assert err.value.status_code == 429 and "at once" in err.value.detail
    policy.admit_create("a", generating=0)
    with pytest.raises(HTTPException) as err:
        policy.admit_create("a", generating=0)
    # The first of the two creations leaves the minute's window in just under 60 s.
    assert err.value.status_code == 429 and int(err.value.headers["Retry-After"]) in (59, 60)
    policy.admit_create("b", generating=0)  # limits are per key


def test_serve_refuses_a_public_address_without_keys():
    env = {k: v for k, v in os.environ.items() if k != "STREAMWISE_API_KEYS"}
    result = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--host", "0.0.0.0", "--port", "0"],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert "without API keys" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.models
def test_keys_protect_creating_and_deleting(tmp_path):
    server = start_server(tmp_path, env={"STREAMWISE_API_KEYS": KEY})
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            body = {"topic": "owls", "duration_s": 10}
            assert client.post("/api/episodes", json=body).status_code == 401
            assert client.post("/api/episodes", json=body, headers={"Authorization": "Bearer " + "y" * 20}).status_code == 403
            created = client.post("/api/episodes", json=body, headers={"Authorization": f"Bearer {KEY}"})
            assert created.status_code == 201
            episode = created.json()["id"]
            assert client.get(f"/api/episodes/{episode}").status_code == 200, "viewing needs no key"
            assert client.delete(f"/api/episodes/{episode}").status_code == 401
            assert client.delete(f"/api/episodes/{episode}", headers={"Authorization": f"Bearer {KEY}"}).status_code == 204
    finally:
        server.stop()


@pytest.mark.models
def test_keys_protect_metrics_and_dashboard_stream(tmp_path):
    server = start_server(tmp_path, env={"STREAMWISE_API_KEYS": f"{KEY},ops:admin:{'o' * 24}"})
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.get("/metrics").status_code == 401
            assert client.get("/metrics", headers={"Authorization": f"Bearer {KEY}"}).status_code == 403  # a client's
            r = client.get("/metrics", headers={"Authorization": f"Bearer {'o' * 24}"})
            assert r.status_code == 200 and "streamwise_active_episodes" in r.text
            with client.stream("GET", "/api/dashboard/stream") as stream:
                assert stream.status_code == 401
    finally:
        server.stop()
