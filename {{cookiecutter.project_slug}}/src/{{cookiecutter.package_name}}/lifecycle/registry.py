"""The MLflow Model Registry: `promote` a run's model, and load a model by its registry URI.

`promote` registers the model a run logged (one version per run, named after the project) and
moves the alias `champion` to it only when its primary test metric beats the champion's by
`registry.min_improvement` (params.yaml), tagging it with the version it replaced, which
`rollback` moves the alias back to. `serve` and `predict` take any MLflow model URI
(`models:/<name>@champion`, `models:/<name>/3`, `runs:/<id>/model`) as well as a local folder.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import FlywheelError
from ..core.project import TASK
from ..tasks import task
from ..tracking.runs import EXPERIMENT, get_run, project_client

CHAMPION = "champion"
MODEL_NAME = EXPERIMENT
# Where the trained folder lies inside a logged model (the pyfunc artifact `train` names "model").
MODEL_ARTIFACT = "artifacts/model"
# A URI scheme of two letters or more: "C:/models" stays a Windows path.
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")
# What a registered version carries from its run, besides the score it was judged by.
LINEAGE_PREFIXES = ("lineage.", "dvc.", "task")
# The version tag naming the champion a promotion replaced: where `rollback` moves the alias.
REPLACED_TAG = "replaced_champion"
# The tag `rollback` puts on the version it demoted, which `promote` then refuses: the next
# `make promote` of the same run would otherwise undo the rollback.
ROLLED_BACK_TAG = "rolled_back"


@dataclass(frozen=True)
class Version:
    number: str
    run_id: str
    score: float


@dataclass(frozen=True)
class Promotion:
    candidate: Version
    champion: Version | None  # the champion before this promotion
    promoted: bool

    def summary(self) -> str:
        metric = f"test {task.JUDGING.primary_metric}"
        new, score = self.candidate, self.candidate.score
        named = f"{MODEL_NAME} version {new.number} (run {new.run_id})"
        if self.champion is None:
            return f"promoted {named} to @{CHAMPION}: the first champion ({metric} {score})"
        if self.champion.number == new.number:
            return f"{named} is already @{CHAMPION} ({metric} {score})"
        return (
            f"promoted {named} to @{CHAMPION}: {metric} {score} against "
            f"{self.champion.score} of version {self.champion.number}"
        )


def improvement(candidate: float, champion: float) -> float:
    """How much better the candidate scores, whichever direction the primary metric improves in."""
    gain = candidate - champion if task.JUDGING.greater_is_better else champion - candidate
    return round(gain, 6)


def _score(run: Any) -> float:
    metric = f"test_{task.JUDGING.primary_metric}"
    if metric not in run.data.metrics:
        raise FlywheelError(
            f"run {run.info.run_id} has no {metric}: promote a run that finished `train`"
        )
    return run.data.metrics[metric]


def logged_model_id(client: Any, run: Any) -> str:
    models = client.search_logged_models(
        [run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
    )
    if not models:
        raise FlywheelError(
            f"run {run.info.run_id} logged no model: promote a run that finished `train`"
        )
    return models[0].model_id


def _register(client: Any, run: Any, score: float) -> Version:
    """The run's version of the registered model: the existing one, or a new one that carries
    the run's lineage tags and its score."""
    from mlflow.exceptions import MlflowException

    run_id = run.info.run_id
    for version in client.search_model_versions(f"name = '{MODEL_NAME}' and run_id = '{run_id}'"):
        return Version(version.version, run_id, score)
    try:
        client.create_registered_model(
            MODEL_NAME, description=f"{TASK} models of {EXPERIMENT}; @{CHAMPION} is served."
        )
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    tags = {key: value for key, value in run.data.tags.items() if key.startswith(LINEAGE_PREFIXES)}
    tags[f"test_{task.JUDGING.primary_metric}"] = str(score)
    model_id = logged_model_id(client, run)
    version = client.create_model_version(
        MODEL_NAME, f"models:/{model_id}", run_id=run_id, tags=tags, model_id=model_id
    )
    _link_logged_model(client, model_id, version.version)
    return Version(version.version, run_id, score)


def _link_logged_model(client: Any, model_id: str, number: str) -> None:
    """Name the version on its logged model, as `mlflow.register_model` does, so the UI's page
    of the logged model shows it registered. A tracking server does it itself; the local store
    (mlflow.db) does not, and left the model "Not registered"."""
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

    tags = client.get_logged_model(model_id).tags
    versions = json.loads(tags.get(MLFLOW_MODEL_VERSIONS, "[]"))
    if any(v["name"] == MODEL_NAME and str(v["version"]) == number for v in versions):
        return
    versions.append({"name": MODEL_NAME, "version": number})
    client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps(versions)})


def _champion(client: Any) -> Version | None:
    import mlflow

    try:
        version = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None  # no registered model, or no champion yet
    return Version(version.version, version.run_id, _score(client.get_run(version.run_id)))


def promote(run_id: str, min_improvement: float, require_shadow: bool = False) -> Promotion:
    """Register the run's model; make it the champion if it beats the current one by
    `min_improvement` (a tie never does) and, with `require_shadow`, passed `shadow` against it.
    Refused: FlywheelError with both scores, or what the shadow report lacks."""
    client = project_client()
    run = get_run(run_id, client)
    score = _score(run)
    champion = _champion(client)
    candidate = _register(client, run, score)
    if champion is not None and champion.number == candidate.number:
        return Promotion(candidate, champion, promoted=True)
    tags = client.get_model_version(MODEL_NAME, candidate.number).tags
    if ROLLED_BACK_TAG in tags:
        raise FlywheelError(
            f"not promoted: {MODEL_NAME} version {candidate.number} (run {run_id}) was rolled back "
            f"from @{CHAMPION}: train a new model, or delete the version's `{ROLLED_BACK_TAG}` tag "
            "in MLflow to promote it again"
        )
    if champion is not None:
        gain = improvement(score, champion.score)
        if gain <= 0 or gain < min_improvement:
            metric = task.JUDGING.primary_metric
            raise FlywheelError(
                f"not promoted: run {run_id}'s test {metric} {score} does not beat {CHAMPION} "
                f"version {champion.number}'s {champion.score} by registry.min_improvement "
                f"{min_improvement} ({'higher' if task.JUDGING.greater_is_better else 'lower'} "
                f"is better); it stays registered as version {candidate.number}"
            )
    if champion is not None and require_shadow:
        from ..core.paths import SHADOW_DIR
        from .shadow import REPORT, require_passed

        require_passed(run_id, champion.run_id, SHADOW_DIR / REPORT)
    if champion is not None:
        client.set_model_version_tag(MODEL_NAME, candidate.number, REPLACED_TAG, champion.number)
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, candidate.number)
    return Promotion(candidate, champion, promoted=True)


@dataclass(frozen=True)
class Rollback:
    demoted: Version
    restored: Version

    def summary(self) -> str:
        metric = f"test {task.JUDGING.primary_metric}"
        old, new = self.demoted, self.restored
        return (
            f"rolled @{CHAMPION} back from {MODEL_NAME} version {old.number} (run {old.run_id}, "
            f"{metric} {old.score}) to version {new.number} (run {new.run_id}, {metric} "
            f"{new.score})"
        )


def rollback() -> Rollback:
    """Move the alias `champion` back to the version the champion replaced when it was promoted
    (again: to the one before that). Refused in one line where no champion or no earlier one is
    recorded."""
    from mlflow.exceptions import MlflowException

    client = project_client()
    champion = _champion(client)
    if champion is None:
        raise FlywheelError(
            f"rollback: {MODEL_NAME} has no @{CHAMPION} to roll back: `make promote` one first"
        )
    replaced = client.get_model_version(MODEL_NAME, champion.number).tags.get(REPLACED_TAG)
    if replaced is None:
        raise FlywheelError(
            f"rollback: @{CHAMPION} version {champion.number} replaced no earlier champion (the "
            "first one, or promoted before rollback existed): set the alias by hand in MLflow"
        )
    try:
        restored = client.get_model_version(MODEL_NAME, replaced)
    except MlflowException:
        raise FlywheelError(
            f"rollback: version {replaced}, which @{CHAMPION} version {champion.number} replaced, "
            "is no longer in the registry: set the alias by hand in MLflow"
        ) from None
    score = _score(client.get_run(restored.run_id))
    client.set_model_version_tag(MODEL_NAME, champion.number, ROLLED_BACK_TAG, "true")
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, replaced)
    return Rollback(champion, Version(restored.version, restored.run_id, score))


def is_model_uri(model: str) -> bool:
    return bool(URI.match(model))


@contextmanager
def model_folder(model: str) -> Iterator[Path]:
    """The trained model folder `model` names: a local folder as it is, or one an MLflow model
    URI logged, downloaded to a temporary folder that lasts as long as it is used."""
    if not is_model_uri(model):
        yield Path(model)
        return
    import mlflow

    if not sys.stderr.isatty():  # a log (a container's, CI's) gets no progress bar redrawn 44 times
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    project_client()  # the project's tracking (and registry) URI, checked reachable
    with tempfile.TemporaryDirectory(prefix="flywheel-model-") as scratch:
        try:
            path = mlflow.artifacts.download_artifacts(artifact_uri=model, dst_path=scratch)
        except mlflow.exceptions.MlflowException as error:
            reason = str(error).splitlines()[0][:200]
            raise FlywheelError(
                f"model {model} cannot be loaded ({reason}): check the name and alias or version "
                f"(`make promote` sets @{CHAMPION}) and MLFLOW_TRACKING_URI"
            ) from None
        folder = Path(path) / MODEL_ARTIFACT
        if not folder.is_dir():
            raise FlywheelError(
                f"model {model} is not one this project logged (no {MODEL_ARTIFACT} in it): "
                "pass a model `train` logged"
            )
        yield folder
