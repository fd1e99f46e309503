"""Training under `torchrun` with 2 CPU processes (DDP over gloo), on a project the pipeline test
has already prepared (tests/test_pipeline.py calls it for every task): both ranks finish, only
rank 0 logs to MLflow and writes the model, and the single-process contract holds. One machine's
processes (`--standalone`) for most tasks; for one task, two machines of 1 process each on
127.0.0.1: the SkyPilot task's `run` script on a two-VM cluster (a static rendezvous at the first
VM), and torchrun agents meeting through a c10d rendezvous (the README's command), killed and
resumed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from helpers import Baked, free_port, primary_metric
from team_server import Postgres


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


def torchrun_commands(project: Baked, nodes: int) -> list[list[str]]:
    """The command of each machine: one with 2 processes, or `nodes` agents of 1 process each
    that meet at one c10d rendezvous endpoint (the README's multi-node command, its HOST:29400
    and RUN_ID filled in)."""
    package = next((project.path / "src").iterdir()).name
    train = ["-m", package, "train"]
    if nodes == 1:  # --standalone: a free local port for the rendezvous
        return [["torchrun", "--standalone", "--nproc-per-node=2", *train]]
    [written] = [
        shlex.split(line)
        for line in project.text("README.md").splitlines()
        if line.strip().startswith("torchrun --nnodes=")
    ]
    assert written[-len(train) :] == train, written
    filled = {
        "--nnodes=2": f"--nnodes={nodes}",
        "--rdzv-endpoint=HOST:29400": f"--rdzv-endpoint=127.0.0.1:{free_port()}",
        "--rdzv-id=RUN_ID": f"--rdzv-id={project.path.name}",
    }
    assert set(filled) <= set(written), written
    agent = [filled.get(word, word) for word in written[: -len(train)]]
    # On a cluster the machine whose address is the endpoint hosts the rendezvous store; on
    # 127.0.0.1 every agent matches it, so the first one is named the host.
    return [[*agent, f"--rdzv-conf=is_host={node == 0}", *train] for node in range(nodes)]


def working_copy(project: Baked, folder: Path) -> Baked:
    """Another machine's copy of the project: a git clone, with the per-machine DVC settings
    (.dvc/config.local, which git leaves out: the remote that machine reaches)."""
    subprocess.run(["git", "clone", "-q", str(project.path), str(folder)], check=True)
    shutil.copy(project.path / ".dvc" / "config.local", folder / ".dvc")
    return Baked(folder)


@dataclass
class Machine:
    """One machine of a job: its command, the project folder it runs in, its environment."""

    command: list[str]
    folder: Path
    environment: dict[str, str]


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str


class Agents:
    """The machines of one job (each a torchrun agent, or a script that starts one), started
    together; their outputs go to files (an agent blocked on a full pipe would stall the other's
    collective calls)."""

    def __init__(self, machines: list[Machine]) -> None:
        self._logs = tempfile.TemporaryDirectory()
        self._files = [Path(self._logs.name, str(node)) for node in range(len(machines))]
        self.processes = []
        for machine, log in zip(machines, self._files, strict=True):
            with log.with_suffix(".out").open("w") as out, log.with_suffix(".err").open("w") as err:
                self.processes.append(
                    subprocess.Popen(
                        machine.command,
                        cwd=machine.folder,
                        env=machine.environment,
                        stdout=out,
                        stderr=err,
                    )
                )

    @classmethod
    def torchrun(cls, project: Baked, environment: dict[str, str], nodes: int) -> Agents:
        """The README's torchrun command on each of `nodes` machines, all in the project."""
        commands = torchrun_commands(project, nodes)
        return cls([Machine(command, project.path, environment) for command in commands])

    def finish(self, nodes: list[int] | None = None, timeout: float = 900) -> Finished:
        """Wait for `nodes` (all by default), killing one still running at the timeout: the
        first failure's exit code and their outputs."""
        chosen = range(len(self.processes)) if nodes is None else nodes
        deadline = time.monotonic() + timeout
        for node in chosen:
            try:
                self.processes[node].wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill([node])
        codes = [self.processes[node].returncode for node in chosen]
        texts = [
            tuple(self._files[node].with_suffix(suffix).read_text() for suffix in (".out", ".err"))
            for node in chosen
        ]
        self._logs.cleanup()
        return Finished(
            returncode=next((code for code in codes if code), 0),
            stdout="".join(out for out, _ in texts),
            stderr="".join(err for _, err in texts),
        )

    def kill(self, nodes: list[int]) -> None:
        """SIGKILL to each agent of `nodes` and every process it started, at once, as a machine
        stops: torchrun starts each rank in a session of its own, out of reach of the agent's
        process group."""
        agents = [self.processes[node] for node in nodes]
        for pid in [pid for agent in agents for pid in (agent.pid, *_descendants(agent.pid))]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for agent in agents:
            agent.wait(timeout=60)


def run_torchrun(project: Baked, environment: dict[str, str], nodes: int) -> Finished:
    return Agents.torchrun(project, environment, nodes).finish()


def assert_trains_under_torchrun(project: Baked, env: dict[str, str], task: str) -> None:
    """`torchrun --standalone` with 2 processes on this machine."""
    store = project.path / "mlflow.db"
    before = mlflow_runs(store)
    environment = {**os.environ, **env, "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"}
    run = run_torchrun(project, environment, nodes=1)
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


def assert_trains_on_skypilot_nodes(
    project: Baked, env: dict[str, str], project_bin: Path, home: Path, nodes: int = 2
) -> dict[str, object]:
    """The `run` script of deploy/skypilot/train.yaml as SkyPilot runs it on a cluster of `nodes`
    VMs, here all on 127.0.0.1: node 0 in the project, every other in a clone of it (a VM's own
    working copy, its data pulled from the DVC remote), each with the variables SkyPilot sets
    and a `~/venv` that is the shared project environment. Every node exits 0, one MLflow run
    is logged, and the first node's dvc.lock holds the model it trained and evaluated, pushed to
    the remote. Returns the run's test metrics."""
    task = yaml.safe_load(project.text("deploy/skypilot/train.yaml"))
    home.mkdir(parents=True)
    (home / "venv").symlink_to(project_bin.parent)
    folders = [project.path]
    folders += [working_copy(project, home / f"node-{node}").path for node in range(1, nodes)]
    store = project.path / "mlflow.db"
    before = mlflow_runs(store)
    cluster = {
        **os.environ,
        **env,
        "HOME": str(home),
        "MLFLOW_TRACKING_URI": f"sqlite:///{store}",
        "SKYPILOT_NUM_NODES": str(nodes),
        "SKYPILOT_NODE_IPS": "\n".join(["127.0.0.1"] * nodes),
        "SKYPILOT_NUM_GPUS_PER_NODE": "1",  # no GPU here: one process per node
        "RENDEZVOUS_PORT": str(free_port()),
    }
    machines = [
        Machine(
            ["bash", "-c", task["run"]],
            folder,
            {**cluster, "SKYPILOT_NODE_RANK": str(node), "PYTHONPATH": str(folder / "src")},
        )
        for node, folder in enumerate(folders)
    ]
    run = Agents(machines).finish()
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in run.stderr
    after = mlflow_runs(store)
    [run_id] = set(after) - set(before)
    assert after[run_id]["lineage.data_hash"].endswith(".dir")
    for command, expected in (
        (["dvc", "status"], "Data and pipelines are up to date."),
        (["dvc", "status", "--cloud"], "Cache and remote 'storage' are in sync."),
    ):
        status = subprocess.run(
            command, cwd=project.path, env=cluster, capture_output=True, text=True, check=False
        )
        assert expected in status.stdout, f"{status.stdout}\n{status.stderr[-2000:]}"
    [scores] = re.findall(r"^test metrics: (\{.*\})$", run.stdout, re.M)
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
    project: Baked, env: dict[str, str], uninterrupted: dict[str, object], nodes: int = 1
) -> None:
    """The same torchrun training, killed with SIGKILL once it has a checkpoint (the machine, or
    with several machines the last one: the others then stop within a minute, each process
    with one line), then started again: it resumes and ends with the uninterrupted metrics."""
    environment = {**os.environ, **env, "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"}
    job = Agents.torchrun(project, environment, nodes)
    checkpoints = project.path / "models" / "checkpoints"
    deadline = time.monotonic() + 600
    while all(agent.poll() is None for agent in job.processes) and time.monotonic() < deadline:
        if any(
            (step / "trainer_state.json").is_file() for step in checkpoints.glob("checkpoint-*")
        ):
            time.sleep(0.05)
            break
        time.sleep(0.02)
    job.kill([nodes - 1])
    assert job.processes[-1].returncode == -signal.SIGKILL, "the training ended before the kill"
    survivors = job.finish(list(range(nodes - 1)), timeout=60)
    if nodes > 1:
        assert survivors.returncode > 0, survivors.stderr[-3000:]  # exited, not killed at 60 s
        # Each process's line, after whatever its progress bar left on the line (\r, no \n).
        lines = re.split(r"[\r\n]", survivors.stderr)
        errors = [line[line.index("error: ") :] for line in lines if "error: " in line]
        assert len(errors) == nodes - 1, survivors.stderr[-3000:]
        assert all(
            f"another process of this {nodes}-process job stopped" in line
            and line.endswith(
                "start the job again on every machine; `train` resumes from the last checkpoint"
            )
            for line in errors
        ), errors
    run = run_torchrun(project, environment, nodes)
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert "resuming from models/checkpoints/checkpoint-" in run.stderr, run.stderr[-3000:]
    [scores] = re.findall(r"^test metrics: (\{.*\})$", run.stdout, re.M)
    assert json.loads(scores) == uninterrupted, (scores, uninterrupted)


PARALLEL_TRIALS = 4


def assert_two_workers_share_one_study(
    project: Baked, env: dict[str, str], database: Postgres, copy: Path
) -> None:
    """`tune` on two machines (the project and a copy of it, each with its own run lock) sharing
    one study in PostgreSQL (`tune.storage`), started at the same moment: the second is killed
    inside a trial; its trial is failed when it stops beating and run again by the survivor, the
    study's budget is spent once, and every trial is an MLflow child run of the study's one run."""
    url = database.create("optuna")
    raw = yaml.safe_load(project.text("params.yaml"))
    raw["train"]["epochs"] = 1
    rate = raw["train"]["learning_rate"]
    raw["tune"] = {
        "trials": PARALLEL_TRIALS,
        "search_space": {"train.learning_rate": {"low": rate / 4, "high": rate * 4, "log": True}},
        "storage": url,
        "heartbeat_seconds": 1,
    }
    other = working_copy(project, copy)
    shutil.copytree(project.path / "data" / "prepared", other.path / "data" / "prepared")
    for folder in (project.path, other.path):
        (folder / "params.tune.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    package = next((project.path / "src").iterdir()).name
    command = ["python", "-m", package, "tune", "--params", "params.tune.yaml"]

    def states() -> list[str]:
        try:
            return database.query("select state from trials", "optuna").split()
        except subprocess.CalledProcessError:
            return []  # no table yet: no worker has opened the study

    def running_with_a_run() -> int:
        try:
            return int(database.query(running_sql, "optuna"))
        except subprocess.CalledProcessError:
            return 0  # no table yet

    running_sql = (
        "select count(*) from trials t join trial_user_attributes a using (trial_id) "
        "where t.state = 'RUNNING' and a.key = 'mlflow_run_id'"
    )

    def study_run() -> str:
        try:
            return database.query(study_run_sql, "optuna")
        except subprocess.CalledProcessError:
            return ""  # no table yet

    study_run_sql = "select value_json from study_user_attributes where key = 'mlflow_run_id'"
    logs = [project.path / "tune-1.log", other.path / "tune-2.log"]
    with contextlib.ExitStack() as stack:
        outputs = [stack.enter_context(log.open("w")) for log in logs]
        workers: list[subprocess.Popen[bytes]] = []
        try:
            # Both at the same moment: they race to create the database's tables, the study
            # and its MLflow run, and one of each must come out.
            for folder, out in zip((project.path, other.path), outputs, strict=True):
                workers.append(
                    subprocess.Popen(
                        command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT
                    )
                )
            deadline = time.monotonic() + 240
            # Both inside a trial that has opened its MLflow run, so beating: a worker killed
            # before its first beat is the generated test_tune's case (failed after a minute).
            while running_with_a_run() < 2:
                assert time.monotonic() < deadline and all(w.poll() is None for w in workers), [
                    log.read_text(encoding="utf-8")[-2000:] for log in logs
                ]
                time.sleep(0.3)
            workers[1].kill()
            assert workers[0].wait(timeout=300) == 0, logs[0].read_text(encoding="utf-8")[-3000:]
        finally:
            for worker in workers:
                worker.kill()
                worker.wait()
    # The lost worker's trial was owed: the survivor waited for its missed heartbeats and ran it.
    finished = states()
    done = [state for state in finished if state in ("COMPLETE", "PRUNED")]
    assert len(done) == PARALLEL_TRIALS and "COMPLETE" in done, finished
    assert "FAIL" in finished and "RUNNING" not in finished, finished
    parent = json.loads(study_run())
    trial_runs = {
        json.loads(value)
        for value in database.query(
            "select a.value_json from trial_user_attributes a join trials t using (trial_id) "
            "where a.key = 'mlflow_run_id' and t.state in ('COMPLETE', 'PRUNED')",
            "optuna",
        ).split()
    }
    children = set(
        database.query(
            f"select run_uuid from tags where key = 'mlflow.parentRunId' and value = '{parent}'"
        ).split()
    )
    assert len(trial_runs) == PARALLEL_TRIALS and trial_runs <= children, (trial_runs, children)
    tag = f"select value from tags where key = 'tune.study' and run_uuid = '{parent}'"
    study = database.query(tag)
    parents = database.query(
        "select count(*) from tags t where key = 'tune.study' and value = '" + study + "' and "
        "not exists (select 1 from tags p where p.run_uuid = t.run_uuid "
        "and p.key = 'mlflow.parentRunId')"
    )
    assert parents == "1", f"{parents} tune runs for study {study}"
    for leftover in ("params.tune.yaml", "params.best.yaml", "tune-1.log"):
        (project.path / leftover).unlink(missing_ok=True)
