"""Smoke test of the whole training run on the embedded default: it learns, and it is tracked."""

import json
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch

from answers import same_prediction
from {{ cookiecutter.package_name }}.core.checksums import file_md5
from {{ cookiecutter.package_name }}.core.paths import (
    EVALUATE_PLOTS_DIR,
    METRICS_FILE,
    MODEL_DIR,
    PREPARED_DIR,
    TRAIN_PLOTS_DIR,
)
from {{ cookiecutter.package_name }}.core.project import TASK
from {{ cookiecutter.package_name }}.data.prepare import label_names, load_prepared
from {{ cookiecutter.package_name }}.serving.predict import Predictor, to_model_input
from {{ cookiecutter.package_name }}.tasks import task
from {{ cookiecutter.package_name }}.tracking import environment, runs
from {{ cookiecutter.package_name }}.training.baselines import margin, shortfall
from {{ cookiecutter.package_name }}.training.evaluate import evaluate_model
from {{ cookiecutter.package_name }}.training.train import train

# Training must close at least this share of the untrained model's distance to a perfect score on
# the held-out test split (accuracy from chance, an error rate from about 1).
MIN_SHARE_OF_GAP_CLOSED = 0.6
# A classifier must also be well above chance (1 / number of classes).
MIN_ACCURACY = 0.8


def test_the_model_learned(trained, tmp_path, monkeypatch) -> None:
    metrics = json.loads(METRICS_FILE.read_text(encoding="utf-8"))
    # `evaluate` on the saved model scores exactly as `train` did on the model in memory.
    assert metrics == trained.result.metrics
    splits = load_prepared()
    processor, untrained = task.build(trained.params, splits["train"], label_names(splits["train"]))
    monkeypatch.chdir(tmp_path)  # the untrained model's plots must not replace the trained one's
    before = evaluate_model(trained.params, processor, untrained, splits["test"], metrics_file=None)
    judging = task.JUDGING
    gap = abs(judging.perfect_score - before[judging.primary_metric])
    closed = abs(judging.perfect_score - metrics[judging.primary_metric])
    assert closed <= (1 - MIN_SHARE_OF_GAP_CLOSED) * gap, (before, metrics)
    assert metrics["loss"] < before["loss"]
    if task.TARGET == "class":
        assert metrics["accuracy"] >= MIN_ACCURACY
        assert metrics["f1_macro"] >= MIN_ACCURACY - 0.05


def test_the_model_beats_its_baselines_on_the_same_test_split(trained) -> None:
    metrics = trained.result.metrics
    assert set(metrics["baselines"]) == set(task.JUDGING.baselines)
    assert margin(metrics) > 0
    assert shortfall(metrics) is None


def test_the_training_loss_fell(trained) -> None:
    losses = [entry["loss"] for entry in trained.result.history if "loss" in entry]
    # Early stopping may end the run before the last epoch of the budget (a perfect validation
    # score ends it at once, after as few as two epochs on the embedded data).
    assert 1 <= len(losses) <= trained.params.train.epochs
    assert min(losses) < 0.75 * losses[0]


def test_plots_are_written(trained) -> None:
    for name in ("loss_curve.png", "loss.csv"):
        assert (TRAIN_PLOTS_DIR / name).stat().st_size > 0, name
    for name in ("baselines.csv", "baselines.png", *task.REPORT_FILES):
        assert (EVALUATE_PLOTS_DIR / name).stat().st_size > 0, name


def artifact_paths(client: mlflow.MlflowClient, run_id: str, folder: str) -> list[str]:
    """The paths of the files a run logged under `folder`, in its sub-folders too."""
    paths: list[str] = []
    for item in client.list_artifacts(run_id, folder):
        paths += artifact_paths(client, run_id, item.path) if item.is_dir else [item.path]
    return paths


def test_the_mlflow_run_holds_params_metrics_tags_and_model(trained) -> None:
    client = mlflow.MlflowClient()
    run = client.get_run(trained.result.run_id)
    assert run.data.params["train.epochs"] == str(trained.params.train.epochs)
    assert run.data.params["data.source"] == "embedded"
    history = client.get_metric_history(run.info.run_id, "val_loss")
    epochs_run = sum("loss" in entry for entry in trained.result.history)
    assert [point.step for point in history] == list(range(1, epochs_run + 1))
    assert run.data.metrics["test_loss"] == pytest.approx(trained.result.metrics["loss"])
    for name, scores in trained.result.metrics["baselines"].items():
        for metric, value in scores.items():
            assert run.data.metrics[f"baseline_{name}_{metric}"] == pytest.approx(value)
    tags = run.data.tags
    for name in ("git_commit", "git_dirty", "data_hash", "dependency_hash"):
        assert f"lineage.{name}" in tags, name
    # DVC's name for the prepared data: `<md5>.dir`, as dvc.lock records it.
    assert tags["lineage.data_hash"].endswith(".dir")
    assert len(tags["lineage.data_hash"]) == 36
    assert tags["lineage.feedback_rows"] == "0"  # no Label Studio export in data/feedback
    # The packages the run ran with, and their hash: what `reproduce` compares with its own.
    listed = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/{environment.ARTIFACT}")
    packages = environment.parse(listed)
    assert packages["torch"] == torch.__version__ and packages["mlflow"] == mlflow.__version__
    assert environment.fingerprint(packages) == tags[environment.HASH_TAG]
    artifacts = {
        path
        for folder in ("plots/train", "plots/evaluate")
        for path in artifact_paths(client, run.info.run_id, folder)
    }
    assert "plots/train/loss_curve.png" in artifacts
    assert {f"plots/evaluate/{name}" for name in task.REPORT_FILES} <= artifacts


def test_the_run_shows_its_datasets_name_and_model_scores_in_mlflow(trained) -> None:
    """What the MLflow UI shows without reading tags: the Datasets panel, a telling run name,
    and the test scores on the logged model's page."""
    client = mlflow.MlflowClient()
    run = client.get_run(trained.result.run_id)
    inputs = {
        entry.dataset.name: (entry.dataset.digest, {tag.key: tag.value for tag in entry.tags})
        for entry in run.inputs.dataset_inputs
    }
    prepared = trained.workspace / PREPARED_DIR
    for split, context in runs.DATASET_CONTEXTS.items():
        digest, tags = inputs[f"{runs.EXPERIMENT}-{split}"]
        # The MD5 DVC records for the file: dvc.lock and the DVC cache find the same bytes.
        assert digest == file_md5(prepared / f"{split}.parquet")
        assert tags["mlflow.data.context"] == context
    assert run.info.run_name.startswith(f"train {TASK} @ ")
    model = client.get_logged_model(run.outputs.model_outputs[0].model_id)
    on_model = {metric.key: metric.value for metric in model.metrics}
    primary = task.JUDGING.primary_metric
    assert on_model[f"test_{primary}"] == pytest.approx(trained.result.metrics[primary])


def test_a_run_is_named_by_what_changed_since_the_latest() -> None:
    params = {"train.epochs": 3, "train.learning_rate": 0.001, "seed": 1}
    first = runs.run_name("train", params, None)
    assert first.startswith(f"train {TASK} @ ") and ":" not in first
    previous = {"train.epochs": "3", "train.learning_rate": "0.002", "seed": "1"}
    assert runs.run_name("train", params, previous) == f"{first}: train.learning_rate=0.001"
    many = {f"p{i}": i for i in range(5)}
    assert runs.run_name("train", many, {}).endswith(": p0=0, p1=1, p2=2 (+2 more)")


def test_the_saved_and_logged_models_predict_as_in_memory(trained) -> None:
    example = task.example_input(load_prepared()["test"])
    in_memory = Predictor(MODEL_DIR).predict([example])
    logged = mlflow.pyfunc.load_model(trained.result.model_uri)
    from_mlflow = logged.predict(pd.DataFrame({"input": [to_model_input(example)]}))
    [record] = from_mlflow.to_dict("records")
    assert same_prediction(record, in_memory[0]), (record, in_memory)
    assert logged.metadata.signature is not None
    # The logged model carries the whole package, so it loads where the project is not installed.
    code = Path(mlflow.artifacts.download_artifacts(trained.result.model_uri)) / "code"
    assert {path.name for path in code.iterdir()} == {"{{ cookiecutter.package_name }}"}
    assert (code / "{{ cookiecutter.package_name }}" / "serving" / "predict.py").is_file()


def test_a_local_pretrained_checkpoint_is_loaded(trained, tmp_path, monkeypatch) -> None:
    """`model.pretrained` naming a folder the project saved: the code path of a hub checkpoint."""
    shutil.copytree(trained.workspace / MODEL_DIR, tmp_path / "checkpoint")
    shutil.copytree(trained.workspace / PREPARED_DIR, tmp_path / PREPARED_DIR)
    monkeypatch.chdir(tmp_path)
    params = trained.params
    model = params.model.model_copy(update={"pretrained": str(tmp_path / "checkpoint")})
    # As the README advises for fine-tuning: a lower learning rate than training from scratch.
    one_epoch = params.train.model_copy(
        update={"epochs": 1, "learning_rate": params.train.learning_rate / 10}
    )
    result = train(params.model_copy(update={"model": model, "train": one_epoch}))
    # Starting from the trained weights, one more epoch keeps what was learned.
    judging = task.JUDGING
    lost = trained.result.metrics[judging.primary_metric] - result.metrics[judging.primary_metric]
    assert (lost if judging.greater_is_better else -lost) <= 0.1
    assert (tmp_path / MODEL_DIR / "config.json").is_file()


GLOO_LOST_PEER = (
    "[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:18307: "
    "Connection reset by peer. This is typically caused by a remote worker hanging"
)


def test_a_lost_peer_ends_a_distributed_run_in_one_line(monkeypatch) -> None:
    """What gloo raises on the processes still running when another process of a torchrun job
    stops (tests/scale_out.py in the template kills a whole machine's agent for real)."""
    from {{ cookiecutter.package_name }}.core.errors import FlywheelError
    from {{ cookiecutter.package_name }}.training.device import one_line_when_a_peer_stops

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(FlywheelError) as lost, one_line_when_a_peer_stops():
        raise RuntimeError(GLOO_LOST_PEER)
    assert str(lost.value) == (
        "train: another process of this 2-process job stopped (Read error [127.0.0.1]:18307: "
        "Connection reset by peer): start the job again on every machine; `train` resumes "
        "from the last checkpoint"
    )
    with pytest.raises(RuntimeError, match=r"^shapes differ$"), one_line_when_a_peer_stops():
        raise RuntimeError("shapes differ")  # a bug, not a lost peer: its own traceback
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(RuntimeError, match="Read error"), one_line_when_a_peer_stops():
        raise RuntimeError(GLOO_LOST_PEER)
