"""The HTTP server: health, predictions, clear 4xx errors, batching, and the training/serving
parity proof."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from fastapi.testclient import TestClient

from answers import same_prediction
from {{ cookiecutter.package_name }}.core.config import ServeParams
from {{ cookiecutter.package_name }}.core.paths import MODEL_DIR
from {{ cookiecutter.package_name }}.data.prepare import load_prepared
from {{ cookiecutter.package_name }}.serving.predict import Predictor
from {{ cookiecutter.package_name }}.serving.serve import create_app
from {{ cookiecutter.package_name }}.tasks import task


@pytest.fixture(scope="module")
def client(trained):
    with TestClient(create_app(MODEL_DIR)) as client:
        yield client


def post_predict(client: TestClient, raw):
    if task.INPUT_KIND == "text":
        return client.post("/predict", json={"texts": [raw]})
    return client.post("/predict", files={"file": ("upload", raw)})


def test_health(client: TestClient, trained) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    health = response.json()
    assert health["task"] == "{{ cookiecutter.task }}"
    # The model that answers: the run that trained it and the checksum of its files.
    assert health["run_id"] == trained.result.run_id
    assert len(health["checksum"]) == 64


def test_predict_answers_as_the_predictor_does(client: TestClient) -> None:
    example = task.example_input(load_prepared()["test"])
    response = post_predict(client, example)
    assert response.status_code == 200, response.text
    [prediction] = response.json()["predictions"]
    # The server answers on a thread of its own: equal but for float noise (answers.py; CI once
    # saw synthesized audio differ there from this thread's in float noise alone).
    [expected] = Predictor(MODEL_DIR).predict([example])
    assert same_prediction(prediction, expected), (prediction, expected)
    if task.TARGET == "class":
        assert prediction["label"] in Predictor(MODEL_DIR).model.config.label2id
        assert 0 < prediction["score"] <= 1


def test_metrics_count_answers_by_status_for_prometheus(client: TestClient) -> None:
    """/metrics (outside the OpenAPI schema) counts each endpoint's answers by status class:
    what a canary analysis divides 5xx by."""
    example = task.example_input(load_prepared()["test"])
    counted = 'http_requests_total{handler="/predict",method="POST",status="%s"}'

    def count(status: str) -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith(counted % status):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    answered, refused = count("2xx"), count("4xx")
    assert post_predict(client, example).status_code == 200
    if task.INPUT_KIND == "text":
        assert client.post("/predict", json={"texts": []}).status_code == 422
    else:
        assert client.post("/predict", files={"file": ("upload", b"")}).status_code == 422
    assert (count("2xx"), count("4xx")) == (answered + 1, refused + 1)
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]
    # Each app counts its own answers (the process-wide registry would let only the first count).
    with TestClient(create_app(MODEL_DIR)) as other:
        assert post_predict(other, example).status_code == 200
        assert 'status="2xx"} 1.0' in other.get("/metrics").text
    assert count("2xx") == answered + 1
    assert "process_resident_memory_bytes" in client.get("/metrics").text


TEXT_PAYLOADS = [
    ({"json": {"texts": "not a list"}}, 422, "list"),
    ({"json": {"texts": []}}, 422, "at least 1"),
    ({"json": {"texts": ["   "]}}, 422, "texts[0] is empty"),
    ({"json": {"texts": ["x" * 10_001]}}, 422, "longer than"),
    ({"json": {"text": "wrong field"}}, 422, "texts"),
    ({"content": b"not json", "headers": {"content-type": "application/json"}}, 422, "JSON"),
]
FILE_PAYLOADS = [
    ({"files": {"file": ("upload", b"")}}, 422, "file is empty"),
    ({"files": {"file": ("upload", b"definitely not a media file")}}, 422, "cannot be decoded"),
    ({"files": {"file": ("big.bin", b"0" * (10 * 1024 * 1024 + 1))}}, 413, "larger than"),
    ({"data": {"text": "no file"}}, 422, "file"),
]


@pytest.mark.parametrize(
    ("request_kwargs", "status", "message"),
    TEXT_PAYLOADS if task.INPUT_KIND == "text" else FILE_PAYLOADS,
    ids=lambda value: value if isinstance(value, int) else None,
)
def test_bad_payloads_get_a_clear_4xx(client: TestClient, request_kwargs, status, message) -> None:
    response = client.post("/predict", **request_kwargs)
    assert response.status_code == status, response.text
    assert message in response.text


def test_the_server_sees_the_training_tensors(client: TestClient, monkeypatch) -> None:
    """No training/serving skew: one sample through the HTTP server and through a training batch."""
    test = load_prepared()["test"]
    predictor = Predictor(MODEL_DIR)
    training_row = test.with_transform(task.training_features(predictor.processor))[0]
    training_row.pop("labels")
    training_batch = task.collator(predictor.processor)([training_row])

    seen = {}
    original = Predictor.encode

    def spy(self, inputs):
        seen.update(original(self, inputs))
        return seen

    monkeypatch.setattr(Predictor, "encode", spy)
    assert post_predict(client, task.example_input(test)).status_code == 200
    assert set(seen) == set(training_batch)
    for key, tensor in training_batch.items():
        served = seen[key]
        if served.shape != tensor.shape:  # a language model's training rows go on with the answer
            assert (task.INPUT_KIND, task.TARGET) == ("text", "transcript"), key
            tensor = tensor[:, : served.shape[1]]
        assert torch.equal(served, tensor), key


def test_concurrent_requests_share_model_calls_and_get_their_own_answers(trained) -> None:
    test = load_prepared()["test"]
    examples = [task.example_input(test.select([i])) for i in range(min(16, len(test)))]
    # A long wait makes the batching certain; the shipped default takes only what already waits.
    one_at_a_time = ServeParams(max_batch_size=1, max_wait_ms=0, max_queue=1)
    with TestClient(create_app(MODEL_DIR, serving=one_at_a_time)) as client:
        alone = [post_predict(client, raw).json()["predictions"][0] for raw in examples]
    serving = ServeParams(max_batch_size=64, max_wait_ms=300, max_queue=256)
    with TestClient(create_app(MODEL_DIR, serving=serving)) as client:
        state = client.app.state  # type: ignore[attr-defined]  # FastAPI's, typed as ASGI's
        calls_before = state.batcher.calls
        with ThreadPoolExecutor(len(examples)) as pool:
            responses = list(pool.map(lambda raw: post_predict(client, raw), examples))
        calls = state.batcher.calls - calls_before
    assert [response.status_code for response in responses] == [200] * len(examples)
    batched = [response.json()["predictions"][0] for response in responses]
    for index, (one, other) in enumerate(zip(batched, alone, strict=True)):
        assert same_prediction(one, other), (index, one, other)
    assert calls < len(examples)


def test_a_full_queue_answers_503_with_retry_after(trained, monkeypatch) -> None:
    original = Predictor.predict

    def slow(self, raw_inputs):
        time.sleep(0.5)
        return original(self, raw_inputs)

    monkeypatch.setattr(Predictor, "predict", slow)
    example = task.example_input(load_prepared()["test"])
    serving = ServeParams(max_batch_size=1, max_wait_ms=0, max_queue=1)
    with (
        TestClient(create_app(MODEL_DIR, serving=serving)) as client,
        ThreadPoolExecutor(4) as pool,
    ):
        responses = list(pool.map(lambda _: post_predict(client, example), range(4)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses[0] == 200 and statuses[-1] == 503, statuses
    refused = next(response for response in responses if response.status_code == 503)
    assert refused.headers["retry-after"] == "1"
    assert "at capacity" in refused.json()["detail"]
