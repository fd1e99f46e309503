"""Training under `torchrun` with 2 CPU processes (DDP over gloo), on a project the pipeline test
has already prepared (tests/test_pipeline.py calls it for every task): both ranks finish, only
rank 0 logs to MLflow and writes the model, and the single-process contract holds."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from helpers import Baked, primary_metric


def mlflow_runs(store: Path) -> dict[str, dict[str, str]]:
    """Every run in a local MLflow store and its tags, read from the SQLite file itself: a
    process importing mlflow would cost seconds for a count."""
    with sqlite3.connect(store) as db:
        runs: dict[str, dict[str, str]] = {
            run_id: {} for (run_id,) in db.execute("SELECT run_uuid FROM runs")
        }
        for run_id, key, value in db.execute("SELECT run_uuid, key, value FROM tags"):
            runs[run_id][key] = value
    return runs


def torchrun_train(project: Baked) -> list[str]:
    package = next((project.path / "src").iterdir()).name
    # --standalone: a free local port for the rendezvous.
    return ["torchrun", "--standalone", "--nproc_per_node=2", "-m", package, "train"]


def assert_trains_under_torchrun(
    project: Baked, env: dict[str, str], task: str
) -> dict[str, object]:
    """The test metrics of the run."""
    store = project.path / "mlflow.db"
    before = mlflow_runs(store)
    run = project.run(
        *torchrun_train(project),
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
    return json.loads(scores)


def _descendants(pid: int) -> list[int]:
    """Every process `pid` started, at any depth (read from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a process that ended meanwhile
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def assert_resumes_under_torchrun(
    project: Baked, env: dict[str, str], uninterrupted: dict[str, object]
) -> None:
    """The same torchrun training, killed with SIGKILL (launcher and both ranks) once it has a
    checkpoint, then started again: it resumes and ends with the uninterrupted run's metrics."""
    environment = {**os.environ, **env, "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"}
    killed = subprocess.Popen(
        torchrun_train(project),
        cwd=project.path,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoints = project.path / "models" / "checkpoints"
    deadline = time.monotonic() + 600
    while killed.poll() is None and time.monotonic() < deadline:
        if any(
            (step / "trainer_state.json").is_file() for step in checkpoints.glob("checkpoint-*")
        ):
            time.sleep(0.05)
            break
        time.sleep(0.02)
    # All at once, as a preempted machine stops: torchrun starts each rank in a session of its
    # own, out of reach of the launcher's process group.
    for pid in [killed.pid, *_descendants(killed.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL, "the torchrun training ended before the kill"
    run = project.run(*torchrun_train(project), env=environment, timeout=900)
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert "resuming from models/checkpoints/checkpoint-" in run.stderr, run.stderr[-3000:]
    [scores] = re.findall(r"^test metrics: (\{.*\})$", run.stdout, re.M)
    assert json.loads(scores) == uninterrupted
