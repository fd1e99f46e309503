"""`train`: fit the model on the prepared data with the Hugging Face Trainer, tracked in MLflow.

Why the Trainer: it brings the progress bar, per-epoch evaluation, seeding, mixed precision and
distributed training (torchrun / accelerate launch) without code of our own; see docs/decisions.md.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import gc_pause
from ..core.checksums import write_manifest
from ..core.paths import MODEL_DIR, PREPARED_DIR, TRAIN_PLOTS_DIR
from ..data.prepare import build_model, data_hash, encode, load_prepared, with_column
from ..tasks import task
from ..tasks.contract import augments_batches
from ..tracking import runs
from . import plots
from .baselines import flat, score_baselines
from .checkpoints import (
    KEEP,
    augmentation_saver,
    checkpoint_dir,
    clear,
    remember,
    restore_augmentation,
    to_resume,
)
from .device import one_line_when_a_peer_stops, same_weights_as_rank_zero, trainer_arguments
from .evaluate import score

if TYPE_CHECKING:  # the settings' schema loads the task: only the type is needed here
    from ..core.config import Params

# The column that marks training rows for a collator altering batches (never given to the model).
TRAINING_ROW = "_training_row"


@dataclass(frozen=True)
class TrainResult:
    metrics: dict[str, Any]
    run_id: str | None
    model_uri: str | None
    history: list[dict[str, Any]]


def _epoch_logger():
    from transformers import TrainerCallback

    class EpochLogger(TrainerCallback):
        def on_log(
            self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any
        ) -> None:
            if state.is_world_process_zero and logs:
                runs.log_epoch(logs, state.epoch or 0)

    return EpochLogger()


def _collator(processor: Any, augment: Any) -> Any:
    """The task's collator; with augmentation, training batches are altered too: raw rows before
    they are encoded (one preprocessing call per batch, not per example), or collated tensors."""
    collate = task.collator(processor)
    if augment is None:
        return collate
    if augments_batches(augment):

        def collate_and_alter(rows: list[dict[str, Any]]) -> Any:
            marks = [row.pop(TRAINING_ROW, False) for row in rows]  # the model never sees it
            batch = collate(rows)
            return augment(batch) if all(marks) else batch

        return collate_and_alter
    to_features = task.training_features(processor)

    def alter_and_collate(rows: list[dict[str, Any]]) -> Any:
        if "input" not in rows[0]:  # validation and test batches arrive encoded
            return collate(rows)
        raw = {
            "input": augment([row["input"] for row in rows]),
            "label": [row["label"] for row in rows],
        }
        encoded = to_features(raw)
        return collate(
            [{key: values[i] for key, values in encoded.items()} for i in range(len(rows))]
        )

    return alter_and_collate


def _training_features(splits: dict[str, Any], processor: Any, augment: Any) -> dict[str, Any]:
    """Every split encoded once, except a training split whose raw rows an augmentation alters
    (the collator encodes each altered batch, so every epoch sees new copies). Training rows
    altered as tensors carry a mark that tells the collator so."""
    features = {}
    for name, split in splits.items():
        if name == "train" and augment is not None and not augments_batches(augment):
            features[name] = split
            continue
        features[name] = encode(split, processor)
        if name == "train" and augment is not None:
            features[name] = with_column(features[name], TRAINING_ROW, [True] * len(split))
    return features


def _early_stopping(patience: int | None) -> list[Any]:
    """Stop after `patience` epochs without a better validation score (None: never), and as soon
    as the validation split's primary metric is perfect: nothing is left to learn on it. The best
    epoch by the selection metric is the one kept either way."""
    from transformers import EarlyStoppingCallback, TrainerCallback

    class StopWhenPerfect(TrainerCallback):
        def on_evaluate(
            self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any
        ) -> None:
            if (
                metrics
                and metrics.get(f"eval_{task.JUDGING.primary_metric}") == task.JUDGING.perfect_score
            ):
                control.should_training_stop = True

    if patience is None:
        return []
    return [EarlyStoppingCallback(early_stopping_patience=patience), StopWhenPerfect()]


def _step_cap(max_steps: int | None) -> list[Any]:
    """Stop after `max_steps` optimizer steps, mid-epoch if need be; the epoch ends as usual
    (validation, checkpoint, best model). Not the Trainer's own `max_steps`, which replaces the
    epochs: a cap beyond `train.epochs` would train on past them."""
    from transformers import TrainerCallback

    class StepCap(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if max_steps is not None and state.global_step >= max_steps:
                control.should_training_stop = True

    return [] if max_steps is None else [StepCap()]


def _save(processor: Any, model: Any, model_dir: Path, run_id: str | None) -> Any:
    """Replace the saved model atomically: a failed save keeps the previous one. The folder's
    manifest records the run and every file's checksum (checked before the model is used).
    A PEFT adapter (LoRA) is merged into its base weights first, so the folder is always a whole
    checkpoint that `predict`, `serve` and vLLM load alike; returns the model saved."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".model-", dir=model_dir.parent))
    try:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        write_manifest(staging, run_id)
        shutil.rmtree(model_dir, ignore_errors=True)
        staging.rename(model_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return model


def selection_greater_is_better() -> bool:
    """Whether a higher validation score is better for the metric that picks the best epoch."""
    return task.JUDGING.selection_metric != "loss" and task.JUDGING.greater_is_better


def _unreliable_mtime(record: Any) -> bool:
    return "mtime may not be reliable" not in record.getMessage()


def _best_model_elsewhere(record: Any) -> bool:
    return "Could not locate the best model" not in record.getMessage()


def _quiet_checkpoint_order() -> None:
    """Drop the Trainer's warning that checkpoints saved within a second of each other (a small
    model's epochs) are ordered by step instead of time: the order is right either way, and
    nothing in it is the user's to fix. Likewise its advice to save checkpoints on every machine,
    which a process on another machine than rank 0's gets: it takes rank 0's best weights after
    training (same_weights_as_rank_zero)."""
    import logging

    logging.getLogger("transformers.trainer_utils").addFilter(_unreliable_mtime)
    logging.getLogger("transformers.trainer").addFilter(_best_model_elsewhere)


def build_trainer(
    params: Params,
    splits: dict[str, Any],
    output_dir: str,
    callbacks: Sequence[Any] = (),
    resume_from: Path | None = None,
) -> tuple[Any, Any, dict[str, Any]]:
    """The Trainer that fits a new model with params.yaml's `train` section, its processor and
    the encoded splits: what `train` and each `tune` trial share. `train` keeps resumable
    checkpoints in `output_dir` (checkpoints.py; `resume_from`: the one it resumes from); a
    trial keeps only the best epoch's weights."""
    from transformers import Trainer

    processor, model = build_model(params, splits["train"])
    augment = task.augmentation(params)
    features = _training_features(splits, processor, augment)
    resumable = output_dir == str(checkpoint_dir())
    if resumable and hasattr(augment, "generator"):
        callbacks = [*callbacks, augmentation_saver(augment)]
        if resume_from is not None:
            restore_augmentation(augment, resume_from)
    args = trainer_arguments(
        params.train,
        output_dir,
        num_train_epochs=params.train.epochs,
        weight_decay=params.train.weight_decay,
        warmup_steps=params.train.warmup_ratio,  # a float below 1 is a ratio of all steps
        eval_strategy="epoch",
        logging_strategy="epoch",
        # Each epoch's model is kept until a better one replaces it; the best (on the
        # validation split, by the task's selection metric) is the one saved and scored.
        save_strategy="epoch",
        save_total_limit=KEEP if resumable else 1,
        load_best_model_at_end=True,
        metric_for_best_model=task.JUDGING.selection_metric,
        greater_is_better=selection_greater_is_better(),
        # Optimizer, scheduler and random generators too, where a run may be resumed.
        save_only_model=not resumable,
        seed=params.seed,
        data_seed=params.seed,
    )
    _quiet_checkpoint_order()
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=features["train"],
        eval_dataset=features["validation"],
        data_collator=_collator(processor, augment),
        compute_metrics=task.compute_metrics(processor),
        preprocess_logits_for_metrics=task.reduce_logits,
        callbacks=[
            _epoch_logger(),
            *_early_stopping(params.train.early_stopping_patience),
            *_step_cap(params.train.max_steps),
            *callbacks,
        ],
    )
    return trainer, processor, features


def train(params: Params, model_dir: Path = MODEL_DIR) -> TrainResult:
    from transformers import set_seed
    from transformers.utils import logging as transformers_logging

    # Loading and saving bars of a few milliseconds would bury the training progress bar.
    transformers_logging.disable_progress_bar()
    set_seed(params.seed, deterministic=True)
    splits = load_prepared()
    data = data_hash()
    tags = runs.lineage_tags(data)
    augmented = hasattr(task.augmentation(params), "generator")
    resume_from, resumed_run = to_resume(params, data, augmented)

    with (
        tempfile.TemporaryDirectory() as scratch,
        runs.tracked_run("train", params.flat(), tags, resume=resumed_run) as run,
    ):
        remember(params, data, run.info.run_id if run else None)
        trainer, processor, features = build_trainer(
            params, splits, str(checkpoint_dir()), resume_from=resume_from
        )
        gc_pause.resume()  # the libraries are loaded: collect again, without rescanning them
        with one_line_when_a_peer_stops():
            trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
            same_weights_as_rank_zero(trainer.model)
            # Every process takes part: under DDP each scores a shard and the predictions are
            # gathered, in order, on all of them.
            prediction = trainer.predict(features["test"])
        if not trainer.is_world_process_zero():
            return TrainResult(metrics={}, run_id=None, model_uri=None, history=[])

        model = _save(processor, trainer.model, model_dir, run.info.run_id if run else None)
        plots.loss_curve(trainer.state.log_history, TRAIN_PLOTS_DIR)
        # The run records its test scores too; metrics.json and the evaluation plots in the
        # project are the `evaluate` stage's outputs, so these go to a scratch folder.
        test_plots = Path(scratch) / "evaluate"
        baselines = score_baselines(splits["train"], splits["test"], params)
        metrics = score(processor, model, prediction, splits["test"], test_plots, None, baselines)
        model_uri = (
            runs.resilient(
                lambda: _log_to_mlflow(
                    metrics, model_dir, splits["test"], test_plots, params.data.source
                )
            )
            if run
            else None
        )
    clear()  # the model is saved and logged: nothing is left to resume
    return TrainResult(
        metrics=metrics,
        run_id=run.info.run_id if run else None,
        model_uri=model_uri,
        history=trainer.state.log_history,
    )


def _log_to_mlflow(
    metrics: dict[str, Any], model_dir: Path, test: Any, test_plots: Path, source: str
) -> str:
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    from ..serving.predict import Predictor, mlflow_model_class, to_model_input

    datasets = runs.log_datasets(source, PREPARED_DIR)
    mlflow.log_artifacts(str(TRAIN_PLOTS_DIR), artifact_path="plots/train")
    mlflow.log_artifacts(str(test_plots), artifact_path="plots/evaluate")
    example_raw = task.example_input(test)
    example = pd.DataFrame({"input": [to_model_input(example_raw)]})
    output = pd.DataFrame(Predictor(model_dir).predict([example_raw]))
    with runs.quiet_mlflow():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=mlflow_model_class()(),
            artifacts={"model": str(model_dir)},
            code_paths=[str(Path(__file__).parents[1])],  # the package, not training/
            pip_requirements=runs.pip_requirements(),
            signature=infer_signature(example, output),
            input_example=example,
        )
    # Logged against the model and the test split too: the model's page shows its scores.
    scores = {key: value for key, value in metrics.items() if key != "baselines"}
    mlflow.log_metrics(
        {f"test_{name}": value for name, value in scores.items()} | flat(metrics["baselines"]),
        model_id=info.model_id,
        dataset=datasets["test"],
    )
    return info.model_uri
