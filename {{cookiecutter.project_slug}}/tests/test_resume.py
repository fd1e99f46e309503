"""Resumable training: a real `train` process killed with SIGKILL once it has checkpointed, then
`train` again, ends with the same weights and test metrics as the session's uninterrupted run,
in the same MLflow run; a torn checkpoint is skipped in one line. The killed process built its
model and processor itself: equal final weights also prove the build does not depend on the
process (hash seeds, thread scheduling)."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from {{ cookiecutter.package_name }}.checkpoints import DEFAULT_DIR, DIR_VARIABLE, RECORD, _steps, to_resume
from {{ cookiecutter.package_name }}.config import MODEL_DIR, load_params
from {{ cookiecutter.package_name }}.data import data_hash
from {{ cookiecutter.package_name }}.tasks import task

SRC = Path(__file__).resolve().parents[1] / "src"


def _train_command(folder: Path) -> subprocess.Popen:
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.Popen(
        [sys.executable, "-m", "{{ cookiecutter.package_name }}", "train"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _kill_after_first_checkpoint(process: subprocess.Popen, folder: Path) -> list[str]:
    """SIGKILL as soon as a complete checkpoint exists: the process is in its next epoch."""
    checkpoints = folder / DEFAULT_DIR
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        steps = _steps(checkpoints) if checkpoints.is_dir() else []
        if any((step / "trainer_state.json").is_file() for step in steps):
            time.sleep(0.05)  # into the next epoch, past any checkpoint file still being written
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    return [path.name for path in _steps(checkpoints)]


@pytest.fixture
def project_dir(trained, tmp_path):
    (tmp_path / "data").symlink_to(trained.workspace / "data")
    shutil.copy(trained.workspace / "params.yaml", tmp_path)
    return tmp_path


def _weights(model_dir: Path) -> dict:
    [path] = model_dir.glob("*.safetensors")
    return load_file(path)


def test_a_killed_training_resumes_to_the_uninterrupted_result(
    trained, project_dir, tmp_path, monkeypatch, caplog
) -> None:
    killed = _train_command(project_dir)
    left = _kill_after_first_checkpoint(killed, project_dir)
    assert killed.returncode == -signal.SIGKILL, "the training finished before it was killed"
    assert left, "no checkpoint was written before the kill"
    assert not (project_dir / MODEL_DIR).exists()
    record = json.loads((project_dir / DEFAULT_DIR / RECORD).read_text())

    # A torn copy of what the kill left (as a kill during a write leaves it) is skipped, each
    # checkpoint in one line, and training would start over.
    torn = tmp_path / "torn"
    shutil.copytree(project_dir / DEFAULT_DIR, torn)
    for step in _steps(torn):
        (step / "optimizer.pt").write_bytes(b"torn")
    monkeypatch.setenv(DIR_VARIABLE, str(torn))
    monkeypatch.chdir(project_dir)
    params = load_params()
    augmented = hasattr(task.augmentation(params), "generator")
    with caplog.at_level(logging.WARNING):
        assert to_resume(params, data_hash(), augmented) == (None, None)
    skipped = [line for line in caplog.text.splitlines() if "skipping checkpoint" in line]
    assert len(skipped) == len(left) and "a file is unreadable" in skipped[0], caplog.text
    monkeypatch.delenv(DIR_VARIABLE)

    resumed = _train_command(project_dir)
    output, _ = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, output[-3000:]
    assert f"resuming from {DEFAULT_DIR}/checkpoint-" in output, output[-3000:]
    metrics = json.loads(output.split("test metrics: ", 1)[1].splitlines()[0])
    assert metrics == trained.result.metrics
    assert f"MLflow run:   {record['run_id']}" in output  # the same run, continued
    ours, theirs = _weights(project_dir / MODEL_DIR), _weights(trained.workspace / MODEL_DIR)
    assert ours.keys() == theirs.keys()
    assert all((ours[name] == theirs[name]).all() for name in ours)
    # Finished: nothing is left to resume from.
    assert not (project_dir / DEFAULT_DIR).exists()
