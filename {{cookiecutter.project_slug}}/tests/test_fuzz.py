"""The HTTP server against requests generated from its own OpenAPI schema (Schemathesis, with
every check it has: what the schema allows is answered 200, what it forbids is refused with a
4xx, every answer is as documented, never a 5xx), and under a bounded load: memory back to its
warm size."""

import resource

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from {{ cookiecutter.package_name }}.core.config import ServeParams
from {{ cookiecutter.package_name }}.core.paths import MODEL_DIR
from {{ cookiecutter.package_name }}.data.prepare import load_prepared
from {{ cookiecutter.package_name }}.serving.bench import http_load, running_server
from {{ cookiecutter.package_name }}.tasks import task
from media_files import FILES

# Generated requests per operation and mode: bounded, so the suite's time stays predictable.
FUZZ_EXAMPLES = 15


@pytest.fixture(scope="module")
def server_url(trained):
    with running_server(MODEL_DIR, trained.params.serve) as url:
        yield url.removesuffix("/predict")


@pytest.fixture(scope="module")
def served_schema(server_url):
    return schemathesis.openapi.from_url(f"{server_url}/openapi.json")


# Requests the schema allows, and (where a request has a body to break) ones it forbids.
CASES = [
    ("/health", "GET", GenerationMode.POSITIVE),
    ("/predict", "POST", GenerationMode.POSITIVE),
    ("/predict", "POST", GenerationMode.NEGATIVE),
]


def test_the_fuzzed_operations_are_all_the_server_has(served_schema) -> None:
    served = {
        (path, method.upper())
        for path, methods in served_schema.raw_schema["paths"].items()
        for method in methods
    }
    assert served == {(path, method) for path, method, _ in CASES}


def test_the_schema_states_the_input_rules(served_schema) -> None:
    """What the server refuses is written in the schema a client reads."""
    body = served_schema.raw_schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    if task.INPUT_KIND == "text":
        items = served_schema.raw_schema["components"]["schemas"]["PredictRequest"]
        texts = items["properties"]["texts"]["items"]
        assert texts["minLength"] == 1 and texts["maxLength"] and texts["pattern"], texts
    else:
        media_types = body["multipart/form-data"]["encoding"]["file"]["contentType"].split(", ")
        assert media_types and set(media_types) <= set(FILES), media_types


@pytest.mark.parametrize(("path", "method", "mode"), CASES)
def test_generated_requests_get_the_documented_answers(served_schema, path, method, mode):
    operation = served_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests on every run: a failure is reproducible
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case) -> None:
        case.call_and_validate()  # every check Schemathesis has

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
        # As many requests as the warm server answers in about 5 s, from 200 to 1,000: a slow
        # model (speech synthesis, ~25 ms an answer here) is loaded as long as a fast one.
        count = int(min(1000, max(200, 5 * warm_up["requests_per_second"])))
        run = http_load(url, example, requests=count, concurrency=64, time_limit_s=120)
        after = resident_mb()
    assert run["errors"] == 0 and run["n"] == count, run
    assert after <= 1.1 * warm, (warm, after)
