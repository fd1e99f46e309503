"""The HTTP server against requests generated from its own OpenAPI schema (Schemathesis), and
under a bounded load: no 5xx, every answer as documented, memory back to its warm size."""

import resource

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from {{ cookiecutter.package_name }}.bench import http_load, running_server
from {{ cookiecutter.package_name }}.config import MODEL_DIR, ServeParams
from {{ cookiecutter.package_name }}.data import load_prepared
from {{ cookiecutter.package_name }}.tasks import task

# Generated requests per operation: bounded, so the suite's time stays predictable.
FUZZ_EXAMPLES = 40
# What the server must do with any request: never fail itself, and answer as its schema says.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def server_url(trained):
    with running_server(MODEL_DIR, trained.params.serve) as url:
        yield url.removesuffix("/predict")


@pytest.fixture(scope="module")
def served_schema(server_url):
    return schemathesis.openapi.from_url(f"{server_url}/openapi.json")


OPERATIONS = [("/health", "GET"), ("/predict", "POST")]


def test_the_fuzzed_operations_are_all_the_server_has(served_schema) -> None:
    served = {
        (path, method.upper())
        for path, methods in served_schema.raw_schema["paths"].items()
        for method in methods
    }
    assert served == set(OPERATIONS)


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_generated_requests_get_documented_answers_and_no_5xx(served_schema, path, method):
    operation = served_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case) -> None:
        case.call_and_validate(checks=CHECKS)

    fuzz()


def resident_mb() -> float:
    """This process's memory now (not its peak): the server runs in it."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def test_64_concurrent_clients_get_answers_and_memory_returns_to_warm(trained) -> None:
    example = task.example_input(load_prepared()["test"])
    # A queue that holds every client: the load must be served, not refused.
    serving = ServeParams(max_batch_size=32, max_wait_ms=0, max_queue=256)
    with running_server(MODEL_DIR, serving) as url:
        warm_up = http_load(url, example, requests=128, concurrency=64, time_limit_s=60)
        warm = resident_mb()
        # As many requests as the warm server answers in about 10 s, from 300 to 1,000: a slow
        # model (speech synthesis, ~25 ms an answer here) is loaded as long as a fast one.
        count = int(min(1000, max(300, 10 * warm_up["requests_per_second"])))
        run = http_load(url, example, requests=count, concurrency=64, time_limit_s=120)
        after = resident_mb()
    assert run["errors"] == 0 and run["n"] == count, run
    assert after <= 1.1 * warm, (warm, after)
