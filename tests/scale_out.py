"""Training under `torchrun` with 2 CPU processes (DDP over gloo), on a project the pipeline test
has already prepared (tests/test_pipeline.py calls it for every task): both ranks finish, only
rank 0 logs to MLflow and writes the model, and the single-process contract holds."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from helpers import Baked, primary_metric


def mlflow_runs(store: Path) -> dict[str, dict[str, str]]:
    """Every run in a local MLflow store and its tags, read from the SQLite file itself: a
    process importing mlflow would cost seconds for a count."""
    with sqlite3.connect(store) as db:
        runs = {run_id: {} for (run_id,) in db.execute("SELECT run_uuid FROM runs")}
        for run_id, key, value in db.execute("SELECT run_uuid, key, value FROM tags"):
            runs[run_id][key] = value
    return runs


def assert_trains_under_torchrun(project: Baked, env: dict[str, str], task: str) -> None:
    package = next((project.path / "src").iterdir()).name
    store = project.path / "mlflow.db"
    before = mlflow_runs(store)
    run = project.run(
        "torchrun",
        "--standalone",  # a free local port for the rendezvous
        "--nproc_per_node=2",
        "-m",
        package,
        "train",
        env={**env, "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"},
        timeout=900,
    )
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    # Only rank 0 reports a run; the other rank exits quietly.
    [run_id] = re.findall(r"^MLflow run:\s+([0-9a-f]{32})$", run.stdout, re.M)
    # DDP really ran: gloo on CPU, not two independent single-process trainings.
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in run.stderr
    after = mlflow_runs(store)
    assert set(after) - set(before) == {run_id}
    assert after[run_id]["lineage.data_hash"].endswith(".dir")

    # The single-process contract: rank 0's test scores, and a model that a single process
    # loads and predicts with as usual.
    assert (project.path / "models" / "model" / "config.json").is_file()
    assert not list((project.path / "models").glob(".model-*")), "a staging folder was left"
    [scores] = re.findall(r"^test metrics: (\{.*\})$", run.stdout, re.M)
    assert primary_metric(task) in json.loads(scores)
    predicted = project.run("make", "predict", env=env)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert '"input"' in predicted.stdout
