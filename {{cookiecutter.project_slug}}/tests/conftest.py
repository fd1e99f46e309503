"""Shared fixtures: a scratch workspace per session, and one model trained on the embedded data.

Tests run inside a temporary copy of the project's params.yaml, so they never touch the project's
own data/, models/ or MLflow store.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

# The tests never reach a model or dataset hub, as on a machine without network: the libraries
# read these once, when first imported, so before the project's modules import them.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

from {{ cookiecutter.package_name }}.core.config import Params, load_params

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Trained:
    workspace: Path
    params: Params
    result: object


@pytest.fixture(scope="session", autouse=True)
def workspace(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("workspace")
    shutil.copy(PROJECT_ROOT / "params.yaml", root / "params.yaml")
    previous_cwd, previous_uri = Path.cwd(), os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    os.chdir(root)
    yield root
    os.chdir(previous_cwd)
    if previous_uri is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous_uri


def _reset_tracking() -> None:
    """MLflow keeps the last tracking URI a run set (the test server's, the offline store's)
    process-wide: back to the session's store, where the next test looks."""
    if "mlflow" in sys.modules:
        sys.modules["mlflow"].set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])


@pytest.fixture(autouse=True)
def session_tracking(workspace: Path):
    yield
    _reset_tracking()


@pytest.fixture(scope="session")
def trained(workspace: Path) -> Trained:
    """prepare, train and evaluate on the embedded default, once per session (seconds on a CPU)."""
    from {{ cookiecutter.package_name }}.data.prepare import prepare
    from {{ cookiecutter.package_name }}.training.evaluate import evaluate
    from {{ cookiecutter.package_name }}.training.train import train

    params = load_params()
    prepare(params)
    result = train(params)
    evaluate(params)
    return Trained(workspace=workspace, params=params, result=result)


class TrackingServer:
    """`mlflow server` as `make mlflow-server` starts it, on a free 127.0.0.1 port, in a process
    group of its own: killed with its workers, and started again on the same port and store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        options = ["--port", str(self.port), "--workers", "1"]
        options += ["--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}"]
        options += ["--artifacts-destination", str(self.root / "mlartifacts")]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", *options],
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=5):
                    return
            except OSError:
                assert self.process.poll() is None, "the MLflow server exited at start"
                assert time.monotonic() < deadline, "the MLflow server did not start in 120 s"
                time.sleep(0.2)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory: pytest.TempPathFactory):
    """A real tracking server for the session."""
    server = TrackingServer(tmp_path_factory.mktemp("mlflow-server"))
    server.start()
    yield server
    server.kill()


@dataclass(frozen=True)
class InterruptedRun:
    project: Path
    # What the kill left: the MLflow run it had started, and a copy of its checkpoints.
    killed_run_id: str
    after_kill: Path
    # The `train` that resumed it, its warnings (one line each), and what `sync-runs` said.
    result: object
    warnings: list[str]
    synced: str


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _kill_after_first_checkpoint(process: subprocess.Popen, checkpoints: Path) -> None:
    """SIGKILL as soon as a complete checkpoint exists: the process is in its next epoch."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        steps = checkpoints.glob("checkpoint-*")
        if any((step / "trainer_state.json").is_file() for step in steps):
            time.sleep(0.05)  # into the next epoch, past any checkpoint file still being written
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


@pytest.fixture(scope="session")
def interrupted_run(
    trained: Trained, tracking_server: TrackingServer, tmp_path_factory
) -> InterruptedRun:
    """Two faults in one run with the session's params, logged to the tracking server: a `train`
    process killed with SIGKILL after its first checkpoint (a preempted VM), then `train` again
    (in this process), during which the tracking server is killed (SIGKILL) as soon as the
    resumed run's first epoch reached it; then the server is started again on the same store and
    `sync-runs` runs."""
    from typer.testing import CliRunner

    from {{ cookiecutter.package_name }}.cli import app
    from {{ cookiecutter.package_name }}.tracking import runs
    from {{ cookiecutter.package_name }}.training.checkpoints import DEFAULT_DIR, RECORD
    from {{ cookiecutter.package_name }}.training.train import train

    project = tmp_path_factory.mktemp("interrupted")
    (project / "data").symlink_to(trained.workspace / "data")
    shutil.copy(trained.workspace / "params.yaml", project)
    log_epoch = runs.log_epoch

    def log_then_kill_the_server(logs: dict, epoch: float) -> None:
        log_epoch(logs, epoch)
        if tracking_server.process is not None and any(key.startswith("eval_") for key in logs):
            tracking_server.kill()

    lines = _Lines()
    logger = logging.getLogger("{{ cookiecutter.package_name }}")
    logger.addHandler(lines)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(project)
            patch.setenv("MLFLOW_TRACKING_URI", tracking_server.url)
            source = os.pathsep.join([str(PROJECT_ROOT / "src"), os.environ.get("PYTHONPATH", "")])
            killed = subprocess.Popen(
                [sys.executable, "-m", "{{ cookiecutter.package_name }}", "train"],
                env={**os.environ, "PYTHONPATH": source},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            _kill_after_first_checkpoint(killed, project / DEFAULT_DIR)
            assert killed.returncode == -signal.SIGKILL, "the training ended before the kill"
            after_kill = project.parent / f"{project.name}-after-kill"
            shutil.copytree(project / DEFAULT_DIR, after_kill)
            killed_run_id = json.loads((project / DEFAULT_DIR / RECORD).read_text())["run_id"]

            patch.setattr(runs, "log_epoch", log_then_kill_the_server)
            result = train(trained.params)
            assert tracking_server.process is None, "the training ended before the server died"
            tracking_server.start()
            synced = CliRunner().invoke(app, ["sync-runs"])
    finally:
        logger.removeHandler(lines)
        _reset_tracking()
    assert synced.exit_code == 0, synced.output
    return InterruptedRun(
        project=project,
        killed_run_id=killed_run_id,
        after_kill=after_kill,
        result=result,
        warnings=lines.lines,
        synced=synced.output,
    )
