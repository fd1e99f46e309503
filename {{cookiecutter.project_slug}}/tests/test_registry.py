"""The model registry through a real MLflow server on 127.0.0.1: `promote` makes the first
champion, promotes a better run, refuses a worse one with both scores; `predict` and `serve`
answer from models:/<name>@champion."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.data import load_prepared
from {{ cookiecutter.package_name }}.registry import CHAMPION, MODEL_NAME, improvement, model_folder
from {{ cookiecutter.package_name }}.serve import create_app
from {{ cookiecutter.package_name }}.tasks import task
from {{ cookiecutter.package_name }}.train import train

CHAMPION_URI = f"models:/{MODEL_NAME}@{CHAMPION}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    """`mlflow server` as `make mlflow-server` starts it, on a free port; its URL. MLflow keeps
    the last tracking URI it was given process-wide: the session's store is set back after."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    store, artifacts = f"sqlite:///{root / 'mlflow.db'}", str(root / "mlartifacts")
    options = ["--port", str(port), "--workers", "1", "--backend-store-uri", store]
    options += ["--artifacts-destination", artifacts]
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", *options],
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5):
                    break
            except OSError:
                assert server.poll() is None, "the MLflow server exited at start"
                assert time.monotonic() < deadline, "the MLflow server did not start in 120 s"
                time.sleep(0.25)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        mlflow.set_tracking_uri(previous)


def _train_for(params, folder: Path, epochs: int, learning_rate: float):
    """A real training run, logged to the tracking server, its model saved in `folder` (the
    session's models/model stays as it is)."""
    budget = {"epochs": epochs, "learning_rate": learning_rate}
    params = params.model_copy(update={"train": params.train.model_copy(update=budget)})
    return train(params, folder / "model")


def test_promote_keeps_the_better_model_as_champion_and_serves_it(
    trained, tracking_server, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server)
    # The session's prepared data, and plots of these runs kept apart from the session's.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").symlink_to(trained.workspace / "data")
    shutil.copy(trained.workspace / "params.yaml", tmp_path)
    params = trained.params
    metric = f"test {task.JUDGING.primary_metric}"
    # One epoch at a thousandth of the learning rate learns next to nothing; three at the
    # project's own rate learn the embedded data.
    learning_rate = params.train.learning_rate
    short = _train_for(params, tmp_path / "short", 1, learning_rate / 1000)
    longer = _train_for(params, tmp_path / "longer", 3, learning_rate)
    short_score = short.metrics[task.JUDGING.primary_metric]
    longer_score = longer.metrics[task.JUDGING.primary_metric]
    assert improvement(longer_score, short_score) > 0, (
        f"3 epochs ({longer_score}) should beat 1 slow one ({short_score}) on the {metric}"
    )

    runner = CliRunner()
    first = runner.invoke(app, ["promote", "--run", short.run_id])
    assert first.exit_code == 0, first.output
    assert f"version 1 (run {short.run_id}) to @{CHAMPION}: the first champion" in first.output

    second = runner.invoke(app, ["promote", "--run", longer.run_id])
    assert second.exit_code == 0, second.output
    assert f"{metric} {longer_score} against {short_score} of version 1" in second.output

    refused = runner.invoke(app, ["promote", "--run", short.run_id])
    assert refused.exit_code == 1
    [line] = refused.output.strip().splitlines()
    assert line.startswith("error: not promoted:"), line
    assert f"{short_score} does not beat {CHAMPION} version 2's {longer_score}" in line

    again = runner.invoke(app, ["promote", "--run", longer.run_id])
    assert again.exit_code == 0 and "is already @champion" in again.output, again.output

    import mlflow

    version = mlflow.MlflowClient(tracking_server).get_model_version_by_alias(MODEL_NAME, CHAMPION)
    assert (version.version, version.run_id) == ("2", longer.run_id)
    # The registered version carries its run's lineage and the score it was judged by.
    assert version.tags["lineage.data_hash"] and version.tags["task"] == "{{ cookiecutter.task }}"
    assert float(version.tags[f"test_{task.JUDGING.primary_metric}"]) == longer_score

    example = task.example_input(load_prepared()["test"])
    with (
        model_folder(CHAMPION_URI) as folder,
        TestClient(create_app(folder, serving=params.serve, source=CHAMPION_URI)) as client,
    ):
        health = client.get("/health").json()
        assert (health["model"], health["run_id"]) == (CHAMPION_URI, longer.run_id)
        if task.INPUT_KIND == "text":
            answer = client.post("/predict", json={"texts": [example]})
        else:
            answer = client.post("/predict", files={"file": ("upload", example)})
        assert answer.status_code == 200, answer.text

    if task.INPUT_KIND == "text":
        argument = example
    else:
        argument = str(tmp_path / "input")
        Path(argument).write_bytes(example)
    predicted = runner.invoke(
        app, ["predict", "--model", CHAMPION_URI, "--out-dir", str(tmp_path), argument]
    )
    assert predicted.exit_code == 0, predicted.output
    [answer_line] = [line for line in predicted.output.splitlines() if line.startswith("{")]
    assert json.loads(answer_line)["input"] == argument


def test_an_unknown_alias_is_one_line(trained, tracking_server, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server)
    result = CliRunner().invoke(app, ["predict", "--model", f"models:/{MODEL_NAME}@nope", "x"])
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"error: model models:/{MODEL_NAME}@nope cannot be loaded"), line
