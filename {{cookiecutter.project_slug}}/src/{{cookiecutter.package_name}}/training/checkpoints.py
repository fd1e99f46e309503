"""Resumable training: `train` checkpoints every epoch, and a `train` after an interruption (a
kill, a preempted spot VM, Ctrl-C) resumes from the newest complete checkpoint.

A checkpoint is the Trainer's own (weights, optimizer, scheduler, every random generator's state,
the trainer state with early stopping's counter) plus the state of the augmentation's generator,
so a resumed run ends with the same weights and metrics as an uninterrupted one. The folder also
records which configuration and data its checkpoints belong to, and the MLflow run to continue:
checkpoints of other parameters or data are never resumed from. A finished `train` deletes them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from ..tracking.runs import is_main_process

DEFAULT_DIR = Path("models/checkpoints")
# Where the SkyPilot task points it: a bucket mounted on the VM survives its preemption.
DIR_VARIABLE = "FLYWHEEL_CHECKPOINT_DIR"
RECORD = "run.json"
# Checkpoints kept: the newest, and the best so far (the one `train` ends with).
KEEP = 2
logger = logging.getLogger(__name__)


def checkpoint_dir() -> Path:
    return Path(os.environ.get(DIR_VARIABLE) or DEFAULT_DIR)


def fingerprint(params: Any, data_hash: str) -> str:
    """What the checkpoints must have been trained with: every parameter and the data."""
    values = {key: value for key, value in params.fingerprinted().items() if key != "train.resume"}
    return hashlib.sha256(json.dumps([values, data_hash], sort_keys=True).encode()).hexdigest()


def _steps(folder: Path) -> list[Path]:
    """The checkpoint folders, newest first."""
    found = [path for path in folder.glob("checkpoint-*") if path.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda path: int(path.name.split("-")[-1]), reverse=True)


def problem(checkpoint: Path, augmented: bool) -> str | None:
    """Why `checkpoint` cannot be resumed from (a kill while it was written leaves it partial),
    or None when every file is there and readable."""
    import torch

    try:
        json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "trainer_state.json is missing or cut short"
    weights = list(checkpoint.glob("*.safetensors")) + list(checkpoint.glob("pytorch_model*.bin"))
    if not weights:
        return "it holds no model weights"
    needed = ["optimizer.pt", "scheduler.pt"]
    if augmented:
        needed.append(augmentation_file(0).name)
    for name in needed:
        if not (checkpoint / name).is_file():
            return f"{name} is missing"
    if not list(checkpoint.glob("rng_state*.pth")):
        return "the random generators' state is missing"
    try:
        from safetensors import safe_open

        for path in weights:
            if path.suffix == ".safetensors":
                with safe_open(str(path), "pt") as tensors:
                    tensors.keys()
        torch.load(checkpoint / "optimizer.pt", map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file: a torn write
        return f"a file is unreadable ({str(error).splitlines()[0][:120]})"
    return None


def to_resume(params: Any, data_hash: str, augmented: bool) -> tuple[Path | None, str | None]:
    """The checkpoint to resume from and the MLflow run to continue, or (None, None) to start
    over (then the folder is emptied). Says in one line what it decided, and why."""
    folder = checkpoint_dir()
    record_file = folder / RECORD
    if params.train.resume == "never" or not record_file.is_file():
        clear(folder)
        return None, None
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
    except ValueError:
        record = {}
    if record.get("fingerprint") != fingerprint(params, data_hash):
        logger.warning(
            "%s holds checkpoints of other parameters or data: training starts over", folder
        )
        clear(folder)
        return None, None
    for checkpoint in _steps(folder):
        why = problem(checkpoint, augmented)
        if why is None:
            logger.warning("resuming from %s (train.resume: auto)", checkpoint)
            return checkpoint, record.get("run_id")
        logger.warning("skipping checkpoint %s: %s", checkpoint, why)
    clear(folder)
    return None, None


def remember(params: Any, data_hash: str, run_id: str | None) -> None:
    """Record what the checkpoints about to be written belong to (before the first one is)."""
    if not is_main_process():
        return
    folder = checkpoint_dir()
    folder.mkdir(parents=True, exist_ok=True)
    record = {"fingerprint": fingerprint(params, data_hash), "run_id": run_id}
    staging = folder / f".{RECORD}.tmp"
    staging.write_text(json.dumps(record) + "\n", encoding="utf-8")
    staging.replace(folder / RECORD)


def clear(folder: Path | None = None) -> None:
    if is_main_process():
        shutil.rmtree(folder or checkpoint_dir(), ignore_errors=True)


def augmentation_file(rank: int) -> Path:
    return Path(f"augmentation_rng_{rank}.pt")


def _generator_state(generator: Any) -> Any:
    return (
        generator.get_state() if hasattr(generator, "get_state") else generator.bit_generator.state
    )


def _set_generator_state(generator: Any, state: Any) -> None:
    if hasattr(generator, "set_state"):
        generator.set_state(state)
    else:
        generator.bit_generator.state = state


def augmentation_saver(augment: Any) -> Any:
    """A Trainer callback that saves the augmentation's generator into each new checkpoint: the
    Trainer restores its own generators, not a task's."""
    import torch
    from transformers import TrainerCallback
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    class SaveAugmentationState(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            checkpoint = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            if checkpoint.is_dir():
                rank = int(os.environ.get("RANK", "0"))
                state_now = _generator_state(augment.generator)
                torch.save({"state": state_now}, checkpoint / augmentation_file(rank))

    return SaveAugmentationState()


def restore_augmentation(augment: Any, checkpoint: Path) -> None:
    import torch

    rank = int(os.environ.get("RANK", "0"))
    path = checkpoint / augmentation_file(rank)
    if not path.is_file():
        path = checkpoint / augmentation_file(0)
    saved = torch.load(path, map_location="cpu", weights_only=False)
    _set_generator_state(augment.generator, saved["state"])
