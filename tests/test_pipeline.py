"""The generated DVC pipeline and `reproduce`, for every task, with real git, DVC and MLflow.

One flow per task, as a user meets it: the README's pipeline section as written (each task's
dvc.yaml has its own dependencies and outputs), and then, in the same prepared project, training
under `torchrun` with 2 CPU processes (tests/scale_out.py). The task-independent versioning
machinery is proven once, on the text task: a param change that re-runs only what it affects,
the run's lineage tags, a misspelled key, `dvc pull` into a fresh clone from the local DVC
remote, `reproduce` from that clone of a run made two commits earlier (its data from the remote)
with every metric equal, and `reproduce` against altered data in the DVC cache.
That each task's training is deterministic, which `reproduce` needs, each project's own suite
proves (tests/test_resume.py: a killed `train` process, resumed, ends with the uninterrupted run's
weights; tests/test_data.py: `prepare` writes the same bytes twice).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from helpers import (
    GIT_ENV,
    TASKS,
    Baked,
    background,
    bake_copier,
    free_port,
    primary_metric,
    readme_commands,
    set_epochs,
    tree_digest,
)
from project_env import env_with
from scale_out import (
    assert_resumes_under_torchrun,
    assert_trains_on_skypilot_nodes,
    assert_trains_under_torchrun,
    assert_two_workers_share_one_study,
    working_copy,
)
from team_server import BUCKET, S3_CREDENTIALS, Postgres, bucket_keys, postgres, s3_server

# Short runs: the point is versioning and equality, not accuracy (the README Quick start test
# trains the defaults). The pipeline runs with FIRST, then one param changes to SECOND: enough
# for the text model to learn (about 0.85 accuracy against 0.5 for the majority class), so that
# one process and two agree on a model that learned, not on chance.
FIRST_EPOCHS, SECOND_EPOCHS = 2, 4
# The task whose project also goes through the task-independent versioning checks.
VERSIONED = "text-classification"
# How far the primary metric of 2 processes may be from one process's on the same params.
DDP_TOLERANCE = 0.05


def must(project: Baked, command: str, env: dict[str, str]) -> str:
    run = project.run("bash", "-c", command, env=env, timeout=900)
    assert run.returncode == 0, f"{command}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run.stdout + run.stderr


# A run as the tracking server (MLFLOW_TRACKING_URI) holds it: its params, metrics, tags, plots
# and how many logged models name it as their source.
READ_RUN = """
import json, sys
import mlflow
client = mlflow.MlflowClient()
run = client.get_run(sys.argv[1])
models = mlflow.search_logged_models(
    experiment_ids=[run.info.experiment_id], output_format="list"
)
print(json.dumps({
    "params": run.data.params,
    "metrics": sorted(run.data.metrics),
    "tags": run.data.tags,
    "plots": [
        item.path
        for folder in ("plots/train", "plots/evaluate")
        for item in client.list_artifacts(run.info.run_id, folder)
    ],
    "models": sum(model.source_run_id == run.info.run_id for model in models),
}))
"""


def ran_stages(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


def mlflow_run_id(output: str) -> str:
    [run_id] = re.findall(r"MLflow run:\s+([0-9a-f]{32})", output)
    return run_id


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_pipeline_versions_reproduces_and_trains_under_torchrun(
    task: str, template: Path, project_bin: Path, tmp_path: Path
) -> None:
    # The versioned task's project has a cloud answer, for its SkyPilot task.
    answers = {"task": task, **({"cloud": "aws"} if task == VERSIONED else {})}
    project = Baked(bake_copier(template, answers, tmp_path / "pipeline_demo"))
    env = {**env_with(project_bin, project.path), **GIT_ENV, "DVC_NO_ANALYTICS": "1"}
    if task == VERSIONED:
        use_local_remote(project, tmp_path / "dvc-remote")
    set_epochs(project, FIRST_EPOCHS)
    # The README's section, line by line, exactly as written.
    outputs: dict[str, list[str]] = {}
    for command in readme_commands(project.text("README.md"), "Pipeline and data versions (DVC)"):
        outputs.setdefault(command, []).append(must(project, command, env))
    first, second = outputs["dvc repro"]
    assert ran_stages(first) == ["prepare", "train", "evaluate"]
    assert ran_stages(second) == [] and "Data and pipelines are up to date" in second
    metric = primary_metric(task)
    shown = outputs["dvc metrics show"][0]
    assert "metrics.json" in shown and metric in shown, shown
    lineage = must(project, "git log --format=%s", env).splitlines()
    assert lineage[0] == "Train the first model" and len(lineage) == 2

    if task == VERSIONED:
        # A team's tracking server from here on: runs and registry in PostgreSQL, artifacts in
        # an S3 bucket, both reached only through the server.
        with team_tracking_server(project, env) as (team, stores):
            run_id = assert_versions_and_refuses_altered_data(
                project, team, metric, project_bin, tmp_path
            )
            assert_the_team_server_keeps_promotes_and_serves_it(project, team, stores, run_id)
            assert_two_workers_share_one_study(
                project, team, stores.database, tmp_path / "tune-worker"
            )

    # The same project, its data prepared, under torchrun: DDP over gloo with 2 CPU processes.
    if task != VERSIONED:
        assert_trains_under_torchrun(project, env, task)
        return
    # For the versioned task, on two "machines" of 1 process each: first as the SkyPilot task's
    # `run` script on a 2-VM cluster (static rendezvous at the first VM), then with the
    # README's command (torchrun agents meeting at a c10d rendezvous), killed and resumed.
    alone = json.loads(project.text("metrics.json"))
    scores = assert_trains_on_skypilot_nodes(project, env, project_bin, tmp_path / "cluster")
    # train.batch_size is the global batch, split over the processes: the same steps and
    # learning rate as the single-process run of these params (metrics.json), so the same
    # score up to the order examples meet in a batch.
    assert abs(scores[metric] - alone[metric]) <= DDP_TOLERANCE, (scores, alone)
    # Resuming is task-independent code: one task proves it under torchrun.
    assert_resumes_under_torchrun(project, env, scores, nodes=2)


@contextmanager
def team_tracking_server(
    project: Baked, env: dict[str, str]
) -> Iterator[tuple[dict[str, str], TeamStores]]:
    """The README's `make mlflow-server` on a real PostgreSQL and moto's S3 server; the
    environment of a client of it (MLFLOW_TRACKING_URI, and no bucket endpoint or keys: the
    server holds those) and the two stores, for the test to look into."""
    readme = project.text("README.md")
    [server, client] = readme_commands(readme, "Experiment tracking")
    assert server == "make mlflow-server", server
    assert client == "MLFLOW_TRACKING_URI=http://127.0.0.1:5000 make train", client
    # Scale out's team server, as written but for its placeholders (the shared environment of
    # the tests already holds the `team` extra's drivers).
    [setup, team_server, team_client] = readme_commands(readme, "A team tracking server")
    assert setup == "make setup EXTRAS=team", setup
    assert team_client == "MLFLOW_TRACKING_URI=http://127.0.0.1:5000 make train", team_client
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with postgres() as database, s3_server() as endpoint:
        command = team_server.replace(
            "postgresql+psycopg2://mlflow@DB_HOST:5432/mlflow", database.url
        ).replace("s3://BUCKET/", f"s3://{BUCKET}/")
        assert "DB_HOST" not in command and "BUCKET" not in command, command
        keys = {**env, **S3_CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL": endpoint}
        keys["MLFLOW_PORT"] = str(port)  # a free port, where the README's server takes 5000
        with background(["bash", "-c", command], project.path, keys, f"{url}/health"):
            yield {**env, "MLFLOW_TRACKING_URI": url}, TeamStores(database, endpoint)


@dataclass(frozen=True)
class TeamStores:
    database: Postgres
    bucket_endpoint: str


def assert_the_team_server_keeps_promotes_and_serves_it(
    project: Baked, team: dict[str, str], stores: TeamStores, run_id: str
) -> None:
    """The run is whole on the team server, in its PostgreSQL and its bucket; `make promote`
    registers it there and `make serve` answers from the champion alias, fetched through the
    server."""
    # In PostgreSQL, not in the project's own mlflow.db (which the pipeline section filled).
    assert stores.database.query(f"select status from runs where run_uuid = '{run_id}'") == (
        "FINISHED"
    )
    with sqlite3.connect(project.path / "mlflow.db") as local:
        rows = local.execute("select count(*) from runs where run_uuid = ?", (run_id,))
        assert rows.fetchone() == (0,)
    read = project.run("python", "-c", READ_RUN, run_id, env=team)
    assert read.returncode == 0, read.stderr[-3000:]
    logged = json.loads(read.stdout)
    assert logged["params"]["data.source"] == "embedded"
    assert {"test_accuracy", "val_accuracy", "train_loss"} <= set(logged["metrics"])
    assert "plots/evaluate/confusion_matrix.png" in logged["plots"]
    assert "plots/train/loss_curve.png" in logged["plots"]
    assert logged["models"] == 1
    keys = bucket_keys(stores.bucket_endpoint)
    assert any(run_id in key and key.endswith("loss_curve.png") for key in keys), keys
    assert any(key.endswith("/MLmodel") for key in keys), keys

    promoted = must(project, f"make promote RUN={run_id}", team)
    registered = re.search(rf"promoted (\w+) version \d+ \(run {run_id}\) to @champion", promoted)
    assert registered, promoted
    name = registered[1]
    port = free_port()
    health = f"http://127.0.0.1:{port}/health"
    serve = ["make", "serve", f"MODEL=models:/{name}@champion", f"PORT={port}"]
    with (
        background(serve, project.path, team, health),
        urllib.request.urlopen(health, timeout=10) as response,
    ):
        answer = json.loads(response.read())
    assert answer["model"] == f"models:/{name}@champion" and answer["run_id"] == run_id, answer
    aliases = "select alias from registered_model_aliases where name = '" + name + "'"
    assert stores.database.query(aliases) == "champion"


def use_local_remote(project: Baked, folder: Path) -> None:
    """Point the DVC remote (the cloud answer's bucket) at a local folder, where DVC keeps one
    machine's own settings: .dvc/config.local, which git ignores."""
    (project.path / ".dvc" / "config.local").write_text(
        f"['remote \"storage\"']\n    url = {folder}\n", encoding="utf-8"
    )


def assert_versions_and_refuses_altered_data(
    project: Baked, env: dict[str, str], metric: str, project_bin: Path, tmp_path: Path
) -> str:
    """The versioning machinery, on a project whose README pipeline section ran, tracked where
    `env` says; the id of the run it trains."""
    # One training param changed and committed: prepare is skipped, train and evaluate run.
    set_epochs(project, SECOND_EPOCHS)
    must(project, "git commit -qam 'More epochs'", env)
    changed = must(project, "dvc repro", env)
    assert ran_stages(changed) == ["train", "evaluate"], changed
    run_id = mlflow_run_id(changed)
    assert "metrics.json" in must(project, "dvc metrics diff", env)
    # The run names its data as dvc.lock does, and the lock entry of the stage that made it.
    read = project.run(str(project_bin / "python"), "-c", READ_RUN, run_id, env=env)
    assert read.returncode == 0, read.stderr[-2000:]
    tags = json.loads(read.stdout)["tags"]
    lock = yaml.safe_load(project.text("dvc.lock"))["stages"]
    [prepared] = [out for out in lock["prepare"]["outs"] if out["path"] == "data/prepared"]
    assert tags["lineage.data_hash"] == prepared["md5"]
    assert tags["lineage.dvc_lock"] == "current"
    entry = json.dumps(lock["prepare"], sort_keys=True).encode()
    assert tags["lineage.dvc_stage.prepare"] == hashlib.md5(entry).hexdigest()
    assert tags["lineage.git_dirty"] == "false"  # DVC's own bookkeeping is not a change

    # A misspelled key: the stage fails with one line naming it, and the last model stays.
    model_before = tree_digest(project.path / "models/model")
    params = project.text("params.yaml")
    misspelled = params.replace("  learning_rate:", "  learning_rat:", 1)
    (project.path / "params.yaml").write_text(misspelled, encoding="utf-8")
    broken = project.run("dvc", "repro", env=env, timeout=300)
    assert broken.returncode != 0
    assert (
        "error: params.yaml: train.learning_rat: unknown key; did you mean learning_rate?"
        in broken.stdout + broken.stderr
    )
    assert tree_digest(project.path / "models/model") == model_before
    (project.path / "params.yaml").write_text(params, encoding="utf-8")
    must(project, "git add dvc.lock metrics.json && git commit -qm 'Train with more epochs'", env)
    with (project.path / "README.md").open("a", encoding="utf-8") as readme:
        readme.write("\nA later change that has nothing to do with the model.\n")
    must(project, "git commit -qam 'Document'", env)
    must(project, "dvc push", env)

    # A fresh clone pulls exactly the data and model of the last commit from the remote.
    clone = working_copy(project, tmp_path / "clone")
    clone_env = {**env, "PYTHONPATH": str(clone.path / "src")}
    # `reproduce` from the clone: an empty DVC cache, so the data comes from the remote.
    reproduced = must(clone, f"make reproduce RUN={run_id}", clone_env)
    assert "reproduced: every metric matches exactly" in reproduced, reproduced
    assert re.search(rf"^{metric}\s+\S+\s+\S+\s+0$", reproduced, re.M), reproduced
    assert "environment differs" not in reproduced  # the same packages as the run's
    assert tags["lineage.environment_hash"] and tags["lineage.dependency_file"] == "pyproject.toml"
    must(clone, "dvc pull", clone_env)
    for folder in ("data/prepared", "models/model"):
        assert tree_digest(clone.path / folder) == tree_digest(project.path / folder), folder
    assert must(clone, "git worktree list", clone_env).count("\n") == 1

    # Altered data in the cache: the hash mismatch is named, and nothing is re-run or replaced.
    model_before = tree_digest(project.path / "models/model")
    train_md5 = hashlib.md5((project.path / "data/prepared/train.parquet").read_bytes())
    digest = train_md5.hexdigest()
    cached = project.path / ".dvc/cache/files/md5" / digest[:2] / digest[2:]
    cached.chmod(0o644)
    with cached.open("ab") as file:
        file.write(b"tampered")
    # ...and one package more on the path than the run had: a one-line warning names it.
    probe = tmp_path / "probe" / "flywheel_probe-1.0.dist-info"
    probe.mkdir(parents=True)
    (probe / "METADATA").write_text("Metadata-Version: 2.1\nName: flywheel-probe\nVersion: 1.0\n")
    probed = {**env, "PYTHONPATH": f"{env['PYTHONPATH']}{os.pathsep}{probe.parent}"}
    run = project.run("make", "reproduce", f"RUN={run_id}", env=probed, timeout=300)
    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, run.stderr
    assert "data hash mismatch" in errors[0] and "train.parquet altered" in errors[0]
    [warning] = [line for line in run.stderr.splitlines() if "environment differs" in line]
    assert f"run {run_id}'s: flywheel-probe 1.0 (not in the run's);" in warning, warning
    assert "the run had no committed uv.lock" in warning  # the shared test environment has none
    assert tree_digest(project.path / "models/model") == model_before
    listed = subprocess.run(
        ["git", "worktree", "list"], cwd=project.path, capture_output=True, text=True, check=True
    )
    assert listed.stdout.count("\n") == 1
    return run_id
