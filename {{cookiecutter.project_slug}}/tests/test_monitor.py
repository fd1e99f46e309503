"""Drift monitoring: a live server records the traffic it answers; `monitor` finds no drift in
traffic like the training data (the test split) and drift in traffic shifted away from it."""

import io
import json
import shutil
import time
import urllib.request

import numpy as np
import pytest
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.core.paths import MODEL_DIR, MONITOR_DIR
from {{ cookiecutter.package_name }}.data.prepare import load_prepared
from {{ cookiecutter.package_name }}.lifecycle.monitor import (
    DRIFT_FILE,
    DRIFT_PLOT,
    _rotate,
    kept_inputs,
)
from {{ cookiecutter.package_name }}.serving.bench import http_request, running_server
from {{ cookiecutter.package_name }}.serving.predict import to_model_input
from {{ cookiecutter.package_name }}.tasks import task

# The feature each kind of shifted traffic must move (others may move too).
SHIFTED_FEATURE = {"text": "oov_rate", "image": "brightness", "audio": "loudness_db"}


# Requests sent per test: past monitor.min_records, enough for the KS test to see a shift.
REQUESTS = 30


def _raw_inputs(split) -> list:
    """The first inputs of `split`, each as a client sends it."""
    return [task.example_input(split.select([index])) for index in range(min(REQUESTS, len(split)))]


def _shifted(raw):
    """The same input moved away from the training data: unseen words, a washed-out image,
    a clip 30 dB quieter."""
    if task.INPUT_KIND == "text":
        return raw + " " + " ".join(f"zqx{index}vk" for index in range(6))
    if task.INPUT_KIND == "image":
        from PIL import Image

        image = task.decode_input(raw).convert("RGB")
        washed = Image.eval(image, lambda value: 200 + value // 5)
        buffer = io.BytesIO()
        washed.save(buffer, format="PNG")
        return buffer.getvalue()
    from {{ cookiecutter.package_name }}.tasks.audio import encode_wav

    return encode_wav(np.asarray(task.decode_input(raw)) * 0.03)


def _serve(trained, inputs) -> dict:
    """Send each input to a live server recording its traffic; its /health once all is written."""
    # Keeping the inputs too (shadow replay's), which monitor never reads.
    monitoring = trained.params.monitor.model_copy(update={"keep_inputs": True})
    model_dir = trained.workspace / MODEL_DIR
    with running_server(model_dir, trained.params.serve, monitoring=monitoring) as url:
        for raw in inputs:
            with urllib.request.urlopen(http_request(url, raw), timeout=60) as answer:
                assert answer.status == 200
        deadline = time.monotonic() + 60
        while True:
            with urllib.request.urlopen(url.replace("/predict", "/health"), timeout=10) as answer:
                health = json.loads(answer.read())
            if health["monitoring"]["recorded"] >= len(inputs) or time.monotonic() > deadline:
                return health


@pytest.fixture
def project_dir(trained, tmp_path, monkeypatch):
    """A folder with the session's prepared data and params.yaml, where the server records."""
    (tmp_path / "data").symlink_to(trained.workspace / "data")
    shutil.copy(trained.workspace / "params.yaml", tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _monitor(trained):
    return CliRunner().invoke(app, ["monitor", "--model-dir", str(trained.workspace / MODEL_DIR)])


def test_traffic_like_the_training_data_shows_no_drift(trained, project_dir) -> None:
    inputs = _raw_inputs(load_prepared()["test"])
    health = _serve(trained, inputs)
    assert health["monitoring"] == {"recorded": len(inputs), "dropped": 0}
    # Kept as the clients sent them (a file's bytes, not the server's decoding), in order.
    kept = [line["input"] for line in kept_inputs(project_dir / MONITOR_DIR, days=1)]
    assert kept == [to_model_input(raw) for raw in inputs]
    result = _monitor(trained)
    assert result.exit_code == 0, result.output
    assert "no drift" in result.output
    report = json.loads((project_dir / MONITOR_DIR / DRIFT_FILE).read_text())
    assert report["requests"] == len(inputs) and report["drifted"] == []
    assert (project_dir / MONITOR_DIR / DRIFT_PLOT).stat().st_size > 0


def test_shifted_traffic_is_drift_and_fails_in_one_line(trained, project_dir) -> None:
    inputs = [_shifted(raw) for raw in _raw_inputs(load_prepared()["test"])]
    _serve(trained, inputs)
    result = _monitor(trained)
    assert result.exit_code == 1, result.output
    [error] = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert "the traffic drifted from the training split in" in error
    report = json.loads((project_dir / MONITOR_DIR / DRIFT_FILE).read_text())
    assert SHIFTED_FEATURE[task.INPUT_KIND] in report["drifted"], report


def test_too_little_traffic_is_one_line(trained, project_dir) -> None:
    result = _monitor(trained)
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert "holds 0 recorded requests, fewer than monitor.min_records" in line


def test_records_rotate_and_keep_a_bounded_number_of_files(tmp_path) -> None:
    for generation in range(5):
        (tmp_path / "requests.jsonl").write_text(f"{generation}\n")
        _rotate(tmp_path, keep=3)
    kept = sorted(path.name for path in tmp_path.iterdir())
    assert kept == ["requests.1.jsonl", "requests.2.jsonl"]
    assert (tmp_path / "requests.1.jsonl").read_text() == "4\n"
