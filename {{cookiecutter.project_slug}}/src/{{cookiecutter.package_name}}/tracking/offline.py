"""Tracking outages: a run whose MLflow server stops answering carries on in a local store, and
`sync-runs` (or the next `train`) copies it to the server when the server is back.

The server's run keeps its id: the model folder's manifest and `train`'s output name it, and the
sync fills it in (metrics with their history, tags, dataset inputs, plots, the logged model and
the test scores attached to it, the final status), so nothing about it changes but the delay.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

OFFLINE_DB = Path("mlflow-offline.db")
OFFLINE_ARTIFACTS = Path("mlruns-offline")
SERVER_RUN = "offline.server_run_id"
SERVER_URI = "offline.server_uri"
SYNCED = "offline.synced"
# What a failed call to an unreachable server looks like, once MLflow gave up retrying.
OUTAGE_SIGNS = ("Max retries exceeded", "Connection refused", "Failed to establish", "timed out")
logger = logging.getLogger(__name__)


def offline_uri() -> str:
    return f"sqlite:///{OFFLINE_DB.resolve()}"


def fail_fast() -> None:
    """One quick retry instead of MLflow's minutes of them: an outage is handled here, and a run
    moved to the local store loses nothing."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")


def is_outage(error: BaseException) -> bool:
    import requests

    if isinstance(error, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return True
    return any(sign in str(error) for sign in OUTAGE_SIGNS)


def _experiment(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(name, artifact_location=OFFLINE_ARTIFACTS.resolve().as_uri())


def continue_locally(
    server_uri: str,
    server_run_id: str,
    experiment: str,
    name: str,
    params: dict,
    tags: dict,
    error: BaseException,
) -> Any:
    """End the server's run here (not there: it cannot be told) and start its stand-in in the
    local store, with the same name, params and tags. Says so in one line."""
    import mlflow

    if mlflow.active_run() is not None:
        # end_run pops the run, then fails to tell the server: it stays RUNNING there until
        # the sync sets its final status.
        with contextlib.suppress(Exception):
            mlflow.end_run()
    configured = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(offline_uri())
    if configured is not None:  # MLflow copies it there: the project's server stays configured
        os.environ["MLFLOW_TRACKING_URI"] = configured
    mlflow.set_experiment(experiment_id=_experiment(mlflow.MlflowClient(), experiment))
    run = mlflow.start_run(
        run_name=name,
        tags={**tags, SERVER_RUN: server_run_id, SERVER_URI: server_uri},
    )
    mlflow.log_params(params)
    reason = str(error).splitlines()[0][:160]
    logger.warning(
        "MLflow server %s unreachable (%s): run %s continues in %s; `make sync-runs` copies it "
        "to the server when it is back (the next `train` does too)",
        server_uri,
        reason,
        server_run_id,
        OFFLINE_DB,
    )
    return run


def pending() -> list[Any]:
    """Runs in the local store not yet copied to their server."""
    if not OFFLINE_DB.is_file():
        return []
    from mlflow import MlflowClient

    client = MlflowClient(offline_uri())
    ids = [experiment.experiment_id for experiment in client.search_experiments()]
    runs = client.search_runs(ids) if ids else []
    return [run for run in runs if run.data.tags.get(SYNCED) != "true"]


def sync(server_uri: str) -> list[str]:
    """Copy every pending run to `server_uri`, into the run it stands in for; the ids done."""
    from mlflow import MlflowClient

    local, remote = MlflowClient(offline_uri()), MlflowClient(server_uri)
    done = []
    for run in pending():
        if run.data.tags.get(SERVER_URI) != server_uri:
            continue
        target = run.data.tags.get(SERVER_RUN) or None
        target = _copy(local, remote, run, target)
        local.set_tag(run.info.run_id, SYNCED, "true")
        done.append(target)
    return done


def _copy(local: Any, remote: Any, run: Any, target: str | None) -> str:
    from mlflow.entities import DatasetInput, Metric, Param, RunTag

    if target is None:  # the server never had the run: make it there
        name = local.get_experiment(run.info.experiment_id).name
        experiment = remote.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else remote.create_experiment(name)
        target = remote.create_run(experiment_id, run_name=run.info.run_name).info.run_id
    there = remote.get_run(target)
    models = _copy_models(local, remote, run, there.info.experiment_id, target)
    metrics = [
        Metric(
            key,
            point.value,
            point.timestamp,
            point.step,
            model_id=models.get(point.model_id),
            dataset_name=point.dataset_name,
            dataset_digest=point.dataset_digest,
        )
        for key in run.data.metrics
        for point in local.get_metric_history(run.info.run_id, key)
    ]
    params = [
        Param(key, value) for key, value in run.data.params.items() if key not in there.data.params
    ]
    tags = [
        RunTag(key, value)
        for key, value in run.data.tags.items()
        if not key.startswith(("offline.", "mlflow.runName"))
    ]
    for start in range(0, max(len(metrics), 1), 900):  # the server takes 1,000 a batch
        batch_params = params if start == 0 else []
        batch_tags = tags if start == 0 else []
        remote.log_batch(target, metrics[start : start + 900], batch_params, batch_tags)
    datasets = [DatasetInput(entry.dataset, entry.tags) for entry in run.inputs.dataset_inputs]
    if datasets:
        remote.log_inputs(target, datasets=datasets)
    with tempfile.TemporaryDirectory() as scratch:
        folder = local.download_artifacts(run.info.run_id, "", scratch)
        if any(Path(folder).iterdir()):
            remote.log_artifacts(target, folder)
    remote.set_terminated(target, run.info.status, end_time=run.info.end_time)
    return target


def _copy_models(local: Any, remote: Any, run: Any, experiment_id: str, target: str) -> dict:
    """The run's logged models, made again on the server: {local model id: server model id}."""
    import mlflow

    found = local.search_logged_models(
        [run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
    )
    mapping = {}
    for model in found:
        copy = remote.create_logged_model(
            experiment_id,
            name=model.name,
            source_run_id=target,
            tags=model.tags,
            params=model.params,
            model_type=model.model_type,
        )
        with tempfile.TemporaryDirectory() as scratch:
            folder = mlflow.artifacts.download_artifacts(
                artifact_uri=model.artifact_location, dst_path=scratch
            )
            remote.log_model_artifacts(copy.model_id, folder)
        remote.finalize_logged_model(copy.model_id, "READY")
        mapping[model.model_id] = copy.model_id
    return mapping
