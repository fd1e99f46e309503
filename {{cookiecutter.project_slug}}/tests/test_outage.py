"""Tracking outages: the MLflow server is killed during a real `train`; the training finishes and
saves its model, the rest of the run is kept in the local store, and `sync-runs` copies it into
the server's run once the server is back."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.checksums import verify
from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import MODEL_DIR
from {{ cookiecutter.package_name }}.data import load_prepared
from {{ cookiecutter.package_name }}.offline import OFFLINE_DB
from {{ cookiecutter.package_name }}.predict import to_model_input
from {{ cookiecutter.package_name }}.tasks import task
from {{ cookiecutter.package_name }}.tracking import EXPERIMENT

SRC = Path(__file__).resolve().parents[1] / "src"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server(root: Path, port: int) -> subprocess.Popen:
    """`mlflow server` on 127.0.0.1 in its own process group (its workers die with it), once it
    answers."""
    options = ["--port", str(port), "--workers", "1"]
    options += ["--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"]
    options += ["--artifacts-destination", str(root / "mlartifacts")]
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", *options],
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
                return process
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "no MLflow server"
            time.sleep(0.2)


def _kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def _first_epoch_logged(client, process: subprocess.Popen) -> str:
    """The run's id once the server holds its first epoch's validation metrics."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        experiment = client.get_experiment_by_name(EXPERIMENT)
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        if runs and any(key.startswith("val_") for key in runs[0].data.metrics):
            return runs[0].info.run_id
        time.sleep(0.05)
    output = process.stdout.read() if process.stdout else ""
    raise AssertionError(f"the training ended before its first epoch was logged: {output[-2000:]}")


def test_a_server_killed_mid_run_loses_nothing(trained, tmp_path, monkeypatch) -> None:
    session_uri = mlflow.get_tracking_uri()
    store, project = tmp_path / "server", tmp_path / "project"
    store.mkdir()
    project.mkdir()
    (project / "data").symlink_to(trained.workspace / "data")
    shutil.copy(trained.workspace / "params.yaml", project)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = _server(store, port)
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    training = subprocess.Popen(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}", "train"],
        cwd=project,
        env={**os.environ, "PYTHONPATH": path, "MLFLOW_TRACKING_URI": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        run_id = _first_epoch_logged(mlflow.MlflowClient(url), training)
    finally:
        _kill(server)
    output, _ = training.communicate(timeout=900)

    # The training finished and saved its model, named by the server's run.
    assert training.returncode == 0, output[-3000:]
    assert verify(project / MODEL_DIR)["run_id"] == run_id
    [line] = [line for line in output.splitlines() if "unreachable" in line]
    assert f"run {run_id} continues in {OFFLINE_DB}" in line, line
    assert (project / OFFLINE_DB).is_file()

    server = _server(store, port)  # back, with the same store
    try:
        monkeypatch.chdir(project)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        synced = CliRunner().invoke(app, ["sync-runs"])
        assert synced.exit_code == 0, synced.output
        assert f"copied 1 run(s) to {url}: {run_id}" in synced.output
        again = CliRunner().invoke(app, ["sync-runs"])
        assert "nothing to sync" in again.output

        client = mlflow.MlflowClient(url)
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert f"test_{task.JUDGING.primary_metric}" in run.data.metrics
        # Every epoch, those before the outage and those after, in one history.
        steps = [point.step for point in client.get_metric_history(run_id, "val_loss")]
        assert steps == list(range(1, len(steps) + 1)) and len(steps) > 1, steps
        plots = {item.path for item in client.list_artifacts(run_id, "plots/train")}
        assert "plots/train/loss_curve.png" in plots
        models = client.search_logged_models(
            [run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
        )
        assert len(models) == 1
        # The model logged while the server was away loads from the server and answers.
        mlflow.set_tracking_uri(url)
        loaded = mlflow.pyfunc.load_model(f"models:/{models[0].model_id}")
        example = task.example_input(load_prepared()["test"])
        answer = loaded.predict(pd.DataFrame({"input": [to_model_input(example)]}))
        assert len(answer) == 1
    finally:
        _kill(server)
        mlflow.set_tracking_uri(session_uri)
