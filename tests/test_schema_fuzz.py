"""Property-based fuzzing of the whole API from its OpenAPI schema: no input may cause a 5xx."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from bench.harness import start_server

pytestmark = [pytest.mark.models, pytest.mark.slow]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    # One generating episode at a time: fuzzed creations mostly get 429, which keeps the CPU for the API.
    server = start_server(tmp_path_factory.mktemp("fuzz"), env={"STREAMWISE_MAX_EPISODES_PER_KEY": "1",
                                                                 "STREAMWISE_CREATES_PER_MINUTE": "3"})
    server.wait_ready()
    yield server
    server.stop()


def test_no_server_errors(fuzz_server):
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    failures: list[str] = []
    tried = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case) -> None:
            nonlocal tried
            tried += 1
            response = case.call(base_url=fuzz_server.url, timeout=30)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

        call()
    print(f"schemathesis: {tried} requests over {len(list(schema.get_all_operations()))} operations")
    assert tried > 100
    assert not failures, "\n".join(failures[:20])
