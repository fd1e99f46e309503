"""Tracking outages: the MLflow server is killed during a real `train` (conftest.py's
`interrupted_run`, a resumed run); the training finishes and saves its model, the rest of the
run is kept in the local store, and `sync-runs` copies it into the server's run once back."""

import mlflow
import pandas as pd
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.core.checksums import verify
from {{ cookiecutter.package_name }}.core.paths import MODEL_DIR
from {{ cookiecutter.package_name }}.data.prepare import load_prepared
from {{ cookiecutter.package_name }}.serving.predict import to_model_input
from {{ cookiecutter.package_name }}.tasks import task
from {{ cookiecutter.package_name }}.tracking.offline import OFFLINE_DB


def test_the_training_outlives_the_server_and_says_where_the_run_went(interrupted_run) -> None:
    run_id = interrupted_run.result.run_id
    # The model is saved, named by the server's run.
    assert verify(interrupted_run.project / MODEL_DIR)["run_id"] == run_id
    [line] = [line for line in interrupted_run.warnings if "unreachable" in line]
    assert f"run {run_id} continues in {OFFLINE_DB}" in line, line
    assert (interrupted_run.project / OFFLINE_DB).is_file()


def test_sync_runs_fills_in_the_servers_run(interrupted_run, tracking_server, monkeypatch) -> None:
    run_id = interrupted_run.result.run_id
    assert f"copied 1 run(s) to {tracking_server.url}: {run_id}" in interrupted_run.synced
    monkeypatch.chdir(interrupted_run.project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server.url)
    assert "nothing to sync" in CliRunner().invoke(app, ["sync-runs"]).output

    client = mlflow.MlflowClient(tracking_server.url)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert f"test_{task.JUDGING.primary_metric}" in run.data.metrics
    # Every epoch: the killed process's, the resumed run's before the outage and after it.
    epochs = sum("eval_loss" in entry for entry in interrupted_run.result.history)
    steps = sorted({point.step for point in client.get_metric_history(run_id, "val_loss")})
    assert steps == list(range(1, epochs + 1)), steps
    plots = {item.path for item in client.list_artifacts(run_id, "plots/train")}
    assert "plots/train/loss_curve.png" in plots
    [model] = client.search_logged_models(
        [run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
    )
    # The model logged while the server was away loads from the server and answers.
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_server.url)
    try:
        loaded = mlflow.pyfunc.load_model(f"models:/{model.model_id}")
    finally:
        mlflow.set_tracking_uri(previous)
    example = task.example_input(load_prepared()["test"])
    assert len(loaded.predict(pd.DataFrame({"input": [to_model_input(example)]}))) == 1
