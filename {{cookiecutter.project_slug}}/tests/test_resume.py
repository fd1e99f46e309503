"""Resumable training (conftest.py's `interrupted_run`): a real `train` process killed with
SIGKILL once it has checkpointed, then `train` again, ends with the same weights and test metrics
as the session's uninterrupted run, in the same MLflow run; a torn checkpoint is skipped in one
line. The killed process built its model and processor itself: equal final weights also prove
the build does not depend on the process (hash seeds, thread scheduling)."""

import logging
import shutil
from pathlib import Path

from safetensors.torch import load_file

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.paths import MODEL_DIR
from {{ cookiecutter.package_name }}.data.prepare import data_hash
from {{ cookiecutter.package_name }}.tasks import task
from {{ cookiecutter.package_name }}.training.checkpoints import (
    DEFAULT_DIR,
    DIR_VARIABLE,
    _steps,
    to_resume,
)


def _weights(model_dir: Path) -> dict:
    [path] = model_dir.glob("*.safetensors")
    return load_file(path)


def test_a_killed_training_resumes_to_the_uninterrupted_result(trained, interrupted_run) -> None:
    assert any(
        line.startswith(f"resuming from {DEFAULT_DIR}/checkpoint-")
        for line in interrupted_run.warnings
    ), interrupted_run.warnings
    result = interrupted_run.result
    assert result.metrics == trained.result.metrics
    assert result.run_id == interrupted_run.killed_run_id  # the same MLflow run, continued
    ours = _weights(interrupted_run.project / MODEL_DIR)
    theirs = _weights(trained.workspace / MODEL_DIR)
    assert ours.keys() == theirs.keys()
    assert all((ours[name] == theirs[name]).all() for name in ours)
    # Finished: nothing is left to resume from.
    assert not (interrupted_run.project / DEFAULT_DIR).exists()


def test_a_torn_checkpoint_is_skipped_in_one_line(
    interrupted_run, tmp_path, monkeypatch, caplog
) -> None:
    """What the kill left, torn as a kill during a write leaves it: each checkpoint is skipped
    with one line naming why, and training would start over."""
    torn = tmp_path / "torn"
    shutil.copytree(interrupted_run.after_kill, torn)
    steps = _steps(torn)
    assert steps, "the kill left no checkpoint"
    for step in steps:
        (step / "optimizer.pt").write_bytes(b"torn")
    monkeypatch.setenv(DIR_VARIABLE, str(torn))
    monkeypatch.chdir(interrupted_run.project)
    params = load_params()
    augmented = hasattr(task.augmentation(params), "generator")
    with caplog.at_level(logging.WARNING):
        assert to_resume(params, data_hash(), augmented) == (None, None)
    skipped = [line for line in caplog.text.splitlines() if "skipping checkpoint" in line]
    assert len(skipped) == len(steps) and "a file is unreadable" in skipped[0], caplog.text
    assert not torn.exists()  # emptied: the next run starts over
