"""Each task trains unchanged under `torchrun` with 2 CPU processes (DDP over gloo): both ranks
finish, only rank 0 logs to MLflow and writes the model, and the single-process contract holds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import TASKS, Baked, bake_copier, primary_metric, set_epochs
from project_env import env_with

# DDP is the point, not accuracy: a short run.
EPOCHS = 1

COUNT_RUNS = """
import sys
import mlflow
client = mlflow.MlflowClient(sys.argv[1])
runs = [run for e in client.search_experiments() for run in client.search_runs([e.experiment_id])]
print(len(runs), runs[0].data.tags.get("lineage.data_hash", "") if runs else "")
"""


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_torchrun_two_cpu_processes(
    task: str, template: Path, project_bin: Path, tmp_path: Path
) -> None:
    project = Baked(bake_copier(template, {"task": task}, tmp_path / "ddp_demo"))
    set_epochs(project, EPOCHS)
    env = env_with(project_bin, project.path)
    package = next((project.path / "src").iterdir()).name
    prepared = project.run("python", "-m", package, "prepare", env=env)
    assert prepared.returncode == 0, prepared.stderr[-2000:]

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
    assert len(re.findall(r"^MLflow run:", run.stdout, re.M)) == 1, run.stdout
    # DDP really ran: gloo on CPU, not two independent single-process trainings.
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in run.stderr

    script = tmp_path / "count_runs.py"
    script.write_text(COUNT_RUNS, encoding="utf-8")
    counted = project.run(str(project_bin / "python"), str(script), "sqlite:///mlflow.db", env=env)
    assert counted.returncode == 0, counted.stderr[-2000:]
    runs, data_hash = counted.stdout.split()
    assert runs == "1" and data_hash.endswith(".dir")

    # The single-process contract: rank 0's test scores, and a model that a single process
    # loads and predicts with as usual.
    assert (project.path / "models" / "model" / "config.json").is_file()
    assert not list((project.path / "models").glob(".model-*")), "a staging folder was left"
    [scores] = re.findall(r"^test metrics: (\{.*\})$", run.stdout, re.M)
    assert primary_metric(task) in json.loads(scores)
    predicted = project.run("make", "predict", env=env)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert '"input"' in predicted.stdout
