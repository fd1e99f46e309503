"""The model registry through a real MLflow server on 127.0.0.1: `promote` makes the first
champion, promotes a better run, refuses a worse one with both scores; `predict` and `serve`
answer from models:/<name>@champion; `rollback` restores the champion it replaced."""

import json
import shutil
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

import traffic
from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.core.paths import MONITOR_DIR
from {{ cookiecutter.package_name }}.data.prepare import load_prepared
from {{ cookiecutter.package_name }}.lifecycle.registry import (
    CHAMPION,
    MODEL_NAME,
    REPLACED_TAG,
    improvement,
    model_folder,
)
from {{ cookiecutter.package_name }}.serving.serve import create_app
from {{ cookiecutter.package_name }}.tasks import task
from {{ cookiecutter.package_name }}.training.train import train

CHAMPION_URI = f"models:/{MODEL_NAME}@{CHAMPION}"


def _train_for(params, folder: Path, epochs: int, learning_rate: float):
    """A real training run, logged to the tracking server, its model saved in `folder` (the
    session's models/model stays as it is)."""
    budget = {"epochs": epochs, "learning_rate": learning_rate}
    params = params.model_copy(update={"train": params.train.model_copy(update=budget)})
    return train(params, folder / "model")


def test_promote_keeps_the_better_model_as_champion_and_serves_it(
    trained, tracking_server, interrupted_run, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server.url)
    # The session's prepared data, and plots of these runs kept apart from the session's.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").symlink_to(trained.workspace / "data")
    shutil.copy(trained.workspace / "params.yaml", tmp_path)
    params = trained.params
    metric = f"test {task.JUDGING.primary_metric}"
    # One epoch at a thousandth of the learning rate learns next to nothing; the interrupted
    # run trained with the project's own budget (and reached the server by the sync).
    short = _train_for(params, tmp_path / "short", 1, params.train.learning_rate / 1000)
    longer = interrupted_run.result
    short_score = short.metrics[task.JUDGING.primary_metric]
    longer_score = longer.metrics[task.JUDGING.primary_metric]
    assert improvement(longer_score, short_score) > 0, (
        f"the trained model ({longer_score}) should beat 1 slow epoch ({short_score}): {metric}"
    )

    runner = CliRunner()
    first = runner.invoke(app, ["promote", "--run", short.run_id])
    assert first.exit_code == 0, first.output
    assert f"version 1 (run {short.run_id}) to @{CHAMPION}: the first champion" in first.output

    # With registry.require_shadow, the better run is promoted only with a passing shadow report
    # of its model against the champion's, both read from the registry.
    settings = tmp_path / "params.yaml"
    traffic.set_keys(settings, require_shadow="true", min_agreement=1.0)
    unshadowed = runner.invoke(app, ["promote", "--run", longer.run_id])
    assert unshadowed.exit_code == 1
    # (MLflow's line on registering the version comes first.)
    [line] = [line for line in unshadowed.output.splitlines() if line.startswith("error:")]
    no_report = "error: not promoted: registry.require_shadow is true and there is no"
    assert line.startswith(no_report), line
    assert line.endswith(f"run `make shadow CANDIDATE={longer.run_id}` first"), line
    traffic.keep(tmp_path / "short" / "model", params.monitor, tmp_path / MONITOR_DIR, 8)
    # A model that barely learned and a trained one cannot agree on every input.
    failed = runner.invoke(app, ["shadow", "--candidate", longer.run_id])
    assert failed.exit_code == 1 and "is below shadow.min_agreement 1.0" in failed.output
    refused_by_shadow = runner.invoke(app, ["promote", "--run", longer.run_id])
    assert refused_by_shadow.exit_code == 1
    [line] = refused_by_shadow.output.strip().splitlines()
    failed_replay = f"error: not promoted: run {longer.run_id} failed the shadow replay"
    assert line.startswith(failed_replay), line
    traffic.set_keys(settings, min_agreement=0.0, max_latency_ratio=50, max_memory_ratio=50)
    passed = runner.invoke(app, ["shadow", "--candidate", longer.run_id])
    assert passed.exit_code == 0, passed.output
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

    client = mlflow.MlflowClient(tracking_server.url)
    version = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    assert (version.version, version.run_id) == ("2", longer.run_id)
    # The registered version carries its run's lineage and the score it was judged by.
    assert version.tags["lineage.data_hash"] and version.tags["task"] == "{{ cookiecutter.task }}"
    assert float(version.tags[f"test_{task.JUDGING.primary_metric}"]) == longer_score
    # The logged model names its version once, so MLflow's UI shows it registered (the
    # open-source server keeps the logged model in the version's source, not in its model_id).
    logged = client.get_logged_model(version.source.removeprefix("models:/"))
    linked = json.loads(logged.tags["mlflow.modelVersions"])
    assert [(v["name"], str(v["version"])) for v in linked] == [(MODEL_NAME, "2")]

    example: Any = task.example_input(load_prepared()["test"])  # text, or a file's bytes
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

    # Version 2 replaced version 1: rollback puts version 1 back, in one line, and refuses to
    # go further (version 1 replaced no champion).
    registry = mlflow.MlflowClient(tracking_server.url)
    assert registry.get_model_version(MODEL_NAME, "2").tags[REPLACED_TAG] == "1"
    rolled = runner.invoke(app, ["rollback"])
    assert rolled.exit_code == 0, rolled.output
    [line] = rolled.output.strip().splitlines()
    assert line == (
        f"rolled @{CHAMPION} back from {MODEL_NAME} version 2 (run {longer.run_id}, {metric} "
        f"{longer_score}) to version 1 (run {short.run_id}, {metric} {short_score})"
    ), line
    assert registry.get_model_version_by_alias(MODEL_NAME, CHAMPION).version == "1"
    # The next `make promote` of the demoted run does not undo the rollback.
    undone = runner.invoke(app, ["promote", "--run", longer.run_id])
    assert undone.exit_code == 1
    [line] = undone.output.strip().splitlines()
    demoted = f"{MODEL_NAME} version 2 (run {longer.run_id}) was rolled back"
    assert line.startswith(f"error: not promoted: {demoted}"), line
    assert registry.get_model_version_by_alias(MODEL_NAME, CHAMPION).version == "1"
    refused = runner.invoke(app, ["rollback"])
    assert refused.exit_code == 1
    [line] = refused.output.strip().splitlines()
    assert line.startswith(f"error: rollback: @{CHAMPION} version 1 replaced no earlier"), line
    assert registry.get_model_version_by_alias(MODEL_NAME, CHAMPION).version == "1"


def test_an_unknown_alias_is_one_line(trained, tracking_server, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server.url)
    result = CliRunner().invoke(app, ["predict", "--model", f"models:/{MODEL_NAME}@nope", "x"])
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"error: model models:/{MODEL_NAME}@nope cannot be loaded"), line
